/**
 * The embedded engine's group commit (docs/ledger.md "Commit and durability"): transactions submitted
 * while a block is being written wait, and go into the next block together, at most `maxBlockTxs` a
 * block, after at most `batchWaitMs` (0: the next tick).
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
  private timer: NodeJS.Immediate | NodeJS.Timeout | null = null;

  constructor(private readonly o: BlockQueueOptions) {}

  /** Number of transactions waiting for the next block. */
  get size(): number {
    return this.pending.length;
  }

  /** Queues a transaction; a block is written soon. */
  push(p: Pending): void {
    this.pending.push(p);
    this.schedule();
  }

  /** Writes every queued transaction now, in as many blocks as it takes (closing). */
  flushAll(): void {
    this.cancel();
    while (this.pending.length > 0) this.flush();
    this.cancel();
  }

  private flush(): void {
    this.timer = null;
    if (this.pending.length === 0) return;
    this.o.write(this.pending.splice(0, this.o.maxBlockTxs));
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.pending.length === 0) return;
    this.timer =
      this.o.batchWaitMs > 0
        ? setTimeout(() => this.flush(), this.o.batchWaitMs)
        : setImmediate(() => this.flush());
  }

  /**
   * Cancels a scheduled flush with the function that matches its kind. (Passing a Timeout to
   * clearImmediate corrupts Node's immediate queue: other code's setImmediate callbacks get lost.)
   */
  private cancel(): void {
    const t = this.timer;
    this.timer = null;
    if (!t) return;
    if (this.o.batchWaitMs > 0) clearTimeout(t as NodeJS.Timeout);
    else clearImmediate(t as NodeJS.Immediate);
  }
}
