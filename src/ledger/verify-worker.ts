/**
 * A worker thread of the parallel offline audit (verify-parallel.ts): for a range of block heights it
 * reads the transaction rows from its own read-only connection and does what needs no replayed state —
 * the RFC 6962 leaf hash of each envelope, the canonical-JSON and shape checks, and the Ed25519
 * signature against the signer's candidate key. The replay in the main thread uses a result only for
 * a row whose leaf hash it computed too (docs/ledger.md "Audit: `keyledger ledger verify`", "On every core").
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { fromBase64url, utf8 } from '../protocol/bytes.js';
import { TX_DOMAIN } from './domains.js';
import { leafHash } from './merkle.js';
import { keyIdOf, verifySignature } from './signing-keys.js';
import { envelopeOfText } from './verify-ledger.js';

/** What the worker is started with. */
export interface VerifyWorkerData {
  /** Path of the ledger's SQLite database. */
  db: string;
  /** Candidate public keys of signers (base64url, as the state and genesis hold them). */
  keys: string[];
}

/** A job: the transactions of blocks `from`..`to`. */
export interface VerifyJob {
  id: number;
  from: number;
  to: number;
}

/** The answer to a job, row by row in (height, index) order. */
export interface VerifyJobResult {
  id: number;
  /** Height of each row. */
  heights: Int32Array;
  /** 32 bytes per row: the leaf hash of the envelope text checked. */
  leaves: Uint8Array;
  /** Per row: index in `keys` of the key the signature verified with; -1 none; -2 refused. */
  keyIndex: Int32Array;
}

/** Index of the verified key, -1 when no candidate key verifies, -2 when the envelope is refused. */
const NOT_VERIFIED = -1;
const REFUSED = -2;

function check(text: string, keyIndexById: Map<string, number>, keys: readonly string[]): number {
  let sig: string;
  let signer: string;
  try {
    const envelope = envelopeOfText(text);
    sig = envelope.sig;
    signer = envelope.tx.signer;
  } catch {
    return REFUSED;
  }
  const index = keyIndexById.get(signer);
  if (index === undefined) return NOT_VERIFIED;
  // The text is canonical (RFC 8785 puts "sig" before "tx"), so the signed tx text is the rest.
  const prefix = `{"sig":${JSON.stringify(sig)},"tx":`;
  if (!text.startsWith(prefix) || !text.endsWith('}')) return NOT_VERIFIED;
  const signed = utf8(text.slice(prefix.length, -1));
  return verifySignature(keys[index]!, TX_DOMAIN, signed, sig) ? index : NOT_VERIFIED;
}

function keyIndexes(keys: readonly string[]): Map<string, number> {
  const byId = new Map<string, number>();
  keys.forEach((key, index) => {
    try {
      byId.set(keyIdOf(fromBase64url(key)), index);
    } catch {
      // Not a key: nothing verifies with it.
    }
  });
  return byId;
}

if (parentPort) {
  const port = parentPort;
  const { db: path, keys } = workerData as VerifyWorkerData;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  const rowsOf = db.prepare(
    'SELECT height, envelope FROM txs WHERE height BETWEEN ? AND ? ORDER BY height, idx',
  );
  const byId = keyIndexes(keys);
  port.on('message', ({ id, from, to }: VerifyJob) => {
    const rows = rowsOf.all(from, to) as Array<{ height: number; envelope: string }>;
    const heights = new Int32Array(rows.length);
    const leaves = new Uint8Array(32 * rows.length);
    const keyIndex = new Int32Array(rows.length);
    rows.forEach((row, i) => {
      heights[i] = row.height;
      leaves.set(leafHash(utf8(row.envelope)), 32 * i);
      keyIndex[i] = check(row.envelope, byId, keys);
    });
    const result: VerifyJobResult = { id, heights, leaves, keyIndex };
    port.postMessage(result, [heights.buffer, leaves.buffer, keyIndex.buffer]);
  });
}
