/**
 * The admin API's audit trail and alerts (docs/architecture.md "The operator side"): the audit trail
 * as JSON or CSV (every row checked against its block), the alerts kept in memory, their
 * acknowledgement, and live alerts over server-sent events.
 */
import type { FastifyInstance } from 'fastify';
import { readAuditTrail } from '../ledger/audit-trail.js';
import { KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import type { AdminApiContext, AdminGuard } from './admin-api.js';
import { DASHBOARD_COOKIE } from './dashboard-auth.js';

const CSV_FIELDS = ['at', 'event', 'subject', 'height', 'txid', 'detail'] as const;

/** One CSV cell: always quoted, quotes doubled, and a leading = + - @ defused (CSV injection). */
export function csvCell(v: unknown): string {
  const text = v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  // Quote everything; neutralise spreadsheet formulas (CSV injection).
  return `"${(/^[=+\-@]/.test(text) ? `'${text}` : text).replace(/"/g, '""')}"`;
}

const api = (summary: string, extra: Record<string, unknown> = {}) => ({
  schema: { summary, tags: ['admin'], security: [{ dashboardCookie: [] }], ...extra },
});

/** /admin/api/audit. */
export function registerAuditRoute(app: FastifyInstance, ctx: AdminApiContext, admin: AdminGuard): void {
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
}

/** /admin/api/alerts, /admin/api/alerts/dropped, /admin/api/alerts/:n/ack, /admin/api/events. */
export function registerAlertRoutes(
  app: FastifyInstance,
  ctx: AdminApiContext & { acked: Set<number> },
  admin: AdminGuard,
): void {
  app.get('/admin/api/alerts', api('Hijack alarms and other alerts, newest first'), async (req) => {
    await admin(req);
    return ctx.alerts
      .list()
      .map((a) => ({ ...a, acknowledged: ctx.acked.has(a.n) }))
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
      ctx.acked.add(n);
      // Acknowledgements of alerts no longer kept are forgotten with them (the set stays bounded).
      if (ctx.acked.size > ctx.alerts.size)
        for (const k of ctx.acked) if (!ctx.alerts.has(k)) ctx.acked.delete(k);
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
    const cookie = req.cookies[DASHBOARD_COOKIE];
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
