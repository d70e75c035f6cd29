/**
 * The benchmarks' shared command line (bench/support/bench-cli.ts, bench/README.md): every
 * benchmark, run in its smallest smoke configuration with `--json`, prints exactly one JSON document
 * on stdout with its figures and their baselines and a run record marked `"full": false`, and
 * writes nothing into the working tree; `--out` writes the same document; `--out` into
 * bench/results/ with smoke parameters is refused (committed results are full runs only).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseBenchArgs, refuseSmokeInResults } from '../bench/support/bench-cli.js';
import { isKlError } from '../src/protocol/errors.js';
import { tempDir } from './helpers.js';
import { BENCHMARKS, bench, benchTreeState, REPO, RESULTS, smokeJsonSuite } from './support/bench-runs.js';

// The authentication benchmark's smoke run here; the others in test/bench-cli-engines.test.ts and
// test/bench-cli-clients.test.ts (each file well within the runner's time limit per file).
smokeJsonSuite('benchmarks: --json of the authentication benchmark', ['auth']);

describe('benchmarks: nothing written by default, --out, full runs only in bench/results', () => {
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
