/**
 * Block headers: what validators sign. A header commits to the previous block (hash chain), to its
 * transactions (RFC 6962 root), to the state after them (state tree root) and to the whole history
 * before it (RFC 6962 root over the hashes of blocks 1..height-1), so a single signed header is a
 * checkpoint from which every proof can be checked.
 */
import { canonicalBytes } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { HASH_HEX, sha256 } from '../protocol/hash.js';
import { checkShape } from '../protocol/shape.js';
import { BLOCK_DOMAIN } from './domains.js';
import type { Genesis } from './genesis.js';
import { KEY_ID, SIGNATURE_B64, type SigningKey, verifySignature } from './signing-keys.js';

/** A block header. Hashes are lowercase hex. */
export interface BlockHeader {
  v: 1;
  chain: string;
  /** 1 for the first block. */
  height: number;
  /** Hash of the previous block; the chain id for block 1. */
  prevHash: string;
  /** Milliseconds since the epoch; never decreases. */
  time: number;
  txCount: number;
  /** RFC 6962 Merkle Tree Hash of the block's transaction ids (leaf hashes). */
  txRoot: string;
  /** State tree root after this block. */
  stateRoot: string;
  /** RFC 6962 Merkle Tree Hash over the hashes of blocks 1..height-1 (height-1 leaves). */
  historyRoot: string;
  /** Key id of the validator that built the block. */
  proposer: string;
}

/** A header with its hash and validator signatures: a checkpoint. */
export interface SignedHeader {
  header: BlockHeader;
  hash: string;
  signatures: Array<{ validator: string; sig: string }>;
}

/** Hash of a header: SHA-256 of its canonical JSON, hex. */
export function blockHashOf(header: BlockHeader): string {
  return sha256(canonicalBytes(header)).toString('hex');
}

/** Signs a header with one validator. */
export function signHeader(header: BlockHeader, validator: SigningKey): SignedHeader {
  const hash = blockHashOf(header);
  return {
    header,
    hash,
    signatures: [{ validator: validator.keyId, sig: validator.sign(BLOCK_DOMAIN, Buffer.from(hash, 'hex')) }],
  };
}

const hash = { type: 'string', max: 64, pattern: HASH_HEX } as const;
const count = { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER } as const;

/** Shape of a signed header, for input from outside. */
export const SIGNED_HEADER_SHAPE = {
  header: {
    type: 'object',
    fields: {
      v: { type: 'integer', min: 1, max: 1 },
      chain: hash,
      height: { type: 'integer', min: 1, max: Number.MAX_SAFE_INTEGER },
      prevHash: hash,
      time: count,
      txCount: count,
      txRoot: hash,
      stateRoot: hash,
      historyRoot: hash,
      proposer: { type: 'string', max: 32, pattern: KEY_ID },
    },
  },
  hash,
  signatures: {
    type: 'array',
    maxItems: 64,
    minItems: 1,
    items: {
      type: 'object',
      fields: {
        validator: { type: 'string', max: 32, pattern: KEY_ID },
        sig: { type: 'string', max: 86, pattern: SIGNATURE_B64 },
      },
    },
  },
} as const;

/**
 * Verifies a signed header against the genesis: shape, hash, chain id, and a quorum of distinct
 * validator signatures. Returns the header.
 * @throws KlError `KL_CHECKPOINT_INVALID`
 */
export function verifySignedHeader(value: unknown, genesis: Genesis, chain: string): SignedHeader {
  const signed = checkShape<SignedHeader>(value, SIGNED_HEADER_SHAPE, 'KL_CHECKPOINT_INVALID', 'checkpoint');
  if (signed.header.chain !== chain)
    throw new KlError('KL_CHECKPOINT_INVALID', 'checkpoint belongs to another ledger');
  if (blockHashOf(signed.header) !== signed.hash)
    throw new KlError('KL_CHECKPOINT_INVALID', 'checkpoint hash does not match its header');
  const good = new Set<string>();
  for (const s of signed.signatures) {
    const v = genesis.validators.find((x) => x.keyId === s.validator);
    if (v && verifySignature(v.publicKey, BLOCK_DOMAIN, Buffer.from(signed.hash, 'hex'), s.sig))
      good.add(v.keyId);
  }
  if (good.size < genesis.quorum) {
    throw new KlError('KL_CHECKPOINT_INVALID', 'checkpoint is not signed by a quorum of validators', {
      valid: good.size,
      quorum: genesis.quorum,
    });
  }
  return signed;
}
