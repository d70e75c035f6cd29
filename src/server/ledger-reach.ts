/**
 * Waiting, briefly, for the ledger to reach a block (docs/protocol.md "Several servers"): the
 * servers of one deployment derive the same ledger from one chain, each at its own pace, so a
 * client that has just seen block H on one server may ask another that has not read it yet. A
 * read at H waits for it through the ledger's `subscribe` (no polling), at most a bounded time,
 * and a bounded number of reads wait at once: past that, they are answered at once.
 */
import type { Ledger } from '../ledger/ledger.js';
import { KlError } from '../protocol/errors.js';

/** Default wait of a read above the ledger's height, ms (`ledger.behindWait`, docs/configuration.md). */
export const DEFAULT_BEHIND_WAIT_MS = 3_000;

/** At most this many reads wait at once; the next ones are answered at once. */
const MAX_WAITING = 1_000;

/** Waits for the ledger to reach a height; see {@link heightWaiter}. */
export type ReachHeight = (height: number) => Promise<number>;

/**
 * A function that resolves with the ledger's height once it is at least `height`, or with the
 * height it has after `waitMs` (or at once when `waitMs` is 0 or too many reads already wait).
 */
export function heightWaiter(ledger: Pick<Ledger, 'checkpoint' | 'subscribe'>, waitMs: number): ReachHeight {
  let waiting = 0;
  const top = async () => (await ledger.checkpoint())?.header.height ?? 0;
  return async (height) => {
    const now = await top();
    if (now >= height || waitMs <= 0 || waiting >= MAX_WAITING) return now;
    waiting += 1;
    try {
      return await new Promise<number>((resolve) => {
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
    } finally {
      waiting -= 1;
    }
  };
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
