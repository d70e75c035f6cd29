/**
 * The login WebSocket (`/v1/login`, docs/protocol.md "Phases 2, 3 and 4") as a route of
 * `@fastify/websocket`: only this path upgrades to it. One connection carries the handshake and then
 * the session (login-connection.ts). Each connection has at most one pending challenge; the table of
 * pending challenges, shared by all connections, is bounded and swept of expired entries.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { Ledger } from '../ledger/ledger.js';
import { KlError } from '../protocol/errors.js';
import { MAX_WS_MESSAGE } from '../protocol/messages.js';
import { sourceKey } from './client-address.js';
import type { DeviceSessionContext } from './device-session.js';
import type { ServerEvent } from './events.js';
import type { ParsedKeyCache } from './handshake.js';
import { type ChallengeTable, LoginConnection } from './login-connection.js';
import type { RateLimiter } from './rate-limiter.js';
import type { ServerKey } from './server-key.js';
import type { MessageHandler } from './session-service.js';
import type { SessionTable } from './sessions.js';

/** What the login socket needs. */
export interface LoginSocketContext {
  ledger: Ledger;
  serverKey: ServerKey;
  keys: ParsedKeyCache;
  sessions: SessionTable;
  now: () => number;
  challengeTtlMs: number;
  handshakeTimeoutMs: number;
  maxPendingChallenges: number;
  /** Refuse logins while the ledger is more stale than this (fail closed); Infinity turns it off. */
  maxLedgerStalenessMs: number;
  /**
   * Unauthenticated traffic (hellos, resumes) is charged to its source and to the server-wide budget;
   * the per-identity limit only by logins that verified (docs/protocol.md "Rate limits").
   */
  limits: { loginPerIp: RateLimiter; loginGlobal: RateLimiter; loginPerIdentity: RateLimiter };
  /** Application hooks for session messages. */
  handlers: MessageHandler[];
  /** Device requests and approvals on sessions (docs/protocol.md "Devices"). */
  devices: DeviceSessionContext;
  /** Writes an audit event; failures are logged, never block a login. */
  audit: (event: string, id: string, detail?: Record<string, string | number | boolean>) => void;
  log: (msg: string) => void;
  /** Told of each refused login or resumption (events.ts); never throws. */
  event?: (e: ServerEvent) => void;
}

/** The login socket of an app: how to close its connections, and the size of its challenge table. */
export interface LoginSocket {
  close(): void;
  pendingChallenges(): number;
}

/**
 * Bounds what this socket buffers to MAX_WS_MESSAGE. A host app's own `@fastify/websocket` (which
 * keyledger then shares) may allow far larger messages (`ws` defaults to 100 MiB), and `ws` would
 * buffer a whole message before keyledger could refuse it: before any hello, from anyone. `ws` reads
 * its receiver's limit per frame but offers no public way to lower it for one socket, so the limit
 * is lowered on the receiver; LoginConnection still refuses a larger message should `ws` change.
 */
function clampMessageSize(ws: WebSocket): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
  if (typeof receiver?._maxPayload !== 'number') return;
  if (receiver._maxPayload === 0 || receiver._maxPayload > MAX_WS_MESSAGE)
    receiver._maxPayload = MAX_WS_MESSAGE;
}

/**
 * Lets go of the HTTP upgrade's objects, which an idle session would otherwise keep for its whole
 * life (a few KiB each: docs/protocol.md "Session frame wire format v2", memory): `@fastify/websocket`
 * leaves its ServerResponse attached to the socket (hijacked, it never finishes) and an `error`
 * listener on the WebSocket that holds the request and reply. The response is detached; the
 * listener is replaced by the connection's own (LoginConnection terminates on error).
 */
function releaseUpgrade(ws: WebSocket): void {
  const socket = (ws as unknown as { _socket?: { _httpMessage?: { detachSocket?: (s: unknown) => void } } })
    ._socket;
  const res = socket?._httpMessage;
  if (socket && typeof res?.detachSocket === 'function') res.detachSocket(socket);
  ws.removeAllListeners('error');
}

/**
 * Adds the login WebSocket route at `path` to `app` (which must have `@fastify/websocket`). The
 * client's address is the request's `ip`, so the app's `trustProxy` decides which forwarded
 * addresses are believed (client-address.ts).
 */
export function registerLoginSocket(
  app: FastifyInstance,
  path: string,
  ctx: LoginSocketContext,
): LoginSocket {
  const table: ChallengeTable = { pending: new Map(), creating: 0 };
  const open = new Set<WebSocket>();
  const sweep = setInterval(() => {
    const now = ctx.now();
    for (const [id, p] of table.pending) if (p.expiresAt <= now) table.pending.delete(id);
  }, 5_000);
  sweep.unref();

  app.route({
    method: 'GET',
    url: path,
    schema: { hide: true },
    // A plain request (no upgrade) gets the answer of any unknown route.
    handler: async () => {
      throw new KlError('KL_NOT_FOUND', 'no such route');
    },
    wsHandler: (ws: WebSocket, req: FastifyRequest) => {
      clampMessageSize(ws);
      releaseUpgrade(ws);
      open.add(ws);
      ws.on('close', () => open.delete(ws));
      new LoginConnection(ws, req.ip || 'unknown', sourceKey(req.ip || 'unknown'), ctx, table);
    },
  });

  return {
    close() {
      clearInterval(sweep);
      for (const ws of open) ws.terminate();
      open.clear();
    },
    pendingChallenges: () => table.pending.size,
  };
}
