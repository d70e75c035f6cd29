/**
 * `keyledger serve`: runs the server until SIGINT/SIGTERM, with its banner, its event lines on
 * stdout and its encrypted log.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInitialised, readGenesisFile } from '../../ledger/data-dir.js';
import { storageError } from '../../ledger/storage-fault.js';
import { EncryptedLog } from '../../pgp/encrypted-log.js';
import { readPublicKey } from '../../pgp/messages.js';
import { KlError } from '../../protocol/errors.js';
import { startServer } from '../../server/app.js';
import { type ConfigFile, loadConfig, serverOptionsOf } from '../../server/config.js';
import { loadServerKey } from '../../server/server-key.js';
import { loadTls } from '../../server/tls.js';
import { consoleWriter } from '../console-writer.js';
import { eventConsole } from '../event-console.js';
import { info, keepRunningWhenOutputCloses, out } from '../io.js';
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
  // `keyledger serve | head`: the server outlives the reader of its event lines.
  keepRunningWhenOutputCloses();
  const config = loadConfig({ ...(o.configFile ? { file: o.configFile } : {}), flags: o.flags });
  const options = serverOptionsOf(config);
  const data = options.dataDir;
  // TLS files missing, unreadable or not a pair: said before anything is asked or initialised.
  if (options.tls) loadTls(options.tls);
  const fresh = !isInitialised(data);
  const passphrase = await resolvePassphrase(o, { confirm: fresh });
  const engine = engineOf(config.ledger ?? {});
  if (fresh && engine === 'evm')
    await (await import('./evm-setup.js')).initEvm(data, passphrase, config.ledger ?? {});
  else if (fresh && engine === 'etcd')
    await (await import('./etcd-setup.js')).initEtcd(data, passphrase, config.ledger ?? {});
  else if (!fresh && engine !== 'embedded') checkEngine(data, engine, config.ledger ?? {});
  // docs/protocol.md "Phases 3 and 4", Logs: the server's log is encrypted at rest, readable with the
  // operator's key (operatorKey) or, by default, with the server key (keyledger logs decrypt --data DIR).
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
  // One line per event on stdout (registrations, logins, logouts, revocations, alerts, refusals
  // summarised), never a secret (src/server/events.ts); `quiet` (--quiet, KEYLEDGER_QUIET) turns them off.
  // Written off the event loop and bounded (console-writer.ts): a terminal or pipe that stops
  // reading can neither stall the server nor fill its memory.
  const stdoutLines = config.quiet ? undefined : consoleWriter();
  const events = stdoutLines
    ? eventConsole({ json: o.json ?? false, write: (line) => stdoutLines.line(line) })
    : undefined;
  const server = await startServer({
    ...options,
    passphrase,
    log,
    ...(events ? { onEvent: events.onEvent } : {}),
  });
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
    if (events) out('events (times in UTC; --quiet turns them off):');
  }
  // The banner first: what process.stdout still holds goes out before the first event line.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  events?.start();
  // Graceful shutdown: stop taking logins, end sessions with a reason, finish in-flight commits.
  await stopRequested;
  process.off('SIGHUP', reloadTls);
  info('shutting down…');
  await server.close();
  events?.stop();
  log('server stopped');
  logFile.close();
  return 0;
}

/** The engine the settings name: `ledger.engine`, else etcd when endpoints are given, else evm with a contract. */
function engineOf(l: NonNullable<ConfigFile['ledger']>): 'embedded' | 'evm' | 'etcd' {
  if (l.engine) return l.engine;
  if (l.etcd) return 'etcd';
  if (l.contract) return 'evm';
  return 'embedded';
}

/** An initialised directory keeps its engine: refuse settings that name another. */
function checkEngine(data: string, named: 'evm' | 'etcd', l: NonNullable<ConfigFile['ledger']>): void {
  const { engine } = readGenesisFile(`${data}/genesis.json`).genesis;
  if (engine?.type !== named)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `${data} holds ${engine ? `a ledger ordered by the ${engine.type} engine` : 'an embedded-engine ledger'}, not an ${named === 'evm' ? 'EVM' : 'etcd'} one`,
    );
  if (engine.type === 'evm' && l.contract && l.contract.toLowerCase() !== engine.contract)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `${data} is bound to contract ${engine.contract}, not ${l.contract}`,
    );
  if (engine.type === 'etcd' && l.etcdPrefix && l.etcdPrefix !== engine.prefix)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `${data} is ordered under etcd prefix ${engine.prefix}, not ${l.etcdPrefix}`,
    );
}
