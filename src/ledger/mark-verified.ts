/**
 * `keyledger ledger verify --mark-verified`: after a full audit of the data directory succeeds, records
 * the node's verified checkpoint (verified-checkpoint.ts) at the ledger's top, signed with the node's
 * validator key. This is how an operator lets a node start on a ledger that has no valid record (it
 * was deleted, or the directory predates the record): an explicit decision that this history is the
 * expected one (docs/ledger.md "Integrity at start").
 */
import Database from 'better-sqlite3';
import { KlError } from '../protocol/errors.js';
import { acquireWriterLock, dataPaths, isInitialised, readGenesisFile } from './data-dir.js';
import { openKeyFile } from './sealed-key-file.js';
import {
  originPoint,
  readVerifiedCheckpoint,
  signVerifiedCheckpoint,
  VERIFIED_KEY,
  type VerifiedPoint,
} from './verified-checkpoint.js';
import type { LedgerVerification } from './verify-ledger.js';
import { type ParallelVerifyOptions, verifyLedgerDataInParallel } from './verify-parallel.js';

/** Options of {@link verifyAndMark}. */
export interface MarkVerifiedOptions extends ParallelVerifyOptions {
  /** Unlocks the node's validator key. */
  passphrase: string;
}

/**
 * Takes the data directory's writer lock (so no server runs meanwhile), unlocks the validator key,
 * audits the whole ledger with {@link verifyLedgerDataInParallel} and, only if that succeeds, writes the signed
 * verified checkpoint at the ledger's top (height 0 for a ledger without blocks).
 * @returns the audit result and the recorded point (null when the audit failed: nothing is written).
 * @throws KlError `KL_DATA_DIR` (not initialised, or in use), `KL_PASSPHRASE_WRONG`, or
 *   `KL_LEDGER_CORRUPT` when the ledger changed between the audit and the write.
 */
export async function verifyAndMark(o: MarkVerifiedOptions): Promise<{
  result: LedgerVerification;
  marked: VerifiedPoint | null;
}> {
  if (!isInitialised(o.dataDir))
    throw new KlError('KL_DATA_DIR', `${o.dataDir} holds no ledger; initialise it first`);
  const paths = dataPaths(o.dataDir);
  const release = acquireWriterLock(o.dataDir);
  try {
    const validator = openKeyFile(paths.validatorKey, o.passphrase, 'validator');
    const { genesis, chainId } = readGenesisFile(paths.genesis);
    if (!genesis.validators.some((v) => v.keyId === validator.keyId))
      throw new KlError('KL_LEDGER_CORRUPT', 'the validator key is not named in the genesis');
    const result = await verifyLedgerDataInParallel(o);
    if (!result.ok) return { result, marked: null };
    const db = new Database(paths.db, { fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      const marked = db
        .transaction(() => {
          const top = db.prepare('SELECT height, hash FROM blocks ORDER BY height DESC LIMIT 1').get() as
            | { height: number; hash: string }
            | undefined;
          const txs = (db.prepare('SELECT count(*) AS n FROM txs').get() as { n: number }).n;
          if ((top?.height ?? 0) !== result.blocks || txs !== result.transactions)
            throw new KlError(
              'KL_LEDGER_CORRUPT',
              'the ledger changed while it was verified; nothing recorded',
            );
          const point = top ? { height: top.height, hash: top.hash, txs } : originPoint(chainId);
          db.prepare(
            'INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
          ).run(VERIFIED_KEY, JSON.stringify(signVerifiedCheckpoint(chainId, point, validator)));
          return point;
        })
        .immediate();
      return { result, marked };
    } finally {
      db.close();
    }
  } finally {
    release();
  }
}

/**
 * The node's verified checkpoint as stored in `dataDir`, signature checked (height 0 for the origin
 * record of a ledger that had no block when it was last checked), or null when there is no valid one:
 * a node then refuses to start.
 */
export function storedVerifiedCheckpoint(dataDir: string): VerifiedPoint | null {
  const paths = dataPaths(dataDir);
  const { genesis, chainId } = readGenesisFile(paths.genesis);
  const db = new Database(paths.db, { readonly: true, fileMustExist: true });
  try {
    const text = (
      db.prepare('SELECT value FROM meta WHERE key = ?').get(VERIFIED_KEY) as { value: string } | undefined
    )?.value;
    return readVerifiedCheckpoint(text, genesis, chainId, undefined, { origin: true });
  } finally {
    db.close();
  }
}
