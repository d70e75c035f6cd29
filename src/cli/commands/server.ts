/**
 * `keyledger serve` and `keyledger admin invite`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInitialised, readGenesisFile } from '../../ledger/data-dir.js';
import { storageError } from '../../ledger/storage-fault.js';
import { EncryptedLog } from '../../pgp/encrypted-log.js';
import { readPublicKey } from '../../pgp/messages.js';
import { KlError } from '../../protocol/errors.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { formatInvitation } from '../../protocol/invitation.js';
import { startServer } from '../../server/app.js';
import {
  CONFIG_SCHEMA,
  type ConfigFile,
  loadConfig,
  redactConfig,
  serverOptionsOf,
} from '../../server/config.js';
import { IdentityProofs } from '../../server/identity-proofs.js';
import { initEvmNode } from '../../server/node.js';
import { loadServerKey } from '../../server/server-key.js';
import { loadTls } from '../../server/tls.js';
import { info, out } from '../io.js';
import { logWriter } from '../log-writer.js';
import { resolvePassphrase } from '../passphrase.js';

/** Options of `keyledger serve`. */
export interface ServeOptions {
  /** A JSON configuration file (docs/configuration.md). */
  configFile?: string;
  /** Settings given as flags: they override the file and the environment. */
  flags: ConfigFile;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  /** Also print log lines in clear on stderr (development only). */
  insecurePlainLogs?: boolean;
  json?: boolean;
}

/** Log lines kept while the encrypted log is not open yet (start-up); more are counted, not kept. */
const MAX_EARLY_LOG_LINES = 10_000;

/** Runs the server until SIGINT/SIGTERM. */
export async function serve(o: ServeOptions): Promise<number> {
  const config = loadConfig({ ...(o.configFile ? { file: o.configFile } : {}), flags: o.flags });
  const options = serverOptionsOf(config);
  const data = options.dataDir;
  // TLS files missing, unreadable or not a pair: said before anything is asked or initialised.
  if (options.tls) loadTls(options.tls);
  const fresh = !isInitialised(data);
  const passphrase = await resolvePassphrase(o, { confirm: fresh });
  if (fresh && config.ledger?.engine === 'evm') await initEvm(data, passphrase, config.ledger);
  else if (config.ledger?.engine === 'evm' || config.ledger?.contract) checkEngine(data, config.ledger ?? {});
  // Seed phase 4 step 6: the server's log is encrypted at rest, readable with the operator's key
  // (operatorKey) or, by default, with the server key (keyledger logs decrypt --data DIR).
  // Lines logged before the log file is open (the server key it is encrypted to is only there once
  // the server has initialised the data directory) wait in a bounded buffer, with their time, and
  // are written first: an admin role granted at start is on record like any other ledger change.
  let logLine: ((text: string) => void) | null = null;
  const early: Array<{ at: Date; text: string }> = [];
  let earlyDropped = 0;
  const log = (line: string) => {
    if (logLine) logLine(line);
    else if (early.length < MAX_EARLY_LOG_LINES) early.push({ at: new Date(), text: line });
    else earlyDropped++;
    if (o.insecurePlainLogs) info(`${new Date().toISOString()} ${line}`);
  };
  const server = await startServer({ ...options, passphrase, log });
  // Listening for SIGINT/SIGTERM before announcing anything: a supervisor that stops the server as
  // soon as it reports in still gets a graceful shutdown.
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  // SIGHUP, with TLS on: the certificate and key files are read again (after a renewal); a bad pair
  // is refused and the certificate served stays. Without TLS, SIGHUP keeps its default (stop).
  const reloadTls = () => {
    try {
      const t = server.reloadTls();
      const line = `TLS certificate reloaded: ${t.subject}, SHA-256 ${t.fingerprint}, valid until ${t.validTo}`;
      log(line);
      info(`keyledger: ${line}`);
    } catch (err) {
      const line = `TLS certificate NOT reloaded, the previous one keeps serving: ${(err as Error).message}`;
      log(line);
      info(`keyledger: ${line}`);
    }
  };
  if (options.tls) process.on('SIGHUP', reloadTls);
  const reader = config.operatorKey
    ? await readPublicKey(readFileSync(config.operatorKey, 'utf8'))
    : (await loadServerKey(data, passphrase)).publicKey;
  let logFile: EncryptedLog;
  try {
    logFile = await EncryptedLog.create(
      join(data, 'logs', `server-${new Date().toISOString().replace(/[:.]/g, '-')}.log.enc`),
      reader,
    );
  } catch (err) {
    await server.close();
    throw storageError(err, 'its encrypted log') ?? err;
  }
  let stamp: Date | undefined;
  const write = logWriter(logFile, {
    report: (m) => info(`keyledger: ${m}`),
    now: () => stamp ?? new Date(),
  });
  for (const e of early) {
    stamp = e.at;
    write(e.text);
  }
  stamp = undefined;
  if (earlyDropped > 0)
    write(`${earlyDropped} log line(s) lost: more than ${MAX_EARLY_LOG_LINES} before the log opened`);
  early.length = 0;
  logLine = write;
  log(`server started on ${server.url}`);
  const cert = server.tls();
  if (cert) log(`TLS certificate: ${cert.subject}, SHA-256 ${cert.fingerprint}, valid until ${cert.validTo}`);
  const g = server.ledger.genesis;
  if (o.json) {
    out(
      JSON.stringify({
        url: server.url,
        chain: server.ledger.chainId,
        serverFingerprint: g.server?.fingerprint,
        dataDir: data,
        initialised: fresh,
        ...(cert ? { tls: { fingerprint: cert.fingerprint, validTo: cert.validTo } } : {}),
      }),
    );
  } else {
    if (fresh) out(`initialised ${data}: ledger, validator key and server OpenPGP key`);
    out(`keyledger listening on ${server.url}`);
    out(`  chain id            ${server.ledger.chainId}`);
    out(`  server fingerprint  ${g.server?.fingerprint}`);
    if (cert) out(`  TLS certificate     SHA-256 ${cert.fingerprint}, valid until ${cert.validTo}`);
    out(`  email codes         ${options.smtp ? 'on' : 'off (set KEYLEDGER_SMTP_URL to enable)'}`);
    out(`  admin dashboard     ${server.url}/admin/  (keyledger admin dashboard gives a login link)`);
    out(
      `  API description     ${server.url}/openapi.json, ${server.url}/docs/; metrics ${server.url}/metrics`,
    );
    out(`invite a user:  keyledger admin invite alice@example.org --data ${data}`);
  }
  // Graceful shutdown: stop taking logins, end sessions with a reason, finish in-flight commits.
  await stopRequested;
  process.off('SIGHUP', reloadTls);
  info('shutting down…');
  await server.close();
  log('server stopped');
  logFile.close();
  return 0;
}

type LedgerSettings = NonNullable<ConfigFile['ledger']>;

/** A new EVM-engine data directory: deploys KeyRegistry, or attaches to `contract`. */
async function initEvm(data: string, passphrase: string, l: LedgerSettings, funder?: string) {
  if (!l.rpcUrl) throw new KlError('KL_CONFIG_INVALID', 'the EVM engine needs --rpc URL (ledger.rpcUrl)');
  const r = await initEvmNode({
    dataDir: data,
    passphrase,
    rpcUrl: l.rpcUrl,
    ...(l.contract ? { contract: { address: l.contract, fromBlock: l.fromBlock ?? 0 } } : {}),
    ...(l.confirmations ? { confirmations: l.confirmations } : {}),
    ...(funder ? { insecureDevFunderKey: funder } : {}),
  });
  const e = r.genesis.engine!;
  info(
    `${l.contract ? 'attached to' : 'deployed'} KeyRegistry ${e.contract} on chain ${e.chainId} (block ${e.fromBlock}); this node's account: ${r.account}`,
  );
  if (l.contract)
    info(
      `the contract's governor must make ${r.account} a registrar (setRegistrar) before this node can write`,
    );
  return r;
}

/** An initialised directory keeps its engine: refuse settings that name another. */
function checkEngine(data: string, l: LedgerSettings): void {
  const { engine } = readGenesisFile(`${data}/genesis.json`).genesis;
  if (!engine)
    throw new KlError('KL_CONFIG_INVALID', `${data} holds an embedded-engine ledger, not an EVM one`);
  if (l.contract && l.contract.toLowerCase() !== engine.contract)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `${data} is bound to contract ${engine.contract}, not ${l.contract}`,
    );
}

/**
 * `keyledger ledger deploy --rpc URL --data DIR`: a new EVM-engine data directory with the
 * KeyRegistry contract deployed from a new account of this node (sealed under the node passphrase).
 */
export async function ledgerDeploy(o: {
  data: string;
  ledger: LedgerSettings;
  insecureDevFunderKey?: string;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  json?: boolean;
}): Promise<number> {
  if (isInitialised(o.data)) throw new KlError('KL_DATA_DIR', `${o.data} already holds a ledger`);
  const passphrase = await resolvePassphrase(o, { confirm: true });
  const r = await initEvm(o.data, passphrase, o.ledger, o.insecureDevFunderKey);
  const e = r.genesis.engine!;
  if (o.json) out(JSON.stringify({ ...e, account: r.account, dataDir: o.data }));
  else
    out(`contract ${e.contract}
chain ${e.chainId}
account ${r.account}
start it: keyledger serve --data ${o.data}`);
  return 0;
}

/** `keyledger config check [--config FILE]`: validates the effective configuration and prints it. */
export function configCheck(o: { configFile?: string; flags: ConfigFile; json?: boolean }): number {
  const config = loadConfig({ ...(o.configFile ? { file: o.configFile } : {}), flags: o.flags });
  serverOptionsOf(config); // durations parse
  const shown = redactConfig(config);
  if (o.json) out(JSON.stringify({ valid: true, config: shown }));
  else {
    out(
      `configuration OK${o.configFile ? ` (${o.configFile}, environment, flags)` : ' (no file: defaults, environment, flags)'}`,
    );
    for (const line of effectiveSettings(CONFIG_SCHEMA.properties, shown as Record<string, unknown>, ''))
      out(line);
  }
  return 0;
}

/** A schema node of CONFIG_SCHEMA, as far as the settings listing reads it. */
interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
}

/**
 * Every setting of the schema, one line each: the value given (file, environment or flags) or the
 * default that the schema's description states, so `config check` shows the effective configuration
 * even with no file at all (docs/configuration.md).
 */
function effectiveSettings(
  props: Record<string, SchemaNode>,
  given: Record<string, unknown>,
  prefix: string,
): string[] {
  const lines: string[] = [];
  for (const [key, node] of Object.entries(props)) {
    const path = `${prefix}${key}`;
    const value = given?.[key];
    const defaultText = /Default:? (.*?)\.?(?: A duration.*)?$/.exec(node.description ?? '')?.[1];
    if (node.properties && defaultText === undefined && (value === undefined || typeof value === 'object')) {
      lines.push(...effectiveSettings(node.properties, (value ?? {}) as Record<string, unknown>, `${path}.`));
      continue;
    }
    const shown =
      value !== undefined
        ? JSON.stringify(value)
        : defaultText !== undefined
          ? `${defaultText} (default)`
          : '(not set)';
    lines.push(`  ${path.padEnd(34)} ${shown}`);
  }
  return lines;
}

/** `keyledger config schema`: the JSON schema of the configuration file. */
export function configSchema(): number {
  out(JSON.stringify(CONFIG_SCHEMA, null, 2));
  return 0;
}

/** Options of `keyledger admin invite`. */
export interface InviteOptions {
  data: string;
  identity: string;
  expiresMs: number;
  json?: boolean;
}

/** Prints a one-time invitation code bound to an identity. */
export async function adminInvite(o: InviteOptions): Promise<number> {
  if (!isInitialised(o.data))
    throw new KlError(
      'KL_DATA_DIR',
      `${o.data} holds no ledger: start the server once with keyledger serve --data ${o.data}`,
    );
  const id = canonicalIdentity(o.identity);
  const { chainId } = readGenesisFile(`${o.data}/genesis.json`);
  const proofs = new IdentityProofs(o.data);
  try {
    const now = Date.now();
    const expiresAt = now + o.expiresMs;
    // The invitation carries the ledger's pin: the user's client authenticates this server with it
    // before revealing the code (docs/protocol.md, "Registration on a hostile network").
    const code = formatInvitation(proofs.issueInvite(id, now, expiresAt), chainId);
    if (o.json)
      out(JSON.stringify({ id, code, expiresAt: new Date(expiresAt).toISOString(), chain: chainId }));
    else {
      out(code);
      info(
        `invitation for ${id}, valid until ${new Date(expiresAt).toISOString()} (shown once; stored hashed)`,
      );
      info('hand it over whole: the part after the "." lets the user\'s client authenticate this server');
      // The data directory does not record the address people reach the server at; the setting
      // `publicUrl` (KEYLEDGER_PUBLIC_URL, docs/configuration.md) does, when given.
      const publicUrl = process.env.KEYLEDGER_PUBLIC_URL?.replace(/\/$/, '');
      if (publicUrl && /^https?:\/\//.test(publicUrl))
        info(
          `the user runs: keyledger init --id ${id}, then keyledger register --server ${publicUrl} --invite ${code}`,
        );
      else {
        info(
          `the user runs: keyledger init --id ${id}, then keyledger register --server URL --invite ${code}`,
        );
        info(
          "URL: this server's public address (what `keyledger serve` printed, or its publicUrl); " +
            `${o.data} does not record it — set KEYLEDGER_PUBLIC_URL to have it printed here`,
        );
      }
    }
  } finally {
    proofs.close();
  }
  return 0;
}
