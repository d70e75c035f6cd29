/**
 * The embedded engine ordered by a sequencer (docs/architecture.md "The EVM engine"): `submit` hands
 * each signed transaction to the sequencer and waits until it comes back, in the sequencer's order,
 * through the ledger's `ingest`, so every node derives the same ledger from the same order.
 */

import { toHex } from '../protocol/bytes.js';
import { KlError } from '../protocol/errors.js';
import type { Pending } from './block-queue.js';
import { leafHash } from './merkle.js';
import type { TransactionReceipt } from './proofs.js';
import { checkEnvelopeShape, type TxEnvelope } from './transactions.js';

/**
 * The connection to the chain as the follower sees it (docs/deploy-besu.md "The follower"): served
 * by `/readyz`, the metrics and the alerts.
 */
export interface ChainStatus {
  /** The chain's head block at the last successful read, or null before one. */
  head: number | null;
  /** The last block read into the ledger, or null before the first. */
  read: number | null;
  /** Blocks the chain holds that the ledger has not read (`head - read`), or null. */
  lag: number | null;
  /** Ms (wall clock) since the ledger last read the chain to its final block. */
  stalenessMs: number;
  /**
   * Why the chain cannot be followed at all — it went back below the block last read, or holds
   * another block at that height (reorganised or replaced) — or null. Writes and logins are refused
   * while it lasts; it clears by itself if the node serves the same block again.
   */
  fault: string | null;
  /** Signed writes queued while the chain is away (audit events), waiting to be read back. */
  queued: number;
  /** Queued writes the chain refused, kept with the reason (never sent again); absent: none kept. */
  refusedWrites?: number;
  /** No fault, and not stale beyond the server's limit. */
  ok: boolean;
}

/** A change of the chain connection, told once per change (not per poll). */
export interface ChainChange {
  kind: 'fault' | 'fault_cleared' | 'unreachable' | 'reachable';
  detail: string;
}

/** Orders signed transactions somewhere else (an EVM chain). */
export interface Sequencer {
  /** Sends one signed transaction to be ordered; resolves once it is final there. */
  submit(tx: { envelope: TxEnvelope; text: string; txid: string }): Promise<void>;
  /** When the ledger last caught up with everything the sequencer ordered (wall clock, ms). */
  readonly lastSyncAt: number;
  /** The connection to the chain (EVM engine). */
  status?(): ChainStatus;
}

type Waiter = { resolve: (r: TransactionReceipt) => void; reject: (e: unknown) => void };

/** A transaction not seen back within this long is failed (the caller may retry). */
const SEEN_BACK_WITHIN_MS = 120_000;

/** Transactions sent to a sequencer, waiting to come back as part of a block. */
export class SequencerAdapter {
  private readonly awaiting = new Map<string, Waiter>();

  constructor(readonly sequencer: Sequencer) {}

  /**
   * Sends a transaction to the sequencer; resolves when it comes back as part of a block.
   * @param onLedger whether the transaction is on the ledger already (refused as a duplicate).
   */
  send(envelope: TxEnvelope, txid: string, text: string, onLedger: boolean): Promise<TransactionReceipt> {
    if (onLedger || this.awaiting.has(txid))
      return Promise.reject(
        new KlError('KL_TX_DUPLICATE', 'this transaction is already on the ledger', { txid }),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.awaiting.delete(txid);
        reject(new KlError('KL_LEDGER_UNAVAILABLE', 'the transaction was ordered but not seen back in time'));
      }, SEEN_BACK_WITHIN_MS);
      timer.unref();
      const settle: Waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.awaiting.set(txid, settle);
      this.sequencer.submit({ envelope, text, txid }).catch((err: unknown) => {
        this.awaiting.delete(txid);
        settle.reject(err);
      });
    });
  }

  /**
   * The transactions of an ordered batch, in order, as pending transactions that settle their
   * waiting submitters; texts that are no transaction go into `refused`, with why.
   */
  pendingOf(texts: string[], refused: Array<{ txid: string; reason: string }>): Pending[] {
    const pending: Pending[] = [];
    for (const text of texts) {
      let envelope: TxEnvelope;
      let txid: string;
      try {
        ({ txid } = checkEnvelopeShape(JSON.parse(text)));
        envelope = JSON.parse(text) as TxEnvelope;
      } catch (err) {
        refused.push({ txid: toHex(leafHash(Buffer.from(text, 'utf8'))), reason: (err as Error).message });
        continue;
      }
      const waiter = this.awaiting.get(txid);
      this.awaiting.delete(txid);
      pending.push({
        envelope,
        txid,
        text,
        local: false,
        since: performance.now(),
        resolve: (r) => waiter?.resolve(r),
        reject: (e) => {
          refused.push({ txid, reason: (e as Error).message });
          waiter?.reject(e);
        },
      });
    }
    return pending;
  }

  /** Waits (at most `ms`) until every transaction sent has come back or failed. */
  async drain(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (this.awaiting.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }

  /**
   * Ms (wall clock) since the ledger last read the sequencer's order to its end; infinite while the
   * chain is faulted (it went back or was replaced: nothing it says can be trusted to be current).
   */
  staleness(): number {
    if (this.sequencer.status?.().fault) return Number.POSITIVE_INFINITY;
    return Date.now() - this.sequencer.lastSyncAt;
  }

  /** The connection to the chain, or null for a sequencer that does not tell. */
  status(): ChainStatus | null {
    return this.sequencer.status?.() ?? null;
  }

  /** Fails every transaction still waiting (the ledger closes). */
  rejectAll(err: unknown): void {
    for (const w of this.awaiting.values()) w.reject(err);
    this.awaiting.clear();
  }
}
