/**
 * `npm run fuzz [-- --runs 100000] [--network-runs N] [--target NAME] [--seed N] [--json]` — every
 * fuzz target with `runs` inputs each (default 10,000; the network targets a tenth unless
 * --network-runs is given), in process and against a real server on 127.0.0.1. Prints,
 * per target: inputs tried, accepted, rejected (typed errors), crashes (any other exception), 5xx
 * answers, time; and the process's peak memory. `--out FILE` writes the report (nothing is written
 * without it); into bench/results/ only a full run (100,000 inputs per target, network targets
 * included, every target), as for the benchmarks (bench/README.md). Exit 1 on any crash or 5xx,
 * with the smallest failing input fast-check found and the seed to replay it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { refuseSmokeInResults } from '../bench/support/bench-cli.js';
import { startServer } from '../src/server/app.js';
import { networkTargets, ServerError } from './http-targets.js';
import { recoveryBodies, recoveryNetworkTargets, recoveryTargets } from './recovery-targets.js';
import { type FuzzTarget, material, targets } from './targets.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    target: { type: 'string' },
    seed: { type: 'string' },
    'network-runs': { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string' },
    'smoke-ok': { type: 'boolean' },
  },
});
const RUNS = Number(values.runs ?? 10_000);
/** A full run, the only kind bench/results/fuzz.json holds. */
const FULL_RUNS = 100_000;
const networkRuns = Number(values['network-runs'] ?? Math.ceil(RUNS / 10));
const notFullBecause = [
  ...(RUNS < FULL_RUNS ? [`--runs ${RUNS} (full run: ${FULL_RUNS})`] : []),
  ...(networkRuns < FULL_RUNS ? [`--network-runs ${networkRuns} (full run: ${FULL_RUNS})`] : []),
  ...(values.target ? [`--target ${values.target} (full run: every target)`] : []),
];
if (values.out) {
  try {
    refuseSmokeInResults({
      full: notFullBecause.length === 0,
      notFullBecause,
      target: values.out,
      smokeOk: values['smoke-ok'] ?? false,
      fullRunCommand: `npm run fuzz -- --runs ${FULL_RUNS} --network-runs ${FULL_RUNS} --out bench/results/fuzz.json`,
    });
  } catch (err) {
    process.stderr.write(`fuzz: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
const log = (s: string) => process.stderr.write(`${s}\n`);
const root = mkdtempSync(join(tmpdir(), 'kl-fuzz-'));
const big = { burst: 1e9, perSecond: 1e9 };

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 100);
sampler.unref();

const m = await material(join(root, 'material'));
const server = await startServer({
  dataDir: join(root, 'server'),
  passphrase: 'fuzz passphrase',
  host: '127.0.0.1',
  port: 0,
  rateLimits: { registerPerIp: big, registerPerIdentity: big, loginPerIp: big, loginPerIdentity: big, emailPerIdentity: big, deviceRequestPerIp: big, recoveryPerIp: big, recoveryGlobal: big },
  // Codes are accepted and dropped: the route runs in full without an SMTP relay to flood.
  mailer: { sendCode: async () => {} },
});
const recoveries = await recoveryBodies(server.ledger, Date.now());
const all: FuzzTarget[] = [
  ...targets(m),
  ...recoveryTargets(m.genesis),
  ...networkTargets(server),
  ...recoveryNetworkTargets(server, recoveries),
].filter(
  (t) => !values.target || t.name.toLowerCase().includes(values.target.toLowerCase()),
);

const rows: Array<Record<string, unknown>> = [];
let failed = false;
for (const t of all) {
  // Network targets are slower: a tenth of the inputs unless --network-runs says otherwise.
  const network = t.name.startsWith('HTTP') || t.name.startsWith('WebSocket');
  const runs = network ? networkRuns : RUNS;
  const counts = { accepted: 0, rejected: 0, crashes: 0, serverErrors: 0 };
  const t0 = performance.now();
  const result = await fc.check(
    fc.asyncProperty(t.arbitrary, async (input) => {
      try {
        counts[await t.run(input)] += 1;
        return true;
      } catch (err) {
        if (err instanceof ServerError) counts.serverErrors += 1;
        else counts.crashes += 1;
        throw err;
      }
    }),
    { numRuns: runs, ...(values.seed ? { seed: Number(values.seed) } : {}), endOnFailure: true },
  );
  const seconds = (performance.now() - t0) / 1000;
  const row = { target: t.name, inputs: result.numRuns, ...counts, seconds: +seconds.toFixed(1) };
  rows.push(row);
  log(
    `${t.name.padEnd(38)} ${String(result.numRuns).padStart(7)} inputs  ${String(counts.accepted).padStart(6)} accepted  ${String(counts.rejected).padStart(7)} rejected  ${counts.crashes} crashes  ${counts.serverErrors} 5xx  ${seconds.toFixed(1)} s`,
  );
  if (result.failed) {
    failed = true;
    log(`  FAILED (seed ${result.seed}, path ${result.counterexamplePath}): ${fc.stringify(result.counterexample).slice(0, 500)}`);
    log(`  ${String((result.errorInstance as Error)?.stack ?? result.errorInstance).slice(0, 800)}`);
  }
}
clearInterval(sampler);
await server.close();
await m.close();
rmSync(root, { recursive: true, force: true });
const report = {
  date: new Date().toISOString(),
  full: notFullBecause.length === 0,
  runsPerTarget: RUNS,
  networkRunsPerTarget: networkRuns,
  peakRssMiB: Math.round(peakRss / 1048576),
  targets: rows,
};
if (values.out) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
log(`peak memory ${report.peakRssMiB} MiB; ${failed ? 'FAILURES above' : 'no crashes, no 5xx'}`);
if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.exit(failed ? 1 : 0);
