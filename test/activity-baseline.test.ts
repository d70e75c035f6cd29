/** The per-identity activity baseline of hijack detection (src/server/activity-baseline.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ActivityBaseline,
  type BaselinePolicy,
  DEFAULT_BASELINE_POLICY,
} from '../src/server/activity-baseline.js';

const policy = (p: Partial<BaselinePolicy> = {}): BaselinePolicy => ({
  ...DEFAULT_BASELINE_POLICY,
  factor: 10,
  minFrames: 100,
  minHistory: 3,
  historyWindows: 5,
  windowMs: 1_000,
  ...p,
});

/** Feeds `counts[i]` frames in window i (window i starts at i × 1000 ms); returns the last verdict. */
function feed(b: ActivityBaseline, id: string, counts: number[], from = 0) {
  let last = b.record(id, from * 1_000); // (counted in window `from`)
  let first = true;
  counts.forEach((n, i) => {
    for (let k = first ? 1 : 0; k < n; k++) last = b.record(id, (from + i) * 1_000 + (k * 999) / n);
    first = false;
  });
  return last;
}

describe('activity baseline', () => {
  it('learns first: no threshold before minHistory active windows', () => {
    const b = new ActivityBaseline(policy());
    const v = feed(b, 'a', [10, 10, 5_000]);
    assert.equal(v.abnormal, false);
    assert.equal(v.threshold, Number.POSITIVE_INFINITY);
  });

  it('at factor × mean the window is normal; one frame more is abnormal', () => {
    const b = new ActivityBaseline(policy());
    feed(b, 'a', [20, 20, 20]); // mean 20 → threshold max(100, 200) = 200
    let v = b.record('a', 3_000);
    for (let k = 1; k < 200; k++) v = b.record('a', 3_000 + k);
    assert.deepEqual([v.count, v.threshold, v.abnormal], [200, 200, false]);
    v = b.record('a', 3_500);
    assert.deepEqual([v.count, v.abnormal], [201, true]);
  });

  it('never below minFrames, however quiet the identity usually is', () => {
    const b = new ActivityBaseline(policy());
    feed(b, 'quiet', [1, 1, 1]);
    const v = feed(b, 'quiet', [100], 3);
    assert.deepEqual([v.threshold, v.abnormal], [100, false]);
    assert.equal(b.record('quiet', 3_999).abnormal, true);
  });

  it('idle windows are not learnt; a flood window is not learnt either', () => {
    const b = new ActivityBaseline(policy());
    feed(b, 'a', [10, 10, 10]);
    // Ten idle windows later, the baseline is still 10 (not diluted to ~2).
    const flood = feed(b, 'a', [150], 13);
    assert.deepEqual([flood.mean, flood.abnormal], [10, true]);
    // The flood did not raise the baseline: the next window still has mean 10.
    const after = b.record('a', 14_000);
    assert.equal(after.mean, 10);
  });

  it('keeps only the last historyWindows active windows', () => {
    const b = new ActivityBaseline(policy());
    feed(b, 'a', [1000, 1, 1, 1, 1, 1]);
    assert.equal(b.record('a', 6_000).mean, 1);
  });

  it('identities are independent, and at most maxIdentities are tracked (least recent forgotten)', () => {
    const b = new ActivityBaseline(policy({ maxIdentities: 2 }));
    feed(b, 'a', [5, 5, 5]);
    feed(b, 'b', [5, 5, 5]);
    assert.equal(b.record('b', 3_000).mean, 5);
    b.record('c', 3_000);
    assert.equal(b.size, 2);
    assert.equal(b.record('a', 3_000).mean, 0, 'a was the least recently active: forgotten');
  });

  it('factor 0 turns the rule off', () => {
    const b = new ActivityBaseline(policy({ factor: 0 }));
    const v = feed(b, 'a', [1, 1, 1, 10_000]);
    assert.equal(v.abnormal, false);
  });

  it('a clock stepping backwards starts a new window instead of crashing or counting twice', () => {
    const b = new ActivityBaseline(policy());
    feed(b, 'a', [10, 10, 10], 100);
    const v = b.record('a', 50_000);
    assert.equal(v.count, 1);
    assert.equal(v.mean, 10);
  });
});
