/**
 * Session events on the ledger's audit trail and as server events (docs/protocol.md "Phases 3 and 4",
 * Audit trail; identifiers hashed). Policy: a session event that cannot be written is logged and
 * alerted, and never blocks the login or logout it records (docs/reliability.md "Disk full and
 * read-only data directory"). On the EVM and etcd engines an event the chain (the etcd cluster)
 * cannot take now is not lost: it is queued durably (the outbox) and sent when it is back
 * (docs/reliability.md "The chain away").
 */
import type { Ledger } from '../ledger/ledger.js';
import { isKlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import type { AlertPolicy } from './alert-policy.js';
import type { ServerEvent } from './events.js';
import type { ServerMetrics } from './metrics.js';
import type { EndReason, Session, SessionEnded, SessionTable } from './sessions.js';

/** Writes an audit event; failures are logged and alerted, never thrown. */
export type AuditWriter = (
  event: string,
  id: string,
  detail?: Record<string, string | number | boolean>,
) => void;

const END_EVENTS: Record<EndReason, string> = {
  logout: 'session_end',
  timeout: 'session_timeout',
  lifetime: 'session_timeout',
  revoked: 'session_revoked',
  key_revoked: 'session_revoked',
  hijack: 'session_hijacked',
  shutdown: 'session_end',
};

/**
 * How long a session event may wait for others to share its block (docs/ledger.md "Commit and
 * durability"): nobody waits for it, and a login's two events in blocks of their own would cost the
 * ledger ~3× their share of a fuller block.
 */
export const AUDIT_BATCH_WAIT_MS = 50;

/** The audit writer of one server. */
export function createAuditWriter(o: {
  ledger: Ledger;
  metrics: ServerMetrics;
  policy: AlertPolicy;
  now: () => number;
  log: (line: string) => void;
}): AuditWriter {
  // Events queued for the chain (the etcd cluster): a line for the first, then at most one a minute.
  let queuedLoggedAt = Number.NEGATIVE_INFINITY;
  let queuedUnlogged = 0;
  return (event, id, detail) => {
    o.metrics.observeAudit(event, detail);
    o.ledger
      .submit(
        {
          type: 'AuditEvent',
          body: { event, at: o.now(), subject: sha256Hex(id), ...(detail ? { detail } : {}) },
        },
        { maxWaitMs: AUDIT_BATCH_WAIT_MS },
      )
      .catch((err: unknown) => {
        if (isKlError(err, 'KL_LEDGER_UNAVAILABLE') && err.details?.queued === true) {
          queuedUnlogged++;
          if (o.now() - queuedLoggedAt < 60_000) return;
          queuedLoggedAt = o.now();
          o.log(`${queuedUnlogged} audit event(s) queued: ${err.message}`);
          queuedUnlogged = 0;
          return;
        }
        o.policy.noteStorageFault(err);
        o.log(`audit event ${event} not written: ${(err as Error).message}`);
      });
  };
}

/** Turns session starts and ends into events, audit entries and (for hijacks) alerts. */
export function watchSessions(o: {
  sessions: SessionTable;
  audit: AuditWriter;
  policy: AlertPolicy;
  emit: (event: ServerEvent) => void;
  now: () => number;
  log: (line: string) => void;
}): void {
  const { now, emit } = o;
  o.sessions.on('started', (s: Session) => {
    const { id, fingerprint, sessionId, ip } = s;
    emit({ kind: 'login', at: now(), id, fingerprint, sessionId, ip });
  });
  o.sessions.on('ended', ({ session, reason, detail }: SessionEnded) => {
    if (reason !== 'hijack') {
      const { id, sessionId, ip } = session;
      emit({ kind: 'session_ended', at: now(), id, sessionId, ip, reason });
    }
    o.audit(END_EVENTS[reason], session.id, { session: sha256Hex(session.sessionId).slice(0, 32), reason });
    if (reason === 'hijack') {
      o.policy.record({ at: now(), kind: 'hijack', id: session.id, sessionId: session.sessionId, detail });
      o.log(`ALERT hijack suspected on a session of ${session.id}: ${detail}`);
    }
  });
}
