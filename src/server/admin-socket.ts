/**
 * The local admin endpoint: HTTP over a Unix socket in the data directory (DATA/admin.sock, mode
 * 0600), so only the operator's account on this machine can use it — `keyledger admin sessions`,
 * `admin revoke-session`, `admin revoke-key`, `admin alerts`, `admin grant|ungrant`, `admin registrar …`, `admin governance propose|submit`. The web admin
 * API behind the dashboard (admin-api.ts) does the same through admin-actions.ts.
 */
import { chmodSync, existsSync, lstatSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { GovernanceProposal } from '../ledger/governance-proposal.js';
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { errorFromWire, isKlError, KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import {
  listSessions,
  revokeDeviceAsAdmin,
  revokeKeyAsAdmin,
  setAdminRole,
  terminateSession,
} from './admin-actions.js';
import type { AlertLog } from './alert-log.js';
import type { ChangeRequest, RegistrarView } from './server-admission.js';
import type { SessionTable } from './sessions.js';

export type { Alert } from './alert-log.js';

/** What the admin socket does with registrars (server-admission.ts, bound to the running node). */
export interface RegistrarAdmin {
  list(): RegistrarView[];
  admit(request: unknown): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }>;
  remove(which: string): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }>;
  /** A governance change proposed at the current governance sequence (server-admission.ts). */
  propose?(change: ChangeRequest): Promise<GovernanceProposal>;
  /** A proposal written once a quorum of validators signed it. */
  submit?(
    proposal: unknown,
    signatures: unknown,
  ): Promise<{ receipt: TransactionReceipt; type: string; registrar?: RegistrarView }>;
}

/** Path of the admin socket. */
export const adminSocketPath = (dataDir: string): string => join(dataDir, 'admin.sock');

/**
 * Longest Unix socket path, in bytes, without the terminating NUL: `sun_path` holds 108 bytes on
 * Linux and 104 on macOS and the BSDs (unix(7)). A longer path is cut short silently by the system
 * call, so the socket would be made — and reached — somewhere outside the data directory.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/**
 * Checks that the admin socket of `dataDir` fits in a Unix socket address, and returns its path.
 * Call it before anything is started (the server) or connected to (the CLI).
 * @throws KlError `KL_DATA_DIR` when the path is too long.
 */
export function checkAdminSocketPath(dataDir: string): string {
  const path = adminSocketPath(dataDir);
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new KlError(
      'KL_DATA_DIR',
      `the data directory path is too long for its admin socket ${path} (${bytes} bytes; a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}): use a shorter data directory path`,
      { bytes, max: MAX_SOCKET_PATH_BYTES },
    );
  }
  return path;
}

/**
 * Starts the admin socket at DATA/admin.sock, mode 0600.
 * @throws KlError `KL_DATA_DIR` when the path is too long for a socket, the socket cannot be made, or
 * its mode cannot be set to 0600 (then nothing is left listening).
 */
export async function startAdminSocket(o: {
  dataDir: string;
  sessions: SessionTable;
  ledger: Ledger;
  alerts: AlertLog;
  /** The ledger's registrars and servers (`keyledger admin registrar …`). */
  registrars?: RegistrarAdmin;
  now: () => number;
}): Promise<Server> {
  const path = checkAdminSocketPath(o.dataDir);
  try {
    if (existsSync(path)) rmSync(path); // left by a server that stopped without closing it
  } catch (err) {
    throw new KlError('KL_DATA_DIR', `cannot remove the old admin socket ${path}`, undefined, { cause: err });
  }
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
      // The alerts kept (oldest first), and how many newer ones pushed out of memory, by kind.
      if (req.method === 'GET' && url.pathname === '/alerts') return reply(res, 200, o.alerts.list());
      if (req.method === 'GET' && url.pathname === '/alerts/dropped')
        return reply(res, 200, o.alerts.dropped());
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
      // keyledger admin revoke-device IDENTITY FPR|NAME: one device of an identity (DeviceRevoked).
      if (
        req.method === 'POST' &&
        parts[0] === 'keys' &&
        parts[2] === 'devices' &&
        parts[3] &&
        parts[4] === 'revoke'
      ) {
        const body = await readBody(req);
        const revoked = await revokeDeviceAsAdmin(o.ledger, {
          id: parts[1]!,
          device: parts[3],
          admin: typeof body.admin === 'string' ? body.admin : 'admin@localhost',
          reason: body.reason,
        });
        return reply(res, 200, { id: canonicalIdentity(parts[1]!), ...revoked });
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
      // keyledger admin registrar list|add|remove (server-admission.ts).
      if (parts[0] === 'registrars' && o.registrars) {
        if (req.method === 'GET' && parts.length === 1) return reply(res, 200, o.registrars.list());
        if (req.method === 'POST' && parts.length === 1)
          return reply(res, 200, await o.registrars.admit((await readBody(req)).request));
        if (req.method === 'POST' && parts[2] === 'remove' && parts[1])
          return reply(res, 200, await o.registrars.remove(parts[1]));
      }
      // keyledger admin governance propose|submit (server-admission.ts): changes a quorum approves.
      if (
        req.method === 'POST' &&
        parts[0] === 'governance' &&
        o.registrars?.propose &&
        o.registrars.submit
      ) {
        const body = await readBody(req);
        if (parts[1] === 'proposals' && parts.length === 2)
          return reply(res, 200, await o.registrars.propose(body.change as ChangeRequest));
        if (parts.length === 1)
          return reply(res, 200, await o.registrars.submit(body.proposal, body.signatures));
      }
      throw new KlError('KL_NOT_FOUND', 'no such admin route');
    } catch (err) {
      const e = isKlError(err) ? err : new KlError('KL_INTERNAL', (err as Error).message);
      return reply(res, e.status, e.toJSON());
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new KlError('KL_DATA_DIR', `cannot make the admin socket ${path}`, undefined, { cause: err })),
    );
    server.listen(path, () => resolve());
  });
  try {
    chmodSync(path, 0o600);
    const st = lstatSync(path);
    if (!st.isSocket() || (st.mode & 0o777) !== 0o600)
      throw new Error(`mode ${(st.mode & 0o777).toString(8)}`);
  } catch (err) {
    // Never serve the admin API through a socket whose permissions are not ours to set.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw new KlError('KL_DATA_DIR', `cannot restrict the admin socket ${path} to mode 0600`, undefined, {
      cause: err,
    });
  }
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
  // A path too long for a socket address would be cut short and reach some other socket.
  const socketPath = checkAdminSocketPath(dataDir);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json: { error?: { code?: unknown; message?: unknown } } | null;
          try {
            json = JSON.parse(text || 'null');
          } catch {
            reject(new KlError('KL_NETWORK', 'the admin socket answered something that is not JSON'));
            return;
          }
          if ((res.statusCode ?? 500) >= 400)
            reject(errorFromWire(json?.error, 'KL_INTERNAL', { message: 'admin call failed' }));
          else resolve(json as T);
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
