/**
 * Reading the audit trail (seed phase 4 step 6) back from any {@link Ledger}: AuditEvent
 * transactions, newest first, filtered by subject (the SHA-256 of an identity), event name and time.
 * Used by `keyledger audit` and the dashboard's audit page. Walks blocks from the top down and stops
 * at `since` or after `limit` events, so the cost is bounded by what is asked for.
 */
import type { Ledger } from './ledger.js';
import type { TxBodies } from './transactions.js';

/** One audit event as read from the ledger. */
export interface AuditEntry {
  /** Event time (ms since the epoch, by the server's clock). */
  at: number;
  event: string;
  /** SHA-256 of the identity, hex. */
  subject?: string;
  detail?: Record<string, string | number | boolean>;
  height: number;
  txid: string;
}

/** Filters of {@link readAuditTrail}. */
export interface AuditQuery {
  subject?: string;
  event?: string;
  /** Inclusive lower bound on `at`, ms. */
  since?: number;
  /** Exclusive upper bound on `at`, ms. */
  until?: number;
  /** At most this many events (default 1,000, at most 10,000). */
  limit?: number;
}

/** Audit events matching `q`, newest first. */
export async function readAuditTrail(ledger: Ledger, q: AuditQuery = {}): Promise<AuditEntry[]> {
  const limit = Math.max(1, Math.min(q.limit ?? 1_000, 10_000));
  const since = q.since ?? 0;
  const until = q.until ?? Number.POSITIVE_INFINITY;
  const out: AuditEntry[] = [];
  const top = (await ledger.checkpoint())?.header.height ?? 0;
  for (let h = top; h >= 1 && out.length < limit; h--) {
    const { block, txids } = await ledger.getBlock(h);
    // Audit events carry the server's time, which is never after the block that holds them.
    if (block.header.time < since) break;
    for (const txid of [...txids].reverse()) {
      const r = await ledger.getTransaction(txid);
      if (r.envelope.tx.type !== 'AuditEvent') continue;
      const b = r.envelope.tx.body as TxBodies['AuditEvent'];
      if (b.at < since || b.at >= until) continue;
      if ((q.subject && b.subject !== q.subject) || (q.event && b.event !== q.event)) continue;
      out.push({
        at: b.at,
        event: b.event,
        ...(b.subject ? { subject: b.subject } : {}),
        ...(b.detail ? { detail: b.detail } : {}),
        height: h,
        txid,
      });
      if (out.length >= limit) break;
    }
  }
  return out;
}
