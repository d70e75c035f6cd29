/**
 * The keyledger server (`keyledger serve`): Fastify for HTTP, a WebSocket for the login handshake.
 * Routes validate bodies against JSON schemas (additional properties are refused, not stripped; no
 * type coercion), bodies are size-limited, errors are `{ error: { code, message } }` with the status
 * of the code. Every time-dependent part takes the injected clock.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { dataPaths, readGenesisFile } from '../ledger/data-dir.js';
import { EmbeddedLedger } from '../ledger/embedded-ledger.js';
import type { CommittedTransaction } from '../ledger/ledger.js';
import type { TxBodies } from '../ledger/transactions.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { formatInvitation } from '../protocol/invitation.js';
import {
  ENROLL_EMAIL_BODY,
  MAX_HTTP_BODY,
  REGISTER_BEGIN_BODY,
  REGISTER_COMPLETE_BODY,
} from '../protocol/messages.js';
import { isAdmin, setAdminRole } from './admin-actions.js';
import { registerAdminApi } from './admin-api.js';
import { type Alert, checkAdminSocketPath, startAdminSocket } from './admin-socket.js';
import { AlertLog, DEFAULT_ALERT_CAPACITY } from './alert-log.js';
import { proxyTrust, sourceKey } from './client-address.js';
import { DashboardAuth, type DashboardAuthPolicy, DEFAULT_DASHBOARD_AUTH_POLICY } from './dashboard-auth.js';
import { demoService, storageKey } from './demo-service.js';
import { type ServerEvent, safeListener, withoutUrlSecrets } from './events.js';
import { ParsedKeyCache } from './handshake.js';
import { IdentityProofs } from './identity-proofs.js';
import { attachLoginSocket } from './login-socket.js';
import { type CodeMailer, type SmtpOptions, smtpMailer } from './mailer.js';
import { ServerMetrics } from './metrics.js';
import { initNodeIfNeeded } from './node.js';
import { type Limit, RateLimiter } from './rate-limiter.js';
import { type RegistrationRequest, RegistrationService } from './registration.js';
import { loadServerKey } from './server-key.js';
import type { MessageHandler } from './session-service.js';
import {
  DEFAULT_HIJACK_POLICY,
  DEFAULT_SESSION_POLICY,
  type EndReason,
  type HijackPolicy,
  type Session,
  type SessionEnded,
  type SessionPolicy,
  SessionTable,
} from './sessions.js';
import { loadTls, type TlsFiles, type TlsMaterial } from './tls.js';

/**
 * Rate limits of the server (docs/protocol.md "Rate limits"). A limit keyed on an identity is
 * charged only by what proved something about it; unauthenticated traffic is charged to its source
 * address (`…PerIp`, after the proxy trust list) and to server-wide budgets (`…Global`).
 */
export interface RateLimits {
  /** Registration requests and emailed-code requests per source address. */
  registerPerIp: Limit;
  /** Registrations per identity whose identity proof verified. */
  registerPerIdentity: Limit;
  /** Wrong invitation or emailed codes per source address. */
  wrongCodePerIp: Limit;
  /** Wrong emailed codes, server-wide: bounds guessing the 8-digit codes from many addresses. */
  wrongEmailCodeGlobal: Limit;
  /** Login hellos and resumes per source address. */
  loginPerIp: Limit;
  /** Login hellos and resumes, server-wide (each hello costs an encryption and a signature). */
  loginGlobal: Limit;
  /** Verified logins per identity. */
  loginPerIdentity: Limit;
  /**
   * Emails per address (protects the mailbox). When it is used up no mail is sent, and the codes sent
   * meanwhile stay valid, so the owner always holds one: it cannot lock anybody out.
   */
  emailPerIdentity: Limit;
}

/** Defaults: generous enough for a busy office behind one NAT, tight for what can be guessed. */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  registerPerIp: { burst: 60, perSecond: 1 },
  registerPerIdentity: { burst: 10, perSecond: 0.1 },
  wrongCodePerIp: { burst: 10, perSecond: 1 / 60 },
  wrongEmailCodeGlobal: { burst: 30, perSecond: 1 / 60 },
  loginPerIp: { burst: 600, perSecond: 50 },
  loginGlobal: { burst: 2_000, perSecond: 500 },
  loginPerIdentity: { burst: 20, perSecond: 1 },
  emailPerIdentity: { burst: 3, perSecond: 1 / 60 },
};

/** Options of {@link startServer}. */
export interface ServerOptions {
  dataDir: string;
  passphrase: string;
  host?: string;
  port?: number;
  now?: () => number;
  challengeTtlMs?: number;
  handshakeTimeoutMs?: number;
  maxPendingChallenges?: number;
  sessionPolicy?: Partial<SessionPolicy>;
  hijackPolicy?: Partial<HijackPolicy>;
  /** Serve the built-in echo / note demo service (default true). */
  demoService?: boolean;
  /** Listen on DATA/admin.sock for local admin commands (default true). */
  adminSocket?: boolean;
  rateLimits?: Partial<RateLimits>;
  /**
   * Proxies whose `X-Forwarded-For` is believed for the client's address (addresses, CIDR ranges,
   * `loopback`…); default none: the socket's address is the client's.
   */
  trustProxy?: string[];
  /** SMTP for emailed codes; without it the email method is off. */
  smtp?: SmtpOptions;
  /** Replaces SMTP (for embedding); tests use real SMTP. */
  mailer?: CodeMailer;
  emailCodeTtlMs?: number;
  /** Group-commit window of the ledger, ms (default 2). */
  ledgerBatchWaitMs?: number;
  /** EVM engine: the node's JSON-RPC URL (default: DATA/evm.json) and follower poll interval. */
  evm?: { rpcUrl?: string; pollMs?: number };
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
  /** The URL people use to reach this server (dashboard links); default the listening address. */
  publicUrl?: string;
  /**
   * Serve HTTPS and WSS with this certificate and key (PEM files; `keyledger serve --tls-cert
   * --tls-key`), reloaded by {@link RunningServer.reloadTls}. Also makes the dashboard cookie Secure.
   */
  tls?: TlsFiles;
  dashboardAuth?: Partial<DashboardAuthPolicy>;
  log?: (line: string) => void;
  /**
   * Called once per event (registration, login, session end, revocation, alert, refusal; events.ts),
   * synchronously; what it throws is ignored. The CLI prints them on the console.
   */
  onEvent?: (event: ServerEvent) => void;
}

/** A running server. */
export interface RunningServer {
  app: FastifyInstance;
  url: string;
  wsUrl: string;
  ledger: EmbeddedLedger;
  sessions: SessionTable;
  proofs: IdentityProofs;
  registration: RegistrationService;
  /** Hijack alarms and other alerts: the newest kept, the others counted (alert-log.ts). */
  alerts: AlertLog;
  /** Links and sessions of the admin dashboard. */
  dashboard: DashboardAuth;
  metrics: ServerMetrics;
  /** Challenges issued and not yet answered (bounded by maxPendingChallenges). */
  pendingChallenges(): number;
  /** Adds an application hook for session messages (before the demo service). */
  onMessage(handler: MessageHandler): void;
  /** The certificate served now (with TLS on). */
  tls(): TlsMaterial | undefined;
  /**
   * Reads the TLS files again and serves them to new connections; live connections are kept.
   * @throws KlError `KL_CONFIG_INVALID` (see {@link loadTls}): the certificate served stays as it was.
   */
  reloadTls(): TlsMaterial;
  close(): Promise<void>;
}

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const END_EVENTS: Record<EndReason, string> = {
  logout: 'session_end',
  timeout: 'session_timeout',
  lifetime: 'session_timeout',
  revoked: 'session_revoked',
  key_revoked: 'session_revoked',
  hijack: 'session_hijacked',
  shutdown: 'session_end',
};

function sendError(reply: FastifyReply, err: KlError): FastifyReply {
  if (err.code === 'KL_RATE_LIMITED' && typeof err.details?.retryAfter === 'number')
    reply.header('retry-after', String(err.details.retryAfter));
  return reply.status(err.status).send(err.toJSON());
}

/** Initialises the data directory if needed, opens everything and listens. */
export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => {});
  const emit = safeListener(o.onEvent);
  // Refused before anything is opened: a data directory too deep for its admin socket.
  if (o.adminSocket !== false) checkAdminSocketPath(o.dataDir);
  await initNodeIfNeeded({ dataDir: o.dataDir, passphrase: o.passphrase, now });
  const serverKey = await loadServerKey(o.dataDir, o.passphrase);
  // A short batching window lets concurrent registrations and audit events share blocks (fewer
  // fsyncs and signatures per transaction) for at most this many ms of added latency.
  // The EVM engine (docs/architecture.md "The EVM engine"): the chain orders transactions; this node derives
  // the same ledger.
  const { engine } = readGenesisFile(dataPaths(o.dataDir).genesis).genesis;
  const sequencer = engine
    ? (await import('./evm-node.js')).evmSequencerFor({
        dataDir: o.dataDir,
        passphrase: o.passphrase,
        engine,
        ...(o.evm?.rpcUrl ? { rpcUrl: o.evm.rpcUrl } : {}),
        ...(o.evm?.pollMs ? { pollMs: o.evm.pollMs } : {}),
        // What the chain follower logs is a problem (the node unreachable, a transaction left out).
        log: (line: string) => {
          log(line);
          emit({ kind: 'ledger_problem', at: now(), detail: withoutUrlSecrets(line.slice(0, 2_000)) });
        },
      })
    : undefined;
  const ledger = EmbeddedLedger.open({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    now,
    batchWaitMs: o.ledgerBatchWaitMs ?? 2,
    observeCommit: (ms) => metrics.observeCommit(ms),
    ...(sequencer ? { sequencer } : {}),
  });
  if (sequencer) {
    log(
      `ledger ordered by EVM chain ${engine!.chainId}, contract ${engine!.contract}, account ${await sequencer.address}`,
    );
    await sequencer.follow((batch) => ledger.ingest(batch), ledger.sequencerCursor());
  }
  if (ledger.genesis.server?.fingerprint !== serverKey.fingerprint) {
    await ledger.close();
    throw new KlError('KL_LEDGER_CORRUPT', 'the server key is not the one pinned in the genesis');
  }
  const proofs = new IdentityProofs(o.dataDir);
  const sessions = new SessionTable(
    { ...DEFAULT_SESSION_POLICY, ...o.sessionPolicy },
    { ...DEFAULT_HIJACK_POLICY, ...o.hijackPolicy },
    now,
  );
  let ledgerHeight = (await ledger.checkpoint())?.header.height ?? 0;
  const metrics = new ServerMetrics({
    activeSessions: () => sessions.size,
    ledgerHeight: () => ledgerHeight,
    storageFault: () => (ledger.storageFault() ? 1 : 0),
  });
  const dashboard = new DashboardAuth({ ...DEFAULT_DASHBOARD_AUTH_POLICY, ...o.dashboardAuth }, now);
  const alertEvents = new EventEmitter();
  // The newest alerts are kept; one pushed out is counted (metric, a log line a minute at most), and
  // hijack alarms have their own ring, so a flood of rate-limit alerts cannot push them out.
  let dropLoggedAt = Number.NEGATIVE_INFINITY;
  let dropsUnlogged = 0;
  const alerts = new AlertLog(o.maxAlerts ?? DEFAULT_ALERT_CAPACITY, (a) => {
    metrics.observeAlertDropped(a.kind);
    dropsUnlogged++;
    if (now() - dropLoggedAt < 60_000) return;
    dropLoggedAt = now();
    log(
      `ALERT ${dropsUnlogged} older alert(s) dropped from memory (the newest are kept; ${alerts.dropped().total} so far)`,
    );
    dropsUnlogged = 0;
  });
  /** Keeps an alert for the operator and pushes it live. */
  const recordAlert = (alert: Alert) => {
    alertEvents.emit('alert', alerts.record(alert));
    const { at, kind, id, sessionId, detail } = alert;
    emit({ kind: 'alert', at, alert: kind, id, sessionId, detail });
  };
  // Storage faults (disk full, data directory read-only): an alert on the first write that fails,
  // then at most one a minute while writes keep failing.
  let storageAlertAt = Number.NEGATIVE_INFINITY;
  const noteStorageFault = (err: unknown) => {
    if (!isKlError(err) || err.code !== 'KL_STORAGE_UNAVAILABLE') return;
    const t = now();
    if (t >= storageAlertAt && t - storageAlertAt < 60_000) return;
    storageAlertAt = t;
    recordAlert({ at: t, kind: 'storage', id: '', sessionId: '', detail: err.message });
    log(`ALERT ${err.message}`);
  };
  const limits = { ...DEFAULT_RATE_LIMITS, ...o.rateLimits };
  // Rate-limit trips are alerts for the operator too (one per limit and key per minute).
  const lastTrip = new Map<string, number>();
  const tripped = (what: string) => (key: string) => {
    const k = `${what}\n${key}`;
    const t = now();
    if ((lastTrip.get(k) ?? Number.NEGATIVE_INFINITY) > t - 60_000) return;
    if (lastTrip.size > 10_000) lastTrip.clear();
    lastTrip.set(k, t);
    recordAlert({ at: t, kind: 'rate_limit', id: key, sessionId: '', detail: `${what} rate limit reached` });
    log(`ALERT ${what} rate limit reached by ${key}`);
  };
  const limiter = (name: string, what: string, limit: Limit) =>
    new RateLimiter(name, limit, now, 100_000, tripped(what));
  const rl = {
    registerPerIp: limiter('registration', 'registration per IP', limits.registerPerIp),
    registerPerIdentity: limiter('registration', 'registration per identity', limits.registerPerIdentity),
    wrongCodePerIp: limiter('wrong code', 'wrong codes per IP', limits.wrongCodePerIp),
    wrongEmailCodeGlobal: limiter(
      'wrong code',
      'wrong emailed codes (server-wide)',
      limits.wrongEmailCodeGlobal,
    ),
    loginPerIp: limiter('login', 'login per IP', limits.loginPerIp),
    loginGlobal: limiter('login', 'logins (server-wide)', limits.loginGlobal),
    loginPerIdentity: limiter('login', 'login per identity', limits.loginPerIdentity),
    emailPerIdentity: limiter('email code', 'email code per identity', limits.emailPerIdentity),
  };
  const registration = new RegistrationService({
    ledger,
    serverKey,
    proofs,
    now,
    limits: {
      wrongCodePerSource: rl.wrongCodePerIp,
      wrongEmailCodeGlobal: rl.wrongEmailCodeGlobal,
      perIdentity: rl.registerPerIdentity,
    },
  });
  const trust = proxyTrust(o.trustProxy);
  const mailer = o.mailer ?? (o.smtp ? smtpMailer(o.smtp) : undefined);
  const keys = new ParsedKeyCache();
  const audit = (event: string, id: string, detail?: Record<string, string | number | boolean>) => {
    metrics.observeAudit(event, detail);
    ledger
      .submit({
        type: 'AuditEvent',
        body: { event, at: now(), subject: sha256Hex(id), ...(detail ? { detail } : {}) },
      })
      .catch((err: unknown) => {
        // Policy: a session event that cannot be written is logged and alerted, and never blocks
        // the login or logout it records (docs/reliability.md "Disk full and read-only data directory").
        noteStorageFault(err);
        log(`audit event ${event} not written: ${(err as Error).message}`);
      });
  };

  // docs/protocol.md "Phases 3 and 4", Audit trail: session events on the ledger audit trail (identifiers
  // hashed).
  sessions.on('started', (s: Session) => {
    const { id, fingerprint, sessionId, ip } = s;
    emit({ kind: 'login', at: now(), id, fingerprint, sessionId, ip });
  });
  sessions.on('ended', ({ session, reason, detail }: SessionEnded) => {
    if (reason !== 'hijack') {
      const { id, sessionId, ip } = session;
      emit({ kind: 'session_ended', at: now(), id, sessionId, ip, reason });
    }
    audit(END_EVENTS[reason], session.id, { session: sha256Hex(session.sessionId).slice(0, 32), reason });
    if (reason === 'hijack') {
      recordAlert({ at: now(), kind: 'hijack', id: session.id, sessionId: session.sessionId, detail });
      log(`ALERT hijack suspected on a session of ${session.id}: ${detail}`);
    }
  });
  /** Key revocations, rotations and role changes committed on the ledger, as events. */
  function emitLedgerEvent(tx: CommittedTransaction): void {
    const at = now();
    if (tx.type === 'KeyRevoked') {
      const b = tx.envelope.tx.body as TxBodies['KeyRevoked'];
      const by = b.by === 'admin' ? { admin: b.admin ?? '' } : ('owner' as const);
      emit({ kind: 'key_revoked', at, id: b.id, fingerprint: b.fingerprint, reason: b.reason, by });
    } else if (tx.type === 'KeyRotated') {
      const b = tx.envelope.tx.body as TxBodies['KeyRotated'];
      emit({ kind: 'key_rotated', at, id: b.id, fingerprint: b.fingerprint });
    } else if (tx.type === 'RoleGranted' || tx.type === 'RoleRevoked') {
      const b = tx.envelope.tx.body as TxBodies['RoleGranted'];
      emit({ kind: 'role_changed', at, id: b.id, role: b.role, granted: tx.type === 'RoleGranted' });
    }
  }
  // Revoking (or rotating) a key on the ledger ends every session of that identity at once.
  const unsubscribe = ledger.subscribe((tx) => {
    ledgerHeight = Math.max(ledgerHeight, tx.height);
    const subject = (tx.envelope.tx.body as { id?: unknown }).id;
    // A revoked key or admin role also ends that identity's dashboard sessions and links.
    if ((tx.type === 'KeyRevoked' || tx.type === 'RoleRevoked') && typeof subject === 'string')
      dashboard.endIdentity(subject);
    // The first admins named at start get their role once they are registered.
    if (tx.type === 'KeyRegistered' && typeof subject === 'string' && bootstrapAdmins.has(subject))
      setImmediate(() => grantBootstrapAdmin(subject));
    emitLedgerEvent(tx);
    if (tx.type === 'KeyRevoked' || tx.type === 'KeyRotated') {
      const id = (tx.envelope.tx.body as { id: string }).id;
      // After the current microtasks, so the owner who asked for the revocation gets its receipt first.
      setImmediate(() =>
        sessions.endIdentity(
          id,
          'key_revoked',
          tx.type === 'KeyRevoked'
            ? 'the key of this identity was revoked on the ledger'
            : 'the key of this identity was rotated',
        ),
      );
    }
  });
  // Application hooks in the order added; the demo service, if on, answers last.
  const demo = o.demoService === false ? null : demoService(proofs.db, storageKey(o.dataDir, o.passphrase));
  const handlers: MessageHandler[] = demo ? [demo] : [];
  // Built in, always first: a user lists and revokes its own sessions (`keyledger session list|revoke`).
  const ownSessions: MessageHandler = ({ id, sessionId, body }) => {
    const b = body as { op?: unknown; sessionId?: unknown } | null;
    if (b?.op === 'session.list') {
      return sessions.ofIdentity(id).map((x) => ({
        sessionId: x.sessionId,
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
  // Built in: an admin asks, inside its authenticated session, for a one-time dashboard link.
  const dashboardLink: MessageHandler = async ({ id, body }) => {
    if ((body as { op?: unknown } | null)?.op !== 'admin.dashboard-link') return undefined;
    if (!(await isAdmin(ledger, id)))
      throw new KlError('KL_NOT_ADMIN', 'this identity does not hold the admin role on the ledger');
    const { token, expiresAt } = dashboard.issueLink(id);
    log(`dashboard link issued to ${id}`);
    return { url: `${publicUrl}/admin/login?token=${token}`, expiresAt };
  };
  handlers.unshift(ownSessions, dashboardLink);
  const bootstrapAdmins = new Set((o.admins ?? []).map((a) => canonicalIdentity(a)));
  async function grantBootstrapAdmin(id: string): Promise<void> {
    try {
      const { record } = await ledger.getKeyRecord(id);
      if (record?.status !== 'active' || record.roles?.includes('admin')) return;
      await setAdminRole(ledger, id, true);
      log(`admin role granted to ${id} (named at start)`);
    } catch (err) {
      log(`could not grant the admin role to ${id}: ${(err as Error).message}`);
    }
  }

  // TLS in the server itself (defence in depth, docs/configuration.md `tls`): the files are checked
  // before anything listens; reloadTls() swaps the certificate for new connections only.
  let tls: TlsMaterial | undefined;
  if (o.tls) {
    try {
      tls = loadTls(o.tls);
    } catch (err) {
      await sequencer?.stop();
      await ledger.close();
      proofs.close();
      throw err;
    }
  }
  const app = Fastify({
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    bodyLimit: MAX_HTTP_BODY,
    logger: false,
    // On close, also end keep-alive connections (clients would otherwise hold them open).
    forceCloseConnections: true,
    // A request (headers and body) must arrive within 30 s: half-sent requests are cut (slowloris).
    requestTimeout: 30_000,
    // req.ip: the forwarded client address only from proxies in the trust list (client-address.ts).
    trustProxy: trust,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
  }) as unknown as FastifyInstance; // an https.Server underneath when TLS is on

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    noteStorageFault(err);
    if (req.url.startsWith('/v1/register/') || req.url.startsWith('/v1/enroll/')) {
      const e = err as { validation?: unknown; statusCode?: number };
      const code = isKlError(err)
        ? err.code
        : e.validation || (e.statusCode ?? 500) < 500
          ? 'KL_BAD_INPUT'
          : 'KL_INTERNAL';
      emit({ kind: 'refused', at: now(), what: 'registration', ip: req.ip, code });
    }
    if (isKlError(err)) return sendError(reply, err);
    const e = err as { validation?: unknown; code?: string; statusCode?: number; message?: string };
    if (e.validation) return sendError(reply, new KlError('KL_BAD_INPUT', `invalid request: ${e.message}`));
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) {
      return sendError(
        reply,
        new KlError('KL_TOO_LARGE', `the request body is larger than ${MAX_HTTP_BODY} bytes`),
      );
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return sendError(reply, new KlError('KL_BAD_INPUT', e.message ?? 'bad request'));
    }
    log(`internal error: ${(err as Error)?.stack ?? String(err)}`);
    return sendError(reply, new KlError('KL_INTERNAL', 'internal error'));
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, new KlError('KL_NOT_FOUND', 'no such route')));

  // OpenAPI 3, generated from the route schemas below (registered first so it sees every route).
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'keyledger',
        version: PACKAGE_VERSION,
        description:
          'Passwordless mutual authentication with OpenPGP keys on a permissioned ledger. The login ' +
          'handshake and the session run over the WebSocket /v1/login (docs/protocol.md).',
      },
      components: {
        securitySchemes: { dashboardCookie: { type: 'apiKey', in: 'cookie', name: 'kl_admin' } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // --- operations: health, readiness, metrics ---
  let ready = false;
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness: the process answers', tags: ['operations'] } },
    async () => ({
      ok: true,
    }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the ledger is open and the server accepts logins',
        tags: ['operations'],
      },
    },
    async (_req, reply) => {
      const checkpoint = await ledger.checkpoint().catch(() => undefined);
      const ok = ready && checkpoint !== undefined;
      // Logins (reads) go on while the disk is full, so readiness stays; `storage` says it.
      const storage = ledger.storageFault()?.fault ?? 'ok';
      return reply
        .status(ok ? 200 : 503)
        .send({ ready: ok, height: checkpoint?.header.height ?? 0, storage });
    },
  );
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics (text exposition format)', tags: ['operations'] } },
    async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.text()),
  );

  // --- public information and ledger reads (reads are open) ---
  app.get(
    '/v1/info',
    { schema: { summary: 'Server key, ledger genesis, checkpoint, registration methods', tags: ['public'] } },
    async () => ({
      server: { fingerprint: serverKey.fingerprint, publicKey: serverKey.armoredPublicKey },
      chain: ledger.chainId,
      genesis: ledger.genesis,
      checkpoint: await ledger.checkpoint(),
      methods: mailer ? ['invite', 'email'] : ['invite'],
      challengeTtlMs: o.challengeTtlMs ?? 60_000,
    }),
  );
  app.get(
    '/v1/ledger/genesis',
    { schema: { summary: 'The ledger genesis', tags: ['ledger'] } },
    async () => ledger.genesis,
  );
  app.get(
    '/v1/ledger/checkpoint',
    { schema: { summary: 'The latest signed block header', tags: ['ledger'] } },
    async () => ({
      checkpoint: await ledger.checkpoint(),
    }),
  );
  app.get<{ Querystring: { from: number; to?: number } }>(
    '/v1/ledger/consistency',
    {
      schema: {
        summary: 'Consistency proof between two checkpoints (RFC 6962 over block hashes)',
        tags: ['ledger'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['from'],
          properties: {
            from: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
            to: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
          },
        },
      },
    },
    async (req) =>
      ledger.consistency(
        Number(req.query.from),
        req.query.to === undefined ? undefined : Number(req.query.to),
      ),
  );
  app.get<{ Params: { id: string } }>(
    '/v1/ledger/keys/:id',
    {
      schema: {
        summary: "An identity's key record (or its absence) with a state proof",
        tags: ['ledger'],
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['id'],
          properties: { id: { type: 'string', minLength: 3, maxLength: 254 } },
        },
      },
    },
    async (req) => ledger.getKeyRecord(canonicalIdentity(req.params.id)),
  );
  app.get<{ Params: { txid: string } }>(
    '/v1/ledger/tx/:txid',
    {
      schema: {
        summary: 'A transaction with its inclusion proof and signed block header',
        tags: ['ledger'],
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['txid'],
          properties: { txid: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
        },
      },
    },
    async (req) => ledger.getTransaction(req.params.txid),
  );

  // --- identity verification by email (docs/protocol.md "Phase 1", step 1) ---
  app.post<{ Body: { id: string } }>(
    '/v1/enroll/email',
    {
      schema: {
        summary: 'Emails a one-time registration code',
        tags: ['registration'],
        body: ENROLL_EMAIL_BODY,
      },
    },
    async (req, reply) => {
      if (!mailer)
        throw new KlError(
          'KL_EMAIL_UNAVAILABLE',
          'this server does not send verification emails: ask an admin for an invitation',
        );
      const id = canonicalIdentity(req.body.id);
      rl.registerPerIp.take(sourceKey(req.ip));
      // The mailbox is protected by a limit per address; when it is used up, codes were sent within
      // the last minutes and are still valid (earlier codes are never voided by a new request), so the
      // owner holds one: the answer says so instead of refusing.
      if (!rl.emailPerIdentity.available(id) && proofs.liveEmailCodes(id, now()) > 0)
        return reply.status(202).send({ sent: false, reason: 'recently-sent' });
      rl.emailPerIdentity.take(id);
      const expiresAt = now() + (o.emailCodeTtlMs ?? 15 * 60_000);
      const code = proofs.issueEmailCode(id, now(), expiresAt);
      try {
        await mailer.sendCode(id, formatInvitation(code, ledger.chainId), expiresAt);
      } catch (err) {
        // The person gets the generic KL_EMAIL_UNAVAILABLE; the operator's log gets why.
        const cause = (err as Error).cause;
        log(
          `email code not sent: ${withoutUrlSecrets(String((cause as Error)?.message ?? cause ?? err).slice(0, 500))}`,
        );
        throw err;
      }
      // Same answer whether or not the identity is registered: the mailbox owner is who learns the code.
      return reply.status(202).send({ sent: true, expiresAt });
    },
  );

  // --- registration (docs/protocol.md "Phase 1") ---
  app.post<{ Body: { id: string } }>(
    '/v1/register/begin',
    {
      schema: {
        summary: 'Starts a registration: the nonce to sign',
        tags: ['registration'],
        body: REGISTER_BEGIN_BODY,
      },
    },
    async (req) => {
      rl.registerPerIp.take(sourceKey(req.ip));
      return registration.begin(req.body.id);
    },
  );
  app.post<{ Body: RegistrationRequest }>(
    '/v1/register/complete',
    {
      schema: {
        summary: 'Registers a key: proof of identity and of possession; answers after the ledger commit',
        tags: ['registration'],
        body: REGISTER_COMPLETE_BODY,
      },
    },
    async (req) => {
      rl.registerPerIp.take(sourceKey(req.ip));
      const result = await registration.complete(req.body, sourceKey(req.ip));
      audit('registration', result.id, { fingerprint: result.fingerprint });
      emit({ kind: 'registered', at: now(), id: result.id, fingerprint: result.fingerprint, ip: req.ip });
      return result;
    },
  );

  let publicUrl = o.publicUrl?.replace(/\/$/, '') ?? '';
  registerAdminApi(app, {
    ledger,
    sessions,
    alerts,
    auth: dashboard,
    now,
    secureCookies: publicUrl.startsWith('https:') || tls !== undefined,
    log,
    onAlert: (listener) => {
      alertEvents.on('alert', listener);
      return () => alertEvents.off('alert', listener);
    },
  });

  const loginSocket = attachLoginSocket(app.server, '/v1/login', {
    ledger,
    serverKey,
    keys,
    sessions,
    now,
    challengeTtlMs: o.challengeTtlMs ?? 60_000,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 30_000,
    maxPendingChallenges: o.maxPendingChallenges ?? 10_000,
    maxLedgerStalenessMs: o.insecureAllowStaleLedger
      ? Number.POSITIVE_INFINITY
      : (o.maxLedgerStalenessMs ?? 30_000),
    limits: { loginPerIp: rl.loginPerIp, loginGlobal: rl.loginGlobal, loginPerIdentity: rl.loginPerIdentity },
    proxyTrust: trust,
    handlers,
    audit,
    log,
    event: emit,
  });
  const sweeper = setInterval(() => sessions.sweep(), 1_000);
  sweeper.unref();
  let admin: Awaited<ReturnType<typeof startAdminSocket>> | null = null;
  try {
    if (o.adminSocket !== false)
      admin = await startAdminSocket({ dataDir: o.dataDir, sessions, ledger, alerts, now });
    await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 7420 });
  } catch (err) {
    // A server that cannot start leaves nothing open (the writer lock, the chain follower, sockets).
    clearInterval(sweeper);
    unsubscribe();
    if (admin) await new Promise<void>((resolve) => admin!.close(() => resolve()));
    await loginSocket.close();
    await app.close();
    if (sequencer) await sequencer.stop();
    await ledger.close();
    proofs.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (o.port ?? 7420);
  const host = o.host ?? '127.0.0.1';
  const base = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  publicUrl ||= base;
  ready = true;
  for (const id of bootstrapAdmins) void grantBootstrapAdmin(id);
  return {
    app,
    url: base,
    wsUrl: `${base.replace(/^http/, 'ws')}/v1/login`,
    ledger,
    sessions,
    proofs,
    registration,
    alerts,
    dashboard,
    metrics,
    pendingChallenges: () => loginSocket.pendingChallenges(),
    tls: () => tls,
    reloadTls() {
      if (!o.tls || !tls) throw new KlError('KL_CONFIG_INVALID', 'this server does not serve TLS');
      const next = loadTls(o.tls);
      // New connections get the new certificate; live ones keep theirs (not dropped).
      (app.server as unknown as HttpsServer).setSecureContext({ cert: next.cert, key: next.key });
      tls = next;
      return next;
    },
    onMessage(handler) {
      handlers.splice(demo ? handlers.length - 1 : handlers.length, 0, handler);
    },
    async close() {
      ready = false;
      clearInterval(sweeper);
      unsubscribe();
      for (const s of sessions.list()) sessions.end(s.sessionId, 'shutdown', 'the server is shutting down');
      if (admin) await new Promise<void>((resolve) => admin.close(() => resolve()));
      await loginSocket.close();
      await app.close();
      if (sequencer) {
        await ledger.drain(10_000); // in-flight chain writes (the audit events just written) finish
        await sequencer.stop();
      }
      await ledger.close();
      proofs.close();
    },
  };
}
