/**
 * The command line every benchmark shares (bench/README.md): its parameters with their full-run
 * values, `--json` (exactly one JSON document on stdout; progress and prose go to stderr), `--out`
 * (the only way a benchmark writes a results file; nothing is written by default), `--smoke-ok`, and
 * the run record at the top of every results document: parameters, whether the run was full, date,
 * Node, machine and git commit.
 *
 * A run is full when no parameter is lighter than its full-run value (a smaller count or duration,
 * or a longer interval). Results in bench/results/ are full runs only: `--out` into that folder is
 * refused for any other run unless `--smoke-ok` is given, and the record says `"full": false`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, totalmem } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../src/protocol/duration.js';
import { KlError } from '../../src/protocol/errors.js';

/** The repository root and its bench/results folder (where committed results live). */
const REPO = resolve(new URL('../..', import.meta.url).pathname);
/** Absolute path of bench/results/. */
export const RESULTS_DIR = join(REPO, 'bench', 'results');

/** One parameter of a benchmark. */
export interface ParamSpec {
  /** `count`: a whole number ≥ 1; `duration`: `10m`, `500ms`…; `text`: any string. */
  kind: 'count' | 'duration' | 'text';
  /** The value of a full run, also the default. Absent for an optional text parameter. */
  full?: string;
  /**
   * How a value compares with a full run: `atLeast` (a size: less is a smoke run), `atMost` (an
   * interval: longer is lighter, so a smoke run), `any` (a setting that does not shrink the run).
   */
  fullWhen: 'atLeast' | 'atMost' | 'any';
  /** One line for `--help`. */
  help: string;
}

/** What a benchmark declares about its command line. */
export interface BenchSpec<P extends Record<string, ParamSpec>> {
  /** Short name, recorded in the run record: `auth`, `session`, `ledger`… */
  name: string;
  /** The command that runs it, for messages and the record: `npm run bench:auth --`. */
  command: string;
  /** What the benchmark measures, first line of `--help`. */
  summary: string;
  params: P;
  /** Extra boolean flags that do not change what is measured (e.g. `png`), with their help. */
  flags?: Record<string, string>;
  /** `file`: `--out FILE` is the results document; `dir`: `--out DIR` gets `resultsFile` and more. */
  out: 'file' | 'dir';
  /** The results file's name in bench/results/ (and in `--out DIR`): `auth.json`. */
  resultsFile: string;
}

/** How a run was made, at the top of every results document. */
export interface RunRecord {
  benchmark: string;
  /** True when no parameter was lighter than its full-run value. */
  full: boolean;
  /** Why the run is not full, one `--name value (full run: x)` per lighter parameter. */
  notFullBecause?: string[];
  /** The parameters of this run (counts as numbers, durations and text as given). */
  params: Record<string, string | number | undefined>;
  /** The command of a full run, writing its committed results file. */
  fullRunCommand: string;
  argv: string[];
  date: string;
  node: string;
  machine: {
    cpuModel: string;
    cpus: number;
    platform: string;
    arch: string;
    memoryGiB: number;
    /** 1, 5 and 15-minute load averages when the run started: a busy machine shows here. */
    loadAverageAtStart: number[];
  };
  /** The commit measured; `dirty` when tracked files differed from it (bench/results aside). */
  git: { commit: string | null; dirty: boolean | null };
}

/** A parsed benchmark command line. */
export interface BenchArgs<P extends Record<string, ParamSpec>> {
  /** A `count` parameter. */
  count(name: keyof P & string): number;
  /** A `duration` parameter, in milliseconds. */
  ms(name: keyof P & string): number;
  /** A `text` parameter (undefined when optional and not given). */
  text(name: keyof P & string): string | undefined;
  /** An extra boolean flag. */
  flag(name: string): boolean;
  /** `--json` was given: print the results document on stdout and nothing else there. */
  json: boolean;
  /** `--out`, absolute, when given. */
  out: string | undefined;
  /** `--smoke-ok` was given. */
  smokeOk: boolean;
  /** The run record (its date is when the command line was read). */
  record: RunRecord;
  /** Writes `--out` (when given) and prints the document with `--json`; returns the document. */
  finish<R extends object>(result: R): Promise<{ run: RunRecord } & R>;
  /** In `--out DIR` mode, where a further output file named `name` goes (undefined without --out). */
  outFile(name: string): string | undefined;
}

function fullRunCommand(spec: BenchSpec<Record<string, ParamSpec>>): string {
  const target = spec.out === 'dir' ? 'bench/results' : `bench/results/${spec.resultsFile}`;
  return `${spec.command} --out ${target}`;
}

function help(spec: BenchSpec<Record<string, ParamSpec>>): string {
  const lines = [spec.summary, '', `Usage: ${spec.command} [options]`, '', 'Options:'];
  for (const [name, p] of Object.entries(spec.params))
    lines.push(
      `  --${name} ${p.kind === 'count' ? 'N' : p.kind === 'duration' ? 'DURATION' : 'VALUE'}`.padEnd(30) +
        `${p.help}${p.full !== undefined ? ` (full run: ${p.full})` : ''}`,
    );
  for (const [name, h] of Object.entries(spec.flags ?? {})) lines.push(`  --${name}`.padEnd(30) + h);
  lines.push(
    '  --json'.padEnd(30) + 'print the results document (JSON) on stdout; progress goes to stderr',
    `  --out ${spec.out === 'dir' ? 'DIR' : 'FILE'}`.padEnd(30) +
      `write the results ${spec.out === 'dir' ? `(${spec.resultsFile} and charts) into DIR` : 'document to FILE'}; nothing is written without it`,
    '  --smoke-ok'.padEnd(30) + 'allow --out into bench/results/ for a run smaller than a full run',
    '',
    `Full run: ${fullRunCommand(spec)}`,
  );
  return `${lines.join('\n')}\n`;
}

/** `path` with symbolic links of its existing part resolved (the rest may not exist yet). */
function realish(path: string): string {
  const abs = resolve(path);
  let existing = abs;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  return join(realpathSync(existing), relative(existing, abs));
}

/** True when `path` is bench/results/ or inside it (links resolved). */
export function isInResults(path: string): boolean {
  const p = realish(path);
  const results = realish(RESULTS_DIR);
  return p === results || p.startsWith(results + sep);
}

/**
 * Refuses to write a run that is not full into bench/results/ (committed results are full runs
 * only). `target` is the results file, or the folder in `dir` mode.
 * @throws KlError `KL_BAD_INPUT` with the reasons and the full-run command.
 */
export function refuseSmokeInResults(o: {
  full: boolean;
  notFullBecause?: string[];
  target: string;
  smokeOk: boolean;
  fullRunCommand: string;
}): void {
  if (o.full || o.smokeOk || !isInResults(o.target)) return;
  throw new KlError(
    'KL_BAD_INPUT',
    `refusing to write a smoke run into bench/results/ (${(o.notFullBecause ?? ['not a full run']).join(', ')}): ` +
      `the results committed there are full runs only. Run the full benchmark (${o.fullRunCommand}), ` +
      'write elsewhere with --out, or add --smoke-ok to write it anyway (it stays marked "full": false).',
  );
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

/** Parses `parameter` of kind `kind` (throws KL_BAD_INPUT with the option's name). */
function parseValue(name: string, p: ParamSpec, text: string): number | string {
  if (p.kind === 'count') {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1)
      throw new KlError('KL_BAD_INPUT', `--${name} must be a whole number ≥ 1`);
    return n;
  }
  if (p.kind === 'duration') return parseDuration(text, `--${name}`);
  return text;
}

/**
 * Reads the command line of a benchmark: `argv` (default `process.argv.slice(2)`). Prints `--help`
 * and exits 0; on a usage error or a refused `--out` prints one line to stderr and exits 2.
 */
export function benchArgs<P extends Record<string, ParamSpec>>(
  spec: BenchSpec<P>,
  argv: string[] = process.argv.slice(2),
): BenchArgs<P> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help(spec));
    process.exit(0);
  }
  try {
    return parseBenchArgs(spec, argv);
  } catch (err) {
    if (err instanceof KlError) {
      process.stderr.write(`bench ${spec.name}: ${err.message}\n`);
      process.exit(2);
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`bench ${spec.name}: ${(err as Error).message} (see --help)\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** {@link benchArgs} without the exits: throws KlError `KL_BAD_INPUT` (or parseArgs' error). */
export function parseBenchArgs<P extends Record<string, ParamSpec>>(
  spec: BenchSpec<P>,
  argv: string[],
): BenchArgs<P> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    json: { type: 'boolean' },
    out: { type: 'string' },
    'smoke-ok': { type: 'boolean' },
  };
  for (const name of Object.keys(spec.params)) options[name] = { type: 'string' };
  for (const name of Object.keys(spec.flags ?? {})) options[name] = { type: 'boolean' };
  const { values } = parseArgs({ args: argv, options, allowPositionals: false });

  const params: Record<string, string | number | undefined> = {};
  const parsed: Record<string, number | string | undefined> = {};
  const notFullBecause: string[] = [];
  for (const [name, p] of Object.entries(spec.params)) {
    const given = values[name] as string | undefined;
    const text = given ?? p.full;
    if (text === undefined) continue;
    const v = parseValue(name, p, text);
    parsed[name] = v;
    params[name] = p.kind === 'count' ? v : text;
    if (p.full === undefined || p.fullWhen === 'any' || given === undefined) continue;
    const full = parseValue(name, p, p.full) as number;
    const lighter = p.fullWhen === 'atLeast' ? (v as number) < full : (v as number) > full;
    if (lighter) notFullBecause.push(`--${name} ${text} (full run: ${p.full})`);
  }
  const full = notFullBecause.length === 0;
  const out = typeof values.out === 'string' ? resolve(values.out) : undefined;
  const command = fullRunCommand(spec);
  if (out !== undefined)
    refuseSmokeInResults({
      full,
      notFullBecause,
      target: out,
      smokeOk: values['smoke-ok'] === true,
      fullRunCommand: command,
    });

  const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)bench/results']);
  const record: RunRecord = {
    benchmark: spec.name,
    full,
    ...(full ? {} : { notFullBecause }),
    params,
    fullRunCommand: command,
    argv,
    date: new Date().toISOString(),
    node: process.version,
    machine: {
      cpuModel: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      platform: platform(),
      arch: arch(),
      memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
      loadAverageAtStart: loadavg().map((x) => +x.toFixed(2)),
    },
    git: { commit: git(['rev-parse', 'HEAD']), dirty: dirty === null ? null : dirty !== '' },
  };
  const resultsPath = out === undefined ? undefined : spec.out === 'dir' ? join(out, spec.resultsFile) : out;
  const value = <T>(name: string, kind: ParamSpec['kind']): T => {
    if (spec.params[name]?.kind !== kind)
      throw new Error(`bench ${spec.name}: no ${kind} parameter --${name}`);
    return parsed[name] as T;
  };

  return {
    count: (name) => value<number>(name, 'count'),
    ms: (name) => value<number>(name, 'duration'),
    text: (name) => value<string | undefined>(name, 'text'),
    flag: (name) => {
      if (!(name in (spec.flags ?? {}))) throw new Error(`bench ${spec.name}: no flag --${name}`);
      return values[name] === true;
    },
    json: values.json === true,
    out,
    smokeOk: values['smoke-ok'] === true,
    record,
    outFile: (name) => (out === undefined || spec.out !== 'dir' ? undefined : join(out, name)),
    async finish(result) {
      const doc = { run: record, ...result };
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (resultsPath !== undefined) {
        writeFileAtomic(resultsPath, text);
        process.stderr.write(`results written to ${resultsPath}${full ? '' : ' (not a full run)'}\n`);
      }
      if (values.json) await new Promise<void>((r) => process.stdout.write(text, () => r()));
      return doc;
    },
  };
}

/** Writes `text` to `path` through a temporary file and a rename (no half-written results). */
export function writeFileAtomic(path: string, text: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
