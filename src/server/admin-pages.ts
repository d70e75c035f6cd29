/**
 * The dashboard's page and its way in (docs/architecture.md "The operator side"): the static files
 * (src/dashboard/public and the bundled proof verifier, dist/dashboard/verifier.js) through
 * `@fastify/static`, an allow-list of names only; the one-time link that starts a cookie session
 * (`@fastify/cookie`: HttpOnly, SameSite=Strict, Secure over TLS, scoped to the dashboard's path);
 * logout.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { KlError } from '../protocol/errors.js';
import { isAdmin } from './admin-actions.js';
import type { AdminApiContext, AdminGuard } from './admin-api.js';
import { DASHBOARD_COOKIE } from './dashboard-auth.js';

const PUBLIC_DIR = new URL('../../src/dashboard/public/', import.meta.url);
const BUNDLE_DIR = new URL('../../dist/dashboard/', import.meta.url);
/** The only files served (`/` is index.html). */
const ASSETS: ReadonlySet<string> = new Set([
  '/',
  '/index.html',
  '/app.js',
  '/style.css',
  '/verifier.js',
  '/favicon.svg',
]);

/** Registers /admin (the page and its files), /admin/login, /admin/api/logout and /favicon.ico. */
export async function registerDashboardPages(
  app: FastifyInstance,
  ctx: AdminApiContext,
  admin: AdminGuard,
): Promise<void> {
  const base = `${app.prefix}/admin`;
  const cookieOptions = () =>
    ({ httpOnly: true, sameSite: 'strict', path: base, secure: ctx.secure() }) as const;
  app.get('/admin', { schema: { hide: true } }, (_req, reply) => reply.redirect(`${base}/`, 302));
  await app.register(fastifyStatic, {
    root: [fileURLToPath(PUBLIC_DIR), fileURLToPath(BUNDLE_DIR)],
    prefix: '/admin/',
    decorateReply: false,
    cacheControl: false,
    index: 'index.html',
    allowedPath: (pathName) => ASSETS.has(pathName),
    schemaHide: true,
  });
  // Browsers ask for /favicon.ico on their own (the dashboard names its icon inline): the same icon.
  const favicon = readFileSync(new URL('favicon.svg', PUBLIC_DIR));
  app.get('/favicon.ico', { schema: { hide: true } }, async (_req, reply) =>
    reply.header('cache-control', 'public, max-age=86400').type('image/svg+xml').send(favicon),
  );

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
      return reply.setCookie(DASHBOARD_COOKIE, cookie, cookieOptions()).redirect(`${base}/`, 303);
    },
  );

  app.post(
    '/admin/api/logout',
    {
      schema: { summary: 'Ends the dashboard session', tags: ['admin'], security: [{ dashboardCookie: [] }] },
    },
    async (req, reply) => {
      await admin(req, { change: true });
      ctx.auth.end(req.cookies[DASHBOARD_COOKIE]);
      return reply.clearCookie(DASHBOARD_COOKIE, { path: base }).send({ ok: true });
    },
  );
}
