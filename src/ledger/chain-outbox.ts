/**
 * The chain outbox of an EVM-engine node (docs/reliability.md "The chain away"): signed transactions
 * that nobody waits for (audit events) are kept here, in a small SQLite database next to the ledger,
 * from the moment they are signed until the follower reads them back from a block. While the chain
 * cannot be reached they wait here (across restarts too); when it is back they are sent again in the
 * order they were queued. A transaction keeps its signature and txid, so the ledger refuses it if it
 * ever came back twice, and the sender checks the ledger for the txid before each resend.
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
  /** When it was last handed to the chain node (wall clock, ms), or null if never. */
  sentAt: number | null;
}

/** The outbox file of a data directory. */
export function chainOutboxPath(dataDir: string): string {
  return join(dataDir, 'chain-outbox.sqlite');
}

/** Signed transactions waiting to be read back from the chain (see the module comment). */
export class ChainOutbox {
  private readonly db: Database.Database;
  private readonly stmt: {
    put: Database.Statement;
    remove: Database.Statement;
    sent: Database.Statement;
    list: Database.Statement;
    due: Database.Statement;
    count: Database.Statement;
    unsent: Database.Statement;
  };

  /** Opens (or creates) the outbox at `file`. */
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
    this.stmt = {
      put: this.db.prepare('INSERT OR IGNORE INTO outbox (txid, text) VALUES (?, ?)'),
      remove: this.db.prepare('DELETE FROM outbox WHERE txid = ?'),
      sent: this.db.prepare('UPDATE outbox SET sent_at = ? WHERE txid = ?'),
      list: this.db.prepare('SELECT seq, txid, text, sent_at AS sentAt FROM outbox ORDER BY seq LIMIT ?'),
      due: this.db.prepare(
        'SELECT seq, txid, text, sent_at AS sentAt FROM outbox WHERE sent_at IS NULL OR sent_at < ? ORDER BY seq LIMIT 1',
      ),
      count: this.db.prepare('SELECT COUNT(*) AS n FROM outbox'),
      unsent: this.db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL'),
    };
  }

  /** Queues a signed transaction (once: a txid already queued keeps its place). */
  put(txid: string, text: string): void {
    this.stmt.put.run(txid, text);
  }

  /** Forgets the transactions of these txids (read back from a block, or refused by the chain). */
  remove(txids: Iterable<string>): void {
    const run = this.db.transaction((ids: Iterable<string>) => {
      for (const id of ids) this.stmt.remove.run(id);
    });
    run(txids);
  }

  /** Notes that `txid` was handed to the chain node at `at`. */
  markSent(txid: string, at: number): void {
    this.stmt.sent.run(at, txid);
  }

  /** The oldest `limit` entries, in queue order. */
  list(limit = 1_000): OutboxEntry[] {
    return this.stmt.list.all(limit) as OutboxEntry[];
  }

  /** The oldest entry never sent, or last sent before `sentBefore` (ms), if any. */
  nextDue(sentBefore: number): OutboxEntry | undefined {
    return this.stmt.due.get(sentBefore) as OutboxEntry | undefined;
  }

  /** How many transactions were never handed to the chain node. */
  unsent(): number {
    return (this.stmt.unsent.get() as { n: number }).n;
  }

  /** How many transactions wait. */
  size(): number {
    return (this.stmt.count.get() as { n: number }).n;
  }

  /** Closes the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
