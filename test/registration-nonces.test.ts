/** Registration nonces (src/server/registration-nonces.ts): stateless until spent, bound, single use. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKlError } from '../src/protocol/errors.js';
import { RegistrationNonces } from '../src/server/registration-nonces.js';

const refused = (code: string) => (e: unknown) => isKlError(e, code as never);

describe('registration nonces', () => {
  it('are bound to their identity, expire exactly at their end, and are refused when altered', () => {
    const nonces = new RegistrationNonces({ ttlMs: 1_000 });
    const { nonce, expiresAt } = nonces.issue('alice@example.org', 10_000);
    assert.equal(expiresAt, 11_000);
    assert.match(nonce, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(nonces.check(nonce, 'alice@example.org', 10_999), { expiresAt });
    assert.throws(() => nonces.check(nonce, 'alice@example.org', 11_000), refused('KL_NONCE_INVALID'));
    assert.throws(() => nonces.check(nonce, 'bob@example.org', 10_500), refused('KL_NONCE_INVALID'));
    const raw = Buffer.from(nonce, 'base64url');
    for (const i of [0, 7, 8, 15, 16, 31]) {
      const changed = Buffer.from(raw);
      changed[i]! ^= 1;
      assert.throws(
        () => nonces.check(changed.toString('base64url'), 'alice@example.org', 10_500),
        refused('KL_NONCE_INVALID'),
        `byte ${i}`,
      );
    }
    // Another server (process) has another key: its nonces mean nothing here.
    const other = new RegistrationNonces({ ttlMs: 1_000 }).issue('alice@example.org', 10_000).nonce;
    assert.throws(() => nonces.check(other, 'alice@example.org', 10_500), refused('KL_NONCE_INVALID'));
    assert.throws(
      () => nonces.check('A'.repeat(43), 'alice@example.org', 10_500),
      refused('KL_NONCE_INVALID'),
    );
  });

  it('issuing keeps nothing: a million begins need no table; spent ones are single use and bounded', () => {
    const nonces = new RegistrationNonces({ ttlMs: 1_000, maxSpent: 3 });
    const before = process.memoryUsage().heapUsed;
    let last = '';
    for (let i = 0; i < 200_000; i++) last = nonces.issue(`u${i}@example.org`, 0).nonce;
    assert.ok(process.memoryUsage().heapUsed - before < 64 * 1024 * 1024);
    nonces.check(last, 'u199999@example.org', 1);
    const issued = [1, 2, 3, 4].map((i) => nonces.issue(`s${i}@example.org`, 0));
    nonces.spend(issued[0]!.nonce, issued[0]!.expiresAt, 1);
    assert.throws(() => nonces.check(issued[0]!.nonce, 's1@example.org', 2), refused('KL_NONCE_INVALID'));
    assert.throws(() => nonces.spend(issued[0]!.nonce, issued[0]!.expiresAt, 2), refused('KL_NONCE_INVALID'));
    nonces.spend(issued[1]!.nonce, issued[1]!.expiresAt, 2);
    nonces.spend(issued[2]!.nonce, issued[2]!.expiresAt, 3);
    // Full of unexpired spent nonces: refused until some expire, then room again.
    assert.throws(() => nonces.spend(issued[3]!.nonce, issued[3]!.expiresAt, 4), refused('KL_RATE_LIMITED'));
    const late = nonces.issue('late@example.org', 1_000);
    nonces.spend(late.nonce, late.expiresAt, 1_000);
  });
});
