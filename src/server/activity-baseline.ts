/**
 * Per-identity activity baseline for hijack detection (docs/protocol.md "Phases 3 and 4",
 * Hijack detection): abnormal activity is a message rate far above the identity's recent baseline.
 *
 * Time is cut into windows of `windowMs` (aligned to the clock). For each identity the table keeps
 * the frame counts of its last `historyWindows` *active* windows (windows with at least one frame,
 * across all its sessions: idle time says nothing about how fast this identity works). Once it has
 * `minHistory` of them, a window whose count goes above
 *
 *     max(minFrames, factor × mean(history))
 *
 * is abnormal: every frame of the identity above it is (the session that sends it ends), and the
 * window is not learnt. Before that, only the fixed per-session ceiling applies. Memory is bounded: at most
 * `maxIdentities` identities are tracked; the least recently active is forgotten first.
 */

/** Thresholds of the baseline rule. */
export interface BaselinePolicy {
  /** A window above `factor` × the identity's mean active window is abnormal. 0 turns the rule off. */
  factor: number;
  /** …but never below this many frames per window (small baselines make small thresholds). */
  minFrames: number;
  /** Active windows needed before the rule applies. */
  minHistory: number;
  /** Active windows remembered per identity. */
  historyWindows: number;
  windowMs: number;
  /** Identities tracked at most. */
  maxIdentities: number;
}

/** Defaults: 10 s windows; abnormal above 10× the mean of the last 30 active windows, and above 300. */
export const DEFAULT_BASELINE_POLICY: BaselinePolicy = {
  factor: 10,
  minFrames: 300,
  minHistory: 5,
  historyWindows: 30,
  windowMs: 10_000,
  maxIdentities: 100_000,
};

interface Track {
  window: number;
  count: number;
  history: number[];
  /** The current window went above the threshold: it is not learnt (a flood must not raise the baseline). */
  abnormal: boolean;
}

/** What {@link ActivityBaseline.record} found. */
export interface BaselineVerdict {
  abnormal: boolean;
  /** Frames of this identity in the current window so far. */
  count: number;
  /** The threshold in force (Infinity while the baseline is still being learnt). */
  threshold: number;
  /** Mean frames per active window in the history. */
  mean: number;
}

/** The baselines of all identities; feed it every accepted frame. */
export class ActivityBaseline {
  private readonly tracks = new Map<string, Track>();

  constructor(readonly policy: BaselinePolicy) {}

  /** Counts one accepted frame of identity `id` at time `now`. */
  record(id: string, now: number): BaselineVerdict {
    const p = this.policy;
    const window = Math.floor(now / p.windowMs);
    let t = this.tracks.get(id);
    if (t)
      this.tracks.delete(id); // re-inserted below: Map order is recency order
    else t = { window, count: 0, history: [], abnormal: false };
    if (window !== t.window) {
      // A clock stepping backwards starts a fresh window too; only active windows are kept.
      if (t.count > 0 && !t.abnormal) t.history.push(t.count);
      if (t.history.length > p.historyWindows) t.history.splice(0, t.history.length - p.historyWindows);
      t.window = window;
      t.count = 0;
      t.abnormal = false;
    }
    t.count += 1;
    this.tracks.set(id, t);
    if (this.tracks.size > p.maxIdentities) {
      const oldest = this.tracks.keys().next().value as string;
      this.tracks.delete(oldest);
    }
    const mean = t.history.length ? t.history.reduce((a, b) => a + b, 0) / t.history.length : 0;
    const threshold =
      p.factor > 0 && t.history.length >= p.minHistory
        ? Math.max(p.minFrames, p.factor * mean)
        : Number.POSITIVE_INFINITY;
    const abnormal = t.count > threshold;
    if (abnormal) t.abnormal = true;
    return { abnormal, count: t.count, threshold, mean };
  }

  /** Forgets an identity (its key was revoked). */
  forget(id: string): void {
    this.tracks.delete(id);
  }

  /** Identities tracked now. */
  get size(): number {
    return this.tracks.size;
  }
}
