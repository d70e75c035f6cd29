/**
 * What the server tells its operator (docs/reliability.md "Disk full and read-only data directory",
 * "The chain away"; docs/protocol.md "Rate limits"): alerts kept in memory and pushed live, storage
 * faults alerted once a minute at most, rate-limit trips once per limit and key a minute, changes of
 * the chain connection (EVM or etcd engine) once per change, and alerts pushed out of memory counted. Time
 * comes from the injected clock.
 */
import { EventEmitter } from 'node:events';
import type { ChainChange } from '../ledger/sequencer-adapter.js';
import { isKlError } from '../protocol/errors.js';
import { type Alert, AlertLog, DEFAULT_ALERT_CAPACITY, type NumberedAlert } from './alert-log.js';
import { type ServerEvent, withoutUrlSecrets } from './events.js';
import type { ServerMetrics } from './metrics.js';

/** Options of {@link createAlertPolicy}. */
export interface AlertPolicyOptions {
  /** Alerts kept in memory per ring (default 10,000). */
  maxAlerts?: number;
  now: () => number;
  log: (line: string) => void;
  emit: (event: ServerEvent) => void;
  metrics: ServerMetrics;
}

/** The server's alerting, as built by {@link createAlertPolicy}. */
export interface AlertPolicy {
  alerts: AlertLog;
  /** Keeps an alert for the operator, pushes it live and tells the event listener. */
  record(alert: Alert): void;
  /** Alerts a `KL_STORAGE_UNAVAILABLE` error (at most one a minute); ignores anything else. */
  noteStorageFault(err: unknown): void;
  /**
   * Alerts one change of the chain connection (a fault and its end, the chain unreachable beyond
   * the staleness limit and back): kind `chain`. The follower logs the change itself.
   */
  noteChain(change: ChainChange): void;
  /** A rate-limit callback for the limit called `what` (one alert per key a minute). */
  tripped(what: string): (key: string) => void;
  /** Subscribes to live alerts; returns the unsubscribe function. */
  onAlert(listener: (a: NumberedAlert) => void): () => void;
}

/** Builds the alert policy of one server. */
export function createAlertPolicy(o: AlertPolicyOptions): AlertPolicy {
  const { now, log } = o;
  const live = new EventEmitter();
  // The newest alerts are kept; one pushed out is counted (metric, a log line a minute at most), and
  // hijack alarms have their own ring, so a flood of rate-limit alerts cannot push them out.
  let dropLoggedAt = Number.NEGATIVE_INFINITY;
  let dropsUnlogged = 0;
  const alerts = new AlertLog(o.maxAlerts ?? DEFAULT_ALERT_CAPACITY, (a) => {
    o.metrics.observeAlertDropped(a.kind);
    dropsUnlogged++;
    if (now() - dropLoggedAt < 60_000) return;
    dropLoggedAt = now();
    log(
      `ALERT ${dropsUnlogged} older alert(s) dropped from memory (the newest are kept; ${alerts.dropped().total} so far)`,
    );
    dropsUnlogged = 0;
  });
  const record = (alert: Alert) => {
    live.emit('alert', alerts.record(alert));
    const { at, kind, id, sessionId, detail } = alert;
    o.emit({ kind: 'alert', at, alert: kind, id, sessionId, detail });
  };
  // Storage faults (disk full, data directory read-only): an alert on the first write that fails,
  // then at most one a minute while writes keep failing.
  let storageAlertAt = Number.NEGATIVE_INFINITY;
  const noteStorageFault = (err: unknown) => {
    if (!isKlError(err) || err.code !== 'KL_STORAGE_UNAVAILABLE') return;
    const t = now();
    if (t >= storageAlertAt && t - storageAlertAt < 60_000) return;
    storageAlertAt = t;
    record({ at: t, kind: 'storage', id: '', sessionId: '', detail: err.message });
    log(`ALERT ${err.message}`);
  };
  const lastTrip = new Map<string, number>();
  const tripped = (what: string) => (key: string) => {
    const k = `${what}\n${key}`;
    const t = now();
    if ((lastTrip.get(k) ?? Number.NEGATIVE_INFINITY) > t - 60_000) return;
    if (lastTrip.size > 10_000) lastTrip.clear();
    lastTrip.set(k, t);
    record({ at: t, kind: 'rate_limit', id: key, sessionId: '', detail: `${what} rate limit reached` });
    log(`ALERT ${what} rate limit reached by ${key}`);
  };
  const noteChain = (change: ChainChange) => {
    const what: Record<ChainChange['kind'], string> = {
      fault: 'chain fault',
      fault_cleared: 'chain fault cleared',
      unreachable: 'chain unreachable',
      reachable: 'chain reachable again',
    };
    record({
      at: now(),
      kind: 'chain',
      id: '',
      sessionId: '',
      // The node's errors may quote its URL, credentials and all.
      detail: withoutUrlSecrets(`${what[change.kind]}: ${change.detail}`).slice(0, 2_000),
    });
  };
  return {
    alerts,
    record,
    noteStorageFault,
    noteChain,
    tripped,
    onAlert(listener) {
      live.on('alert', listener);
      return () => live.off('alert', listener);
    },
  };
}
