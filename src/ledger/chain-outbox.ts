/**
 * The outbox of a node whose ledger is ordered elsewhere — an EVM chain or an etcd cluster
 * (docs/reliability.md "The chain away"): signed transactions that nobody waits for (audit events)
 * are kept here, in a small SQLite database next to the ledger, from the moment they are signed until
 * the follower reads them back from the engine's order. While the engine cannot take them they wait
 * here (across restarts too); when it is back they are sent again in the order they were queued
 * (src/ledger/outbox-sender.ts). A transaction keeps its signature and txid, so the ledger refuses
 * it if it ever came back twice, and the sender checks the ledger for the txid before each resend.
 * Each send keeps the engine's handle of it (on the EVM engine, the hash of the chain transaction
 * that carried it): a send the node still holds (pending or mined) is not repeated. A transaction
 * the engine or the ledger's rules refused stays here with the reason, never sent again and never
 * dropped silently: it is counted and reported.
 */

import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** One queued transaction. */
export interface OutboxEntry {
  /** Queue order. */
  seq: number;
  txid: string;
  /** The canonical envelope text, as signed. */
  text: string;
  /** When it was last handed to the engine (wall clock, ms), or null if never. */
  sentAt: number | null;
  /** The engine's handle of the last send (the EVM chain transaction's hash), or null. */
  chainTx: string | null;
}

/** A transaction the engine or the ledger's rules refused, kept with why. */
export interface RefusedEntry {
  txid: string;
  reason: string;
  /** When it was refused (wall clock, ms). */
  at: number;
}

/** The outbox file of a data directory. */
export function chainOutboxPath(dataDir: string): string {
  return join(dataDir, 'chain-outbox.sqlite');
}

const COLUMNS = 'seq, txid, text, sent_at AS sentAt, chain_tx AS chainTx';

/**
 * Refused transactions kept with their reason, at most: beyond, the oldest are forgotten (still
 * counted by {@link ChainOutbox.refusedCount}). A server whose account lost its right to write
 * would otherwise keep every audit event it makes, some of them caused by anyone (failed logins).
 */
export const REFUSED_KEPT = 1_000;

/** Signed transactions waiting to be read back from the engine's order (see the module comment). */
export class ChainOutbox {
  private readonly db: Database.Database;
  private readonly stmt: Record<
    | 'put'
    | 'remove'
    | 'sent'
    | 'refuse'
    | 'list'
    | 'due'
    | 'count'
    | 'unsent'
    | 'refused'
    | 'refusedCount'
    | 'waits'
    | 'forgetRefused'
    | 'forgotten'
    | 'addForgotten',
    Database.Statement
  >;

  /** Opens (or creates) the outbox at `file`; an outbox of an older version gains its new columns. */
  constructor(file: string) {
    this.db = new Database(file);
    // Private like every file of the data directory; SQLite gives the -wal and -shm files this mode.
    chmodSync(file, 0o600);
    this.db.pragma('journal_mode = WAL');
    // Durable before the request that wrote it is answered.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS outbox (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         txid TEXT NOT NULL UNIQUE,
         text TEXT NOT NULL,
         sent_at INTEGER
       )`,
    );
    const have = new Set(
      (this.db.pragma('table_info(outbox)') as Array<{ name: string }>).map((c) => c.name),
    );
    for (const [name, type] of [
      ['chain_tx', 'TEXT'],
      ['refused', 'TEXT'],
      ['refused_at', 'INTEGER'],
    ] as const)
      if (!have.has(name)) this.db.exec(`ALTER TABLE outbox ADD COLUMN ${name} ${type}`);
    this.db.exec('CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)');
    const waiting = 'refused IS NULL';
    this.stmt = {
      put: this.db.prepare('INSERT OR IGNORE INTO outbox (txid, text) VALUES (?, ?)'),
      remove: this.db.prepare('DELETE FROM outbox WHERE txid = ?'),
      sent: this.db.prepare('UPDATE outbox SET sent_at = ?, chain_tx = coalesce(?, chain_tx) WHERE txid = ?'),
      refuse: this.db.prepare('UPDATE outbox SET refused = ?, refused_at = ? WHERE txid = ?'),
      list: this.db.prepare(`SELECT ${COLUMNS} FROM outbox WHERE ${waiting} ORDER BY seq LIMIT ?`),
      due: this.db.prepare(
        `SELECT ${COLUMNS} FROM outbox WHERE ${waiting} AND (sent_at IS NULL OR sent_at < ?) ORDER BY seq LIMIT 1`,
      ),
      count: this.db.prepare(`SELECT COUNT(*) AS n FROM outbox WHERE ${waiting}`),
      unsent: this.db.prepare(`SELECT COUNT(*) AS n FROM outbox WHERE ${waiting} AND sent_at IS NULL`),
      refused: this.db.prepare(
        'SELECT txid, refused AS reason, refused_at AS at FROM outbox WHERE refused IS NOT NULL ORDER BY seq LIMIT ?',
      ),
      refusedCount: this.db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE refused IS NOT NULL'),
      waits: this.db.prepare(`SELECT 1 FROM outbox WHERE txid = ? AND ${waiting}`),
      forgetRefused: this.db.prepare(
        'DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE refused IS NOT NULL ORDER BY refused_at, seq LIMIT ?)',
      ),
      forgotten: this.db.prepare("SELECT value AS n FROM outbox_meta WHERE key = 'refused_forgotten'"),
      addForgotten: this.db.prepare(
        "INSERT INTO outbox_meta (key, value) VALUES ('refused_forgotten', ?) ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
      ),
    };
  }

  /** Queues a signed transaction (once: a txid already queued keeps its place). */
  put(txid: string, text: string): void {
    this.stmt.put.run(txid, text);
  }

  /** Whether `txid` waits here (queued, not refused). */
  waits(txid: string): boolean {
    return this.stmt.waits.get(txid) !== undefined;
  }

  /** Forgets the transactions of these txids (read back from a block, or on the ledger already). */
  remove(txids: Iterable<string>): void {
    const run = this.db.transaction((ids: Iterable<string>) => {
      for (const id of ids) this.stmt.remove.run(id);
    });
    run(txids);
  }

  /**
   * Notes that `txid` was handed to the engine at `at`, as `chainTx` (the engine's handle of the send;
   * null: keeps the one noted, e.g. when a send still held by the node is checked again).
   */
  markSent(txid: string, at: number, chainTx: string | null = null): void {
    this.stmt.sent.run(at, chainTx, txid);
  }

  /**
   * Keeps `txid` as refused, with `reason`: never sent again, counted by {@link refusedCount}. Past
   * {@link REFUSED_KEPT} refused entries, the oldest are forgotten (and still counted).
   */
  markRefused(txid: string, reason: string, at: number): void {
    this.db.transaction(() => {
      this.stmt.refuse.run(reason.slice(0, 500), at, txid);
      const kept = (this.stmt.refusedCount.get() as { n: number }).n;
      if (kept > REFUSED_KEPT) {
        const forgotten = this.stmt.forgetRefused.run(kept - REFUSED_KEPT).changes;
        this.stmt.addForgotten.run(forgotten);
      }
    })();
  }

  /** The oldest `limit` entries waiting (not refused), in queue order. */
  list(limit = 1_000): OutboxEntry[] {
    return this.stmt.list.all(limit) as OutboxEntry[];
  }

  /** The oldest waiting entry never sent, or last sent before `sentBefore` (ms), if any. */
  nextDue(sentBefore: number): OutboxEntry | undefined {
    return this.stmt.due.get(sentBefore) as OutboxEntry | undefined;
  }

  /** How many waiting transactions were never handed to the engine. */
  unsent(): number {
    return (this.stmt.unsent.get() as { n: number }).n;
  }

  /** How many transactions wait (refused ones not counted). */
  size(): number {
    return (this.stmt.count.get() as { n: number }).n;
  }

  /** The transactions refused (oldest first, at most `limit`). */
  refused(limit = 1_000): RefusedEntry[] {
    return this.stmt.refused.all(limit) as RefusedEntry[];
  }

  /** How many transactions were refused (those kept, and those forgotten past the bound). */
  refusedCount(): number {
    const forgotten = (this.stmt.forgotten.get() as { n: number } | undefined)?.n ?? 0;
    return (this.stmt.refusedCount.get() as { n: number }).n + forgotten;
  }

  /** Closes the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
