/**
 * `npm run load` — load and soak (docs/reliability.md "Load and soak"), against a real server in a child process on 127.0.0.1
 * with the production session and hijack policies (only the rate limits are raised: one machine
 * plays every user):
 *   1. login burst: --logins logins started at once (default 1,000); logins/s, p50/p99 latency;
 *   2. sessions: --sessions sessions opened (default 10,000; --open-concurrency at a time);
 *   3. soak: for --duration (default 10m) every session makes a request every --interval (default
 *      10s, jittered); round-trip p50/p99;
 *   4. close: every session logs out.
 * Errors of every phase are counted by code (an unexpected close of a session is an error). The
 * server's and the load process's RSS are sampled every --sample (default 1s); the server's RSS
 * before the burst (identities registered, no session) is the baseline. `--json` prints the results
 * document on stdout; `--out DIR` writes DIR/load.json and the chart DIR/load.svg (and DIR/load.png
 * with --png, rendered by Debian's chromium); nothing is written without --out (bench/README.md).
 * `--replot FILE --out DIR` redraws the chart of a saved run. Memory is "flat" when the server's RSS
 * in the last fifth of the soak is within 10 % of its RSS in the second fifth (the first fifth is
 * warm-up).
 * Bounded in count and time: every phase has a deadline; the process exits 1 only when the run
 * itself could not be carried out, never on timing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { OpenPgpClientKey } from '../src/client/client-key.js';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { benchArgs, type RunRecord, refuseSmokeInResults, writeFileAtomic } from './support/bench-cli.js';
import { benchClient, startBenchServer } from './support/bench-server.js';
import { lineChartSvg } from './support/svg-chart.js';

const args = benchArgs({
  name: 'load',
  command: 'npm run load --',
  summary:
    'Load and soak: a login burst, then many sessions making requests for minutes; errors, latency and server memory.',
  params: {
    logins: { kind: 'count', full: '1000', fullWhen: 'atLeast', help: 'logins started at once' },
    sessions: { kind: 'count', full: '10000', fullWhen: 'atLeast', help: 'sessions held through the soak' },
    identities: { kind: 'count', full: '100', fullWhen: 'atLeast', help: 'identities the sessions share' },
    duration: { kind: 'duration', full: '10m', fullWhen: 'atLeast', help: 'soak duration' },
    interval: {
      kind: 'duration',
      full: '10s',
      fullWhen: 'atMost',
      help: 'time between requests per session',
    },
    sample: { kind: 'duration', full: '1s', fullWhen: 'any', help: 'RSS sampling period' },
    'open-concurrency': { kind: 'count', full: '200', fullWhen: 'any', help: 'sessions opened at a time' },
    replot: {
      kind: 'text',
      fullWhen: 'any',
      help: 'only redraw the chart of a saved load.json (needs --out)',
    },
  },
  flags: { png: 'also render the chart to load.png (Debian chromium)' },
  out: 'dir',
  resultsFile: 'load.json',
});
const LOGINS = args.count('logins');
const SESSIONS = args.count('sessions');
const IDENTITIES = args.count('identities');
const DURATION_MS = args.ms('duration');
const INTERVAL_MS = args.ms('interval');
const SAMPLE_MS = args.ms('sample');
const OPEN_CONCURRENCY = args.count('open-concurrency');
const PNG = args.flag('png');
const REPLOT = args.text('replot');
if ((PNG || REPLOT) && !args.out) {
  process.stderr.write(
    `bench load: ${REPLOT ? '--replot' : '--png'} needs --out DIR (where the chart goes)\n`,
  );
  process.exit(2);
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const PASS = 'load';
if (REPLOT) {
  // Only redraw the chart of an earlier run: --replot bench/results/load.json --out DIR [--png].
  const saved = JSON.parse(readFileSync(REPLOT, 'utf8')) as Parameters<typeof plot>[0] & { run?: RunRecord };
  try {
    refuseSmokeInResults({
      full: saved.run?.full === true,
      notFullBecause: saved.run?.notFullBecause ?? [`${REPLOT} does not record a full run`],
      target: args.out!,
      smokeOk: args.smokeOk,
      fullRunCommand: args.record.fullRunCommand,
    });
  } catch (err) {
    process.stderr.write(`bench load: ${(err as Error).message}\n`);
    process.exit(2);
  }
  await plot(saved, resolve(args.out!), PNG);
  process.exit(0);
}
const root = mkdtempSync(join(tmpdir(), 'kl-load-'));
const t0 = performance.now();
const elapsed = () => (performance.now() - t0) / 1000;

/** Errors by code, per phase. */
const errors: Record<string, Record<string, number>> = {};
function countError(phase: string, err: unknown): void {
  const code = (err as { code?: string })?.code ?? (err as Error)?.name ?? 'unknown';
  errors[phase] ??= {};
  errors[phase][code] = (errors[phase][code] ?? 0) + 1;
}
const errorTotal = () =>
  Object.values(errors).reduce((n, byCode) => n + Object.values(byCode).reduce((a, b) => a + b, 0), 0);

function percentiles(ms: number[]): { p50: number; p99: number; max: number } {
  if (ms.length === 0) return { p50: 0, p99: 0, max: 0 };
  const s = Float64Array.from(ms).sort();
  const at = (q: number) => +s[Math.min(s.length - 1, Math.floor(s.length * q))]!.toFixed(1);
  return { p50: at(0.5), p99: at(0.99), max: +s[s.length - 1]!.toFixed(1) };
}

/** Figures of a login phase: `ms` holds the latency of each successful login. */
function loginFigures(ms: number[], seconds: number, serverCpuSeconds: number) {
  return {
    ok: ms.length,
    seconds: +seconds.toFixed(2),
    loginsPerSec: Math.round(ms.length / seconds),
    latencyMs: percentiles(ms),
    serverCpuMsPerLogin: +((serverCpuSeconds * 1000) / Math.max(1, ms.length)).toFixed(2),
  };
}

/** Resident set size of a process, bytes (Linux /proc). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Runs `task(i)` for i < n with at most `limit` at once; stops starting new ones after `deadline`. */
async function pool(n: number, limit: number, deadline: number, task: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n && performance.now() < deadline) await task(next++);
    }),
  );
  return next;
}

interface Sample {
  t: number;
  phase: string;
  serverRssMiB: number;
  loadRssMiB: number;
  sessions: number;
}

const MiB = 1024 * 1024;
const samples: Sample[] = [];
const markers: Array<{ x: number; label: string }> = [];
let phase = 'setup';
let openSessions = 0;
function enter(name: string): void {
  phase = name;
  markers.push({ x: +elapsed().toFixed(1), label: name });
  log(`[${elapsed().toFixed(1)} s] ${name}`);
}

const server = await startBenchServer(root, PASS, undefined, { productionHijack: true });
const sampler = setInterval(() => {
  samples.push({
    t: +elapsed().toFixed(2),
    phase,
    serverRssMiB: +(rssOf(server.child.pid!) / MiB).toFixed(1),
    loadRssMiB: +(process.memoryUsage.rss() / MiB).toFixed(1),
    sessions: openSessions,
  });
}, SAMPLE_MS);

try {
  log(
    `keyledger load — ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}; ${LOGINS} logins, ` +
      `${SESSIONS} sessions of ${IDENTITIES} identities, soak ${DURATION_MS / 1000} s, a request every ${INTERVAL_MS / 1000} s per session`,
  );
  const clients: Array<{ home: ClientHome; key: OpenPgpClientKey }> = [];
  for (let i = 0; i < IDENTITIES; i++) {
    clients.push(await benchClient(server, root, `load${i}@example.org`, PASS));
    if ((i + 1) % 20 === 0 || i + 1 === IDENTITIES) log(`  ${i + 1}/${IDENTITIES} identities registered`);
  }
  const client = (i: number) => clients[i % clients.length]!;

  // 1. Login burst: every login starts at once.
  const idleServerRssMiB = +(rssOf(server.child.pid!) / MiB).toFixed(1);
  enter('login burst');
  const loginMs: number[] = [];
  const burstStart = performance.now();
  const burstCpu0 = await server.cpuSeconds();
  await Promise.all(
    Array.from({ length: LOGINS }, async (_, i) => {
      const t = performance.now();
      try {
        const s = await login({ ...client(i), checkLedger: false, timeoutMs: 120_000 });
        loginMs.push(performance.now() - t);
        s.close();
      } catch (err) {
        countError('login burst', err);
      }
    }),
  );
  const burstSeconds = (performance.now() - burstStart) / 1000;
  const burstCpu = (await server.cpuSeconds()) - burstCpu0;
  log(`  ${loginMs.length}/${LOGINS} logins in ${burstSeconds.toFixed(1)} s`);

  // 2. Open the sessions of the soak.
  enter('open sessions');
  const sessions: ClientSession[] = [];
  const openMs: number[] = [];
  let unexpectedCloses = 0;
  let closing = false;
  const openStart = performance.now();
  const openCpu0 = await server.cpuSeconds();
  await pool(SESSIONS, OPEN_CONCURRENCY, openStart + 30 * 60_000, async (i) => {
    const t = performance.now();
    try {
      const s = await connect({ ...client(i), checkLedger: false, timeoutMs: 120_000 });
      openMs.push(performance.now() - t);
      s.on('close', (e: { code?: string }) => {
        openSessions--;
        if (!closing) {
          unexpectedCloses++;
          countError(phase, { code: e.code ?? 'session closed' });
        }
      });
      sessions.push(s);
      openSessions++;
      if (sessions.length % 1000 === 0) log(`  ${sessions.length}/${SESSIONS} sessions open`);
    } catch (err) {
      countError('open sessions', err);
    }
  });
  const openSeconds = (performance.now() - openStart) / 1000;
  const openCpu = (await server.cpuSeconds()) - openCpu0;

  // 3. Soak: each session asks the demo service every INTERVAL_MS (first one at a random offset).
  enter('soak');
  const rtMs: number[] = [];
  const soakStart = performance.now();
  const soakCpu0 = await server.cpuSeconds();
  const soakEnd = soakStart + DURATION_MS;
  const timers = new Set<NodeJS.Timeout>();
  await new Promise<void>((done) => {
    for (const s of sessions) {
      const tick = () => {
        if (performance.now() >= soakEnd || s.isClosed) return;
        const t = performance.now();
        s.request({ op: 'echo', text: 'load' }, { timeoutMs: 60_000 }).then(
          () => rtMs.push(performance.now() - t),
          (err) => countError('soak', err),
        );
        const timer = setTimeout(
          () => {
            timers.delete(timer);
            tick();
          },
          INTERVAL_MS * (0.8 + Math.random() * 0.4),
        );
        timers.add(timer);
      };
      const first = setTimeout(() => {
        timers.delete(first);
        tick();
      }, Math.random() * INTERVAL_MS);
      timers.add(first);
    }
    setTimeout(done, DURATION_MS);
  });
  for (const t of timers) clearTimeout(t);
  const soakSeconds = (performance.now() - soakStart) / 1000;
  const soakCpu = (await server.cpuSeconds()) - soakCpu0;
  await new Promise((r) => setTimeout(r, 1_000)); // answers still in flight

  // 4. Log every session out.
  enter('close');
  closing = true;
  await pool(sessions.length, OPEN_CONCURRENCY, performance.now() + 5 * 60_000, async (i) => {
    await sessions[i]!.close().catch((err) => countError('close', err));
  });
  await new Promise((r) => setTimeout(r, 2 * SAMPLE_MS));
  clearInterval(sampler);

  // Memory over the soak: second fifth (after warm-up) against the last fifth.
  const soak = samples.filter((s) => s.phase === 'soak');
  const fifth = (k: number) =>
    soak.slice(Math.floor((soak.length * k) / 5), Math.floor((soak.length * (k + 1)) / 5));
  const mean = (xs: Sample[]) => xs.reduce((a, s) => a + s.serverRssMiB, 0) / Math.max(1, xs.length);
  const early = mean(fifth(1));
  const late = mean(fifth(4));
  const growth = early > 0 ? (late - early) / early : 0;
  const maxServerRss = Math.max(0, ...samples.map((s) => s.serverRssMiB));

  const result = await args.finish({
    settings: {
      logins: LOGINS,
      sessions: SESSIONS,
      identities: IDENTITIES,
      soakSeconds: DURATION_MS / 1000,
      requestIntervalSeconds: INTERVAL_MS / 1000,
      openConcurrency: OPEN_CONCURRENCY,
    },
    loginBurst: loginFigures(loginMs, burstSeconds, burstCpu),
    openSessions: loginFigures(openMs, openSeconds, openCpu),
    soak: {
      seconds: +soakSeconds.toFixed(1),
      requests: rtMs.length,
      requestsPerSec: Math.round(rtMs.length / soakSeconds),
      roundTripMs: percentiles(rtMs),
      /** Share of one core the server used while serving the soak. */
      serverCpuCores: +(soakCpu / soakSeconds).toFixed(3),
      unexpectedCloses,
    },
    errors: { total: errorTotal(), byPhase: errors },
    memory: {
      serverRssMaxMiB: +maxServerRss.toFixed(1),
      serverRssSoakEarlyMiB: +early.toFixed(1),
      serverRssSoakLateMiB: +late.toFixed(1),
      serverRssSoakGrowth: +growth.toFixed(3),
      flat: Math.abs(growth) <= 0.1,
      baselineServerRssIdleMiB: idleServerRssMiB,
    },
    goals: { errors: 0, memory: 'flat (soak RSS growth within 10 %)' },
    samples,
    markers,
  });
  if (args.out) await plot(result, args.out, PNG);
  log(
    [
      `login burst: ${result.loginBurst.ok}/${LOGINS} in ${result.loginBurst.seconds} s = ${result.loginBurst.loginsPerSec}/s, p50 ${result.loginBurst.latencyMs.p50} ms, p99 ${result.loginBurst.latencyMs.p99} ms; server ${result.loginBurst.serverCpuMsPerLogin} ms CPU per login`,
      `sessions opened: ${result.openSessions.ok}/${SESSIONS} at ${result.openSessions.loginsPerSec}/s, p50 ${result.openSessions.latencyMs.p50} ms, p99 ${result.openSessions.latencyMs.p99} ms; server ${result.openSessions.serverCpuMsPerLogin} ms CPU per login`,
      `soak: ${result.soak.requests} requests in ${result.soak.seconds} s (${result.soak.requestsPerSec}/s), round trip p50 ${result.soak.roundTripMs.p50} ms, p99 ${result.soak.roundTripMs.p99} ms; server busy ${(result.soak.serverCpuCores * 100).toFixed(1)} % of a core`,
      `errors: ${result.errors.total} (goal 0)${result.errors.total ? ` ${JSON.stringify(errors)}` : ''}`,
      `server RSS: max ${result.memory.serverRssMaxMiB} MiB; soak ${result.memory.serverRssSoakEarlyMiB} → ${result.memory.serverRssSoakLateMiB} MiB (${(growth * 100).toFixed(1)} %, ${result.memory.flat ? 'flat' : 'NOT flat'}); idle server before the burst ${idleServerRssMiB} MiB`,
      args.out
        ? `written: ${args.outFile('load.json')}, ${args.outFile('load.svg')}${PNG ? `, ${args.outFile('load.png')}` : ''}`
        : 'nothing written (--out DIR writes load.json and the chart)',
    ].join('\n'),
  );
} finally {
  clearInterval(sampler);
  server.stop();
  rmSync(root, { recursive: true, force: true });
}
process.exit(0);

/** Draws OUT/load.svg (and OUT/load.png with `png`) from a run's figures. */
async function plot(
  r: { settings: { sessions: number }; samples: Sample[]; markers: Array<{ x: number; label: string }> },
  out: string,
  png: boolean,
): Promise<void> {
  const svg = lineChartSvg({
    title: `keyledger load: ${r.settings.sessions.toLocaleString('en')} sessions, RSS over time`,
    xLabel: 'seconds since start',
    yLabel: 'RSS, MiB',
    series: [
      { name: 'server RSS', color: '#1f6feb', points: r.samples.map((s) => [s.t, s.serverRssMiB]) },
      { name: 'load generator RSS', color: '#d29922', points: r.samples.map((s) => [s.t, s.loadRssMiB]) },
    ],
    markers: r.markers,
  });
  writeFileAtomic(join(out, 'load.svg'), svg);
  if (png) await renderPng(join(out, 'load.svg'), join(out, 'load.png'));
}

/** Renders the SVG to PNG in headless chromium (Debian's), the way the dashboard tests run it. */
async function renderPng(svgPath: string, pngPath: string): Promise<void> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 420 } });
    await page.goto(`file://${svgPath}`);
    await page.screenshot({ path: pngPath });
  } finally {
    await browser.close();
  }
}
