/**
 * The node's verified checkpoint (docs/ledger.md "Integrity at start"): how far the stored ledger was
 * checked row by row at an earlier start — the height and hash of the last block checked, and how many
 * transactions blocks 1..height hold — signed by the node's validator key, so whoever can write the
 * SQLite file but not the node keys cannot move it forward over rows the node never checked. Opening
 * re-checks transaction rows only above it; everything else (headers, hashes, history, transaction
 * count, state) is checked on every start.
 *
 * A new data directory gets the origin record (height 0: nothing checked yet) when it is initialised,
 * so a node that opens a ledger with no valid record knows it was deleted or forged, or that the
 * directory predates the record, and refuses to start (docs/ledger.md "Integrity at start").
 */
import { canonicalBytes } from '../protocol/canonical-json.js';
import { HASH_HEX } from '../protocol/hash.js';
import { VERIFIED_DOMAIN } from './domains.js';
import { KEY_ID, type PublicKeyInfo, type SigningKey, verifySignature } from './signing-keys.js';

/** Meta key (table `meta`) of the node's verified checkpoint. */
export const VERIFIED_KEY = 'verified';

/** What the record states. */
export interface VerifiedPoint {
  /** 0 for the origin record of a new data directory. */
  height: number;
  /** Hash of the block at `height`, hex; the chain id at height 0. */
  hash: string;
  /** Transactions in blocks 1..height. */
  txs: number;
}

/** The stored, signed record. */
export interface VerifiedCheckpoint extends VerifiedPoint {
  v: 1;
  chain: string;
  validator: string;
  sig: string;
}

function signedBytes(chain: string, p: VerifiedPoint): Uint8Array {
  return canonicalBytes({ v: 1, chain, height: p.height, hash: p.hash, txs: p.txs });
}

/** The origin point of a new ledger: no block checked yet. */
export function originPoint(chain: string): VerifiedPoint {
  return { height: 0, hash: chain, txs: 0 };
}

/** Signs a verified point with the node's validator key. */
export function signVerifiedCheckpoint(
  chain: string,
  p: VerifiedPoint,
  validator: SigningKey,
): VerifiedCheckpoint {
  return {
    v: 1,
    chain,
    height: p.height,
    hash: p.hash,
    txs: p.txs,
    validator: validator.keyId,
    sig: validator.sign(VERIFIED_DOMAIN, signedBytes(chain, p)),
  };
}

/**
 * Reads a stored record and checks its signature: by a validator of the genesis, and by `ownKeyId`
 * when the node's key is open. Returns null when absent, malformed or not properly signed (a reader
 * then checks the whole ledger; a node refuses to start). The origin record (height 0) is returned
 * only with `origin: true`: it vouches for no block, so a full audit has no use for it.
 */
export function readVerifiedCheckpoint(
  text: string | undefined,
  genesis: { validators: readonly PublicKeyInfo[] },
  chain: string,
  ownKeyId?: string,
  { origin = false }: { origin?: boolean } = {},
): VerifiedPoint | null {
  if (!text) return null;
  let r: Partial<VerifiedCheckpoint>;
  try {
    r = JSON.parse(text) as Partial<VerifiedCheckpoint>;
  } catch {
    return null;
  }
  if (
    r?.v !== 1 ||
    r.chain !== chain ||
    !Number.isSafeInteger(r.height) ||
    (r.height as number) < (origin ? 0 : 1) ||
    (r.height === 0 && (r.hash !== chain || r.txs !== 0)) ||
    !Number.isSafeInteger(r.txs) ||
    (r.txs as number) < 0 ||
    typeof r.hash !== 'string' ||
    !HASH_HEX.test(r.hash) ||
    typeof r.validator !== 'string' ||
    !KEY_ID.test(r.validator) ||
    typeof r.sig !== 'string'
  )
    return null;
  if (ownKeyId !== undefined && r.validator !== ownKeyId) return null;
  const v = genesis.validators.find((x) => x.keyId === r.validator);
  const point = { height: r.height as number, hash: r.hash, txs: r.txs as number };
  if (!v || !verifySignature(v.publicKey, VERIFIED_DOMAIN, signedBytes(chain, point), r.sig)) return null;
  return point;
}
