/**
 * Block headers: what validators sign. A header commits to the previous block (hash chain), to its
 * transactions (RFC 6962 root), to the state after them (state tree root) and to the whole history
 * before it (RFC 6962 root over the hashes of blocks 1..height-1), so a single signed header is a
 * checkpoint from which every proof can be checked.
 */
import { fromHex } from '../protocol/bytes.js';
import { canonicalBytes } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { check } from '../protocol/schemas/check.js';
import { SignedHeaderSchema } from '../protocol/schemas/ledger.js';
import { BLOCK_DOMAIN } from './domains.js';
import { type PublicKeyInfo, type SigningKey, verifySignature } from './signing-keys.js';

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

/**
 * Whose signatures make a block header valid, and how many distinct ones are needed: the genesis
 * itself, or the signers of a ledger ordered by a chain (node-admission.ts `blockSigners`).
 */
export interface BlockSigners {
  validators: readonly PublicKeyInfo[];
  quorum: number;
}

/** Hash of a header: SHA-256 of its canonical JSON, hex. */
export function blockHashOf(header: BlockHeader): string {
  return sha256Hex(canonicalBytes(header));
}

/** Signs a header with one validator. */
export function signHeader(header: BlockHeader, validator: SigningKey): SignedHeader {
  const hash = blockHashOf(header);
  return {
    header,
    hash,
    signatures: [{ validator: validator.keyId, sig: validator.sign(BLOCK_DOMAIN, fromHex(hash)) }],
  };
}

/**
 * Verifies a signed header against the genesis (or the {@link BlockSigners} of a ledger ordered by a
 * chain): shape, hash, chain id, and a quorum of distinct validator signatures. Returns the header.
 * @throws KlError `KL_CHECKPOINT_INVALID`
 */
export function verifySignedHeader(value: unknown, genesis: BlockSigners, chain: string): SignedHeader {
  const signed: SignedHeader = check(SignedHeaderSchema, value, 'KL_CHECKPOINT_INVALID', 'checkpoint');
  if (signed.header.chain !== chain)
    throw new KlError('KL_CHECKPOINT_INVALID', 'checkpoint belongs to another ledger');
  if (blockHashOf(signed.header) !== signed.hash)
    throw new KlError('KL_CHECKPOINT_INVALID', 'checkpoint hash does not match its header');
  const good = new Set<string>();
  for (const s of signed.signatures) {
    const v = genesis.validators.find((x) => x.keyId === s.validator);
    if (v && verifySignature(v.publicKey, BLOCK_DOMAIN, fromHex(signed.hash), s.sig)) good.add(v.keyId);
  }
  if (good.size < genesis.quorum) {
    throw new KlError('KL_CHECKPOINT_INVALID', 'checkpoint is not signed by a quorum of validators', {
      valid: good.size,
      quorum: genesis.quorum,
    });
  }
  return signed;
}
