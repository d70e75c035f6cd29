/**
 * The commands the documentation tells a person to type exist: every `keyledger …` line in a fenced
 * code block of README.md and docs/*.md names a declared command (src/cli/program.ts) and only
 * options that command takes. A walkthrough (docs/deploy-besu.md, docs/deploy-etcd.md, …) that
 * drifts from the CLI fails here, not in an operator's terminal.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { declareCommands } from '../src/cli/program.js';

const root = new URL('..', import.meta.url).pathname;

/** One `keyledger` command line of a document, continuations joined. */
interface DocCommand {
  file: string;
  line: number;
  text: string;
}

/** The `keyledger` lines of the fenced code blocks of `file`. */
function commandsIn(file: string): DocCommand[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const at = (i: number) => lines[i] ?? '';
  const found: DocCommand[] = [];
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*(```|~~~)/.test(at(i))) {
      fenced = !fenced;
      continue;
    }
    // Fenced blocks, and blocks indented by four spaces after a blank line or another such line.
    const indented = /^ {4}\S/.test(at(i)) && (i === 0 || at(i - 1).trim() === '' || /^ {4}/.test(at(i - 1)));
    if (!fenced && !indented) continue;
    let text = at(i);
    const first = i + 1;
    while (text.endsWith('\\') && i + 1 < lines.length) text = `${text.slice(0, -1)} ${at(++i).trim()}`;
    // `$ `, environment assignments and `npx` before the command; `#` comments after it.
    const command = text
      .replace(/^\s*\$\s+/, '')
      .replace(/^(\s*[A-Z_][A-Z0-9_]*=\S*\s+)+/, '')
      .replace(/^\s*npx\s+/, '')
      .replace(/\s+#.*$/, '')
      .trim();
    if (!/^keyledger(\s|$)/.test(command)) continue;
    // A synopsis line gives alternatives after ` | `; a pipe into another program ends the command.
    const [head, ...alternatives] = command.split(/\s+\|\s+/);
    found.push({ file, line: first, text: head ?? command });
    for (const alternative of alternatives)
      if (resolve(alternative.split(/\s+/)).used.length > 0)
        found.push({ file, line: first, text: `keyledger ${alternative}` });
  }
  return found;
}

const documents = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const program = new Command('keyledger');
declareCommands(program, { code: 0 });

/** The command `words` lead to, the words used, and the first word that is not a subcommand. */
function resolve(words: string[]): { command: Command; used: string[] } {
  let command = program;
  const used: string[] = [];
  for (const word of words) {
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    command = sub;
    used.push(word);
  }
  return { command, used };
}

/** The long options `command` takes, with those every command takes. */
function longOptions(command: Command): Set<string> {
  const names = new Set(['--help', '--version']);
  for (let c: Command | null = command; c; c = c.parent)
    for (const o of c.options) if (o.long) names.add(o.long);
  return names;
}

describe('the commands in the documentation', () => {
  const all = documents.flatMap(commandsIn);

  it('the walkthroughs hold commands to check (the reader of the documents works)', () => {
    assert.ok(all.length > 50, `only ${all.length} keyledger lines found`);
    for (const file of ['docs/deploy-besu.md', 'docs/deploy-etcd.md'])
      assert.ok(
        all.some((c) => c.file === file),
        `${file} shows keyledger commands`,
      );
  });

  it('every keyledger line names a declared command, with options that command takes', () => {
    const wrong: string[] = [];
    for (const doc of all) {
      const tokens = doc.text.split(/\s+/).slice(1);
      // A placeholder like `keyledger <command>` or `keyledger …` is prose, not a command.
      const [name] = tokens;
      if (name === undefined || /^[<[…]/.test(name)) continue;
      const words = tokens.filter((t) => /^[a-z][a-z0-9-]*$/.test(t));
      const { command, used } = resolve(words);
      const where = `${doc.file}:${doc.line}: ${doc.text}`;
      if (used.length === 0 || (command.commands.length > 0 && !tokens.includes('--help'))) {
        wrong.push(`${where}\n    no such command (${name}${used.length ? ` ${tokens[used.length]}` : ''})`);
        continue;
      }
      const takes = longOptions(command);
      for (const token of tokens) {
        if (!token.startsWith('--')) continue;
        const option = token.replace(/[=,;].*$/, '');
        if (!takes.has(option)) wrong.push(`${where}\n    keyledger ${used.join(' ')} takes no ${option}`);
      }
    }
    assert.deepEqual(wrong, [], `documented commands the CLI does not have:\n${wrong.join('\n')}`);
  });

  it('refuses what the CLI does not have (the check has teeth)', () => {
    const { command, used } = resolve(['admin', 'registrar', 'promote']);
    assert.deepEqual(used, ['admin', 'registrar']);
    assert.ok(command.commands.length > 0, 'a group, not a command');
    assert.ok(!longOptions(resolve(['serve']).command).has('--no-such-option'));
    assert.ok(longOptions(resolve(['serve']).command).has('--etcd'));
  });
});
