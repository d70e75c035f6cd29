/**
 * Logins per minute over the last hour, for the dashboard's chart, read from the ledger's audit trail
 * (docs/protocol.md "Phases 3 and 4", Audit trail: `session_start` and `login_failed` events) rather than
 * counted in memory, so a restart of the server does not reset it. Cheap: the first read walks back only to
 * the start of the window (readAuditTrail stops at `since`), every later read only the blocks written since,
 * and what is kept is one count per minute.
 */
import { type AuditEntry, readAuditTrail } from '../ledger/audit-trail.js';
import type { Ledger } from '../ledger/ledger.js';

/** One minute of the chart. */
export interface LoginMinute {
  /** Start of the minute, ms since the epoch. */
  t: number;
  /** Successful logins (`session_start` events). */
  ok: number;
  /**
   * Failed logins as the audit trail records them (`login_failed`: a challenge answered wrongly or
   * too late). Refusals before a challenge (unknown identity, rate limit) are not on the trail.
   */
  failed: number;
}

/** The chart's data. */
export interface LoginSeries {
  /** The last `minutes` minutes, oldest first, empty minutes included. */
  points: LoginMinute[];
  /**
   * Set when the window held more audit events than one read returns (10,000): the counts of
   * events before this time (ms) were not all read, and the chart says so.
   */
  incompleteBefore?: number;
}

const MINUTE = 60_000;
/** The most events readAuditTrail returns in one read. */
const READ_LIMIT = 10_000;
const LOGIN_EVENTS: ReadonlyMap<string, 'ok' | 'failed'> = new Map([
  ['session_start', 'ok'],
  ['login_failed', 'failed'],
]);

const minuteOf = (ms: number) => Math.floor(ms / MINUTE) * MINUTE;

/** The login counts of the last hour, from the audit trail; see the module comment. */
export class LoginHistory {
  private readonly counts = new Map<number, LoginMinute>();
  /** Blocks up to this height have been counted. */
  private readTo = 0;
  private incompleteBefore: number | undefined;
  /** The read under way: concurrent callers share it (no block is counted twice). */
  private reading: Promise<void> | null = null;

  constructor(
    private readonly ledger: Ledger,
    private readonly now: () => number,
    private readonly minutes = 60,
  ) {}

  /**
   * Reads the blocks written since the last call and returns the series.
   * @throws KlError `KL_LEDGER_CORRUPT` if a block or audit event fails its check (readAuditTrail).
   */
  async series(): Promise<LoginSeries> {
    this.reading ??= this.readNew().finally(() => {
      this.reading = null;
    });
    await this.reading;
    const current = minuteOf(this.now());
    const from = current - (this.minutes - 1) * MINUTE;
    const points: LoginMinute[] = [];
    for (let t = from; t <= current; t += MINUTE) {
      const p = this.counts.get(t);
      points.push(p ? { ...p } : { t, ok: 0, failed: 0 });
    }
    return {
      points,
      ...(this.incompleteBefore !== undefined && this.incompleteBefore > from
        ? { incompleteBefore: this.incompleteBefore }
        : {}),
    };
  }

  private async readNew(): Promise<void> {
    const since = minuteOf(this.now()) - (this.minutes - 1) * MINUTE;
    for (const t of this.counts.keys()) if (t < since) this.counts.delete(t);
    // The height read up to is fixed first: blocks committed during the read are left to the next
    // call (their events are skipped below), so none is counted twice.
    const top = (await this.ledger.checkpoint())?.header.height ?? 0;
    if (top <= this.readTo) return;
    const rows = await readAuditTrail(this.ledger, {
      since,
      aboveHeight: this.readTo,
      limit: READ_LIMIT,
    });
    for (const r of rows) if (r.height <= top) this.count(r);
    if (rows.length >= READ_LIMIT) {
      // Only the newest events were returned: older minutes may be short; say so, never guess.
      const oldest = rows[rows.length - 1]!.at;
      this.incompleteBefore = Math.max(this.incompleteBefore ?? 0, minuteOf(oldest) + MINUTE);
    }
    this.readTo = top;
  }

  private count(r: AuditEntry): void {
    const kind = LOGIN_EVENTS.get(r.event);
    if (!kind) return;
    const t = minuteOf(r.at);
    let p = this.counts.get(t);
    if (!p) {
      p = { t, ok: 0, failed: 0 };
      this.counts.set(t, p);
    }
    p[kind] += 1;
  }
}
