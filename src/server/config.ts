/**
 * Server configuration (docs/configuration.md): one JSON schema ({@link CONFIG_SCHEMA}) documents every
 * setting; values come from a JSON file (`keyledger serve --config FILE`), then `KEYLEDGER_*` environment
 * variables, then command-line flags, each overriding the one before. `keyledger config check`
 * validates the result and prints it with secrets hidden. docs/configuration.md is the reference
 * (a test checks that it names every setting of the schema).
 */
import { readFileSync } from 'node:fs';
import { parseDuration } from '../protocol/duration.js';
import { KlError } from '../protocol/errors.js';
import { problemsOf } from '../protocol/schemas/check.js';
import { CONFIG_SCHEMA, type ConfigFile } from '../protocol/schemas/config.js';
import type { ServerOptions } from './app.js';

export { CONFIG_SCHEMA, type ConfigFile } from '../protocol/schemas/config.js';

/** Environment variables and the setting each sets. */
export const CONFIG_ENV: Readonly<Record<string, string>> = {
  KEYLEDGER_DATA: 'dataDir',
  KEYLEDGER_HOST: 'host',
  KEYLEDGER_PORT: 'port',
  KEYLEDGER_PUBLIC_URL: 'publicUrl',
  KEYLEDGER_QUIET: 'quiet',
  KEYLEDGER_NATIVE_OPENPGP: 'nativeOpenPgp',
  KEYLEDGER_TLS_CERT: 'tls.cert',
  KEYLEDGER_TLS_KEY: 'tls.key',
  KEYLEDGER_ADMINS: 'admins',
  KEYLEDGER_CORS_ORIGINS: 'corsOrigins',
  KEYLEDGER_TRUST_PROXY: 'trustProxy',
  KEYLEDGER_CHALLENGE_TTL: 'challengeTtl',
  KEYLEDGER_OPERATOR_KEY: 'operatorKey',
  KEYLEDGER_SMTP_URL: 'smtp.url',
  KEYLEDGER_SMTP_FROM: 'smtp.from',
  KEYLEDGER_SESSION_IDLE_TIMEOUT: 'session.idleTimeout',
  KEYLEDGER_SESSION_MAX_LIFETIME: 'session.maxLifetime',
  KEYLEDGER_LEDGER: 'ledger.engine',
  KEYLEDGER_EVM_RPC: 'ledger.rpcUrl',
  KEYLEDGER_EVM_CONTRACT: 'ledger.contract',
  KEYLEDGER_ETCD: 'ledger.etcd',
  KEYLEDGER_ETCD_PREFIX: 'ledger.etcdPrefix',
  KEYLEDGER_PEERS: 'peers',
};

/** Settings given in the environment as comma-separated lists. */
const LIST_SETTINGS = new Set(['admins', 'trustProxy', 'corsOrigins', 'peers', 'ledger.etcd']);

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) {
    if (node[p] === undefined) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    // A "__proto__" key of a JSON file is a setting name like any other (refused by the schema),
    // never a prototype to assign.
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') {
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      continue;
    }
    const b = Object.hasOwn(out, k) ? out[k] : undefined;
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/**
 * The effective configuration: `file` (path, optional), then the environment, then `flags`, checked
 * against {@link CONFIG_SCHEMA}.
 * @throws KlError `KL_CONFIG_INVALID` listing every problem, each with its path.
 */
export function loadConfig(
  o: { file?: string; env?: NodeJS.ProcessEnv; flags?: ConfigFile } = {},
): ConfigFile {
  let fromFile: Record<string, unknown> = {};
  if (o.file) {
    let text: string;
    try {
      text = readFileSync(o.file, 'utf8');
    } catch (err) {
      throw new KlError(
        'KL_CONFIG_INVALID',
        `cannot read the configuration file ${o.file}: ${(err as Error).message}`,
      );
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new KlError('KL_CONFIG_INVALID', `${o.file} is not JSON: ${(err as Error).message}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(CONFIG_ENV)) {
    const v = (o.env ?? process.env)[name];
    if (v === undefined || v === '') continue;
    setPath(
      fromEnv,
      path,
      path === 'port'
        ? /^\d+$/.test(v)
          ? Number(v)
          : v
        : LIST_SETTINGS.has(path)
          ? v.split(',').map((a) => a.trim())
          : path === 'quiet' || path === 'nativeOpenPgp'
            ? (({ '1': true, true: true, '0': false, false: false } as Record<string, boolean>)[v] ?? v)
            : v,
    );
  }
  const config = merge(merge(fromFile, fromEnv), (o.flags ?? {}) as Record<string, unknown>);
  const problems = problemsOf(CONFIG_SCHEMA, config);
  if (problems.length > 0) {
    const from = o.file ? ` (file ${o.file}, then KEYLEDGER_* variables and flags)` : '';
    throw new KlError(
      'KL_CONFIG_INVALID',
      `the configuration is not valid${from}:\n  ${problems.join('\n  ')}`,
    );
  }
  return config as ConfigFile;
}

const ms = (text: string | undefined, path: string) =>
  text === undefined ? undefined : parseDuration(text, path);
const defined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** The {@link ServerOptions} a configuration means (without the passphrase and the clock). */
export function serverOptionsOf(c: ConfigFile): Omit<ServerOptions, 'passphrase'> {
  const session = c.session ?? {};
  const hijack = c.hijack ?? {};
  return {
    dataDir: c.dataDir ?? './keyledger-data',
    host: c.host ?? '127.0.0.1',
    port: c.port ?? 7420,
    ...defined({
      publicUrl: c.publicUrl,
      tls: c.tls ? { certFile: c.tls.cert, keyFile: c.tls.key } : undefined,
      admins: c.admins,
      corsOrigins: c.corsOrigins,
      challengeTtlMs: ms(c.challengeTtl, 'challengeTtl'),
      handshakeTimeoutMs: ms(c.handshakeTimeout, 'handshakeTimeout'),
      ledgerBatchWaitMs: ms(c.ledgerBatchWait, 'ledgerBatchWait'),
      nativeOpenPgp: c.nativeOpenPgp,
      rateLimits: c.rateLimits,
      trustProxy: c.trustProxy,
      maxLedgerStalenessMs: ms(c.ledger?.maxStaleness, 'ledger.maxStaleness'),
      insecureAllowStaleLedger: c.ledger?.insecureAllowStale,
      peers: c.peers,
      ledgerBehindWaitMs: ms(c.ledger?.behindWait, 'ledger.behindWait'),
      evm:
        c.ledger?.rpcUrl || c.ledger?.pollMs
          ? defined({ rpcUrl: c.ledger.rpcUrl, pollMs: c.ledger.pollMs })
          : undefined,
      etcd:
        c.ledger?.etcd || c.ledger?.pollMs
          ? defined({ endpoints: c.ledger.etcd, pollMs: c.ledger.pollMs })
          : undefined,
      smtp: c.smtp
        ? {
            url: c.smtp.url,
            from: c.smtp.from ?? 'keyledger <no-reply@localhost>',
            insecureAllowPlaintext: c.smtp.insecurePlaintext === true,
          }
        : undefined,
    }),
    sessionPolicy: defined({
      idleTimeoutMs: ms(session.idleTimeout, 'session.idleTimeout'),
      maxLifetimeMs: ms(session.maxLifetime, 'session.maxLifetime'),
      renewAfterFrames: session.renewAfterFrames,
      renewAfterBytes: session.renewAfterBytes,
      renewAfterMs: ms(session.renewAfter, 'session.renewAfter'),
    }),
    hijackPolicy: defined({
      maxAnomalies: hijack.maxAnomalies,
      anomalyWindowMs: ms(hijack.anomalyWindow, 'hijack.anomalyWindow'),
      maxFramesPerWindow: hijack.maxFramesPerWindow,
      rateWindowMs: ms(hijack.rateWindow, 'hijack.rateWindow'),
      endOnIpChange: hijack.endOnIpChange,
      baselineFactor: hijack.baselineFactor,
      baselineMinFrames: hijack.baselineMinFrames,
      baselineMinHistory: hijack.baselineMinHistory,
    }),
  };
}

/** The configuration with secrets hidden (passwords and tokens in the SMTP and RPC URLs), for printing. */
export function redactConfig(c: ConfigFile): ConfigFile {
  return {
    ...c,
    ...(c.smtp ? { smtp: { ...c.smtp, url: redactUrl(c.smtp.url) } } : {}),
    ...(c.ledger?.rpcUrl ? { ledger: { ...c.ledger, rpcUrl: redactUrl(c.ledger.rpcUrl) } } : {}),
  };
}

/** A URL with its password (or a user name alone, often an API token) replaced by `***`. */
function redactUrl(text: string): string {
  return text.replace(/\/\/([^/\s]*)@/, (_m, userInfo: string) => {
    const colon = userInfo.indexOf(':');
    return colon >= 0 ? `//${userInfo.slice(0, colon)}:***@` : '//***@';
  });
}
