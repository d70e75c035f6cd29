/**
 * `npm run bench:auth` — full logins per second and the server's CPU seconds per login, next to
 * OpenSSL TLS 1.3 mutual-authentication full handshakes (Ed25519 certificates) measured in the same
 * run, as handshakes per server CPU second. Prints a table; `--json` prints an object with at least
 * loginsPerSecPerCore, tlsHandshakesPerSecPerCore and ratio. Results also go to
 * bench/results/auth.json. Never fails on timing.
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
import { parseArgs } from 'node:util';
import type { OpenPgpClientKey } from '../src/client/client-key.js';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { benchClient, startBenchServer } from './support/bench-server.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string' },
    logins: { type: 'string' },
    concurrency: { type: 'string' },
    seconds: { type: 'string' },
    json: { type: 'boolean' },
  },
});
const CLIENTS = Number(values.clients ?? 100);
const LOGINS = Number(values.logins ?? 1000);
const CONCURRENCY = Number(values.concurrency ?? 32);
const TLS_SECONDS = Number(values.seconds ?? 5);
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
  for (let i = 0; i < 50; i++) await once(i); // warm-up
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
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
    loginsPerSecPerCore: k.loginsPerSecPerCore,
    tlsHandshakesPerSecPerCore: t.tlsHandshakesPerSecPerCore,
    ratio: +(k.loginsPerSecPerCore / t.tlsHandshakesPerSecPerCore).toFixed(3),
    goal: 'loginsPerSecPerCore ≥ 2 × tlsHandshakesPerSecPerCore',
    keyledger: k,
    tls13MutualEd25519: t,
  };
  (await import('node:fs')).writeFileSync(
    new URL('./results/auth.json', import.meta.url),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    log('');
    log(
      `keyledger full logins: ${k.loginsPerSec}/s wall (${k.concurrency} concurrent), server ${k.serverCpuMsPerLogin} ms CPU/login → ${k.loginsPerSecPerCore} logins per server core-second; latency p50 ${k.latencyMs.p50} ms, p99 ${k.latencyMs.p99} ms`,
    );
    log(
      `TLS 1.3 mutual auth (Ed25519, ${t.tool}): ${t.handshakesPerSec}/s wall → ${t.tlsHandshakesPerSecPerCore} handshakes per server core-second`,
    );
    log(`ratio: ${result.ratio} (goal ≥ 2)`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
