/**
 * Storage faults (docs/reliability.md "Disk full and read-only data directory"): the disk is full, or the
 * data directory refuses writes (mounted read-only, immutable, no permission). Every writer — the ledger, the
 * server's operational database, the encrypted logs — turns such an error into one typed, person-readable
 * error, `KL_STORAGE_UNAVAILABLE` (503: nothing was written, try again later), instead of an internal error.
 */
import { KlError } from '../protocol/errors.js';

/** What kind of storage fault an error is. */
export type StorageFault = 'full' | 'read-only';

const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
const READ_ONLY = new Set([
  'EROFS',
  'EPERM',
  'EACCES',
  'SQLITE_READONLY',
  'SQLITE_READONLY_DBMOVED',
  'SQLITE_READONLY_DIRECTORY',
  'SQLITE_READONLY_CANTINIT',
  'SQLITE_READONLY_CANTLOCK',
  'SQLITE_READONLY_RECOVERY',
  'SQLITE_READONLY_ROLLBACK',
  'SQLITE_CANTOPEN',
  'SQLITE_AUTH',
]);

/**
 * The storage fault behind `err` (a Node `fs` error or a better-sqlite3 `SqliteError`, or either
 * as `cause`), or null when it is something else. SQLite reports a failed write as an I/O error
 * whose errno it keeps to itself, so `SQLITE_IOERR_*` counts as read-only unless the message says
 * the disk is full.
 */
export function storageFault(err: unknown): StorageFault | null {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    const message = String((e as { message?: unknown }).message ?? '');
    if (typeof code === 'string') {
      if (FULL.has(code) || /disk is full|no space left/i.test(message)) return 'full';
      if (READ_ONLY.has(code) || code.startsWith('SQLITE_IOERR')) return 'read-only';
    }
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

const WHY: Record<StorageFault, string> = {
  full: 'the disk is full',
  'read-only': 'the data directory is read-only (or cannot be written)',
};

/** Why a storage fault happened, in words ("the disk is full"), or null when `err` is not one. */
export function storageFaultReason(err: unknown): string | null {
  const fault = storageFault(err);
  return fault ? WHY[fault] : null;
}

/**
 * `KL_STORAGE_UNAVAILABLE` for a storage fault (`what` says what was being written), or null when
 * `err` is not one.
 */
export function storageError(err: unknown, what: string): KlError | null {
  const fault = storageFault(err);
  if (!fault) return null;
  return new KlError(
    'KL_STORAGE_UNAVAILABLE',
    `the server could not store ${what}: ${WHY[fault]}. Nothing was written; try again later`,
    { fault },
    { cause: err },
  );
}

/** Runs `write`; a storage fault becomes `KL_STORAGE_UNAVAILABLE`, anything else is rethrown as is. */
export function guardWrite<T>(what: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    throw storageError(err, what) ?? err;
  }
}
