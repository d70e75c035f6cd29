/**
 * Operational metrics: Prometheus text at /metrics (prom-client, one registry per server), fed by
 * the server's audit events — the same stream that goes to the ledger — so a figure here always has
 * an audit record behind it. (The dashboard's per-minute login chart reads the audit trail itself:
 * login-history.ts.)
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChainStatus } from '../ledger/sequencer-adapter.js';

/** What the gauges read when Prometheus scrapes. */
export interface MetricsSources {
  activeSessions: () => number;
  ledgerHeight: () => number;
  /** 1 while the ledger cannot write blocks (disk full, read-only data directory), else 0. */
  storageFault: () => number;
}

/** The server's metrics. */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly logins: Counter;
  private readonly failures: Counter<'code'>;
  private readonly registrations: Counter;
  private readonly recoveries: Counter;
  private readonly renewals: Counter;
  private readonly alarms: Counter<'reason'>;
  private readonly sessionEnds: Counter<'reason'>;
  private readonly alertsDropped: Counter<'kind'>;
  private readonly commitSeconds: Histogram;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.logins = new Counter({
      name: 'keyledger_logins_total',
      help: 'Completed mutual-authentication logins',
      registers,
    });
    this.failures = new Counter({
      name: 'keyledger_login_failures_total',
      help: 'Failed logins by error code',
      labelNames: ['code'],
      registers,
    });
    this.registrations = new Counter({
      name: 'keyledger_registrations_total',
      help: 'Keys registered on the ledger',
      registers,
    });
    this.recoveries = new Counter({
      name: 'keyledger_recoveries_total',
      help: 'Identities recovered with their recovery key on a new device (docs/protocol.md "Recovery")',
      registers,
    });
    this.renewals = new Counter({
      name: 'keyledger_session_renewals_total',
      help: 'Session key renewals',
      registers,
    });
    this.alarms = new Counter({
      name: 'keyledger_hijack_alarms_total',
      help: 'Hijack alarms by reason',
      labelNames: ['reason'],
      registers,
    });
    this.sessionEnds = new Counter({
      name: 'keyledger_session_ends_total',
      help: 'Ended sessions by reason',
      labelNames: ['reason'],
      registers,
    });
    this.alertsDropped = new Counter({
      name: 'keyledger_alerts_dropped_total',
      help: 'Operator alerts pushed out of memory by newer ones, by kind (the newest are kept)',
      labelNames: ['kind'],
      registers,
    });
    this.commitSeconds = new Histogram({
      name: 'keyledger_ledger_commit_seconds',
      help: 'Time from submitting a transaction to its block being durable',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    new Gauge({
      name: 'keyledger_sessions_active',
      help: 'Live sessions',
      registers,
      collect() {
        this.set(sources.activeSessions());
      },
    });
    new Gauge({
      name: 'keyledger_storage_fault',
      help: '1 while the ledger cannot write (disk full or data directory read-only) until a write succeeds',
      registers,
      collect() {
        this.set(sources.storageFault());
      },
    });
    new Gauge({
      name: 'keyledger_ledger_height',
      help: 'Height of the last committed block',
      registers,
      collect() {
        this.set(sources.ledgerHeight());
      },
    });
  }

  /** Counts one audit event (called for every event the server writes to the ledger). */
  observeAudit(event: string, detail?: Record<string, string | number | boolean>): void {
    switch (event) {
      case 'session_start':
        this.logins.inc();
        return;
      case 'login_failed':
        this.failures.inc({ code: String(detail?.reason ?? 'unknown') });
        return;
      case 'registration':
        this.registrations.inc();
        return;
      case 'recovered':
        this.recoveries.inc();
        return;
      case 'session_renewal':
        this.renewals.inc();
        return;
      case 'hijack_alarm':
        this.alarms.inc({ reason: String(detail?.reason ?? 'unknown') });
        return;
      default:
        if (event.startsWith('session_') && detail?.reason)
          this.sessionEnds.inc({ reason: String(detail.reason) });
    }
  }

  /** Counts one operator alert pushed out of memory (see alert-log.ts). */
  observeAlertDropped(kind: string): void {
    this.alertsDropped.inc({ kind });
  }

  /** Records one commit latency, ms. */
  observeCommit(ms: number): void {
    this.commitSeconds.observe(ms / 1000);
  }

  private chainWatched = false;

  /**
   * Adds the gauges of the connection to the engine that orders the ledger's writes (an EVM chain
   * or an etcd cluster; docs/deploy-besu.md "The follower", docs/deploy-etcd.md), read from `status`
   * at each scrape: head, last position read, lag, staleness, fault, queued and refused writes. A
   * position is an EVM block, or an etcd write's number under the ledger's prefix. Once per server;
   * the embedded engine has none.
   */
  watchChain(status: () => ChainStatus | null): void {
    if (this.chainWatched) return;
    this.chainWatched = true;
    const registers = [this.registry];
    const gauge = (name: string, help: string, value: (s: ChainStatus) => number | null) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = status();
          const v = s ? value(s) : null;
          if (v !== null) this.set(v);
        },
      });
    gauge(
      'keyledger_chain_head_block',
      'Head of the chain (EVM block, or etcd write number) at the last read',
      (s) => s.head,
    );
    gauge(
      'keyledger_chain_read_block',
      'Last chain position (EVM block, or etcd write number) read into the ledger',
      (s) => s.read,
    );
    gauge(
      'keyledger_chain_lag_blocks',
      'Chain positions (EVM blocks, or etcd writes) the chain holds that the ledger has not read',
      (s) => s.lag,
    );
    gauge(
      'keyledger_chain_staleness_seconds',
      'Seconds since the ledger last read the chain (EVM chain or etcd cluster) to its end',
      (s) => s.stalenessMs / 1000,
    );
    gauge(
      'keyledger_chain_fault',
      '1 while the chain cannot be followed (it went back or was replaced): logins and writes refused',
      (s) => (s.fault ? 1 : 0),
    );
    gauge(
      'keyledger_chain_queued_writes',
      'Signed audit events queued while the chain is away, not yet read back from it',
      (s) => s.queued,
    );
    gauge(
      'keyledger_chain_refused_writes',
      'Queued signed writes the chain refused, kept in the outbox with the reason (never sent again)',
      (s) => s.refusedWrites ?? 0,
    );
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
