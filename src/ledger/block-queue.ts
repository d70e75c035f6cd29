/**
 * The embedded engine's group commit (docs/ledger.md "Commit and durability"): transactions submitted
 * while a block is being written wait, and go into the next block together, at most `maxBlockTxs` a
 * block. Each transaction waits at most its own time (`batchWaitMs` unless it asks for another; 0:
 * the next tick): the block is written when the most pressed of them is due, and takes everything
 * queued by then.
 */

import type { TransactionReceipt } from './proofs.js';
import type { TxEnvelope } from './transactions.js';

/** A transaction waiting for its block. */
export interface Pending {
  envelope: TxEnvelope;
  txid: string;
  text: string;
  /** Signed by this node (its signature needs no second check). */
  local: boolean;
  /** performance.now() at submit. */
  since: number;
  /** How long it may wait for others to share its block, ms (default: the queue's `batchWaitMs`). */
  maxWaitMs?: number;
  resolve: (r: TransactionReceipt) => void;
  reject: (e: unknown) => void;
}

/** Options of {@link BlockQueue}. */
export interface BlockQueueOptions {
  batchWaitMs: number;
  maxBlockTxs: number;
  /** Writes one block from `batch` (settling each of its transactions). */
  write: (batch: Pending[]) => void;
}

/** The queue of transactions waiting for the next block. */
export class BlockQueue {
  private pending: Pending[] = [];
  private timer: { timeout: NodeJS.Timeout } | { immediate: NodeJS.Immediate } | null = null;
  /** performance.now() by which the scheduled flush runs. */
  private due = Number.POSITIVE_INFINITY;

  constructor(private readonly o: BlockQueueOptions) {}

  /** Number of transactions waiting for the next block. */
  get size(): number {
    return this.pending.length;
  }

  /** Queues a transaction; a block is written soon. */
  push(p: Pending): void {
    this.pending.push(p);
    this.schedule(this.dueOf(p));
  }

  /** Writes every queued transaction now, in as many blocks as it takes (closing). */
  flushAll(): void {
    this.cancel();
    while (this.pending.length > 0) {
      this.flush();
      this.cancel(); // each flush schedules the rest; nothing may outlive the loop
    }
  }

  private flush(): void {
    this.timer = null;
    this.due = Number.POSITIVE_INFINITY;
    if (this.pending.length === 0) return;
    this.o.write(this.pending.splice(0, this.o.maxBlockTxs));
    // What is left waits as long as the most pressed of it may.
    let due = Number.POSITIVE_INFINITY;
    for (const p of this.pending) due = Math.min(due, this.dueOf(p));
    this.schedule(due);
  }

  /** When `p` must be written by (performance.now() time): its own wait, or the queue's. */
  private dueOf(p: Pending): number {
    return p.since + (p.maxWaitMs ?? this.o.batchWaitMs);
  }

  /** Makes sure a flush runs by `due` (performance.now() time). */
  private schedule(due: number): void {
    if (this.pending.length === 0 || (this.timer && this.due <= due)) return;
    this.cancel();
    this.due = due;
    const wait = due - performance.now();
    this.timer =
      wait > 0
        ? { timeout: setTimeout(() => this.flush(), wait) }
        : { immediate: setImmediate(() => this.flush()) };
  }

  /**
   * Cancels a scheduled flush with the function that matches its kind. (Passing a Timeout to
   * clearImmediate corrupts Node's immediate queue: other code's setImmediate callbacks get lost.)
   */
  private cancel(): void {
    const t = this.timer;
    this.timer = null;
    this.due = Number.POSITIVE_INFINITY;
    if (!t) return;
    if ('timeout' in t) clearTimeout(t.timeout);
    else clearImmediate(t.immediate);
  }
}
