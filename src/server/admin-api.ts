/**
 * The web admin API (docs/architecture.md "The operator side"), under /admin, as a Fastify plugin
 * in its own scope. Access: a one-time link from `keyledger admin dashboard` (dashboard-auth.ts,
 * admin-pages.ts) starts a cookie session for an identity that holds the admin role on the ledger; the
 * role is checked again on every call, and every state change needs the session's CSRF token in
 * `x-csrf-token`. Every answer carries the security headers of `@fastify/helmet` (no framing, no
 * referrer — links carry tokens —, local code only) and `cache-control: no-store`. Reads: overview,
 * identities, sessions, blocks and transactions (with their proofs, verified in the browser), audit
 * trail, alerts (admin-alerts.ts). Actions: terminate a session, revoke a key, acknowledge an alert,
 * log out.
 */
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import { REVOCATION_REASONS } from '../ledger/transactions.js';
import { KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import {
  isAdmin,
  listSessions,
  revokeDeviceAsAdmin,
  revokeKeyAsAdmin,
  terminateSession,
} from './admin-actions.js';
import { registerAlertRoutes, registerAuditRoute } from './admin-alerts.js';
import { registerDashboardPages } from './admin-pages.js';
import type { AlertLog, NumberedAlert } from './alert-log.js';
import { DASHBOARD_COOKIE, type DashboardAuth, type DashboardSession } from './dashboard-auth.js';
import { LoginHistory } from './login-history.js';
import type { SessionTable } from './sessions.js';

export { csvCell } from './admin-alerts.js';

/** What the admin API needs. */
export interface AdminApiContext {
  ledger: Ledger;
  sessions: SessionTable;
  alerts: AlertLog;
  auth: DashboardAuth;
  now: () => number;
  /**
   * Whether people reach the server over https (asked per answer): the dashboard cookie's Secure
   * flag and HSTS.
   */
  secure: () => boolean;
  log: (line: string) => void;
  /** Listeners for live alerts (server-sent events). */
  onAlert: (listener: (a: NumberedAlert) => void) => () => void;
}

/**
 * Authenticates a call: a live dashboard session whose identity is still an admin on the ledger
 * (and, for a change, the session's CSRF token).
 */
export type AdminGuard = (req: FastifyRequest, opts?: { change?: boolean }) => Promise<DashboardSession>;

/** The dashboard's Content Security Policy: local code, styles and connections only; no framing. */
const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  styleSrc: ["'self'"],
  scriptSrc: ["'self'"],
  connectSrc: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
};

const ID_PARAM = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', minLength: 3, maxLength: 254 } },
} as const;

/** The body of a revocation: an optional reason. */
const REASON_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', enum: [...REVOCATION_REASONS] } },
} as const;

const api = (summary: string, extra: Record<string, unknown> = {}) => ({
  schema: { summary, tags: ['admin'], security: [{ dashboardCookie: [] }], ...extra },
});

/** Registers /admin (page, login link) and /admin/api/* on `app`, in a scope of their own. */
export const registerAdminApi: FastifyPluginAsync<AdminApiContext> = async (app, ctx) => {
  await app.register(cookie);
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // Sent below, per answer: whether the server is reached over https can be learned after start.
    strictTransportSecurity: false,
  });
  app.addHook('onSend', async (_req, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    if (ctx.secure()) reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
  });
  const admin: AdminGuard = async (req, opts = {}) => {
    const s = ctx.auth.session(req.cookies[DASHBOARD_COOKIE]);
    if (!s) throw new KlError('KL_AUTH_FAILED', 'not logged in: run keyledger admin dashboard for a link');
    if (!(await isAdmin(ctx.ledger, s.id))) {
      ctx.auth.endIdentity(s.id);
      throw new KlError('KL_NOT_ADMIN', 'this identity no longer holds the admin role');
    }
    if (opts.change) ctx.auth.checkCsrf(s, req.headers['x-csrf-token']);
    return s;
  };
  const acked = new Set<number>();
  await registerDashboardPages(app, ctx, admin);
  registerReads(app, { ...ctx, acked }, admin);
  registerLedgerReads(app, ctx, admin);
  registerActions(app, ctx, admin);
  registerAuditRoute(app, ctx, admin);
  registerAlertRoutes(app, { ...ctx, acked }, admin);
};

/** The logged-in admin, the overview and the identity search. */
function registerReads(
  app: FastifyInstance,
  ctx: AdminApiContext & { acked: Set<number> },
  admin: AdminGuard,
): void {
  const logins = new LoginHistory(ctx.ledger, ctx.now);
  app.get('/admin/api/me', api('The logged-in admin and the CSRF token for state changes'), async (req) => {
    const s = await admin(req);
    return { id: s.id, csrf: s.csrf, since: s.createdAt };
  });

  app.get(
    '/admin/api/overview',
    api('Ledger, identities, sessions, logins over time, open alerts'),
    async (req) => {
      await admin(req);
      const checkpoint = await ctx.ledger.checkpoint();
      const { counts } = await ctx.ledger.listIdentities({ limit: 1 });
      return {
        ledger: {
          chain: ctx.ledger.chainId,
          height: checkpoint?.header.height ?? 0,
          lastBlockTime: checkpoint?.header.time ?? null,
        },
        identities: counts,
        sessions: { live: ctx.sessions.list().length },
        // From the audit trail on the ledger, so a restart does not reset it (login-history.ts).
        // A ledger that cannot be read (damaged, storage failing) costs the chart, not the overview:
        // the alerts and sessions matter most exactly then.
        logins: await logins.series().catch((err: unknown) => {
          const code = err instanceof KlError ? err.code : 'KL_INTERNAL';
          ctx.log(`login chart unavailable: ${code} ${(err as Error).message}`);
          return { points: [], unavailable: code };
        }),
        alerts: {
          open: ctx.alerts.list().filter((a) => !ctx.acked.has(a.n)).length,
          dropped: ctx.alerts.dropped(),
        },
      };
    },
  );

  app.get<{ Querystring: { q?: string; limit?: string } }>(
    '/admin/api/identities',
    api('Searches identities by id', {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          q: { type: 'string', maxLength: 254 },
          limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' },
        },
      },
    }),
    async (req) => {
      await admin(req);
      const { records, counts } = await ctx.ledger.listIdentities({
        query: req.query.q ?? '',
        limit: Number(req.query.limit ?? 50),
      });
      return {
        counts,
        identities: records.map((r) => ({
          id: r.id,
          name: r.name,
          fingerprint: r.fingerprint,
          algorithm: r.algorithm,
          status: r.status,
          registered: r.registered.time,
          updated: r.updated.time,
          roles: r.roles ?? [],
        })),
      };
    },
  );
}

/** One identity, live sessions, blocks, transactions and the genesis. */
function registerLedgerReads(app: FastifyInstance, ctx: AdminApiContext, admin: AdminGuard): void {
  app.get<{ Params: { id: string } }>(
    '/admin/api/identities/:id',
    api("An identity's key record with its state proof, and its transactions on the ledger", {
      params: ID_PARAM,
    }),
    async (req) => {
      await admin(req);
      const id = canonicalIdentity(req.params.id);
      const proof = await ctx.ledger.getKeyRecord(id);
      if (!proof.record) throw new KlError('KL_IDENTITY_UNKNOWN', 'no key is registered for this identity');
      const txs = await ctx.ledger.transactionsFor(id, { limit: 200 });
      return {
        proof,
        transactions: txs.map((t) => ({
          txid: t.txid,
          type: t.envelope.tx.type,
          height: t.block.header.height,
          time: t.envelope.tx.time,
        })),
        sessions: listSessions(ctx.sessions).filter((s) => s.id === id),
      };
    },
  );

  app.get('/admin/api/sessions', api('Live sessions'), async (req) => {
    await admin(req);
    return listSessions(ctx.sessions);
  });

  app.get<{ Querystring: { before?: string; limit?: string } }>(
    '/admin/api/blocks',
    api('Block headers, newest first', {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          before: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
          limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' },
        },
      },
    }),
    async (req) => {
      await admin(req);
      const top = (await ctx.ledger.checkpoint())?.header.height ?? 0;
      const from = Math.min(top, req.query.before ? Number(req.query.before) - 1 : top);
      const limit = Math.min(Number(req.query.limit ?? 20), 100);
      const blocks = [];
      for (let h = from; h >= 1 && blocks.length < limit; h--) {
        const { block, txids } = await ctx.ledger.getBlock(h);
        blocks.push({ height: h, hash: block.hash, time: block.header.time, txids });
      }
      return { top, blocks };
    },
  );

  app.get<{ Params: { txid: string } }>(
    '/admin/api/tx/:txid',
    api('A transaction with its inclusion proof and signed block header (verify it against the genesis)', {
      params: {
        type: 'object',
        additionalProperties: false,
        required: ['txid'],
        properties: { txid: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
      },
    }),
    async (req) => {
      await admin(req);
      return ctx.ledger.getTransaction(req.params.txid);
    },
  );

  app.get('/admin/api/genesis', api('The ledger genesis (the root of trust for proofs)'), async (req) => {
    await admin(req);
    return ctx.ledger.genesis;
  });
}

/** Revoking a key and ending a session. */
function registerActions(app: FastifyInstance, ctx: AdminApiContext, admin: AdminGuard): void {
  app.post<{ Params: { id: string }; Body: { reason?: string } }>(
    '/admin/api/identities/:id/revoke',
    api('Revokes the identity’s key on the ledger (KeyRevoked by an admin); its sessions end', {
      params: ID_PARAM,
      body: REASON_BODY,
    }),
    async (req) => {
      const s = await admin(req, { change: true });
      const receipt = await revokeKeyAsAdmin(ctx.ledger, {
        id: req.params.id,
        admin: s.id,
        reason: req.body?.reason ?? 'unspecified',
      });
      ctx.log(`key of ${req.params.id} revoked by admin ${s.id} from the dashboard`);
      return {
        revoked: canonicalIdentity(req.params.id),
        txid: receipt.txid,
        height: receipt.block.header.height,
      };
    },
  );

  app.post<{ Params: { id: string; device: string }; Body: { reason?: string } }>(
    '/admin/api/identities/:id/devices/:device/revoke',
    api('Revokes one device key of the identity (DeviceRevoked by an admin); that device’s sessions end', {
      params: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'device'],
        properties: {
          id: ID_PARAM.properties.id,
          device: { type: 'string', minLength: 1, maxLength: 64 },
        },
      },
      body: REASON_BODY,
    }),
    async (req) => {
      const s = await admin(req, { change: true });
      const revoked = await revokeDeviceAsAdmin(ctx.ledger, {
        id: req.params.id,
        device: req.params.device,
        admin: s.id,
        reason: req.body?.reason ?? 'unspecified',
      });
      ctx.log(
        `device ${revoked.fingerprint} of ${req.params.id} revoked by admin ${s.id} from the dashboard`,
      );
      return {
        revoked: canonicalIdentity(req.params.id),
        fingerprint: revoked.fingerprint,
        txid: revoked.receipt.txid,
        height: revoked.receipt.block.header.height,
      };
    },
  );

  app.post<{ Params: { sid: string } }>(
    '/admin/api/sessions/:sid/terminate',
    api('Ends a live session; its client is told why', {
      params: {
        type: 'object',
        additionalProperties: false,
        required: ['sid'],
        properties: { sid: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' } },
      },
    }),
    async (req) => {
      const s = await admin(req, { change: true });
      terminateSession(ctx.sessions, req.params.sid, s.id);
      ctx.log(`session ${req.params.sid.slice(0, 8)}… ended by admin ${s.id} from the dashboard`);
      return { ended: true };
    },
  );
}
