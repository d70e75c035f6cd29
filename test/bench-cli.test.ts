/**
 * The benchmarks' shared command line (bench/support/bench-cli.ts, bench/README.md): every
 * benchmark, run in its smallest smoke configuration with `--json`, prints exactly one JSON document
 * on stdout with its figures and their baselines and a run record marked `"full": false`, and
 * writes nothing into the working tree; `--out` writes the same document; `--out` into
 * bench/results/ with smoke parameters is refused (committed results are full runs only).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseBenchArgs, refuseSmokeInResults } from '../bench/support/bench-cli.js';
import { isKlError } from '../src/protocol/errors.js';
import { tempDir } from './helpers.js';

const REPO = new URL('..', import.meta.url).pathname;
const RESULTS = join(REPO, 'bench', 'results');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bench/`script` with `args` (cwd: the repository), never throwing on a non-zero exit. */
function bench(script: string, args: string[]): Promise<Run> {
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
function benchTreeState(): string {
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

function at(doc: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], doc);
}

/** Each benchmark's smallest smoke configuration and the figures (with their baselines) it must report. */
const BENCHMARKS: Array<{
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

describe('benchmarks: --json, nothing written by default, --out, full runs only in bench/results', () => {
  for (const b of BENCHMARKS) {
    it(`${b.name}: --json prints one JSON document with its figures, baselines and run record; writes nothing`, async () => {
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
      for (const f of b.figures)
        assert.equal(typeof at(doc, f), 'number', `${f} in ${r.stdout.slice(0, 2000)}`);
      for (const f of b.baselines) assert.ok((at(doc, f) as number) > 0, `baseline ${f} = ${at(doc, f)}`);
      assert.equal(benchTreeState(), before, 'nothing written under bench/');
    });
  }

  it('--out FILE writes exactly the document printed with --json; --out DIR (load) writes load.json and its chart', async () => {
    const before = benchTreeState();
    const dir = tempDir('kl-bench-out-');
    const file = join(dir, 'nested', 'open.json');
    const open = await bench('ledger-open.ts', [
      '--transactions',
      '200',
      '--block-size',
      '50',
      '--json',
      '--out',
      file,
    ]);
    assert.equal(open.code, 0, open.stderr);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), JSON.parse(open.stdout));
    assert.deepEqual(readdirSync(join(dir, 'nested')), ['open.json'], 'no temporary file left');
    // Through the npm script too (-s: without npm's banner on stdout).
    const viaNpm = await new Promise<string>((resolve, reject) =>
      execFile(
        'npm',
        ['run', '-s', 'bench:open', '--', '--transactions', '100', '--block-size', '50', '--json'],
        { cwd: REPO },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    assert.equal(JSON.parse(viaNpm).run.params.transactions, 100);

    const load = BENCHMARKS.find((b) => b.name === 'load')!;
    const out = join(dir, 'load');
    const r = await bench('load.ts', [...load.smoke, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'without --json nothing goes to stdout');
    const saved = JSON.parse(readFileSync(join(out, 'load.json'), 'utf8'));
    assert.equal(saved.run.full, false);
    assert.equal(saved.errors.total, 0);
    assert.match(readFileSync(join(out, 'load.svg'), 'utf8'), /<polyline data-series="server RSS"/);

    // --replot of that smoke run: into bench/results refused, elsewhere drawn.
    const replot = await bench('load.ts', ['--replot', join(out, 'load.json'), '--out', 'bench/results']);
    assert.equal(replot.code, 2, replot.stderr);
    assert.match(replot.stderr, /refusing to write a smoke run into bench\/results\//);
    const again = join(dir, 'again');
    const ok = await bench('load.ts', ['--replot', join(out, 'load.json'), '--out', again]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(readFileSync(join(again, 'load.svg'), 'utf8'), readFileSync(join(out, 'load.svg'), 'utf8'));
    assert.equal(benchTreeState(), before, 'nothing written under bench/');
  });

  it('--out into bench/results/ with smoke parameters is refused, also through a symbolic link', async () => {
    const before = benchTreeState();
    const link = join(tempDir('kl-bench-link-'), 'results');
    symlinkSync(RESULTS, link);
    for (const b of BENCHMARKS) {
      const targets =
        b.name === 'load'
          ? ['bench/results/', link]
          : b.name === 'ledger-open'
            ? [`bench/results/${b.name}.json`, join(link, 'new', `${b.name}.json`)]
            : [`bench/results/${b.name}.json`];
      for (const target of targets) {
        const r = await bench(b.script, [...b.smoke, '--json', '--out', target]);
        assert.equal(r.code, 2, `${b.name} --out ${target}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.match(
          r.stderr,
          /refusing to write a smoke run into bench\/results\/ \(--\S+ \S+ \(full run: /,
        );
        assert.match(r.stderr, /full runs only/);
        assert.match(r.stderr, /--smoke-ok/);
      }
    }
    assert.ok(!existsSync(join(RESULTS, 'new')));
    assert.equal(benchTreeState(), before, 'nothing written under bench/');
  });

  it('a run is full only when no parameter is lighter than the full run; --smoke-ok lets a smoke run through', () => {
    const spec = {
      name: 'x',
      command: 'npm run x --',
      summary: 'x',
      params: {
        n: { kind: 'count', full: '100', fullWhen: 'atLeast', help: '' },
        every: { kind: 'duration', full: '10s', fullWhen: 'atMost', help: '' },
        at: { kind: 'count', full: '8', fullWhen: 'any', help: '' },
      },
      out: 'file',
      resultsFile: 'x.json',
    } as const;
    const parse = (argv: string[]) => parseBenchArgs(spec, argv);
    assert.equal(parse([]).record.full, true);
    assert.equal(parse(['--n', '1000', '--every', '5s', '--at', '1']).record.full, true);
    assert.deepEqual(parse(['--n', '99']).record.notFullBecause, ['--n 99 (full run: 100)']);
    assert.equal(parse(['--every', '11s']).record.full, false);
    assert.equal(parse(['--n', '1000']).count('n'), 1000);
    assert.equal(parse(['--every', '2m']).ms('every'), 120_000);
    // A full run may go to bench/results; a smoke run only with --smoke-ok (and stays marked).
    assert.equal(parse(['--out', join(RESULTS, 'x.json')]).out, join(RESULTS, 'x.json'));
    const smoke = parse(['--n', '5', '--smoke-ok', '--out', join(RESULTS, 'x.json')]);
    assert.equal(smoke.record.full, false);
    assert.throws(
      () => parse(['--n', '5', '--out', join(RESULTS, 'sub', 'x.json')]),
      (e) => isKlError(e, 'KL_BAD_INPUT') && /npm run x -- --out bench\/results\/x.json/.test(e.message),
    );
    assert.doesNotThrow(() =>
      refuseSmokeInResults({ full: false, target: tempDir(), smokeOk: false, fullRunCommand: '' }),
    );
    for (const bad of [
      ['--n', '0'],
      ['--n', '1.5'],
      ['--n', 'ten'],
      ['--every', 'soon'],
    ])
      assert.throws(
        () => parse(bad),
        (e) => isKlError(e, 'KL_BAD_INPUT') && e.message.includes(bad[0]!),
      );
    assert.throws(() => parse(['--nope']), /Unknown option '--nope'/);
  });
});
