/**
 * The local admin endpoint: HTTP over a Unix socket in the data directory (DATA/admin.sock, mode
 * 0600), so only the operator's account on this machine can use it — `keyledger admin sessions`,
 * `admin revoke-session`, `admin revoke-key`, `admin alerts`, `admin grant|ungrant`. The web admin
 * API behind the dashboard (admin-api.ts) does the same through admin-actions.ts.
 */
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Ledger } from '../ledger/ledger.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { listSessions, revokeKeyAsAdmin, setAdminRole, terminateSession } from './admin-actions.js';
import type { SessionTable } from './sessions.js';

/** A hijack alarm or other alert kept for the operator. */
export interface Alert {
  at: number;
  kind: string;
  id: string;
  sessionId: string;
  detail: string;
}

/** Path of the admin socket. */
export const adminSocketPath = (dataDir: string): string => join(dataDir, 'admin.sock');

/** Starts the admin socket. */
export async function startAdminSocket(o: {
  dataDir: string;
  sessions: SessionTable;
  ledger: Ledger;
  alerts: Alert[];
  now: () => number;
}): Promise<Server> {
  const path = adminSocketPath(o.dataDir);
  if (existsSync(path)) rmSync(path);
  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const readBody = (req: IncomingMessage): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      let text = '';
      req.on('data', (c) => {
        text += c;
        if (text.length > 16_384) reject(new KlError('KL_TOO_LARGE', 'body too large'));
      });
      req.on('end', () => {
        try {
          resolve(text ? (JSON.parse(text) as Record<string, unknown>) : {});
        } catch {
          reject(new KlError('KL_BAD_INPUT', 'body is not JSON'));
        }
      });
    });
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      if (req.method === 'GET' && url.pathname === '/sessions')
        return reply(res, 200, listSessions(o.sessions));
      if (req.method === 'GET' && url.pathname === '/alerts') return reply(res, 200, o.alerts);
      if (req.method === 'POST' && parts[0] === 'sessions' && parts[2] === 'revoke' && parts[1]) {
        terminateSession(o.sessions, parts[1], 'operator');
        return reply(res, 200, { ended: true });
      }
      if (req.method === 'POST' && parts[0] === 'keys' && parts[2] === 'revoke' && parts[1]) {
        const body = await readBody(req);
        const receipt = await revokeKeyAsAdmin(o.ledger, {
          id: parts[1],
          admin: typeof body.admin === 'string' ? body.admin : 'admin@localhost',
          reason: body.reason,
        });
        return reply(res, 200, { revoked: canonicalIdentity(parts[1]), receipt });
      }
      // keyledger admin grant|ungrant IDENTITY: the admin role on the ledger (dashboard, web admin API).
      if (
        req.method === 'POST' &&
        parts[0] === 'admins' &&
        parts[1] &&
        (parts[2] === 'grant' || parts[2] === 'revoke')
      ) {
        const receipt = await setAdminRole(o.ledger, parts[1], parts[2] === 'grant');
        return reply(res, 200, { id: canonicalIdentity(parts[1]), admin: parts[2] === 'grant', receipt });
      }
      throw new KlError('KL_NOT_FOUND', 'no such admin route');
    } catch (err) {
      const e = isKlError(err) ? err : new KlError('KL_INTERNAL', (err as Error).message);
      return reply(res, e.status, e.toJSON());
    }
  });
  await new Promise<void>((resolve) => server.listen(path, () => resolve()));
  chmodSync(path, 0o600);
  return server;
}

/** Calls the admin socket of a running server (for the CLI). */
export async function callAdmin<T>(
  dataDir: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<T> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: adminSocketPath(dataDir),
        method,
        path,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const json = JSON.parse(text || 'null');
          if ((res.statusCode ?? 500) >= 400) {
            const e = json?.error ?? {};
            reject(new KlError(e.code ?? 'KL_INTERNAL', e.message ?? 'admin call failed'));
          } else resolve(json as T);
        });
      },
    );
    req.on('error', () =>
      reject(new KlError('KL_NETWORK', `no server is running on ${dataDir} (admin socket unreachable)`)),
    );
    const payload = Buffer.from(body === undefined ? '' : JSON.stringify(body), 'utf8');
    req.setHeader('content-length', payload.length);
    req.end(payload);
  });
}
