/** One-time dashboard links and dashboard sessions (src/server/dashboard-auth.ts), on a manual clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DashboardAuth, DEFAULT_DASHBOARD_AUTH_POLICY } from '../src/server/dashboard-auth.js';
import { manualClock } from './helpers.js';

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

describe('dashboard links and sessions', () => {
  it('a link is single use and expires at exactly its TTL', () => {
    const clock = manualClock();
    const auth = new DashboardAuth(DEFAULT_DASHBOARD_AUTH_POLICY, clock);
    const a = auth.issueLink('ada@example.org');
    const b = auth.issueLink('ada@example.org');
    assert.equal(a.expiresAt, clock() + 60_000);
    assert.equal(auth.redeemLink(a.token).session.id, 'ada@example.org');
    assert.throws(() => auth.redeemLink(a.token), code('KL_ADMIN_LINK_INVALID'));
    clock.advance(59_999);
    const c = auth.issueLink('ada@example.org');
    clock.advance(1);
    assert.throws(() => auth.redeemLink(b.token), code('KL_ADMIN_LINK_INVALID'), 'at T the link is dead');
    assert.ok(auth.redeemLink(c.token).cookie);
    for (const bad of [undefined, '', 'x'.repeat(65), 42, 'A'.repeat(43)])
      assert.throws(() => auth.redeemLink(bad), code('KL_ADMIN_LINK_INVALID'));
  });

  it('a session lives until idle for exactly idleTimeoutMs, and never past maxLifetimeMs', () => {
    const clock = manualClock();
    const auth = new DashboardAuth(
      { ...DEFAULT_DASHBOARD_AUTH_POLICY, idleTimeoutMs: 1_000, maxLifetimeMs: 2_500 },
      clock,
    );
    const { cookie } = auth.redeemLink(auth.issueLink('ada@example.org').token);
    clock.advance(999);
    assert.ok(auth.session(cookie), 'idle 999 ms: alive (and touched)');
    clock.advance(999);
    assert.ok(auth.session(cookie));
    clock.advance(501); // 2,499 ms old
    assert.ok(auth.session(cookie));
    clock.advance(1); // 2,500 ms old: lifetime reached
    assert.equal(auth.session(cookie), undefined);
    const other = auth.redeemLink(auth.issueLink('ada@example.org').token).cookie;
    clock.advance(1_000);
    assert.equal(auth.session(other), undefined, 'idle exactly 1,000 ms: ended');
  });

  it('CSRF tokens are per session; logout and endIdentity end sessions and links', () => {
    const clock = manualClock();
    const auth = new DashboardAuth(DEFAULT_DASHBOARD_AUTH_POLICY, clock);
    const one = auth.redeemLink(auth.issueLink('ada@example.org').token);
    const two = auth.redeemLink(auth.issueLink('bob@example.org').token);
    auth.checkCsrf(one.session, one.session.csrf);
    assert.throws(() => auth.checkCsrf(one.session, two.session.csrf), code('KL_CSRF'));
    assert.throws(() => auth.checkCsrf(one.session, undefined), code('KL_CSRF'));
    auth.end(two.cookie);
    assert.equal(auth.session(two.cookie), undefined);
    const pending = auth.issueLink('ada@example.org');
    auth.endIdentity('ada@example.org');
    assert.equal(auth.session(one.cookie), undefined);
    assert.throws(() => auth.redeemLink(pending.token), code('KL_ADMIN_LINK_INVALID'));
  });

  it('outstanding links and sessions are bounded', () => {
    const auth = new DashboardAuth(
      { ...DEFAULT_DASHBOARD_AUTH_POLICY, maxLinks: 2, maxSessions: 1 },
      manualClock(),
    );
    const a = auth.issueLink('a@example.org');
    auth.issueLink('a@example.org');
    assert.throws(() => auth.issueLink('a@example.org'), code('KL_RATE_LIMITED'));
    auth.redeemLink(a.token);
    const b = auth.issueLink('a@example.org');
    assert.throws(() => auth.redeemLink(b.token), code('KL_RATE_LIMITED'));
  });
});
