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
    const b = this.refill(key);
    this.refuseIfEmpty(key, b);
    b.tokens -= 1;
  }

  /**
   * Refuses like {@link take} when `key` has no token left, but takes none: for limits charged only
   * by what a request turns out to be (a wrong code, a verified login), checked before the work.
   * @throws KlError `KL_RATE_LIMITED` with the seconds to wait.
   */
  check(key: string): void {
    this.refuseIfEmpty(key, this.refill(key));
  }

  /** Takes one token for `key` if there is one; never throws (charges what a request turned out to be). */
  spend(key: string): void {
    const b = this.refill(key);
    b.tokens = Math.max(0, b.tokens - 1);
  }

  /** Whether `key` has a token now (takes none). */
  available(key: string): boolean {
    return this.refill(key).tokens >= 1;
  }

  private refill(key: string): { tokens: number; at: number } {
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
    return b;
  }

  private refuseIfEmpty(key: string, b: { tokens: number }): void {
    if (b.tokens >= 1) return;
    this.onLimited?.(key);
    const wait = Math.ceil((1 - b.tokens) / this.limit.perSecond);
    throw new KlError('KL_RATE_LIMITED', `too many ${this.name} attempts: try again in ${wait} s`, {
      retryAfter: wait,
    });
  }
}
