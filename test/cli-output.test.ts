/**
 * The CLI's output in pipes and its usage errors: a reader that stops early (`| head`) ends the
 * command quietly, progress stays short when stderr is not a terminal, a wrong option or argument
 * gets one line naming the command's help, and `config check` shows the effective settings.
 * Every case runs the compiled `bin/keyledger.js` as a child process.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { freshLedger, tempDir } from './helpers.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;

/** The environment without KEYLEDGER_* settings, so results do not depend on the caller's shell. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYLEDGER_')));
}

function run(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI and closes its stdout after the first chunk, as `| head -1` does. */
function runClosingEarly(args: string[]): Promise<{ code: number | null; first: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let first = '';
    let stderr = '';
    child.stdout.once('data', (chunk: Buffer) => {
      first = chunk.toString('utf8').split('\n')[0] ?? '';
      child.stdout.destroy();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, first, stderr }));
  });
}

const SEQUENTIAL_BLOCKS = 60;
const EVENTS = 2500;
let data = '';

before(async () => {
  const { ledger, dataDir } = freshLedger();
  // One block per awaited submit (enough blocks for percent-level progress to show), then many
  // events at once (group commit) so that `audit` prints far more than a pipe buffer holds.
  for (let i = 0; i < SEQUENTIAL_BLOCKS; i++)
    await ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: i } });
  await Promise.all(
    Array.from({ length: EVENTS }, (_, i) =>
      ledger.submit({ type: 'AuditEvent', body: { event: 'session_end', at: 1000 + i } }),
    ),
  );
  await ledger.close();
  data = dataDir;
});

describe('CLI output in a pipe', () => {
  it('a reader that closes early (| head -1) ends audit and ledger show quietly, exit 0', async () => {
    for (const args of [
      ['audit', '--data', data],
      ['ledger', 'show', '--data', data],
    ]) {
      const r = await runClosingEarly(args);
      assert.notEqual(r.first, '', `${args[0]} printed something first`);
      assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|\n\s+at /, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, '', `${args.join(' ')} is quiet: ${r.stderr}`);
      assert.equal(r.code, 0, args.join(' '));
    }
  });

  it('ledger verify prints at most a few progress lines when stderr is not a terminal, none with --quiet', () => {
    const r = run(['ledger', 'verify', '--data', data]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const blocks = Number(/ledger OK: (\d+) blocks/.exec(r.stdout)?.[1]);
    assert.ok(blocks >= SEQUENTIAL_BLOCKS, `${blocks} blocks`);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('verifying'));
    assert.ok(lines.length >= 1, 'some progress is shown');
    assert.ok(lines.length <= 11, `${lines.length} progress lines:\n${r.stderr}`);
    const quiet = run(['ledger', 'verify', '--data', data, '--quiet']);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, '');
  });
});

describe('CLI usage errors and config check', () => {
  // Every command's help and the options each refuses: test/cli-help.test.ts.
  it('an unknown or misplaced option gets one line naming it and the command help, not the general help', () => {
    const r = run(['audit', '--data', data, '--bogus']);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'error KL_BAD_INPUT: keyledger audit takes no option --bogus (see keyledger audit --help)\n',
    );
    const sub = run(['ledger', 'show', '--hieght', '3']);
    assert.equal(sub.code, 2);
    assert.equal(
      sub.stderr,
      'error KL_BAD_INPUT: keyledger ledger show takes no option --hieght (did you mean --height?) (see keyledger ledger show --help)\n',
    );
    const missing = run(['ledger', 'verify', '--data']);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      'error KL_BAD_INPUT: option --data needs a value (see keyledger ledger verify --help)\n',
    );
    const command = run(['ledger', 'frobnicate', '--data', data]);
    assert.equal(
      command.stderr,
      'error KL_BAD_INPUT: unknown command "ledger frobnicate" (see keyledger ledger --help)\n',
    );
    const first = run(['--json', 'audit', '--data', data]);
    assert.equal(first.code, 2);
    assert.equal(
      first.stderr,
      'error KL_BAD_INPUT: keyledger takes no option --json; options go after the command (see keyledger --help)\n',
    );
  });

  it('a command refuses an option another command takes, an argument too many, and a value out of its choices', () => {
    for (const [args, line] of [
      [['whoami', '--rsa'], 'keyledger whoami takes no option --rsa (see keyledger whoami --help)'],
      [['send', 'hi', '--users', '3'], 'keyledger send takes no option --users (see keyledger send --help)'],
      [
        ['config', 'schema', '--json'],
        'keyledger config schema takes no option --json (see keyledger config schema --help)',
      ],
      [
        ['audit', '--data', data, '--home', '/tmp'],
        'keyledger audit takes no option --home (see keyledger audit --help)',
      ],
      [
        ['ledger', 'show', '--data', data, '--mark-verified'],
        'keyledger ledger show takes no option --mark-verified (see keyledger ledger show --help)',
      ],
      [['whoami', 'me'], "keyledger whoami takes no argument, not 'me' (see keyledger whoami --help)"],
      [
        ['send', 'hello', 'world'],
        'keyledger send takes MESSAGE only, not 2 arguments (quote a value with spaces) (see keyledger send --help)',
      ],
      [
        ['admin', 'invite', '--data', data],
        'keyledger admin invite needs IDENTITY (see keyledger admin invite --help)',
      ],
      [
        ['revoke-key', '--reason', 'bored'],
        '--reason must be one of compromised, superseded, retired, unspecified (see keyledger revoke-key --help)',
      ],
      [
        ['ledger', 'show', '--data', data, '--height', '1', '--tx', 'ab'],
        '--height cannot be used with --tx (see keyledger ledger show --help)',
      ],
      [['ledger', 'verify'], '--data DIR is required (see keyledger ledger verify --help)'],
    ] as const) {
      const r = run([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, `error KL_BAD_INPUT: ${line}\n`);
      assert.equal(r.stdout, '', 'nothing was done');
    }
  });

  it('config check without a file prints the effective settings with their defaults', () => {
    const cwd = tempDir();
    const r = run(['config', 'check'], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /^\{\}$/m);
    assert.match(r.stdout, /^ {2}dataDir +\.\/keyledger-data \(default\)$/m);
    assert.match(r.stdout, /^ {2}port +7420 \(0: any free port\) \(default\)$/m);
    assert.match(r.stdout, /^ {2}session\.idleTimeout +15m \(default\)$/m);
    const flagged = run(['config', 'check', '--port', '7000', '--admin', 'a@example.org'], cwd);
    assert.match(flagged.stdout, /^ {2}port +7000$/m);
    assert.match(flagged.stdout, /^ {2}admins +\["a@example\.org"\]$/m);
  });
});
