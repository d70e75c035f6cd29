/**
 * The CLI's output in pipes and its help: a reader that stops early (`| head`) ends the command
 * quietly, progress stays short when stderr is not a terminal, every command has its own accurate
 * help, an unknown option gets one line, and `config check` shows the effective settings.
 * Every case runs the compiled `bin/keyledger.js` as a child process.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { COMMAND_OPTIONS } from '../src/cli/options.js';
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

describe('CLI help', () => {
  const COMMANDS = [
    'serve',
    'config check',
    'admin',
    'init',
    'register',
    'login',
    'whoami',
    'status',
    'send',
    'shell',
    'session',
    'rotate-key',
    'revoke-key',
    'audit',
    'logs',
    'logs decrypt',
    'receipt',
    'receipt verify',
    'ledger',
    'ledger verify',
    'ledger show',
    'ledger init',
    'ledger deploy',
    'demo',
  ];
  const general = run(['--help']).stderr;
  const helps = new Map<string, { code: number | null; stderr: string }>();
  const help = (command: string) => {
    if (!helps.has(command)) helps.set(command, run([...command.split(' '), '--help']));
    return helps.get(command)!;
  };

  it('each command and subcommand has its own help, naming itself and not its siblings', () => {
    const LEDGER = ['verify', 'show', 'init', 'deploy'];
    for (const command of COMMANDS) {
      const r = help(command);
      assert.equal(r.code, 0, command);
      assert.notEqual(r.stderr, general, `${command} --help is not the general help`);
      const [cmd, sub] = command.split(' ');
      assert.ok(
        r.stderr.startsWith(`keyledger ${cmd}`),
        `${command} --help starts with its usage:\n${r.stderr}`,
      );
      if (cmd === 'ledger' && sub) {
        assert.ok(r.stderr.startsWith(`keyledger ledger ${sub} `), `${command}:\n${r.stderr}`);
        for (const other of LEDGER.filter((x) => x !== sub))
          assert.ok(!r.stderr.includes(`ledger ${other}`), `${command} --help describes ledger ${other}`);
      }
    }
    assert.match(run(['logs', 'decrypt', '--help']).stderr, /^keyledger logs decrypt .*--key FILE/);
  });

  it('the general help names every option that a command help names', () => {
    for (const command of COMMANDS) {
      const options = new Set(help(command).stderr.match(/--[a-z][a-z-]*/g) ?? []);
      for (const option of options)
        assert.match(
          general,
          new RegExp(`${option}(?![a-z-])`),
          `${option} of ${command} in the general help`,
        );
    }
  });

  it('an unknown option gets one line naming it and the command help, not the general help', () => {
    const r = run(['audit', '--data', data, '--bogus']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "error KL_BAD_INPUT: Unknown option '--bogus' (see keyledger audit --help)\n");
    const sub = run(['ledger', 'show', '--hieght', '3']);
    assert.equal(sub.code, 2);
    assert.equal(
      sub.stderr,
      "error KL_BAD_INPUT: Unknown option '--hieght' (see keyledger ledger show --help)\n",
    );
    const missing = run(['ledger', 'verify', '--data']);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.match(missing.stderr, /--data .*keyledger ledger verify --help/);
    const command = run(['ledger', 'frobnicate', '--data', data]);
    assert.equal(
      command.stderr,
      'error KL_BAD_INPUT: unknown command "ledger frobnicate" (see keyledger --help)\n',
    );
  });

  it('a command refuses an option it does not take (even one another command takes), and its help lists every option it takes', () => {
    for (const [args, option, command] of [
      [['whoami', '--rsa'], '--rsa', 'whoami'],
      [['send', 'hi', '--users', '3'], '--users', 'send'],
      [['config', 'schema', '--json'], '--json', 'config schema'],
      [['audit', '--data', data, '--home', '/tmp'], '--home', 'audit'],
      [['ledger', 'show', '--data', data, '--mark-verified'], '--mark-verified', 'ledger show'],
    ] as const) {
      const r = run([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `error KL_BAD_INPUT: keyledger ${command} takes no option ${option} (see keyledger ${command} --help)\n`,
      );
      assert.equal(r.stdout, '', 'nothing was done');
    }
    for (const [command, options] of Object.entries(COMMAND_OPTIONS)) {
      const help = run([...command.split(' '), '--help']);
      assert.equal(help.code, 0);
      const listed = new RegExp(`^Options of keyledger ${command}: [^]*$`, 'm').exec(help.stderr)?.[0] ?? '';
      for (const option of options)
        assert.match(listed, new RegExp(`--${option}\\b`), `${command} --help lists --${option}`);
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
