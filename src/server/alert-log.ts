/**
 * The alerts kept for the operator (admin socket, dashboard): a bounded memory that never loses an
 * alert unnoticed. Each alert gets a sequence number `n` (its identity for acknowledging). The newest
 * alerts are kept in two rings: hijack alarms and storage faults (rare and serious) in their own, so
 * a flood of rate-limit alerts cannot push them out, and every other kind in the other. An alert
 * pushed out of its ring is counted by kind, and the counts are shown wherever the list is
 * (`keyledger admin alerts`, the dashboard, the `keyledger_alerts_dropped_total` metric). The ledger's
 * audit trail keeps every hijack alarm.
 */

/** A hijack alarm or other alert kept for the operator. */
export interface Alert {
  at: number;
  kind: string;
  id: string;
  sessionId: string;
  detail: string;
}

/** An alert as kept: with its sequence number. */
export type NumberedAlert = Alert & { n: number };

/** Alerts pushed out of memory, by kind. */
export interface DroppedAlerts {
  total: number;
  byKind: Record<string, number>;
}

/** Kinds kept in their own ring: a flood of other alerts never pushes them out. */
export const PRIORITY_ALERT_KINDS: ReadonlySet<string> = new Set(['hijack', 'storage', 'chain']);

/** How many alerts of each ring are kept by default. */
export const DEFAULT_ALERT_CAPACITY = 10_000;

class Ring {
  private readonly items: NumberedAlert[] = [];
  private head = 0;

  constructor(private readonly capacity: number) {}

  /** Adds `a`; returns the alert pushed out, if any. */
  push(a: NumberedAlert): NumberedAlert | undefined {
    if (this.items.length < this.capacity) {
      this.items.push(a);
      return undefined;
    }
    const old = this.items[this.head]!;
    this.items[this.head] = a;
    this.head = (this.head + 1) % this.capacity;
    return old;
  }

  /** Oldest first. */
  list(): NumberedAlert[] {
    return [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }

  get size(): number {
    return this.items.length;
  }
}

/** The operator's alerts: see the module comment. */
export class AlertLog {
  private next = 0;
  private readonly priority: Ring;
  private readonly other: Ring;
  private readonly kept = new Map<number, NumberedAlert>();
  private readonly droppedByKind = new Map<string, number>();
  private droppedTotal = 0;

  /**
   * @param capacity alerts kept per ring (priority kinds, others).
   * @param onDrop told of every alert pushed out (metrics, the log).
   */
  constructor(
    capacity = DEFAULT_ALERT_CAPACITY,
    private readonly onDrop: (dropped: NumberedAlert) => void = () => {},
  ) {
    this.priority = new Ring(capacity);
    this.other = new Ring(capacity);
  }

  /** Keeps `alert` (pushing out the oldest of its ring when full); returns it with its number. */
  record(alert: Alert): NumberedAlert {
    const a: NumberedAlert = { ...alert, n: this.next++ };
    this.kept.set(a.n, a);
    const out = (PRIORITY_ALERT_KINDS.has(a.kind) ? this.priority : this.other).push(a);
    if (out) {
      this.kept.delete(out.n);
      this.droppedTotal++;
      this.droppedByKind.set(out.kind, (this.droppedByKind.get(out.kind) ?? 0) + 1);
      this.onDrop(out);
    }
    return a;
  }

  /** The alerts kept, oldest first. */
  list(): NumberedAlert[] {
    const a = this.priority.list();
    const b = this.other.list();
    const out: NumberedAlert[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      if (j >= b.length || (i < a.length && a[i]!.n < b[j]!.n)) out.push(a[i++]!);
      else out.push(b[j++]!);
    }
    return out;
  }

  /** The alert numbered `n`, if still kept. */
  get(n: number): NumberedAlert | undefined {
    return this.kept.get(n);
  }

  /** Whether alert `n` is still kept. */
  has(n: number): boolean {
    return this.kept.has(n);
  }

  /** How many alerts are kept. */
  get size(): number {
    return this.kept.size;
  }

  /** The alerts pushed out of memory so far, by kind. */
  dropped(): DroppedAlerts {
    return { total: this.droppedTotal, byKind: Object.fromEntries(this.droppedByKind) };
  }
}
