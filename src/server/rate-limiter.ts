/**
 * Token-bucket rate limits per key (an IP address, an identity), with an injected clock. Buckets are
 * bounded in number: when the table is full, the oldest idle buckets go first.
 */
import { KlError } from '../protocol/errors.js';

/** A limit: `burst` requests at once, refilled at `perSecond`. */
export interface Limit {
  burst: number;
  perSecond: number;
}

/** A set of buckets sharing one limit. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly name: string,
    private readonly limit: Limit,
    private readonly now: () => number,
    private readonly maxKeys = 100_000,
    /** Told the key each time a request is refused (for operator alerts). */
    private readonly onLimited?: (key: string) => void,
  ) {}

  /**
   * Takes one token for `key`.
   * @throws KlError `KL_RATE_LIMITED` with the seconds to wait.
   */
  take(key: string): void {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b) {
      // A clock that stepped backwards refills nothing and takes nothing away (never a negative refill).
      const elapsed = Math.max(0, t - b.at);
      b.tokens = Math.min(this.limit.burst, b.tokens + (elapsed / 1000) * this.limit.perSecond);
      b.at = t;
      this.buckets.delete(key); // re-insert: Map order is least recently used first
    } else {
      b = { tokens: this.limit.burst, at: t };
    }
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens < 1) {
      this.onLimited?.(key);
      const wait = Math.ceil((1 - b.tokens) / this.limit.perSecond);
      throw new KlError('KL_RATE_LIMITED', `too many ${this.name} attempts: try again in ${wait} s`, {
        retryAfter: wait,
      });
    }
    b.tokens -= 1;
  }
}
