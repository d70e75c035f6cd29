/**
 * The embedded engine's SQL statements, prepared once per open database (the schema is in
 * embedded-init.ts): metadata, state rows, transactions and blocks, and the identity listing.
 */
import type Database from 'better-sqlite3';

const SQL = {
  meta: 'SELECT value FROM meta WHERE key = ?',
  metaPut: 'INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  stateGet: 'SELECT value FROM state WHERE key = ?',
  stateAll: 'SELECT key, value FROM state',
  statePut:
    'INSERT INTO state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  txExists: 'SELECT 1 FROM txs WHERE txid = ?',
  txGet: 'SELECT height, idx, envelope FROM txs WHERE txid = ?',
  txInsert: 'INSERT INTO txs(txid, height, idx, type, subject, envelope) VALUES (?, ?, ?, ?, ?, ?)',
  txidsOfBlock: 'SELECT txid FROM txs WHERE height = ? ORDER BY idx',
  txsOfSubject: 'SELECT txid FROM txs WHERE subject = ? ORDER BY height, idx LIMIT ?',
  blockInsert: 'INSERT INTO blocks(height, hash, header, signatures) VALUES (?, ?, ?, ?)',
  blockGet: 'SELECT hash, header, signatures FROM blocks WHERE height = ?',
  blockHeaders: 'SELECT height, hash, header FROM blocks ORDER BY height',
  blockSignatures: 'SELECT signatures FROM blocks WHERE height = ?',
  txRowsOfBlock: 'SELECT txid, idx, envelope FROM txs WHERE height = ? ORDER BY idx',
  txCount: 'SELECT count(*) AS n FROM txs',
  blockCount: 'SELECT count(*) AS n FROM blocks',
  identityKeys:
    "SELECT key FROM state WHERE key >= 'identity:' AND key < 'identity;' AND key LIKE ? ESCAPE '\\' ORDER BY key LIMIT ?",
  identityCounts:
    "SELECT json_extract(value, '$.status') AS status, count(*) AS n FROM state WHERE key >= 'identity:' AND key < 'identity;' GROUP BY status",
} as const;

/** The prepared statements of one database. */
export type Statements = { [K in keyof typeof SQL]: Database.Statement };

/** Prepares the statements the embedded engine runs on `db`. */
export function prepareStatements(db: Database.Database): Statements {
  return Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Statements;
}
