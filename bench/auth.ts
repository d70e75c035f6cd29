/**
 * `npm run bench:auth` — full logins per second and the server's CPU seconds per login, next to
 * OpenSSL TLS 1.3 mutual-authentication full handshakes (Ed25519 certificates) measured in the same
 * run, as handshakes per server CPU second (the baseline). Prints a summary on stderr; `--json`
 * prints the results document on stdout (loginsPerSecPerCore, tlsHandshakesPerSecPerCore, ratio…);
 * `--out FILE` writes it (bench/support/bench-cli.ts, bench/README.md). Never fails on timing.
 *
 * Options: --clients N (identities, default 100), --logins N (default 1000), --concurrency N
 * (default 32), --seconds N (TLS run, default 5).
 * A login here is the handshake (hello → challenge → response → finished) with an unlocked key;
 * the CLI's login adds a ledger consistency check (one HTTP GET).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpenPgpClientKey } from '../src/client/client-key.js';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { benchArgs } from './support/bench-cli.js';
import { benchClient, startBenchServer } from './support/bench-server.js';

const args = benchArgs({
  name: 'auth',
  command: 'npm run bench:auth --',
  summary: 'Full keyledger logins per server core-second, next to OpenSSL TLS 1.3 mutual-auth handshakes.',
  params: {
    clients: { kind: 'count', full: '100', fullWhen: 'atLeast', help: 'registered identities' },
    logins: { kind: 'count', full: '1000', fullWhen: 'atLeast', help: 'timed logins' },
    concurrency: { kind: 'count', full: '32', fullWhen: 'any', help: 'logins in flight' },
    seconds: { kind: 'count', full: '5', fullWhen: 'atLeast', help: 'seconds of TLS handshakes' },
  },
  out: 'file',
  resultsFile: 'auth.json',
});
const CLIENTS = args.count('clients');
const LOGINS = args.count('logins');
const CONCURRENCY = args.count('concurrency');
const TLS_SECONDS = args.count('seconds');
const root = mkdtempSync(join(tmpdir(), 'kl-bench-auth-'));
const log = (s: string) => process.stderr.write(`${s}\n`);
const PASS = 'bench';

/** utime + stime of a process, seconds (Linux /proc). */
function procCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function keyledgerFigures() {
  const server = await startBenchServer(root, PASS);
  log(`server at ${server.url}; registering ${CLIENTS} clients…`);
  const clients: Array<{ home: ClientHome; key: OpenPgpClientKey }> = [];
  for (let i = 0; i < CLIENTS; i++)
    clients.push(await benchClient(server, root, `bench${i}@example.org`, PASS));
  const once = async (i: number) => {
    const c = clients[i % clients.length]!;
    const s = await login({ home: c.home, key: c.key, checkLedger: false });
    s.close();
  };
  for (let i = 0; i < Math.min(50, LOGINS); i++) await once(i); // warm-up
  const cpu0 = await server.cpuSeconds();
  const t0 = performance.now();
  let next = 0;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < LOGINS) {
        const i = next++;
        const t = performance.now();
        await once(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = (await server.cpuSeconds()) - cpu0;
  server.stop();
  latencies.sort((a, b) => a - b);
  return {
    logins: LOGINS,
    concurrency: CONCURRENCY,
    wallSeconds: +wall.toFixed(2),
    loginsPerSec: Math.round(LOGINS / wall),
    serverCpuSeconds: +cpu.toFixed(2),
    serverCpuMsPerLogin: +((cpu / LOGINS) * 1000).toFixed(3),
    loginsPerSecPerCore: Math.round(LOGINS / cpu),
    latencyMs: {
      p50: +latencies[Math.floor(latencies.length / 2)]!.toFixed(1),
      p99: +latencies[Math.floor(latencies.length * 0.99)]!.toFixed(1),
    },
  };
}

async function tlsFigures() {
  const dir = join(root, 'tls');
  execFileSync('mkdir', ['-p', dir]);
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ossl(['genpkey', '-algorithm', 'ed25519', '-out', 'ca.key']);
  ossl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=bench-ca', '-days', '2', '-out', 'ca.crt']);
  for (const n of ['server', 'client']) {
    ossl(['genpkey', '-algorithm', 'ed25519', '-out', `${n}.key`]);
    ossl(['req', '-new', '-key', `${n}.key`, '-subj', `/CN=${n}`, '-out', `${n}.csr`]);
    ossl([
      'x509',
      '-req',
      '-in',
      `${n}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${n}.crt`,
    ]);
  }
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = spawn(
    'openssl',
    [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-tls1_3',
      '-cert',
      'server.crt',
      '-key',
      'server.key',
      '-Verify',
      '1',
      '-CAfile',
      'ca.crt',
      '-quiet',
      '-naccept',
      '10000000',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 500));
  const cpu0 = procCpuSeconds(server.pid!);
  const out = execFileSync(
    'openssl',
    [
      's_time',
      '-connect',
      `127.0.0.1:${port}`,
      '-new',
      '-time',
      String(TLS_SECONDS),
      '-cert',
      'client.crt',
      '-key',
      'client.key',
      '-CAfile',
      'ca.crt',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] },
  ).toString();
  const cpu = procCpuSeconds(server.pid!) - cpu0;
  server.kill();
  const m =
    /(\d+) connections in ([\d.]+) real seconds/.exec(out) ?? /(\d+) connections in ([\d.]+)s/.exec(out);
  const handshakes = Number(m?.[1] ?? 0);
  return {
    tool: execFileSync('openssl', ['version']).toString().trim(),
    handshakes,
    seconds: TLS_SECONDS,
    handshakesPerSec: Math.round(handshakes / TLS_SECONDS),
    serverCpuSeconds: +cpu.toFixed(2),
    tlsHandshakesPerSecPerCore: Math.round(handshakes / cpu),
  };
}

try {
  log(`keyledger auth benchmark — ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}`);
  const k = await keyledgerFigures();
  const t = await tlsFigures();
  const result = await args.finish({
    loginsPerSecPerCore: k.loginsPerSecPerCore,
    tlsHandshakesPerSecPerCore: t.tlsHandshakesPerSecPerCore,
    ratio: +(k.loginsPerSecPerCore / t.tlsHandshakesPerSecPerCore).toFixed(3),
    goal: 'loginsPerSecPerCore ≥ 2 × tlsHandshakesPerSecPerCore',
    keyledger: k,
    tls13MutualEd25519: t,
  });
  log('');
  log(
    `keyledger full logins: ${k.loginsPerSec}/s wall (${k.concurrency} concurrent), server ${k.serverCpuMsPerLogin} ms CPU/login → ${k.loginsPerSecPerCore} logins per server core-second; latency p50 ${k.latencyMs.p50} ms, p99 ${k.latencyMs.p99} ms`,
  );
  log(
    `TLS 1.3 mutual auth (Ed25519, ${t.tool}): ${t.handshakesPerSec}/s wall → ${t.tlsHandshakesPerSecPerCore} handshakes per server core-second`,
  );
  log(`ratio: ${result.ratio} (goal ≥ 2)`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
