/**
 * Keeps a flood of refusals (failed logins, refused registration requests, rate-limit alerts) from
 * flooding the server console: in each window (10 s by default) the first refusal from a source is
 * shown, for at most `maxShown` sources; every other refusal is counted, and at the end of the window
 * the counts are reported, the largest `maxShown` one by one and the rest as one total. So a window
 * prints at most 2 × maxShown + 1 lines, whatever the flood. Sources are grouped as an attacker
 * holds them: an IPv4 address by its /24, an IPv6 address by its /64. Pure: the caller ends windows.
 */
import { sourceKey } from '../server/client-address.js';

/** What is counted. */
export type RefusalKind = 'login' | 'registration' | 'rate_limit' | 'ledger';

/** Refusals of one kind from one source, counted (not shown) in one window. */
export interface RefusalCount {
  what: RefusalKind;
  source: string;
  count: number;
  windowMs: number;
}

/** Counted refusals from the sources not listed one by one. */
export interface RefusalOthers {
  count: number;
  /** How many sources; an upper bound when `exact` is false (past `maxTracked`, not told apart). */
  sources: number;
  exact: boolean;
  windowMs: number;
}

/** What a window counted. */
export interface RefusalWindow {
  counts: RefusalCount[];
  others?: RefusalOthers;
}

/** Options of {@link RefusalSummary}. */
export interface RefusalSummaryOptions {
  /** Length of a window, ms (the caller ends each with {@link RefusalSummary.flush}); default 10 s. */
  windowMs?: number;
  /** Sources shown, and counts listed, per window; default 10. */
  maxShown?: number;
  /** Sources counted one by one per window (memory bound); the others are only totalled. Default 1,000. */
  maxTracked?: number;
}

/** The group a source address is summarised under: IPv4 by /24, IPv6 by /64, anything else itself. */
export function sourceGroup(address: string): string {
  const key = sourceKey(address);
  const v4 = /^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$/.exec(key);
  return v4 ? `${v4[1]}.0/24` : key;
}

/** See the module comment. */
export class RefusalSummary {
  readonly windowMs: number;
  private readonly maxShown: number;
  private readonly maxTracked: number;
  private readonly shown = new Set<string>();
  private readonly counts = new Map<string, RefusalCount>();
  private untracked = 0;

  constructor(o: RefusalSummaryOptions = {}) {
    this.windowMs = o.windowMs ?? 10_000;
    this.maxShown = o.maxShown ?? 10;
    this.maxTracked = o.maxTracked ?? 1_000;
  }

  /** True when this refusal is to be shown now; false when it was counted for the window's summary. */
  admit(what: RefusalKind, address: string): boolean {
    const source = sourceGroup(address);
    const key = `${what}\n${source}`;
    if (!this.shown.has(key) && this.shown.size < this.maxShown) {
      this.shown.add(key);
      return true;
    }
    const c = this.counts.get(key);
    if (c) c.count++;
    else if (this.counts.size < this.maxTracked)
      this.counts.set(key, { what, source, count: 1, windowMs: this.windowMs });
    else this.untracked++;
    return false;
  }

  /** Ends the window: what it counted (largest first), and starts a new one. */
  flush(): RefusalWindow {
    const all = [...this.counts.values()].sort((a, b) => b.count - a.count);
    const counts = all.slice(0, this.maxShown);
    const rest = all.slice(this.maxShown);
    const othersCount = rest.reduce((n, c) => n + c.count, 0) + this.untracked;
    const window: RefusalWindow = { counts };
    if (othersCount > 0)
      window.others = {
        count: othersCount,
        sources: rest.length + this.untracked,
        exact: this.untracked === 0,
        windowMs: this.windowMs,
      };
    this.shown.clear();
    this.counts.clear();
    this.untracked = 0;
    return window;
  }
}
