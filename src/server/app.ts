/**
 * The keyledger server (`keyledger serve`): a Fastify app (TLS, proxy trust, body limits, request
 * timeouts) with the {@link keyledger} plugin at its root, over the node of a data directory
 * (open-node.ts), plus the local admin socket. Routes validate bodies against JSON schemas
 * (additional properties are refused, not stripped; no type coercion); errors are
 * `{ error: { code, message } }` with the status of the code. Every time-dependent part takes the
 * injected clock.
 */

import type { Server as HttpsServer } from 'node:https';
import Fastify, { type FastifyInstance } from 'fastify';
import type { EmbeddedLedger } from '../ledger/embedded-ledger.js';
import { setNativeOpenPgp } from '../pgp/native/switch.js';
import { KlError } from '../protocol/errors.js';
import { MAX_HTTP_BODY } from '../protocol/messages.js';
import { checkAdminSocketPath, type RegistrarAdmin, startAdminSocket } from './admin-socket.js';
import { type ProxyTrust, proxyTrust } from './client-address.js';
import { demoService, storageKey } from './demo-service.js';
import { safeListener, withoutUrlSecrets } from './events.js';
import type { IdentityProofs } from './identity-proofs.js';
import { type SmtpOptions, smtpMailer } from './mailer.js';
import type { ServerMetrics } from './metrics.js';
import { type OpenNode, openNode } from './open-node.js';
import { type Keyledger, type KeyledgerPolicies, keyledger } from './plugin.js';
import {
  admitServer,
  listRegistrars,
  proposeChange,
  removeRegistrar,
  submitChange,
} from './server-admission.js';
import { loadTls, type TlsFiles, type TlsMaterial } from './tls.js';

export { DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limits.js';

/** Options of {@link startServer}: the data directory, how to listen, and the server's policies. */
export interface ServerOptions extends KeyledgerPolicies {
  dataDir: string;
  passphrase: string;
  host?: string;
  port?: number;
  /** Serve the built-in echo / note demo service (default true). */
  demoService?: boolean;
  /** Listen on DATA/admin.sock for local admin commands (default true). */
  adminSocket?: boolean;
  /**
   * Proxies whose `X-Forwarded-For` is believed for the client's address (addresses, CIDR ranges,
   * `loopback`…); default none: the socket's address is the client's.
   */
  trustProxy?: string[];
  /** SMTP for emailed codes; without it the email method is off. */
  smtp?: SmtpOptions;
  /** Group-commit window of the ledger, ms (default 2). */
  ledgerBatchWaitMs?: number;
  /**
   * The native OpenPGP path for the default profile (docs/protocol.md "The native OpenPGP path"); on
   * by default. `false` sends every OpenPGP operation of this process to OpenPGP.js.
   */
  nativeOpenPgp?: boolean;
  /** EVM engine: the node's JSON-RPC URL (default: DATA/evm.json) and follower poll interval. */
  evm?: { rpcUrl?: string; pollMs?: number };
  /**
   * etcd engine: the cluster's client URLs (default: DATA/etcd.json) and the follower's fallback
   * poll interval (a watch of the head wakes reads at once).
   */
  etcd?: { endpoints?: string[]; pollMs?: number };
  /**
   * Serve HTTPS and WSS with this certificate and key (PEM files; `keyledger serve --tls-cert
   * --tls-key`), reloaded by {@link RunningServer.reloadTls}. Also makes the dashboard cookie Secure.
   */
  tls?: TlsFiles;
}

/** A running server: the plugin's running parts, and what a whole server adds. */
export interface RunningServer extends Omit<Keyledger, 'setPublicUrl' | 'started' | 'noteChain'> {
  app: FastifyInstance;
  url: string;
  wsUrl: string;
  ledger: EmbeddedLedger;
  proofs: IdentityProofs;
  /** The certificate served now (with TLS on). */
  tls(): TlsMaterial | undefined;
  /**
   * Reads the TLS files again and serves them to new connections; live connections are kept.
   * @throws KlError `KL_CONFIG_INVALID` (see {@link loadTls}): the certificate served stays as it was.
   */
  reloadTls(): TlsMaterial;
  close(): Promise<void>;
}

/** The Fastify app of a server: TLS, proxy trust, bounded bodies and request times, strict schemas. */
function httpApp(tls: TlsMaterial | undefined, trust: ProxyTrust): FastifyInstance {
  return Fastify({
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
}

/** The TLS files read and checked before anything listens (docs/configuration.md `tls`). */
async function tlsOrClose(o: ServerOptions, close: () => Promise<void>): Promise<TlsMaterial | undefined> {
  if (!o.tls) return undefined;
  try {
    return loadTls(o.tls);
  } catch (err) {
    await close();
    throw err;
  }
}

/** Initialises the data directory if needed, opens everything and listens. */
export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => {});
  const emit = safeListener(o.onEvent);
  if (o.nativeOpenPgp !== undefined) setNativeOpenPgp(o.nativeOpenPgp);
  // Refused before anything is opened: a data directory too deep for its admin socket.
  if (o.adminSocket !== false) checkAdminSocketPath(o.dataDir);
  let metrics: ServerMetrics | undefined;
  const node: OpenNode = await openNode({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    now,
    ledgerBatchWaitMs: o.ledgerBatchWaitMs ?? 2,
    ...(o.evm ? { evm: o.evm } : {}),
    ...(o.etcd ? { etcd: o.etcd } : {}),
    observeCommit: (ms) => metrics?.observeCommit(ms),
    chainStaleAfterMs: o.insecureAllowStaleLedger
      ? Number.POSITIVE_INFINITY
      : (o.maxLedgerStalenessMs ?? 30_000),
    log,
    problem: (line) =>
      emit({ kind: 'ledger_problem', at: now(), detail: withoutUrlSecrets(line.slice(0, 2_000)) }),
  });
  const { ledger } = node;
  const { proofs } = node;
  const closeNode = (drain = false) => node.close(drain);
  let tls = await tlsOrClose(o, closeNode);
  const app = httpApp(tls, proxyTrust(o.trustProxy));
  let k: Keyledger | undefined;
  let admin: Awaited<ReturnType<typeof startAdminSocket>> | null = null;
  let unwatchChain = () => {};
  const closeAll = async (drain: boolean) => {
    unwatchChain();
    if (admin) await new Promise<void>((resolve) => admin!.close(() => resolve()));
    await app.close();
    await closeNode(drain);
  };
  try {
    await app.register(keyledger, {
      ...pluginOptions(o, proofs, tls !== undefined),
      ledger,
      serverKey: node.serverKey,
      proofs,
      now,
      log,
      onEvent: emit,
      expose: (x) => {
        k = x;
        metrics = x.metrics;
      },
    });
    if (node.sequencer) {
      // The chain connection on /metrics, and its changes as operator alerts (docs/deploy-besu.md
      // "The follower").
      k!.metrics.watchChain(() => ledger.chainStatus());
      const parts = k!;
      unwatchChain = node.sequencer.onChange((change) => parts.noteChain(change));
    }
    if (o.adminSocket !== false)
      admin = await startAdminSocket({
        dataDir: o.dataDir,
        sessions: k!.sessions,
        ledger,
        alerts: k!.alerts,
        registrars: await registrarAdmin(o, ledger),
        now,
      });
    await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 7420 });
  } catch (err) {
    // A server that cannot start leaves nothing open (the writer lock, the chain follower, sockets).
    await closeAll(false);
    throw err;
  }
  const parts = k!;
  const base = listeningUrl(app, o, tls !== undefined);
  parts.setPublicUrl(o.publicUrl ?? base);
  parts.started();
  return {
    app,
    url: base,
    wsUrl: `${base.replace(/^http/, 'ws')}/v1/login`,
    ledger,
    sessions: parts.sessions,
    proofs,
    registration: parts.registration,
    alerts: parts.alerts,
    dashboard: parts.dashboard,
    metrics: parts.metrics,
    pendingChallenges: () => parts.pendingChallenges(),
    tls: () => tls,
    reloadTls() {
      if (!o.tls || !tls) throw new KlError('KL_CONFIG_INVALID', 'this server does not serve TLS');
      const next = loadTls(o.tls);
      // New connections get the new certificate; live ones keep theirs (not dropped).
      (app.server as unknown as HttpsServer).setSecureContext({ cert: next.cert, key: next.key });
      tls = next;
      return next;
    },
    onMessage: (handler) => parts.onMessage(handler),
    close: () => closeAll(true),
  };
}

/** What `keyledger admin registrar …` does on this node (server-admission.ts). */
async function registrarAdmin(o: ServerOptions, ledger: EmbeddedLedger): Promise<RegistrarAdmin> {
  const { engine } = ledger.genesis;
  const accounts =
    engine?.type === 'evm'
      ? (await import('./evm-node.js')).registrarAccountsFor({
          dataDir: o.dataDir,
          passphrase: o.passphrase,
          engine,
          ...(o.evm?.rpcUrl ? { rpcUrl: o.evm.rpcUrl } : {}),
        })
      : undefined;
  return {
    list: () => listRegistrars(ledger),
    admit: (request) => admitServer({ ledger, accounts, request }),
    remove: (which) => removeRegistrar({ ledger, accounts, which }),
    propose: (change) => proposeChange(ledger, change),
    submit: (proposal, signatures) => submitChange({ ledger, accounts, proposal, signatures }),
  };
}

/** The URL the app listens on (`https:` with TLS; an IPv6 host in brackets). */
function listeningUrl(app: FastifyInstance, o: ServerOptions, tls: boolean): string {
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (o.port ?? 7420);
  const host = o.host ?? '127.0.0.1';
  return `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The plugin's options that come from {@link ServerOptions} (policies, mailer, the demo service). */
function pluginOptions(o: ServerOptions, proofs: IdentityProofs, tls: boolean) {
  const mailer = o.mailer ?? (o.smtp ? smtpMailer(o.smtp) : undefined);
  const pick = <K extends keyof ServerOptions>(...keys: K[]) =>
    Object.fromEntries(keys.filter((key) => o[key] !== undefined).map((key) => [key, o[key]])) as Pick<
      ServerOptions,
      K
    >;
  return {
    ...pick(
      'challengeTtlMs',
      'handshakeTimeoutMs',
      'maxPendingChallenges',
      'sessionPolicy',
      'hijackPolicy',
      'rateLimits',
      'emailCodeTtlMs',
      'maxLedgerStalenessMs',
      'insecureAllowStaleLedger',
      'admins',
      'maxAlerts',
      'dashboardAuth',
      'corsOrigins',
      'peers',
      'ledgerBehindWaitMs',
    ),
    ...(mailer ? { mailer } : {}),
    secureCookies: o.publicUrl?.startsWith('https:') || tls,
    ...(o.demoService === false
      ? {}
      : { fallbackHandler: demoService(proofs.db, storageKey(o.dataDir, o.passphrase)) }),
  };
}
