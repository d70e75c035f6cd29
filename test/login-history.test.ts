/**
 * The dashboard's last-hour login chart read from the audit trail (src/server/login-history.ts), on a
 * real embedded ledger with a clock moved by hand: the right minutes, nothing older than the hour,
 * the same answer from a fresh reader (a restarted server), concurrent and repeated reads never
 * count a block twice, and a read touches only the blocks of the hour or those written since.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Ledger } from '../src/ledger/ledger.js';
import { LoginHistory } from '../src/server/login-history.js';
import { freshLedger, manualClock } from './helpers.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 30, 12, 0, 30);
const clock = manualClock(T0 - 3 * 60 * MIN);
const { ledger } = freshLedger({ now: clock });
after(() => ledger.close());

/** Writes one audit event at the clock's time (as the server does), in its own block. */
async function event(name: string): Promise<number> {
  const r = await ledger.submit({
    type: 'AuditEvent',
    body: { event: name, at: clock(), subject: 'ab'.repeat(32) },
  });
  return r.block.header.height;
}

/** `ledger`, with the heights of the blocks read through it recorded. */
function watched(): { ledger: Ledger; reads: number[] } {
  const reads: number[] = [];
  const proxy = new Proxy(ledger, {
    get(target, key) {
      if (key === 'getBlock')
        return (h: number) => {
          reads.push(h);
          return target.getBlock(h);
        };
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as Ledger;
  return { ledger: proxy, reads };
}

const totals = (s: Awaited<ReturnType<LoginHistory['series']>>) =>
  s.points.reduce((a, p) => ({ ok: a.ok + p.ok, failed: a.failed + p.failed }), { ok: 0, failed: 0 });

describe('login history from the audit trail', () => {
  let veryOld = 0;
  let old = 0;

  it('counts session_start and login_failed of the last 60 minutes, by minute', async () => {
    veryOld = await event('session_start'); // three hours ago
    clock.set(T0 - 67 * MIN);
    const beyondSkew = await event('session_start'); // older than the hour by more than a clock's skew (5 min)
    clock.set(T0 - 61 * MIN);
    old = await event('session_start'); // just outside the hour
    clock.set(T0 - 30 * MIN + 5_000);
    await event('session_start');
    await event('session_start');
    await event('login_failed');
    await event('session_renewal'); // not a login
    await event('registration');
    clock.set(T0);
    const { ledger: l, reads } = watched();
    const s = await new LoginHistory(l, clock).series();
    assert.equal(s.points.length, 60);
    assert.equal(s.points[59]!.t, Math.floor(T0 / MIN) * MIN, 'the last point is the current minute');
    assert.equal(s.points[0]!.t, Math.floor(T0 / MIN) * MIN - 59 * MIN);
    const at = s.points.find((p) => p.t === Math.floor((T0 - 30 * MIN) / MIN) * MIN)!;
    assert.deepEqual({ ok: at.ok, failed: at.failed }, { ok: 2, failed: 1 });
    assert.deepEqual(totals(s), { ok: 2, failed: 1 }, 'the login 61 minutes ago is not in the hour');
    assert.equal(s.incompleteBefore, undefined);
    // The walk stops at the first block older than the hour by more than a clock's skew (an event
    // may be a little older than its block): nothing below it is read.
    assert.ok(!reads.includes(veryOld), `blocks read: ${reads.join(',')}`);
    assert.ok(
      reads.every((h) => h >= beyondSkew),
      `blocks read: ${reads.join(',')}`,
    );
    assert.ok(reads.includes(old), 'a block a little older than the hour is read (its events may be in it)');
  });

  it('a fresh reader (a restarted server) sees the same; repeated and concurrent reads add only new blocks', async () => {
    const { ledger: l, reads } = watched();
    const history = new LoginHistory(l, clock);
    assert.deepEqual(totals(await history.series()), { ok: 2, failed: 1 });
    reads.length = 0;
    assert.deepEqual(totals(await history.series()), { ok: 2, failed: 1 });
    assert.deepEqual(reads, [], 'nothing new: no block read');
    const h = await event('session_start');
    const both = await Promise.all([history.series(), history.series()]);
    for (const s of both) assert.deepEqual(totals(s), { ok: 3, failed: 1 }, 'each block counted once');
    assert.deepEqual(reads, [h], 'only the new block is read');
  });

  it('minutes older than the hour leave the chart as the clock moves on', async () => {
    const history = new LoginHistory(ledger, clock);
    assert.deepEqual(totals(await history.series()), { ok: 3, failed: 1 });
    clock.set(T0 + 31 * MIN);
    const s = await history.series();
    assert.deepEqual(totals(s), { ok: 1, failed: 0 }, 'only the login at T0 is within the hour');
    assert.equal(s.points[59]!.t, Math.floor((T0 + 31 * MIN) / MIN) * MIN);
  });

  it("an event a little newer than its block (a chain block's time, rounded down) is still counted", async () => {
    const now = T0 + 3 * 60 * MIN;
    const hourStart = Math.floor(now / MIN) * MIN - 59 * MIN;
    // The block is stamped 2 s before the hour starts, its event 1 s after.
    clock.set(hourStart - 2_000);
    await ledger.submit({
      type: 'AuditEvent',
      body: { event: 'session_start', at: hourStart + 1_000, subject: 'cd'.repeat(32) },
    });
    clock.set(now);
    assert.deepEqual(totals(await new LoginHistory(ledger, clock).series()), { ok: 1, failed: 0 });
  });
});
