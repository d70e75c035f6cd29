/**
 * `npm run bench:cli` — how fast each `keyledger` command starts: the wall time from spawning
 * `bin/keyledger.js` to its exit, for commands that do their whole job locally (help, whoami,
 * status of an unregistered home, config check, admin invite, ledger show …) and, for those that
 * talk to a server, until they stop at their first step (no server registered in the home: the
 * command's modules are loaded and its code runs). `serve` is timed to its "listening" line on an
 * existing data directory (that includes unsealing the node keys with scrypt and opening the
 * ledger). Baseline, same run: a bare `node -e 0`. Goal: every command under 300 ms on this machine.
 * Needs `npm run build` (the command runs the compiled dist/).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './support/bench-cli.js';

const args = benchArgs({
  name: 'cli-start',
  command: 'npm run bench:cli --',
  summary: 'Start time of every keyledger command, next to a bare Node start.',
  params: {
    runs: {
      kind: 'count',
      full: '15',
      fullWhen: 'atLeast',
      help: 'runs per command (median and worst kept)',
    },
  },
  out: 'file',
  resultsFile: 'cli-start.json',
});
const RUNS = args.count('runs');
const GOAL_MS = 300;
const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const log = (s: string) => process.stderr.write(`${s}\n`);
const dir = mkdtempSync(join(tmpdir(), 'kl-cli-start-'));
const home = join(dir, 'home');
const data = join(dir, 'data');
const env = {
  ...process.env,
  KEYLEDGER_PASSPHRASE: 'bench passphrase',
  KEYLEDGER_SERVER_PASSPHRASE: 'bench node passphrase',
};

/** Wall milliseconds of one run of `node argv…` (stdin closed, output discarded). */
function once(argv: string[]): { ms: number; code: number | null } {
  const t = performance.now();
  const r = spawnSync(process.execPath, argv, { env, stdio: ['ignore', 'ignore', 'ignore'] });
  return { ms: performance.now() - t, code: r.status };
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
  return { medianMs: at(0.5), worstMs: +sorted[sorted.length - 1]!.toFixed(1) };
}

/** Milliseconds until `serve` prints its "listening" line, then stops it. */
async function serveReady(): Promise<number> {
  const t = performance.now();
  const child = spawn(process.execPath, [bin, 'serve', '--data', data, '--port', '0', '--quiet'], {
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const ms = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('listening on')) resolve(performance.now() - t);
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before listening`)));
  });
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return ms;
}

try {
  log('setting up: a home with a key, a data directory with a ledger');
  const setup = (argv: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...argv], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`keyledger ${argv.join(' ')}: ${r.stderr}`);
  };
  setup(['init', '--id', 'bench@example.org', '--home', home]);
  setup(['ledger', 'init', '--data', data]);
  const commands: Record<string, string[]> = {
    '--version': ['--version'],
    '--help': ['--help'],
    'serve --help': ['serve', '--help'],
    whoami: ['whoami', '--home', home],
    'status (unregistered home)': ['status', '--home', home],
    'login (stops: not registered)': ['login', '--home', home],
    'send (stops: not registered)': ['send', 'hi', '--home', home],
    'shell (stops: not registered)': ['shell', '--home', home],
    'session list (stops: not registered)': ['session', 'list', '--home', home],
    'register (stops: no --invite)': ['register', '--server', 'http://127.0.0.1:9', '--home', home],
    'rotate-key (stops: not registered)': ['rotate-key', '--home', home],
    'config check': ['config', 'check', '--data', data],
    'admin invite': ['admin', 'invite', 'someone@example.org', '--data', data],
    'admin sessions (stops: no server)': ['admin', 'sessions', '--data', data],
    'ledger show': ['ledger', 'show', '--data', data],
    'ledger verify': ['ledger', 'verify', '--data', data, '--quiet'],
    audit: ['audit', '--data', data],
  };
  const baseline: number[] = [];
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  // Interleaved rounds: a busy moment of the machine falls on every command alike.
  for (let round = 0; round < RUNS; round++) {
    baseline.push(once(['-e', '0']).ms);
    for (const [name, argv] of Object.entries(commands)) samples[name]!.push(once([bin, ...argv]).ms);
    process.stderr.write(`\rround ${round + 1}/${RUNS}`);
  }
  process.stderr.write('\n');
  const serve: number[] = [];
  for (let i = 0; i < Math.min(RUNS, 5); i++) serve.push(await serveReady());
  const results = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summary(v)]));
  const bare = summary(baseline);
  const slowest = Object.entries(results).sort((a, b) => b[1].medianMs - a[1].medianMs)[0]!;
  log(`baseline: bare node -e 0  median ${bare.medianMs} ms`);
  for (const [name, r] of Object.entries(results))
    log(`${name.padEnd(40)} median ${String(r.medianMs).padStart(6)} ms  worst ${r.worstMs} ms`);
  const serveReadyMs = summary(serve);
  log(`serve until listening (keys unsealed, ledger opened): median ${serveReadyMs.medianMs} ms`);
  await args.finish({
    goalMs: GOAL_MS,
    allCommandsUnderGoal: Object.values(results).every((r) => r.medianMs < GOAL_MS),
    slowest: { command: slowest[0], medianMs: slowest[1].medianMs },
    baselineBareNodeMs: bare,
    commands: results,
    serveReadyMs,
    notes: [
      'wall time from spawn to exit, stdin closed, output discarded; median and worst of the runs.',
      'commands that need a server stop at their first step here (nothing registered in the home): the time is loading and starting them.',
      'serveReadyMs includes unsealing the node keys (scrypt, N=2^15) and opening the ledger.',
    ],
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
