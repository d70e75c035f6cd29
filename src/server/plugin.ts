/**
 * keyledger as a Fastify plugin: `app.register(keyledger, { prefix: '/auth', ...options })` adds the
 * whole server — registration, ledger reads, the login WebSocket, the admin API and dashboard, health
 * and metrics — to an existing Fastify app, under its prefix, encapsulated (its error handler, hooks
 * and decorators stay inside). What it needs comes in its options: the ledger (any {@link Ledger}),
 * the server key, policies, the mailer, the clock. What it starts (timers, the ledger subscription,
 * live sessions) stops when the app closes; the ledger itself belongs to the caller.
 *
 * WebSockets: when the app already has `@fastify/websocket` (registered before keyledger, for the
 * host's own WebSocket routes), keyledger adds its route to it; otherwise keyledger registers it in
 * its own scope and hands it only the upgrades of its own login path, leaving every other upgrade to
 * the host's listeners (or refusing it when there are none).
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import cors from '@fastify/cors';
import websocket from '@fastify/websocket';
import { Ajv } from 'ajv';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ChainChange } from '../ledger/sequencer-adapter.js';
import { MAX_HTTP_BODY, MAX_WS_MESSAGE } from '../protocol/messages.js';
import { registerAdminApi } from './admin-api.js';
import type { AlertLog } from './alert-log.js';
import type { DashboardAuth, DashboardAuthPolicy } from './dashboard-auth.js';
import { DeviceRequests } from './device-requests.js';
import { registerDeviceRoutes } from './device-routes.js';
import type { ServerEvent } from './events.js';
import { ParsedKeyCache } from './handshake.js';
import type { IdentityProofs } from './identity-proofs.js';
import { type LoginSocket, registerLoginSocket } from './login-socket.js';
import type { CodeMailer } from './mailer.js';
import type { ServerMetrics } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import { registerOperationsRoutes, registerPublicRoutes, type ServedLedger } from './public-routes.js';
import type { RateLimits } from './rate-limits.js';
import { registerRecoveryRoutes } from './recovery-routes.js';
import type { RegistrationService } from './registration.js';
import { registerRegistrationRoutes } from './registration-routes.js';
import { installErrorHandlers } from './reply-errors.js';
import { createServerCore, type ServerCore } from './server-core.js';
import type { ServerKey } from './server-key.js';
import type { MessageHandler } from './session-service.js';
import type { HijackPolicy, SessionPolicy, SessionTable } from './sessions.js';

/**
 * The policies of a keyledger server, the same whether it runs whole ({@link startServer}) or as the
 * plugin in a host app: timeouts, limits, who is admin, where events go.
 */
export interface KeyledgerPolicies {
  /** The clock (default `Date.now`); every time-dependent part reads it. */
  now?: () => number;
  challengeTtlMs?: number;
  handshakeTimeoutMs?: number;
  maxPendingChallenges?: number;
  sessionPolicy?: Partial<SessionPolicy>;
  hijackPolicy?: Partial<HijackPolicy>;
  rateLimits?: Partial<RateLimits>;
  /** Sends emailed codes; without it (and without SMTP) the email method is off. */
  mailer?: CodeMailer;
  emailCodeTtlMs?: number;
  /**
   * Logins are refused (KL_LEDGER_UNAVAILABLE) while the ledger has not confirmed it is current for
   * this long — the EVM node unreachable — so a key revoked meanwhile cannot log in. Default 30 s.
   */
  maxLedgerStalenessMs?: number;
  /** Let logins through however stale the ledger is (availability over revocation freshness). */
  insecureAllowStaleLedger?: boolean;
  /**
   * Identities that get the admin role on the ledger as soon as they are registered (the first
   * admin of a new data directory: `keyledger serve --admin IDENTITY`).
   */
  admins?: string[];
  /** Alerts kept in memory per ring (hijack and storage alarms; the others). Default 10,000. */
  maxAlerts?: number;
  /**
   * The URL people use to reach keyledger's routes (with the prefix; dashboard links). The plugin
   * can also learn it later ({@link Keyledger.setPublicUrl}); a whole server defaults to its
   * listening address.
   */
  publicUrl?: string;
  dashboardAuth?: Partial<DashboardAuthPolicy>;
  /**
   * Public URLs of the other servers of this deployment (same genesis, same chain), listed with
   * this server's own public URL in `/v1/info` `servers`: clients add them to the servers they may
   * fail over to, each checked first (docs/protocol.md "Several servers").
   */
  peers?: string[];
  /**
   * How long a ledger read at a block this server's ledger has not reached yet (a client that saw it
   * on another server) waits for it, ms, before the answer `KL_LEDGER_BEHIND` (retryable). Only a
   * ledger that follows a chain waits. Default 3 s; 0 answers at once.
   */
  ledgerBehindWaitMs?: number;
  /**
   * Origins whose pages may call keyledger's public routes from a browser (CORS: registration,
   * server info, ledger reads), e.g. `https://app.example.org`; exact origins, no wildcard. The
   * admin API and dashboard are never opened to other origins. Default none: same origin only.
   */
  corsOrigins?: string[];
  log?: (line: string) => void;
  /**
   * Called once per event (registration, login, session end, revocation, alert, refusal; events.ts),
   * synchronously; what it throws is ignored. The CLI prints them on the console.
   */
  onEvent?: (event: ServerEvent) => void;
}

/** Options of the {@link keyledger} plugin: what it serves, and its policies. */
export interface KeyledgerOptions extends KeyledgerPolicies {
  /** The ledger (any engine); opened and closed by the caller. */
  ledger: ServedLedger;
  /** The server's OpenPGP key (its fingerprint must be the one pinned in the genesis). */
  serverKey: ServerKey;
  /** Invitations and emailed codes (identity-proofs.ts). */
  proofs: IdentityProofs;
  /** The dashboard cookie's Secure flag and HSTS; default: whether the public URL is https. */
  secureCookies?: boolean;
  /** Answers session messages no other hook answered (the demo service of `keyledger serve`). */
  fallbackHandler?: MessageHandler;
  /** Handed the running parts once the plugin is registered (tests, `startServer`). */
  expose?: (k: Keyledger) => void;
}

/** The running parts of a registered keyledger plugin. */
export interface Keyledger {
  sessions: SessionTable;
  registration: RegistrationService;
  alerts: AlertLog;
  dashboard: DashboardAuth;
  metrics: ServerMetrics;
  /**
   * Tells the alert policy about a change of the chain connection (a follower the whole server
   * owns, outside the plugin: docs/deploy-besu.md "The follower").
   */
  noteChain(change: ChainChange): void;
  /** Challenges issued and not yet answered. */
  pendingChallenges(): number;
  /** Adds an application hook for session messages (after the built-in ones, before the fallback). */
  onMessage(handler: MessageHandler): void;
  setPublicUrl(url: string): void;
  /**
   * Marks the server ready (readiness) and grants the admin role to the admins named at start. Done
   * by the plugin itself when the app is ready; calling it again does nothing.
   */
  started(): void;
}

/** The keyledger routes, login socket and admin API, on the app (or prefix) it is registered on. */
export const keyledger: FastifyPluginAsync<KeyledgerOptions> = async (app, o) => {
  strictRequests(app);
  if (o.corsOrigins?.length) await allowOrigins(app, o.corsOrigins);
  const core = await createServerCore(o);
  const { ledger, now, log, emit, policy } = core;
  installErrorHandlers(app, { noteStorageFault: policy.noteStorageFault, emit, now, log });
  await registerOpenApi(app);
  const routes = {
    ledger,
    serverKey: o.serverKey,
    metrics: core.metrics,
    methods: () => (o.mailer ? ['invite', 'email'] : ['invite']),
    challengeTtlMs: o.challengeTtlMs ?? 60_000,
    ready: () => core.ready,
    servers: () => core.servers(),
    reachHeight: core.reachHeight,
  };
  registerOperationsRoutes(app, routes);
  registerPublicRoutes(app, routes);
  registerRegistrationRoutes(app, {
    ledger,
    registration: core.registration,
    proofs: o.proofs,
    limits: core.limits,
    mailer: o.mailer,
    emailCodeTtlMs: o.emailCodeTtlMs ?? 15 * 60_000,
    audit: core.audit,
    emit,
    now,
    log,
  });
  const deviceRequests = new DeviceRequests({ now });
  registerDeviceRoutes(app, {
    ledger,
    proofs: o.proofs,
    serverKey: o.serverKey,
    chain: ledger.chainId,
    requests: deviceRequests,
    limits: core.limits,
    now,
    log,
  });
  registerRecoveryRoutes(app, {
    ledger,
    chain: ledger.chainId,
    limits: { perIp: core.limits.recoveryPerIp, global: core.limits.recoveryGlobal },
    audit: core.audit,
    alert: policy.record,
    now,
    log,
  });
  await app.register(registerAdminApi, {
    ledger,
    sessions: core.sessions,
    alerts: policy.alerts,
    auth: core.dashboard,
    now,
    // Asked per answer: a public URL set after registration (setPublicUrl) counts.
    secure: () => o.secureCookies ?? core.publicUrl.startsWith('https:'),
    log,
    onAlert: policy.onAlert,
  });
  const loginSocket = await registerSocket(app, core, o, deviceRequests);
  let isStarted = false;
  const started = () => {
    if (isStarted) return;
    isStarted = true;
    core.ready = true;
    core.grantBootstrapAdmins();
  };
  // Ready with the app (app.listen or app.ready): a host app need not call started().
  app.addHook('onReady', async () => started());
  o.expose?.({
    sessions: core.sessions,
    registration: core.registration,
    alerts: policy.alerts,
    dashboard: core.dashboard,
    metrics: core.metrics,
    noteChain: policy.noteChain,
    pendingChallenges: () => loginSocket.pendingChallenges(),
    onMessage: (handler) => core.addHandler(handler),
    setPublicUrl(url) {
      core.publicUrl = url.replace(/\/$/, '');
    },
    started,
  });
};

/**
 * The request rules of keyledger's routes whatever the host app's defaults are (Fastify's own
 * coerce types and strip unknown fields): bodies are taken as sent or refused — no coercion, no
 * removed fields, no defaults filled in — and bounded by MAX_HTTP_BODY (docs/protocol.md "Rate limits").
 */
function strictRequests(app: FastifyInstance): void {
  const ajv = new Ajv({
    removeAdditional: false,
    coerceTypes: false,
    useDefaults: false,
    allErrors: false,
    strict: false,
  });
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  app.addHook('onRoute', (route) => {
    route.bodyLimit ??= MAX_HTTP_BODY;
  });
}

/**
 * CORS for the public routes (@fastify/cors): the listed origins may read the answers of
 * registration, info and ledger routes; no credentials (keyledger's public routes use none). The
 * admin API and dashboard, which a cookie authenticates, answer no cross-origin request.
 */
async function allowOrigins(app: FastifyInstance, origins: string[]): Promise<void> {
  const admin = `${app.prefix}/admin`;
  await app.register(cors, {
    delegator: (req, callback) => {
      const path = routedPath(req.url);
      const isAdmin = path === admin || path.startsWith(`${admin}/`);
      callback(null, { origin: isAdmin ? false : origins, methods: ['GET', 'POST'], credentials: false });
    },
  });
}

/**
 * The login socket at /v1/login, and what stops with the app: sessions end with a reason (and their
 * audit events are written) while the ledger is still open, before the WebSocket plugin closes the
 * sockets — registered first, this hook runs first.
 */
async function registerSocket(
  app: FastifyInstance,
  core: ServerCore,
  o: KeyledgerOptions,
  deviceRequests: DeviceRequests,
): Promise<LoginSocket> {
  const { sessions, limits } = core;
  const sweeper = setInterval(() => sessions.sweep(), 1_000);
  sweeper.unref();
  let loginSocket: LoginSocket | undefined;
  app.addHook('preClose', async () => {
    core.ready = false;
    clearInterval(sweeper);
    core.stopWatching();
    for (const s of sessions.list()) sessions.end(s.sessionId, 'shutdown', 'the server is shutting down');
    loginSocket?.close();
  });
  await withWebSocket(app, `${app.prefix}/v1/login`);
  const keys = new ParsedKeyCache();
  loginSocket = registerLoginSocket(app, '/v1/login', {
    ledger: core.ledger,
    serverKey: o.serverKey,
    keys,
    sessions,
    now: core.now,
    challengeTtlMs: o.challengeTtlMs ?? 60_000,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 30_000,
    maxPendingChallenges: o.maxPendingChallenges ?? 10_000,
    maxLedgerStalenessMs: o.insecureAllowStaleLedger
      ? Number.POSITIVE_INFINITY
      : (o.maxLedgerStalenessMs ?? 30_000),
    limits: {
      loginPerIp: limits.loginPerIp,
      loginGlobal: limits.loginGlobal,
      loginPerIdentity: limits.loginPerIdentity,
    },
    handlers: core.handlers,
    devices: {
      ledger: core.ledger,
      keys,
      requests: deviceRequests,
      wrongCodes: limits.wrongDeviceCodePerIdentity,
      now: core.now,
    },
    audit: core.audit,
    log: core.log,
    event: core.emit,
  });
  return loginSocket;
}

/** Per HTTP server: the login paths of the keyledger instances on it and the one listener they share. */
const upgradeRoutes = new WeakMap<Server, UpgradeRoutes>();

/** The login paths served on one HTTP server, and the listener that hands their upgrades on. */
interface UpgradeRoutes {
  paths: Map<string, EventEmitter>;
  listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** The path of a request target exactly as Fastify routes it (the raw target without its query). */
function routedPath(target: string | undefined): string {
  const raw = target ?? '';
  const query = raw.indexOf('?');
  return query < 0 ? raw : raw.slice(0, query);
}

/** The upgrade routes of `server`, its listener installed on first use. */
function upgradeRoutesOf(server: Server): UpgradeRoutes {
  let routes = upgradeRoutes.get(server);
  if (!routes) {
    const paths = new Map<string, EventEmitter>();
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const route = paths.get(routedPath(req.url));
      if (route) route.emit('upgrade', req, socket, head);
      else if (server.listenerCount('upgrade') === 1) socket.destroy();
    };
    server.on('upgrade', listener);
    routes = { paths, listener };
    upgradeRoutes.set(server, routes);
  }
  return routes;
}

/**
 * Makes sure `app` can serve WebSocket routes. An app that has `@fastify/websocket` already keeps
 * it; otherwise it is registered here, in keyledger's scope, fed by one `upgrade` listener per HTTP
 * server (shared by every keyledger instance on it) that passes on only the upgrades whose raw
 * target is a login path — compared as Fastify routes it, so `//x/v1/login` is not taken for
 * `/v1/login`. Other upgrades are left to the server's other listeners, and destroyed when there are
 * none (nothing else would ever answer them, and an upgraded socket has no timeout).
 */
async function withWebSocket(app: FastifyInstance, path: string): Promise<void> {
  if (app.hasDecorator('websocketServer')) return;
  const server = app.server as Server;
  const mine = new EventEmitter();
  const routes = upgradeRoutesOf(server);
  routes.paths.set(path, mine);
  app.addHook('onClose', async () => {
    routes.paths.delete(path);
    if (routes.paths.size > 0) return;
    server.off('upgrade', routes.listener);
    upgradeRoutes.delete(server);
  });
  await app.register(websocket, {
    options: { maxPayload: MAX_WS_MESSAGE, server: mine as unknown as Server },
  });
}
