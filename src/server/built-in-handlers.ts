/**
 * Session messages the server answers itself, before any application hook: a user lists and revokes
 * its own sessions (`keyledger session list|revoke`), and an admin asks, inside its authenticated
 * session, for a one-time dashboard link (docs/architecture.md "The operator side").
 */
import type { Ledger } from '../ledger/ledger.js';
import { KlError } from '../protocol/errors.js';
import { isAdmin } from './admin-actions.js';
import type { DashboardAuth } from './dashboard-auth.js';
import type { MessageHandler } from './session-service.js';
import type { SessionTable } from './sessions.js';

/** `session.list` and `session.revoke`: an identity's own live sessions. */
export function ownSessionsHandler(sessions: SessionTable): MessageHandler {
  return ({ id, sessionId, body }) => {
    const b = body as { op?: unknown; sessionId?: unknown } | null;
    if (b?.op === 'session.list') {
      return sessions.ofIdentity(id).map((x) => ({
        sessionId: x.sessionId,
        fingerprint: x.fingerprint,
        ip: x.ip,
        createdAt: x.createdAt,
        lastActivity: x.lastActivity,
        current: x.sessionId === sessionId,
      }));
    }
    if (b?.op === 'session.revoke') {
      const target = typeof b.sessionId === 'string' ? sessions.get(b.sessionId) : undefined;
      if (!target || target.id !== id)
        throw new KlError('KL_SESSION_UNKNOWN', 'you have no live session with this id');
      // Answer first, then end (the target may be this very session).
      setImmediate(() => sessions.end(target.sessionId, 'revoked', 'the session was revoked by its owner'));
      return { revoked: target.sessionId };
    }
    return undefined;
  };
}

/** `admin.dashboard-link`: a one-time dashboard link for an identity holding the admin role. */
export function dashboardLinkHandler(o: {
  ledger: Ledger;
  dashboard: DashboardAuth;
  /** The URL of the dashboard's login page, read when a link is made. */
  loginUrl: () => string;
  log: (line: string) => void;
}): MessageHandler {
  return async ({ id, body }) => {
    if ((body as { op?: unknown } | null)?.op !== 'admin.dashboard-link') return undefined;
    if (!(await isAdmin(o.ledger, id)))
      throw new KlError('KL_NOT_ADMIN', 'this identity does not hold the admin role on the ledger');
    const { token, expiresAt } = o.dashboard.issueLink(id);
    o.log(`dashboard link issued to ${id}`);
    return { url: `${o.loginUrl()}?token=${token}`, expiresAt };
  };
}
