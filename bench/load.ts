/**
 * `npm run load` — load and soak (issue 7), against a real server in a child process on 127.0.0.1
 * with the production session and hijack policies (only the rate limits are raised: one machine
 * plays every user):
 *   1. login burst: --logins logins started at once (default 1,000); logins/s, p50/p99 latency;
 *   2. sessions: --sessions sessions opened (default 10,000; --open-concurrency at a time);
 *   3. soak: for --duration (default 10m) every session makes a request every --interval (default
 *      10s, jittered); round-trip p50/p99;
 *   4. close: every session logs out.
 * Errors of every phase are counted by code (an unexpected close of a session is an error). The
 * server's and the load process's RSS are sampled every --sample (default 1s) and plotted to
 * OUT/load.svg (and OUT/load.png with --png, rendered by Debian's chromium); the figures go to
 * OUT/load.json (OUT = --out, default bench/results; `--replot FILE` redraws the chart of a saved
 * run). Memory is "flat" when the server's RSS in the
 * last fifth of the soak is within 10 % of its RSS in the second fifth (the first fifth is warm-up).
 * Bounded in count and time: every phase has a deadline; the process exits 1 only when the run
 * itself could not be carried out, never on timing.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { OpenPgpClientKey } from '../src/client/client-key.js';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { parseDuration } from '../src/protocol/duration.js';
import { benchClient, startBenchServer } from './support/bench-server.js';
import { lineChartSvg } from './support/svg-chart.js';

const { values } = parseArgs({
  options: {
    logins: { type: 'string' },
    sessions: { type: 'string' },
    identities: { type: 'string' },
    duration: { type: 'string' },
    interval: { type: 'string' },
    sample: { type: 'string' },
    'open-concurrency': { type: 'string' },
    out: { type: 'string' },
    png: { type: 'boolean' },
    replot: { type: 'string' },
    json: { type: 'boolean' },
  },
});
const LOGINS = Number(values.logins ?? 1000);
const SESSIONS = Number(values.sessions ?? 10_000);
const IDENTITIES = Number(values.identities ?? 100);
const DURATION_MS = parseDuration(values.duration ?? '10m', '--duration');
const INTERVAL_MS = parseDuration(values.interval ?? '10s', '--interval');
const SAMPLE_MS = parseDuration(values.sample ?? '1s', '--sample');
const OPEN_CONCURRENCY = Number(values['open-concurrency'] ?? 200);
const OUT = resolve(values.out ?? new URL('./results', import.meta.url).pathname);
for (const [name, v] of Object.entries({ LOGINS, SESSIONS, IDENTITIES, OPEN_CONCURRENCY }))
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name.toLowerCase()} must be a whole number ≥ 1`);

const log = (s: string) => process.stderr.write(`${s}\n`);
const PASS = 'load';
if (values.replot) {
  // Only redraw the chart of an earlier run: --replot bench/results/load.json [--png].
  await plot(JSON.parse(readFileSync(values.replot, 'utf8')), OUT, values.png === true);
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

  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
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
    },
    goals: { errors: 0, memory: 'flat (soak RSS growth within 10 %)' },
    samples,
    markers,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'load.json'), `${JSON.stringify(result, null, 2)}\n`);
  await plot(result, OUT, values.png === true);

  const { samples: _s, markers: _m, ...summary } = result;
  if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  log(
    [
      `login burst: ${result.loginBurst.ok}/${LOGINS} in ${result.loginBurst.seconds} s = ${result.loginBurst.loginsPerSec}/s, p50 ${result.loginBurst.latencyMs.p50} ms, p99 ${result.loginBurst.latencyMs.p99} ms; server ${result.loginBurst.serverCpuMsPerLogin} ms CPU per login`,
      `sessions opened: ${result.openSessions.ok}/${SESSIONS} at ${result.openSessions.loginsPerSec}/s, p50 ${result.openSessions.latencyMs.p50} ms, p99 ${result.openSessions.latencyMs.p99} ms; server ${result.openSessions.serverCpuMsPerLogin} ms CPU per login`,
      `soak: ${result.soak.requests} requests in ${result.soak.seconds} s (${result.soak.requestsPerSec}/s), round trip p50 ${result.soak.roundTripMs.p50} ms, p99 ${result.soak.roundTripMs.p99} ms; server busy ${(result.soak.serverCpuCores * 100).toFixed(1)} % of a core`,
      `errors: ${result.errors.total} (goal 0)${result.errors.total ? ` ${JSON.stringify(errors)}` : ''}`,
      `server RSS: max ${result.memory.serverRssMaxMiB} MiB; soak ${result.memory.serverRssSoakEarlyMiB} → ${result.memory.serverRssSoakLateMiB} MiB (${(growth * 100).toFixed(1)} %, ${result.memory.flat ? 'flat' : 'NOT flat'})`,
      `written: ${join(OUT, 'load.json')}, ${join(OUT, 'load.svg')}${values.png ? `, ${join(OUT, 'load.png')}` : ''}`,
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
  writeFileSync(join(out, 'load.svg'), svg);
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
