/** Token-bucket rate limits (src/server/rate-limiter.ts) on a manual clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../src/server/rate-limiter.js';
import { manualClock } from './helpers.js';

const limited = (e: unknown) => (e as { code?: string }).code === 'KL_RATE_LIMITED';

describe('rate limiter', () => {
  it('allows a burst, then refills at the configured rate, and says how long to wait', () => {
    const clock = manualClock();
    const rl = new RateLimiter('login', { burst: 3, perSecond: 0.5 }, clock);
    for (let i = 0; i < 3; i++) rl.take('ip');
    assert.throws(
      () => rl.take('ip'),
      (e: unknown) => limited(e) && (e as { details: { retryAfter: number } }).details.retryAfter === 2,
    );
    clock.advance(1_999);
    assert.throws(() => rl.take('ip'), limited);
    clock.advance(1);
    rl.take('ip');
    rl.take('other-ip'); // keys are independent
  });

  it('a clock stepping backwards neither locks a key out nor refills it', () => {
    const clock = manualClock();
    const rl = new RateLimiter('login', { burst: 2, perSecond: 1 }, clock);
    rl.take('ip');
    clock.advance(-3_600_000);
    rl.take('ip'); // the second token of the burst is still there
    assert.throws(() => rl.take('ip'), limited, 'and the step back gave no extra token');
    clock.advance(1_000);
    rl.take('ip');
  });

  it('keeps at most maxKeys buckets, forgetting the least recently used', () => {
    const rl = new RateLimiter('login', { burst: 1, perSecond: 0.001 }, manualClock(), 2);
    rl.take('a');
    rl.take('b');
    rl.take('c'); // 'a' is forgotten
    rl.take('a'); // a fresh bucket
    assert.throws(() => rl.take('c'), limited);
  });
});
