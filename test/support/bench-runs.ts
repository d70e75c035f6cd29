/**
 * What the benchmark command-line tests share (test/bench-cli.test.ts, test/bench-cli-engines.test.ts):
 * each benchmark's smallest smoke configuration and the figures it must report, running one, and
 * what bench/ holds before and after.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

export const REPO = new URL('../..', import.meta.url).pathname;
export const RESULTS = join(REPO, 'bench', 'results');

/** A finished benchmark process. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bench/`script` with `args` (cwd: the repository), never throwing on a non-zero exit. */
export function bench(script: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'bench', script), ...args],
      { cwd: REPO, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err.code as number | undefined) ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** What git and the file system say about bench/: changes, untracked and ignored files, results' sizes and times. */
export function benchTreeState(): string {
  const status = execFileSync(
    'git',
    ['status', '--porcelain', '--ignored', '--untracked-files=all', '--', 'bench'],
    { cwd: REPO, encoding: 'utf8' },
  );
  const results = readdirSync(RESULTS, { recursive: true })
    .map(String)
    .sort()
    .map((f) => {
      const s = statSync(join(RESULTS, f));
      return `${f} ${s.size} ${s.mtimeMs}`;
    });
  return `${status}\n${results.join('\n')}`;
}

/** The value at a dotted path of a JSON document. */
export function at(doc: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], doc);
}

/** Each benchmark's smallest smoke configuration and the figures (with their baselines) it must report. */
export const BENCHMARKS: Array<{
  name: string;
  script: string;
  smoke: string[];
  /** Figures that must be numbers; the baselines among them must be > 0. */
  figures: string[];
  baselines: string[];
}> = [
  {
    name: 'auth',
    script: 'auth.ts',
    smoke: ['--clients', '2', '--logins', '10', '--concurrency', '2', '--seconds', '1'],
    figures: [
      'loginsPerSecPerCore',
      'ratio',
      'keyledger.serverCpuMsPerLogin',
      'keyledger.clientCpuMsPerLogin',
      'keyledger.single.latencyMs.p50',
      'profile.groups.crypto.msPerLogin',
    ],
    baselines: ['tlsHandshakesPerSecPerCore'],
  },
  {
    name: 'register',
    script: 'register.ts',
    smoke: ['--registrations', '10', '--concurrency', '2', '--profile-registrations', '5'],
    figures: [
      'registrationsPerSecPerCore',
      'ratio',
      'keyledger.serverCpuMsPerRegistration',
      'profile.serverCpuMsPerRegistration',
      'profile.parts.openpgp.share',
    ],
    baselines: ['ledgerCommitsPerSecPerCore'],
  },
  {
    name: 'session',
    script: 'session.ts',
    smoke: ['--idle-sessions', '20', '--frames', '50', '--round-trips', '50'],
    figures: ['bulkMBps', 'bulkRatio', 'roundTripsPerSec', 'roundTripRatio', 'bytesPerIdleSession'],
    baselines: ['rawAesGcmMBps', 'wsEchoRoundTripsPerSec', 'wsBytesPerIdleConnection'],
  },
  {
    name: 'ledger',
    script: 'ledger.ts',
    smoke: ['--identities', '200', '--commits', '100', '--samples', '100'],
    figures: [
      'commit.3.txPerSecond',
      'lookup.lookupAndProofMs.p99',
      'lookup.memoryWithLedgerOpen.rssBytes',
      'verify.seconds',
      'verify.commandSeconds',
    ],
    baselines: [
      'baselineEd25519SignPerSecond',
      'commit.0.baselineRawSqliteRowsPerSecond',
      'commit.3.baselineRawSqliteRowsPerSecond',
      'lookup.baselineRawSqliteSelectMs.p50',
      'verify.baselineEd25519VerifyOnlySeconds',
    ],
  },
  {
    name: 'ledger-evm',
    script: 'ledger.ts',
    smoke: ['--engine', 'evm', '--registrations', '10', '--in-flight', '2', '--revocations', '3'],
    figures: ['evmAnvil.perSecond', 'evmAnvil.latencyMs.p50', 'revocationPropagation.visibleOnSecond.p99'],
    baselines: ['embedded.perSecond', 'revocationPropagation.commitOnFirst.p50'],
  },
  {
    name: 'ledger-etcd',
    script: 'ledger.ts',
    smoke: ['--engine', 'etcd', '--registrations', '10', '--in-flight', '2', '--revocations', '3'],
    figures: [
      'etcdCluster.perSecond',
      'etcdCluster.latencyMs.p50',
      'revocationPropagation.visibleOnSecond.p99',
    ],
    baselines: ['embedded.perSecond', 'revocationPropagation.commitOnFirst.p50'],
  },
  {
    name: 'ledger-open',
    script: 'ledger-open.ts',
    smoke: ['--transactions', '200', '--block-size', '50'],
    figures: ['openMs.readOnlyWithCheckpoint', 'openMs.nodeWithCheckpoint', 'blocks'],
    baselines: ['openMs.baselineNodeNoCheckpoint'],
  },
  {
    name: 'cli-start',
    script: 'cli-start.ts',
    smoke: ['--runs', '1'],
    figures: [
      'commands.whoami.medianMs',
      'commands.audit.medianMs',
      'slowest.medianMs',
      'serveReadyMs.medianMs',
    ],
    baselines: ['baselineBareNodeMs.medianMs'],
  },
  {
    name: 'load',
    script: 'load.ts',
    smoke: [
      ...['--logins', '6', '--sessions', '6', '--identities', '2'],
      ...['--duration', '1s', '--interval', '200ms', '--sample', '100ms'],
    ],
    figures: ['loginBurst.ok', 'openSessions.ok', 'soak.requests', 'errors.total', 'memory.serverRssMaxMiB'],
    baselines: ['memory.baselineServerRssIdleMiB'],
  },
];

/**
 * Runs benchmark `b` in its smoke configuration with `--json` and checks the one document it prints:
 * its run record, its parameters, its figures and baselines, and that nothing was written under bench/.
 */
export async function checkSmokeJson(b: (typeof BENCHMARKS)[number]): Promise<void> {
  const before = benchTreeState();
  const r = await bench(b.script, [...b.smoke, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout); // the whole of stdout is one document
  assert.equal(doc.run.benchmark, b.name);
  assert.equal(doc.run.full, false);
  assert.ok(doc.run.notFullBecause.length > 0);
  assert.match(doc.run.fullRunCommand, /--out bench\/results/);
  assert.match(doc.run.date, /^\d{4}-\d\d-\d\dT/);
  assert.equal(doc.run.node, process.version);
  assert.ok(doc.run.machine.cpus >= 1 && doc.run.machine.cpuModel.length > 0);
  assert.match(doc.run.git.commit, /^[0-9a-f]{40}$/);
  // The parameters given are recorded, as numbers for counts.
  const given = b.smoke.filter((a) => a !== '--engine' && a !== 'evm' && a !== 'etcd');
  for (let i = 0; i < given.length; i += 2) {
    const v = doc.run.params[given[i]!.slice(2)];
    assert.equal(String(v), given[i + 1], `${given[i]} recorded`);
  }
  for (const f of b.figures) assert.equal(typeof at(doc, f), 'number', `${f} in ${r.stdout.slice(0, 2000)}`);
  for (const f of b.baselines) assert.ok((at(doc, f) as number) > 0, `baseline ${f} = ${at(doc, f)}`);
  assert.equal(benchTreeState(), before, 'nothing written under bench/');
}

/** A suite of the `--json` smoke runs of the benchmarks named (each its own test). */
export function smokeJsonSuite(title: string, names: readonly string[]): void {
  describe(title, () => {
    for (const b of BENCHMARKS.filter((x) => names.includes(x.name))) {
      it(`${b.name}: --json prints one JSON document with its figures, baselines and run record; writes nothing`, () =>
        checkSmokeJson(b));
    }
  });
}
