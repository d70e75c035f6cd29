/**
 * `npm run bench:auth` — full logins per second and the server's CPU seconds per login, next to
 * OpenSSL TLS 1.3 mutual-authentication full handshakes (Ed25519 certificates) measured in the same
 * run, as handshakes per server CPU second (the baseline). Prints a summary on stderr; `--json`
 * prints the results document on stdout (loginsPerSecPerCore, tlsHandshakesPerSecPerCore, ratio…);
 * `--out FILE` writes it (bench/support/bench-cli.ts, bench/README.md). Never fails on timing.
 *
 * Phases, after registration:
 * 0. Every identity's first login since the server started, one at a time (the server parses and
 *    validates that identity's key with OpenPGP.js once; `keyledger.firstLogin`), then 50 more
 *    logins of warm-up.
 * 1. Timed, concurrent: `--logins` logins, `--concurrency` in flight: the headline figures
 *    (`keyledger`: returning identities, their keys parsed). Then as many again with the server's
 *    CPU profile (`profile`): its main thread's busy time split into openpgp, crypto, ledger,
 *    framing, http, gc and other (share and ms per login; bench/support/profile-split.ts) and its
 *    top 20 functions by self time; then the `floor` of a login of this shape.
 * 2. A lone login, sequential: min(200, `--logins`) logins one at a time (`keyledger.single`):
 *    end-to-end latency p50/p99 (goal p50 ≤ 5 ms), and the client's CPU per login with a file key
 *    (`keyledger.clientCpuMsPerLogin`, goal ≤ 1.5 ms): the CPU time of this process, which runs
 *    nothing but the client then, divided by the logins.
 * 3. As many lone logins again, profiled in this process (`clientProfile`: the client's split and
 *    top 10 functions; kept out of phase 2's figures, which the profiler would inflate).
 * 4. The TLS baseline (`tls13MutualEd25519`).
 *
 * Options: --clients N (identities, default 100), --logins N (default 1000), --concurrency N
 * (default 32), --seconds N (TLS run, default 5), --profile-out FILE (also write the server's raw
 * profile of phase 1, a .cpuprofile for Chrome DevTools or speedscope).
 * A login here is the handshake (hello → challenge → response → finished) with an unlocked key;
 * the CLI's login adds a ledger consistency check (one HTTP GET).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import type { OpenPgpClientKey } from '../src/client/client-key.js';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { setNativeOpenPgp } from '../src/pgp/native/switch.js';
import {
  ed25519KeyPair,
  ed25519Sign,
  ed25519Verify,
  x25519KeyPair,
  x25519SharedSecret,
} from '../src/protocol/crypto/node.js';
import { benchArgs } from './support/bench-cli.js';
import { benchClient, startBenchServer } from './support/bench-server.js';
import { formatSplit, perOperation, splitProfile } from './support/profile-split.js';
import { startCpuProfile } from './support/profiler.js';

const args = benchArgs({
  name: 'auth',
  command: 'npm run bench:auth --',
  summary: 'Full keyledger logins per server core-second, next to OpenSSL TLS 1.3 mutual-auth handshakes.',
  params: {
    clients: { kind: 'count', full: '100', fullWhen: 'atLeast', help: 'registered identities' },
    logins: { kind: 'count', full: '1000', fullWhen: 'atLeast', help: 'timed logins' },
    concurrency: { kind: 'count', full: '32', fullWhen: 'any', help: 'logins in flight' },
    seconds: { kind: 'count', full: '5', fullWhen: 'atLeast', help: 'seconds of TLS handshakes' },
    'profile-out': {
      kind: 'text',
      fullWhen: 'any',
      help: "also write the server's raw CPU profile of the timed logins there (a .cpuprofile file)",
    },
  },
  flags: {
    'openpgp-js': 'measure the OpenPGP.js path: the native OpenPGP path off in the server and this client',
  },
  out: 'file',
  resultsFile: 'auth.json',
});
const CLIENTS = args.count('clients');
const LOGINS = args.count('logins');
const CONCURRENCY = args.count('concurrency');
const TLS_SECONDS = args.count('seconds');
const PROFILE_OUT = args.text('profile-out');
const OPENPGP_JS = args.flag('openpgp-js');
if (OPENPGP_JS) setNativeOpenPgp(false);
/** Sequential logins of the lone-login phase. */
const SINGLE = Math.min(200, LOGINS);
const root = mkdtempSync(join(tmpdir(), 'kl-bench-auth-'));
const log = (s: string) => process.stderr.write(`${s}\n`);
const PASS = 'bench';
const REPO = new URL('..', import.meta.url).pathname;

/** utime + stime of a process, seconds (Linux /proc). */
function procCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function keyledgerFigures() {
  const server = await startBenchServer(root, PASS, undefined, { openpgpJs: OPENPGP_JS });
  log(`server at ${server.url}; registering ${CLIENTS} clients…`);
  const clients: Array<{ home: ClientHome; key: OpenPgpClientKey }> = [];
  for (let i = 0; i < CLIENTS; i++)
    clients.push(await benchClient(server, root, `bench${i}@example.org`, PASS, log));
  const once = async (i: number) => {
    const c = clients[i % clients.length]!;
    const s = await login({ home: c.home, key: c.key, checkLedger: false });
    s.close();
  };
  // Every identity's first login: its key is parsed and its self-signatures checked once.
  const first0 = await server.cpuSeconds();
  const firstLatencies: number[] = [];
  for (let i = 0; i < clients.length; i++) {
    const t = performance.now();
    await once(i);
    firstLatencies.push(performance.now() - t);
  }
  const firstLogin = {
    logins: clients.length,
    serverCpuMsPerLogin: +((((await server.cpuSeconds()) - first0) / clients.length) * 1000).toFixed(3),
    latencyMs: percentiles(firstLatencies),
  };
  for (let i = 0; i < Math.min(50, LOGINS); i++) await once(i); // warm-up

  const concurrently = async (latencies?: number[]) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < LOGINS) {
          const i = next++;
          const t = performance.now();
          await once(i);
          latencies?.push(performance.now() - t);
        }
      }),
    );
  };
  // Phase 1: timed, concurrent (no profiler: it would cost ~10 % more).
  const cpu0 = await server.cpuSeconds();
  const t0 = performance.now();
  const latencies: number[] = [];
  await concurrently(latencies);
  const wall = (performance.now() - t0) / 1000;
  const cpu = (await server.cpuSeconds()) - cpu0;
  // Phase 1b: the same again, profiled, for the split (not in the figures above).
  await server.profileStart();
  await concurrently();
  const profile = await server.profileStop(PROFILE_OUT === undefined ? undefined : resolve(PROFILE_OUT));
  const floor = await floorFigures(server.echoUrl, () => server.cpuSeconds());

  // Phase 2: one login at a time; this process runs nothing but the client meanwhile.
  const singleLatencies: number[] = [];
  const singleServerCpu0 = await server.cpuSeconds();
  const clientCpu0 = process.cpuUsage();
  for (let i = 0; i < SINGLE; i++) {
    const t = performance.now();
    await once(i);
    singleLatencies.push(performance.now() - t);
  }
  const clientCpu = process.cpuUsage(clientCpu0);
  const singleServerCpu = (await server.cpuSeconds()) - singleServerCpu0;

  // Phase 3: the client's own profile, over as many lone logins again (not in the figures above).
  const clientProfiling = await startCpuProfile();
  for (let i = 0; i < SINGLE; i++) await once(i);
  const clientRun = await clientProfiling.stop();
  server.stop();
  const clientSplit = splitProfile(clientRun.profile, { top: 10, root: REPO });
  const clientBase = clientRun.mainThreadCpuMs ?? clientSplit.busyMs;
  const clientCpuMs = (clientCpu.user + clientCpu.system) / 1000;
  // The shares divide the main thread's CPU time (off Linux: its sampled busy time).
  const splitBase = profile.mainThreadCpuMs ?? profile.busyMs;
  return {
    floor,
    keyledger: {
      logins: LOGINS,
      concurrency: CONCURRENCY,
      wallSeconds: +wall.toFixed(2),
      loginsPerSec: Math.round(LOGINS / wall),
      serverCpuSeconds: +cpu.toFixed(2),
      serverCpuMsPerLogin: +((cpu / LOGINS) * 1000).toFixed(3),
      loginsPerSecPerCore: Math.round(LOGINS / cpu),
      latencyMs: percentiles(latencies),
      firstLogin,
      single: {
        logins: SINGLE,
        latencyMs: percentiles(singleLatencies),
        goal: 'latencyMs.p50 ≤ 5',
        serverCpuMsPerLogin: +((singleServerCpu / SINGLE) * 1000).toFixed(3),
      },
      clientCpuMsPerLogin: +(clientCpuMs / SINGLE).toFixed(3),
      clientCpuGoal:
        'clientCpuMsPerLogin ≤ 1.5 (file key; measured over keyledger.single, the bench process running only the client)',
    },
    profile: {
      phase: 'as many concurrent logins again as keyledger.logins, profiled (server main thread)',
      method:
        "shares: of the main thread's sampled busy (non-idle) time; msPerLogin: share × the main thread's CPU time / logins",
      logins: LOGINS,
      samples: profile.samples,
      sampledMs: profile.sampledMs,
      idleMs: profile.idleMs,
      busyMs: profile.busyMs,
      mainThreadCpuMs: profile.mainThreadCpuMs,
      mainThreadCpuMsPerLogin: +(splitBase / LOGINS).toFixed(3),
      processCpuMs: profile.processCpuMs,
      groups: Object.fromEntries(
        Object.entries(perOperation(profile, LOGINS, splitBase)).map(([g, v]) => [
          g,
          { share: v.share, msPerLogin: v.msPerOp },
        ]),
      ),
      top: profile.top,
    },
    clientProfile: {
      phase: `${SINGLE} more lone logins after keyledger.single, profiled in the bench process (the client)`,
      method:
        "shares: of the main thread's sampled busy time; msPerLogin: share × the main thread's CPU time / logins",
      mainThreadCpuMsPerLogin: +(clientBase / SINGLE).toFixed(3),
      processCpuMsPerLogin: +(clientRun.processCpuMs / SINGLE).toFixed(3),
      groups: Object.fromEntries(
        Object.entries(perOperation(clientSplit, SINGLE, clientBase)).map(([g, v]) => [
          g,
          { share: v.share, msPerLogin: v.msPerOp },
        ]),
      ),
      top: clientSplit.top,
    },
    split: profile,
    splitBase,
    clientSplit,
    clientBase,
  };
}

/**
 * What any login of this shape costs at least, measured in the same run: the transport (a plain `ws`
 * server in the server process answering an upgrade and two round trips of a login's sizes, then the
 * close; the client's side of it from this process, one at a time) and the native crypto of each side
 * (server: two X25519 key pairs and agreements, one Ed25519 signature and one verification; client:
 * one key pair, two agreements, one verification, one signature; timed in this process).
 */
async function floorFigures(echoUrl: string, serverCpuSeconds: () => Promise<number>) {
  const hello = 'h'.repeat(120);
  const response = 'r'.repeat(700);
  const exchange = () =>
    new Promise<void>((done, fail) => {
      const ws = new WebSocket(echoUrl);
      let replies = 0;
      ws.on('open', () => ws.send(hello));
      ws.on('message', () => {
        replies++;
        if (replies === 1) ws.send(response);
        else ws.close();
      });
      ws.on('close', () => done());
      ws.on('error', fail);
    });
  for (let i = 0; i < 50; i++) await exchange();
  const cpu0 = await serverCpuSeconds();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < LOGINS) await exchange();
    }),
  );
  const wsMs = (((await serverCpuSeconds()) - cpu0) / LOGINS) * 1000;
  // The client's side of the same exchange, one at a time (as keyledger.clientCpuMsPerLogin is taken).
  const clientRounds = Math.min(200, LOGINS);
  const client0 = process.cpuUsage();
  for (let i = 0; i < clientRounds; i++) await exchange();
  const clientUsed = process.cpuUsage(client0);
  const wsClientMs = (clientUsed.user + clientUsed.system) / 1000 / clientRounds;

  const rounds = 2_000;
  const client = ed25519KeyPair();
  const message = new Uint8Array(64);
  const signature = ed25519Sign(client.privateKey, message);
  const peer = x25519KeyPair().publicKey;
  const serverKey = ed25519KeyPair();
  const crypto0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) {
    x25519SharedSecret(x25519KeyPair().privateKey, peer); // the challenge's PKESK
    x25519SharedSecret(x25519KeyPair().privateKey, peer); // the session's ECDH
    ed25519Sign(serverKey.privateKey, message); // the challenge's signature
    ed25519Verify(client.publicKey, message, signature); // the response's signature
  }
  const used = process.cpuUsage(crypto0);
  const cryptoMs = (used.user + used.system) / 1000 / rounds;
  // The client's side: its ephemeral key pair, the PKESK's agreement with its own key, the session's
  // agreement, the server's signature checked, the transcript signed.
  const own = x25519KeyPair().privateKey;
  const clientCrypto0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) {
    x25519SharedSecret(x25519KeyPair().privateKey, peer);
    x25519SharedSecret(own, peer);
    ed25519Verify(client.publicKey, message, signature);
    ed25519Sign(serverKey.privateKey, message);
  }
  const clientCryptoUsed = process.cpuUsage(clientCrypto0);
  const clientCryptoMs = (clientCryptoUsed.user + clientCryptoUsed.system) / 1000 / rounds;
  return {
    what: 'the least a login of this shape costs: transport + crypto, without keyledger',
    wsExchangeServerCpuMs: +wsMs.toFixed(3),
    nativeCryptoServerCpuMs: +cryptoMs.toFixed(3),
    serverCpuMs: +(wsMs + cryptoMs).toFixed(3),
    loginsPerSecPerCoreCeiling: Math.round(1000 / (wsMs + cryptoMs)),
    wsExchangeClientCpuMs: +wsClientMs.toFixed(3),
    nativeCryptoClientCpuMs: +clientCryptoMs.toFixed(3),
    clientCpuMs: +(wsClientMs + clientCryptoMs).toFixed(3),
  };
}

/** p50 and p99 of `ms`, in ms to 0.1. */
function percentiles(ms: number[]): { p50: number; p99: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    p50: +sorted[Math.floor(sorted.length / 2)]!.toFixed(1),
    p99: +sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!.toFixed(1),
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
  const {
    keyledger: k,
    floor,
    profile,
    split,
    splitBase,
    clientProfile,
    clientSplit,
    clientBase,
  } = await keyledgerFigures();
  const t = await tlsFigures();
  const result = await args.finish({
    loginsPerSecPerCore: k.loginsPerSecPerCore,
    tlsHandshakesPerSecPerCore: t.tlsHandshakesPerSecPerCore,
    ratio: +(k.loginsPerSecPerCore / t.tlsHandshakesPerSecPerCore).toFixed(3),
    goal: 'loginsPerSecPerCore ≥ 2 × tlsHandshakesPerSecPerCore',
    openpgpPath: OPENPGP_JS ? 'OpenPGP.js (--openpgp-js)' : 'native (default profile)',
    keyledger: k,
    floor,
    profile,
    clientProfile,
    tls13MutualEd25519: t,
  });
  log('');
  log(
    `keyledger full logins: ${k.loginsPerSec}/s wall (${k.concurrency} concurrent), server ${k.serverCpuMsPerLogin} ms CPU/login → ${k.loginsPerSecPerCore} logins per server core-second; latency p50 ${k.latencyMs.p50} ms, p99 ${k.latencyMs.p99} ms`,
  );
  log(
    `each identity's first login since the server started (${k.firstLogin.logins}, one at a time: its key parsed and checked once): server ${k.firstLogin.serverCpuMsPerLogin} ms CPU/login, latency p50 ${k.firstLogin.latencyMs.p50} ms`,
  );
  log(
    `a lone login (${k.single.logins} one at a time): latency p50 ${k.single.latencyMs.p50} ms (goal ≤ 5), p99 ${k.single.latencyMs.p99} ms; server ${k.single.serverCpuMsPerLogin} ms CPU/login`,
  );
  log(
    `client CPU per login (file key): ${k.clientCpuMsPerLogin} ms (goal ≤ 1.5) — this process's CPU over the lone logins, when it runs nothing but the client`,
  );
  log(
    `server profile of the timed logins: main thread ${profile.mainThreadCpuMsPerLogin} ms CPU/login (the whole process ${(profile.processCpuMs / LOGINS).toFixed(3)}), ` +
      `busy ${profile.busyMs} ms of ${profile.sampledMs} ms sampled (${profile.samples} samples); by group, share of busy time and ms CPU/login:`,
  );
  for (const line of formatSplit(split, LOGINS, { totalMs: splitBase })) log(line);
  if (PROFILE_OUT !== undefined) log(`raw profile written to ${resolve(PROFILE_OUT)}`);
  log(
    `client profile (${k.single.logins} more lone logins, profiled here): main thread ${clientProfile.mainThreadCpuMsPerLogin} ms CPU/login (the whole process ${clientProfile.processCpuMsPerLogin}); by group, share and ms CPU/login:`,
  );
  for (const line of formatSplit(clientSplit, k.single.logins, { totalMs: clientBase })) log(line);
  log(
    `TLS 1.3 mutual auth (Ed25519, ${t.tool}): ${t.handshakesPerSec}/s wall → ${t.tlsHandshakesPerSecPerCore} handshakes per server core-second`,
  );
  log(
    `floor of a login of this shape (same run): plain ws upgrade + 2 round trips + close ${floor.wsExchangeServerCpuMs} ms + native crypto ${floor.nativeCryptoServerCpuMs} ms = ${floor.serverCpuMs} ms server CPU → at most ${floor.loginsPerSecPerCoreCeiling} logins per core-second (${(floor.loginsPerSecPerCoreCeiling / t.tlsHandshakesPerSecPerCore).toFixed(2)} × TLS); ` +
      `client (one at a time) ${floor.wsExchangeClientCpuMs} ms + native crypto ${floor.nativeCryptoClientCpuMs} ms = ${floor.clientCpuMs} ms`,
  );
  log(`ratio: ${result.ratio} (goal ≥ 2)`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
