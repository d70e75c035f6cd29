/**
 * The web admin API and the dashboard page (docs/architecture.md "The operator side"), under /admin. Access:
 * a one-time link from `keyledger admin dashboard` (see dashboard-auth.ts) starts a cookie session for an
 * identity that holds the admin role on the ledger; the role is checked again on every call, and every state
 * change needs the session's CSRF token in `x-csrf-token`. Reads: overview, identities, sessions,
 * blocks and transactions (with their proofs, verified in the browser), audit trail (JSON or CSV),
 * alerts (live over server-sent events). Actions: terminate a session, revoke a key, acknowledge an
 * alert, log out.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readAuditTrail } from '../ledger/audit-trail.js';
import type { Ledger } from '../ledger/ledger.js';
import { REVOCATION_REASONS } from '../ledger/transactions.js';
import { KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { isAdmin, listSessions, revokeKeyAsAdmin, terminateSession } from './admin-actions.js';
import type { AlertLog, NumberedAlert } from './alert-log.js';
import { DASHBOARD_COOKIE, type DashboardAuth, type DashboardSession } from './dashboard-auth.js';
import { LoginHistory } from './login-history.js';
import type { SessionTable } from './sessions.js';

/** What the admin API needs. */
export interface AdminApiContext {
  ledger: Ledger;
  sessions: SessionTable;
  alerts: AlertLog;
  auth: DashboardAuth;
  now: () => number;
  /** Set the cookie's Secure flag (the server is behind TLS). */
  secureCookies: boolean;
  log: (line: string) => void;
  /** Listeners for live alerts (server-sent events). */
  onAlert: (listener: (a: NumberedAlert) => void) => () => void;
}

const PUBLIC_DIR = new URL('../../src/dashboard/public/', import.meta.url);
const BUNDLE_DIR = new URL('../../dist/dashboard/', import.meta.url);
// A Map, not an object literal: the file name comes from the URL, and a plain object would also
// "have" constructor, __proto__, toString… from its prototype.
const ASSETS: ReadonlyMap<string, { dir: URL; type: string }> = new Map([
  ['index.html', { dir: PUBLIC_DIR, type: 'text/html; charset=utf-8' }],
  ['app.js', { dir: PUBLIC_DIR, type: 'text/javascript; charset=utf-8' }],
  ['style.css', { dir: PUBLIC_DIR, type: 'text/css; charset=utf-8' }],
  ['verifier.js', { dir: BUNDLE_DIR, type: 'text/javascript; charset=utf-8' }],
  ['favicon.svg', { dir: PUBLIC_DIR, type: 'image/svg+xml' }],
]);

/** Headers on every dashboard response: no framing, no referrer (links carry tokens), local code only. */
function hardened(reply: FastifyReply): FastifyReply {
  return reply
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header(
      'content-security-policy',
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
}

function cookieOf(req: FastifyRequest): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === DASHBOARD_COOKIE) return v.join('=');
  }
  return undefined;
}

const ID_PARAM = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', minLength: 3, maxLength: 254 } },
} as const;
const CSV_FIELDS = ['at', 'event', 'subject', 'height', 'txid', 'detail'] as const;

/** One CSV cell: always quoted, quotes doubled, and a leading = + - @ defused (CSV injection). */
export function csvCell(v: unknown): string {
  const text = v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  // Quote everything; neutralise spreadsheet formulas (CSV injection).
  return `"${(/^[=+\-@]/.test(text) ? `'${text}` : text).replace(/"/g, '""')}"`;
}

/** Registers /admin (page, login link) and /admin/api/* on `app`. */
export function registerAdminApi(app: FastifyInstance, ctx: AdminApiContext): void {
  const acked = new Set<number>();
  const logins = new LoginHistory(ctx.ledger, ctx.now);

  /** Authenticates a call: a live dashboard session whose identity is still an admin on the ledger. */
  async function admin(req: FastifyRequest, opts: { change?: boolean } = {}): Promise<DashboardSession> {
    const s = ctx.auth.session(cookieOf(req));
    if (!s) throw new KlError('KL_AUTH_FAILED', 'not logged in: run keyledger admin dashboard for a link');
    if (!(await isAdmin(ctx.ledger, s.id))) {
      ctx.auth.endIdentity(s.id);
      throw new KlError('KL_NOT_ADMIN', 'this identity no longer holds the admin role');
    }
    if (opts.change) ctx.auth.checkCsrf(s, req.headers['x-csrf-token']);
    return s;
  }

  // --- the page ---
  app.get('/admin', { schema: { hide: true } }, (_req, reply) => reply.redirect('/admin/', 302));
  app.get<{ Params: { file?: string } }>('/admin/:file', { schema: { hide: true } }, async (req, reply) => {
    const name = req.params.file || 'index.html';
    const asset = ASSETS.get(name);
    if (!asset) throw new KlError('KL_NOT_FOUND', 'no such page');
    const url = new URL(name, asset.dir);
    if (!existsSync(url))
      throw new KlError(
        'KL_NOT_FOUND',
        `${name} is missing: run npm run build (it bundles the proof verifier)`,
      );
    return hardened(reply).type(asset.type).send(readFileSync(url));
  });
  app.get('/admin/', { schema: { hide: true } }, async (_req, reply) =>
    hardened(reply)
      .type(ASSETS.get('index.html')!.type)
      .send(readFileSync(new URL('index.html', PUBLIC_DIR))),
  );
  // Browsers ask for /favicon.ico on their own (the dashboard names its icon inline): the same icon.
  const favicon = readFileSync(new URL('favicon.svg', PUBLIC_DIR));
  app.get('/favicon.ico', { schema: { hide: true } }, async (_req, reply) =>
    hardened(reply)
      .header('cache-control', 'public, max-age=86400')
      .type(ASSETS.get('favicon.svg')!.type)
      .send(favicon),
  );

  // --- one-time login link → cookie session ---
  app.get<{ Querystring: { token: string } }>(
    '/admin/login',
    {
      schema: {
        summary:
          'Redeems a one-time dashboard link (from keyledger admin dashboard) and sets the session cookie',
        tags: ['admin'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['token'],
          properties: { token: { type: 'string', minLength: 1, maxLength: 64 } },
        },
      },
    },
    async (req, reply) => {
      const { cookie, session } = ctx.auth.redeemLink(req.query.token);
      if (!(await isAdmin(ctx.ledger, session.id))) {
        ctx.auth.end(cookie);
        throw new KlError('KL_NOT_ADMIN', 'this identity does not hold the admin role');
      }
      ctx.log(`dashboard login by ${session.id}`);
      const flags = `HttpOnly; SameSite=Strict; Path=/admin${ctx.secureCookies ? '; Secure' : ''}`;
      return hardened(reply)
        .header('set-cookie', `${DASHBOARD_COOKIE}=${cookie}; ${flags}`)
        .redirect('/admin/', 303);
    },
  );

  const api = (summary: string, extra: Record<string, unknown> = {}) => ({
    schema: { summary, tags: ['admin'], security: [{ dashboardCookie: [] }], ...extra },
  });

  app.get(
    '/admin/api/me',
    api('The logged-in admin and the CSRF token for state changes'),
    async (req, reply) => {
      const s = await admin(req);
      hardened(reply);
      return { id: s.id, csrf: s.csrf, since: s.createdAt };
    },
  );

  app.post('/admin/api/logout', api('Ends the dashboard session'), async (req, reply) => {
    await admin(req, { change: true });
    ctx.auth.end(cookieOf(req));
    return hardened(reply)
      .header('set-cookie', `${DASHBOARD_COOKIE}=; Max-Age=0; Path=/admin`)
      .send({ ok: true });
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
          open: ctx.alerts.list().filter((a) => !acked.has(a.n)).length,
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

  app.post<{ Params: { id: string }; Body: { reason?: string } }>(
    '/admin/api/identities/:id/revoke',
    api('Revokes the identity’s key on the ledger (KeyRevoked by an admin); its sessions end', {
      params: ID_PARAM,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: { reason: { type: 'string', enum: [...REVOCATION_REASONS] } },
      },
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

  app.get('/admin/api/sessions', api('Live sessions'), async (req) => {
    await admin(req);
    return listSessions(ctx.sessions);
  });

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

  app.get<{ Querystring: { id?: string; event?: string; since?: string; until?: string; format?: string } }>(
    '/admin/api/audit',
    api('The audit trail, newest first, as JSON or CSV', {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          id: { type: 'string', maxLength: 254 },
          event: { type: 'string', pattern: '^[a-z][a-z0-9_]{1,39}$' },
          since: { type: 'string', pattern: '^[0-9]{1,16}$' },
          until: { type: 'string', pattern: '^[0-9]{1,16}$' },
          format: { type: 'string', enum: ['json', 'csv'] },
        },
      },
    }),
    async (req, reply) => {
      await admin(req);
      const q = req.query;
      // Every event is checked against its block's signed transaction root; a damaged ledger
      // answers 500 KL_LEDGER_CORRUPT naming the block, never a list with forged rows
      // (docs/ledger.md "Integrity at start").
      const rows = await readAuditTrail(ctx.ledger, {
        ...(q.id ? { subject: sha256Hex(canonicalIdentity(q.id)) } : {}),
        ...(q.event ? { event: q.event } : {}),
        ...(q.since ? { since: Number(q.since) } : {}),
        ...(q.until ? { until: Number(q.until) } : {}),
        limit: 5_000,
      }).catch((err: unknown) => {
        if (err instanceof KlError && err.code === 'KL_LEDGER_CORRUPT')
          ctx.log(`audit trail refused: ${err.message}`);
        throw err;
      });
      if (q.format === 'csv') {
        const lines = [
          CSV_FIELDS.join(','),
          ...rows.map((r) =>
            CSV_FIELDS.map((f) => csvCell(f === 'at' ? new Date(r.at).toISOString() : r[f])).join(','),
          ),
        ];
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', 'attachment; filename="keyledger-audit.csv"')
          .send(`${lines.join('\r\n')}\r\n`);
      }
      return rows;
    },
  );

  app.get('/admin/api/alerts', api('Hijack alarms and other alerts, newest first'), async (req) => {
    await admin(req);
    return ctx.alerts
      .list()
      .map((a) => ({ ...a, acknowledged: acked.has(a.n) }))
      .reverse();
  });
  app.get(
    '/admin/api/alerts/dropped',
    api('How many older alerts were pushed out of memory, by kind (the newest are kept)'),
    async (req) => {
      await admin(req);
      return ctx.alerts.dropped();
    },
  );

  app.post<{ Params: { n: string } }>(
    '/admin/api/alerts/:n/ack',
    api('Acknowledges an alert', {
      params: {
        type: 'object',
        additionalProperties: false,
        required: ['n'],
        properties: { n: { type: 'string', pattern: '^[0-9]{1,15}$' } },
      },
    }),
    async (req) => {
      const s = await admin(req, { change: true });
      const n = Number(req.params.n);
      if (!ctx.alerts.has(n)) throw new KlError('KL_NOT_FOUND', 'no such alert');
      acked.add(n);
      // Acknowledgements of alerts no longer kept are forgotten with them (the set stays bounded).
      if (acked.size > ctx.alerts.size) for (const k of acked) if (!ctx.alerts.has(k)) acked.delete(k);
      ctx.log(`alert ${n} acknowledged by ${s.id}`);
      return { acknowledged: n };
    },
  );

  // Live alerts: server-sent events, one `alert` event per new alert, a comment every 15 s.
  app.get('/admin/api/events', api('Live alerts (text/event-stream)'), async (req, reply) => {
    await admin(req);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const cookie = cookieOf(req);
    const stop = ctx.onAlert((a) => {
      // A dashboard session that ended (logout, expiry, role revoked) stops receiving.
      if (!ctx.auth.session(cookie)) return close();
      res.write(`event: alert\ndata: ${JSON.stringify(a)}\n\n`);
    });
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    ping.unref();
    function close() {
      clearInterval(ping);
      stop();
      res.end();
    }
    req.raw.on('close', () => {
      clearInterval(ping);
      stop();
    });
  });
}
