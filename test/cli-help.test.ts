/**
 * The help of every `keyledger` command and subcommand, and the options each one refuses. The list
 * of commands and of the options each declares is read from the declarations (src/cli/program.ts),
 * so a command added later is covered too; every case runs the compiled `bin/keyledger.js` as a
 * child process, as a person runs it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { declareCommands } from '../src/cli/program.js';
import { bin, runCli } from './support/cli.js';

/** A command of the declarations: its words after `keyledger`, and the long options it takes. */
interface Declared {
  words: string[];
  options: string[];
  arguments: string[];
  group: boolean;
}

function declared(): Declared[] {
  const root = new Command('keyledger');
  declareCommands(root, { code: 0 });
  const list: Declared[] = [];
  const walk = (c: Command, words: string[]) => {
    list.push({
      words,
      options: c.options.map((o) => o.long!).filter(Boolean),
      arguments: c.registeredArguments.map((a) => a.name()),
      group: c.commands.length > 0,
    });
    for (const sub of c.commands) walk(sub, [...words, sub.name()]);
  };
  for (const c of root.commands) walk(c, [c.name()]);
  return list;
}

const COMMANDS = declared();
const LEAVES = COMMANDS.filter((c) => !c.group);
/** Every long option some command takes. */
const ALL_OPTIONS = [...new Set(COMMANDS.flatMap((c) => c.options))];

describe('keyledger help and options, per command', () => {
  it('the declarations hold every command (the list this test walks is complete)', () => {
    const names = COMMANDS.map((c) => c.words.join(' '));
    for (const expected of [
      'serve',
      'config check',
      'config schema',
      'admin invite',
      'admin grant',
      'admin ungrant',
      'admin dashboard',
      'admin sessions',
      'admin alerts',
      'admin revoke-session',
      'admin revoke-key',
      'init',
      'register',
      'login',
      'whoami',
      'status',
      'send',
      'shell',
      'session list',
      'session revoke',
      'rotate-key',
      'revoke-key',
      'audit',
      'logs decrypt',
      'receipt verify',
      'ledger verify',
      'ledger show',
      'ledger init',
      'ledger deploy',
      'demo',
    ])
      assert.ok(names.includes(expected), `${expected} is declared`);
  });

  it('keyledger --help (and help, and no command) lists every command with an example', () => {
    const help = runCli(['--help']);
    assert.equal(help.code, 0);
    assert.equal(help.stderr, '');
    assert.match(help.stdout, /^Usage: keyledger /);
    for (const c of COMMANDS.filter((x) => x.words.length === 1))
      assert.match(help.stdout, new RegExp(`^ {2}${c.words[0]}\\b`, 'm'), `${c.words[0]} is listed`);
    assert.match(help.stdout, /^Examples:\n {2}\$ keyledger /m);
    assert.equal(runCli(['help']).stdout, help.stdout);
    const none = runCli([]);
    assert.equal(none.code, 2, 'no command is a usage error');
    assert.equal(none.stdout, '');
    assert.equal(none.stderr, help.stdout, 'the same help, on stderr');
  });

  it('every command and subcommand: --help exits 0 with its own usage, every option it takes, and an example of itself', () => {
    for (const c of COMMANDS) {
      const name = c.words.join(' ');
      const r = runCli([...c.words, '--help']);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(r.stderr, '', name);
      assert.ok(
        r.stdout.startsWith(`Usage: keyledger ${name} `),
        `${name} --help starts with its usage:\n${r.stdout}`,
      );
      for (const a of c.arguments)
        assert.match(
          r.stdout.split('\n')[0]!,
          new RegExp(`<${a}(?:\\.\\.\\.)?>`),
          `${name} usage names ${a}`,
        );
      const options = r.stdout.split('\nOptions:\n')[1]?.split('\n\n')[0] ?? '';
      for (const option of c.options)
        assert.match(
          options,
          new RegExp(`^ {2}(?:-\\w, )?${option}\\b`, 'm'),
          `${name} --help lists ${option}`,
        );
      assert.match(options, /^ {2}-h, --help/m, name);
      assert.match(
        r.stdout,
        new RegExp(`\\nExamples:\\n(?: {2}\\$ .*\\n)* {2}\\$ keyledger ${name}\\b`),
        `${name} shows an example of itself`,
      );
      if (c.group)
        for (const sub of COMMANDS.filter(
          (x) => x.words.length === c.words.length + 1 && c.words.every((w, i) => x.words[i] === w),
        ))
          assert.match(
            r.stdout,
            new RegExp(`^ {2}${sub.words.at(-1)}\\b`, 'm'),
            `${name} --help lists ${sub.words.join(' ')}`,
          );
      // `keyledger help X Y` is the same help.
      assert.equal(runCli(['help', ...c.words]).stdout, r.stdout, `keyledger help ${name}`);
    }
  });

  it('every command refuses an unknown option, and one that only other commands take, in one line naming both', () => {
    for (const c of COMMANDS) {
      const name = c.words.join(' ');
      const unknown = runCli([...c.words, '--frobnicate-xyzzy']);
      assert.equal(unknown.code, 2, name);
      assert.equal(unknown.stdout, '', `${name}: nothing was done`);
      assert.equal(
        unknown.stderr,
        `error KL_BAD_INPUT: keyledger ${name} takes no option --frobnicate-xyzzy (see keyledger ${name} --help)\n`,
      );
    }
    for (const c of LEAVES) {
      const name = c.words.join(' ');
      const other = ALL_OPTIONS.find((o) => !c.options.includes(o) && o !== '--no-open');
      assert.ok(other, `some option is not ${name}'s`);
      const r = runCli([...c.words, other!, 'x']);
      assert.equal(r.code, 2, `${name} ${other}`);
      assert.equal(r.stdout, '', `${name}: nothing was done`);
      assert.match(
        r.stderr,
        new RegExp(
          `^error KL_BAD_INPUT: keyledger ${name} takes no option ${other}( \\(did you mean --[\\w-]+\\?\\))? \\(see keyledger ${name} --help\\)\\n$`,
        ),
      );
    }
  });

  it('a command run without its argument (IDENTITY, MESSAGE, FILE…) says which one, and does nothing', () => {
    const needing = LEAVES.filter((c) => c.arguments.length > 0);
    assert.ok(needing.length >= 7, needing.map((c) => c.words.join(' ')).join(', '));
    for (const c of needing) {
      const name = c.words.join(' ');
      const r = runCli(c.words);
      assert.equal(r.code, 2, name);
      assert.equal(r.stdout, '', name);
      assert.equal(
        r.stderr,
        `error KL_BAD_INPUT: keyledger ${name} needs ${c.arguments[0]} (see keyledger ${name} --help)\n`,
      );
    }
  });

  it('--help piped into a reader that stops early (| head -1, | true) ends quietly, exit 0', () => {
    for (const c of [{ words: [] as string[] }, ...COMMANDS.filter((_, i) => i % 4 === 0)]) {
      const line = `"${process.execPath}" "${bin}" ${c.words.join(' ')} --help`;
      const head = spawnSync('bash', ['-c', `set -o pipefail; ${line} | head -1`], { encoding: 'utf8' });
      assert.equal(head.status, 0, `${line} | head -1: ${head.stderr}`);
      assert.equal(head.stderr, '');
      assert.match(head.stdout, new RegExp(`^Usage: keyledger ${c.words.join(' ')}.*\\n$`));
      // `true` reads nothing and exits at once: the help is written into a closed pipe (EPIPE).
      const closed = spawnSync('bash', ['-c', `set -o pipefail; ${line} | true`], { encoding: 'utf8' });
      assert.equal(closed.status, 0, `${line} | true: ${closed.stderr}`);
      assert.equal(closed.stderr, '', `${line} | true is quiet`);
    }
  });
});
