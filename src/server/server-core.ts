/**
 * The state of one keyledger server, apart from its routes: sessions, metrics, dashboard links,
 * alerts, rate limiters, registration, the audit writer, the ledger watch, and the session-message
 * hooks (built-in first, then the application's, then the fallback).
 */
import { KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { MAX_LISTED_SERVERS } from '../protocol/schemas/http.js';
import { type AlertPolicy, createAlertPolicy } from './alert-policy.js';
import { type AuditWriter, createAuditWriter, watchSessions } from './audit.js';
import { dashboardLinkHandler, ownSessionsHandler } from './built-in-handlers.js';
import { DashboardAuth, DEFAULT_DASHBOARD_AUTH_POLICY } from './dashboard-auth.js';
import { deviceLoginsHandler } from './device-logins.js';
import { type ServerEvent, safeListener } from './events.js';
import { DEFAULT_BEHIND_WAIT_MS, heightWaiter, type ReachHeight } from './ledger-reach.js';
import { watchLedger } from './ledger-watch.js';
import { ServerMetrics } from './metrics.js';
import type { KeyledgerOptions } from './plugin.js';
import type { ServedLedger } from './public-routes.js';
import { createRateLimiters, type RateLimiters } from './rate-limits.js';
import { RegistrationService } from './registration.js';
import type { MessageHandler } from './session-service.js';
import { DEFAULT_HIJACK_POLICY, DEFAULT_SESSION_POLICY, SessionTable } from './sessions.js';

/** What {@link createServerCore} builds. */
export interface ServerCore {
  ledger: ServedLedger;
  now: () => number;
  log: (line: string) => void;
  emit: (event: ServerEvent) => void;
  sessions: SessionTable;
  metrics: ServerMetrics;
  dashboard: DashboardAuth;
  policy: AlertPolicy;
  limits: RateLimiters;
  registration: RegistrationService;
  audit: AuditWriter;
  /** Session-message hooks, in the order they are asked. */
  handlers: MessageHandler[];
  /** Adds an application hook (after the built-in ones, before the fallback). */
  addHandler(handler: MessageHandler): void;
  /** Whether the server accepts logins yet (readiness). */
  ready: boolean;
  /** The URL of keyledger's routes (dashboard links). */
  publicUrl: string;
  /** Public URLs of this deployment's servers: this one, then its peers (`/v1/info` `servers`). */
  servers(): string[];
  /** Waits, at most the `ledgerBehindWaitMs` policy, for the ledger to reach a height. */
  reachHeight: ReachHeight;
  grantBootstrapAdmins(): void;
  stopWatching(): void;
}

/** Builds the state of a server from the plugin's options. */
export async function createServerCore(o: KeyledgerOptions): Promise<ServerCore> {
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => {});
  const emit = safeListener(o.onEvent);
  const { ledger } = o;
  const sessions = new SessionTable(
    { ...DEFAULT_SESSION_POLICY, ...o.sessionPolicy },
    { ...DEFAULT_HIJACK_POLICY, ...o.hijackPolicy },
    now,
  );
  let ledgerHeight = (await ledger.checkpoint().catch(() => null))?.header.height ?? 0;
  const metrics = new ServerMetrics({
    activeSessions: () => sessions.size,
    ledgerHeight: () => ledgerHeight,
    storageFault: () => (ledger.storageFault?.() ? 1 : 0),
  });
  const dashboard = new DashboardAuth({ ...DEFAULT_DASHBOARD_AUTH_POLICY, ...o.dashboardAuth }, now);
  const policy = createAlertPolicy({ maxAlerts: o.maxAlerts, now, log, emit, metrics });
  const limits = createRateLimiters(o.rateLimits, now, policy.tripped);
  const registration = new RegistrationService({
    ledger,
    serverKey: o.serverKey,
    proofs: o.proofs,
    now,
    limits: {
      wrongCodePerSource: limits.wrongCodePerIp,
      wrongEmailCodeGlobal: limits.wrongEmailCodeGlobal,
      perIdentity: limits.registerPerIdentity,
    },
  });
  const audit = createAuditWriter({ ledger, metrics, policy, now, log });
  watchSessions({ sessions, audit, policy, emit, now, log });
  const watch = watchLedger({
    ledger,
    sessions,
    dashboard,
    bootstrapAdmins: new Set((o.admins ?? []).map((a) => canonicalIdentity(a))),
    onHeight: (h) => {
      ledgerHeight = Math.max(ledgerHeight, h);
    },
    emit,
    now,
    log,
  });
  const fallback = o.fallbackHandler ? [o.fallbackHandler] : [];
  const peers = (o.peers ?? []).map(peerUrl);
  const core: ServerCore = {
    ledger,
    now,
    log,
    emit,
    sessions,
    metrics,
    dashboard,
    policy,
    limits,
    registration,
    audit,
    handlers: [],
    addHandler: (handler) => core.handlers.splice(core.handlers.length - fallback.length, 0, handler),
    ready: false,
    publicUrl: o.publicUrl?.replace(/\/$/, '') ?? '',
    servers: () =>
      [...new Set([...(core.publicUrl ? [core.publicUrl] : []), ...peers])].slice(0, MAX_LISTED_SERVERS),
    reachHeight: heightWaiter(ledger, o.ledgerBehindWaitMs ?? DEFAULT_BEHIND_WAIT_MS),
    grantBootstrapAdmins: watch.grantBootstrapAdmins,
    stopWatching: watch.unsubscribe,
  };
  core.handlers.push(
    ownSessionsHandler(sessions),
    deviceLoginsHandler({ ledger }),
    dashboardLinkHandler({ ledger, dashboard, log, loginUrl: () => `${core.publicUrl}/admin/login` }),
    ...fallback,
  );
  return core;
}

/**
 * A peer's public URL as `/v1/info` lists it (no trailing slash), refused at start unless http: or
 * https: (docs/configuration.md `peers`).
 */
function peerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KlError('KL_CONFIG_INVALID', `peers: ${JSON.stringify(text)} is not a URL`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `peers: ${JSON.stringify(text)} must be an http:// or https:// URL`,
    );
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/$/, '');
}
