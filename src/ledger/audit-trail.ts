/**
 * Reading the audit trail (docs/protocol.md "Phases 3 and 4", Audit trail; docs/ledger.md "Audit") back from
 * any {@link Ledger}: AuditEvent transactions, newest first, filtered by subject (the SHA-256 of an
 * identity), event name and time. Used by `keyledger audit` and the dashboard's audit page. Walks blocks from
 * the top down and stops at `since` or after `limit` events, so the cost is bounded by what is asked for.
 */

import { toHex } from '../protocol/bytes.js';
import { canonicalBytes } from '../protocol/canonical-json.js';
import { isKlError } from '../protocol/errors.js';
import { HASH_HEX, hashFromHex } from '../protocol/hash.js';
import { type SignedHeader, verifySignedHeader } from './block.js';
import { ledgerDamage } from './block-check.js';
import type { Ledger } from './ledger.js';
import { leafHash, verifyInclusion } from './merkle.js';
import type { TransactionReceipt } from './proofs.js';
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
  /**
   * Only blocks above this height (exclusive): a reader that already holds the events up to it
   * reads only the blocks written since.
   */
  aboveHeight?: number;
}

/** How much earlier than its events a block's time may be (clock skew between chain and server). */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Audit events matching `q`, newest first. Every event is checked before it is returned, whatever
 * engine stands behind `ledger`: its block's header must carry a quorum of its signers' signatures, and
 * the transaction must be in that block's signed transaction root at its position (docs/ledger.md
 * "Integrity at start"). A row changed in storage is never returned as genuine.
 * @throws KlError `KL_LEDGER_CORRUPT` naming the block and transaction that failed.
 */
export async function readAuditTrail(ledger: Ledger, q: AuditQuery = {}): Promise<AuditEntry[]> {
  const limit = Math.max(1, Math.min(q.limit ?? 1_000, 10_000));
  const since = q.since ?? 0;
  const until = q.until ?? Number.POSITIVE_INFINITY;
  const out: AuditEntry[] = [];
  const top = (await ledger.checkpoint())?.header.height ?? 0;
  const bottom = Math.max(1, (q.aboveHeight ?? 0) + 1);
  for (let h = top; h >= bottom && out.length < limit; h--) {
    // The embedded engine reads synchronously underneath: let other work run every 100 blocks.
    if ((top - h) % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    const { block, txids } = await ledger.getBlock(h);
    try {
      verifySignedHeader(block, ledger.signers, ledger.chainId);
    } catch (err) {
      throw ledgerDamage(`block ${h}: ${(err as Error).message}`, h);
    }
    if (block.header.height !== h || txids.length !== block.header.txCount)
      throw ledgerDamage(`block ${h}: its transaction list does not match its header`, h);
    // Audit events carry the server's time, which is never after the block that holds them by
    // more than a clock's skew (an EVM block carries the chain's time, rounded down to the second):
    // the walk goes on that much further, and each event's own time decides.
    if (block.header.time < since - CLOCK_SKEW_MS) break;
    for (const txid of [...txids].reverse()) {
      const r = await ledger.getTransaction(txid).catch((err: unknown) => {
        // The block lists it (and the block's root was checked): its row is gone or renamed.
        throw isKlError(err, 'KL_TX_UNKNOWN')
          ? ledgerDamage(`block ${h}: transaction ${txid} is missing`, h, txid)
          : err;
      });
      checkInBlock(r, block, txid);
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

/** Checks that `r` is transaction `txid` of the (already verified) `block`, by its inclusion proof. */
function checkInBlock(r: TransactionReceipt, block: SignedHeader, txid: string): void {
  const h = block.header.height;
  let id: Uint8Array | null = null;
  try {
    id = leafHash(canonicalBytes(r.envelope));
  } catch {
    // malformed: fails below
  }
  const path = Array.isArray(r.proof) && r.proof.every((p) => typeof p === 'string' && HASH_HEX.test(p));
  if (
    !id ||
    toHex(id) !== txid ||
    r.txid !== txid ||
    r.block?.hash !== block.hash ||
    !path ||
    !verifyInclusion({
      leafHash: id,
      index: r.index,
      treeSize: block.header.txCount,
      proof: r.proof.map((p) => hashFromHex(p)),
      root: hashFromHex(block.header.txRoot),
    })
  ) {
    throw ledgerDamage(
      `block ${h}: transaction ${txid} does not match the block's signed transaction root`,
      h,
      txid,
    );
  }
}
