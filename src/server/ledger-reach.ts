/**
 * Waiting, briefly, for the ledger to reach a block (docs/protocol.md "Several servers"): the
 * servers of one deployment derive the same ledger from one chain, each at its own pace, so a
 * client that has just seen block H on one server may ask another that has not read it yet. A
 * read at H waits for it through the ledger's `subscribe` (no polling), at most a bounded time.
 * A bounded number of reads wait at once, in total and per source address (docs/reliability.md
 * "Reads ahead of the ledger"): past either bound a read is answered at once, so a flood from one
 * source cannot hold the waiting budget of everyone else.
 */
import type { Ledger } from '../ledger/ledger.js';
import { KlError } from '../protocol/errors.js';
import { sourceKey } from './client-address.js';

/** Default wait of a read above the ledger's height, ms (`ledger.behindWait`, docs/configuration.md). */
export const DEFAULT_BEHIND_WAIT_MS = 3_000;

/** How many reads may wait at once. */
export interface WaiterLimits {
  /** In total (default 1,000). */
  total: number;
  /**
   * From one source address (its `sourceKey`, client-address.ts; default 50: an office behind one
   * NAT has a few clients waiting at once, a flood has thousands).
   */
  perSource: number;
}

/** Defaults of {@link WaiterLimits}. */
export const DEFAULT_WAITER_LIMITS: WaiterLimits = { total: 1_000, perSource: 50 };

/**
 * Waits for the ledger to reach a height; see {@link heightWaiter}. `from` is the client's address
 * (`req.ip`), whose source (`sourceKey`: an IPv6 /64 counts as one) the wait is charged to; without
 * one, only the total counts.
 */
export type ReachHeight = (height: number, from?: string) => Promise<number>;

/** Counts the reads waiting, in total and per source. */
class WaiterCount {
  private total = 0;
  private readonly bySource = new Map<string, number>();

  constructor(private readonly limits: WaiterLimits) {}

  /** Takes a place for `source`, or returns false when a bound is reached. */
  take(source: string | undefined): boolean {
    const mine = source === undefined ? 0 : (this.bySource.get(source) ?? 0);
    if (this.total >= this.limits.total || mine >= this.limits.perSource) return false;
    this.total += 1;
    if (source !== undefined) this.bySource.set(source, mine + 1);
    return true;
  }

  /** Gives back a place taken by {@link take}. */
  release(source: string | undefined): void {
    this.total -= 1;
    if (source === undefined) return;
    const left = (this.bySource.get(source) ?? 1) - 1;
    if (left > 0) this.bySource.set(source, left);
    else this.bySource.delete(source);
  }
}

/**
 * A function that resolves with the ledger's height once it is at least `height`, or with the
 * height it has after `waitMs` (or at once when `waitMs` is 0 or too many reads already wait, in
 * total or from the same source).
 */
export function heightWaiter(
  ledger: Pick<Ledger, 'checkpoint' | 'subscribe'>,
  waitMs: number,
  limits: Partial<WaiterLimits> = {},
): ReachHeight {
  const count = new WaiterCount({ ...DEFAULT_WAITER_LIMITS, ...limits });
  const top = async () => (await ledger.checkpoint())?.header.height ?? 0;
  return async (height, from) => {
    const source = from === undefined ? undefined : sourceKey(from);
    const now = await top();
    if (now >= height || waitMs <= 0 || !count.take(source)) return now;
    try {
      return await reached(ledger, top, height, now, waitMs);
    } finally {
      count.release(source);
    }
  };
}

/** Resolves with the height once it is at least `height`, or with the height after `waitMs`. */
function reached(
  ledger: Pick<Ledger, 'subscribe'>,
  top: () => Promise<number>,
  height: number,
  now: number,
  waitMs: number,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let done = false;
    let unsubscribe = () => {};
    const finish = (h: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      resolve(h);
    };
    const timer = setTimeout(() => void top().then(finish, () => finish(now)), waitMs);
    unsubscribe = ledger.subscribe((tx) => {
      if (tx.height >= height) finish(tx.height);
    });
    // A block committed between the first read and the subscription.
    void top().then(
      (h) => h >= height && finish(h),
      () => {},
    );
  });
}

/**
 * The answer to a read at `height` on a ledger that ends at `top`, below it: the client is asked
 * to try another server of the ledger, or again in a moment (HTTP 503 with Retry-After).
 */
export function ledgerBehind(height: number, top: number): KlError {
  return new KlError(
    'KL_LEDGER_BEHIND',
    `this server's ledger ends at block ${top} and has not reached block ${height} yet (it is catching up with the chain): try again in a moment, or another server of this ledger`,
    { height: top, from: height },
  );
}
