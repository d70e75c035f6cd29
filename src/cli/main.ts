/**
 * The `keyledger` command: reads the command line with the commands declared in program.ts, runs
 * the one named, and turns what went wrong into one line `error CODE: message` and an exit code
 * (0 success, 1 a check failed, 2 error). A command's module is loaded only when that command runs.
 */
import { readFileSync } from 'node:fs';
import { Command, type CommanderError } from 'commander';
import { setNativeOpenPgp } from '../pgp/native/switch.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { endQuietlyWhenOutputCloses, info } from './io.js';
import { missingPackageError } from './missing-package.js';
import { declareCommands, type Outcome } from './program.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Thrown out of commander's parsing: the line to print (if any) and the exit code. */
class ParseStop extends Error {
  constructor(
    readonly line: string | undefined,
    readonly exitCode: number,
  ) {
    super(line ?? 'stop');
  }
}

/** `keyledger ledger show` for the command `ledger show`. */
function pathOf(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** `--data` of the flags `--data <DIR>` (an option commander named in its message). */
function longFlag(flags: string): string {
  return /--[\w-]+/.exec(flags)?.[0] ?? flags.split(/[ ,]/)[0]!;
}

/**
 * The one line saying what is wrong with the command line, from commander's error `err` raised by
 * `command`; undefined when commander already printed what there is to say (help).
 */
function parseErrorLine(err: CommanderError, command: Command): string | undefined {
  const path = pathOf(command);
  const see = `(see ${path} --help)`;
  const quoted = /'([^']*)'/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'commander.unknownOption': {
      const suggestion = /Did you mean (\S+)\?/.exec(err.message)?.[1];
      const hint = suggestion ? ` (did you mean ${suggestion}?)` : '';
      const where = command.parent ? '' : '; options go after the command';
      return `${path} takes no option ${quoted}${hint}${where} ${see}`;
    }
    case 'commander.optionMissingArgument':
      return `option ${longFlag(quoted)} needs a value ${see}`;
    case 'commander.missingMandatoryOptionValue':
      return `${quoted.replace(/ <([^>]+)>/, ' $1')} is required ${see}`;
    case 'commander.missingArgument':
      return `${path} needs ${quoted} ${see}`;
    case 'commander.excessArguments': {
      const expected = command.registeredArguments.map((a) => a.name());
      if (expected.length === 0) return `${path} takes no argument, not '${command.args[0]}' ${see}`;
      return `${path} takes ${expected.join(' ')} only, not ${command.args.length} arguments (quote a value with spaces) ${see}`;
    }
    case 'commander.unknownCommand': {
      const words = path.split(' ').slice(1);
      const suggestion = /Did you mean (\S+)\?/.exec(err.message)?.[1];
      const hint = suggestion ? ` (did you mean "${[...words, suggestion].join(' ')}"?)` : '';
      return `unknown command "${[...words, quoted].join(' ')}"${hint} ${see}`;
    }
    case 'commander.invalidArgument': {
      const choices = /Allowed choices are (.*)\.$/.exec(err.message)?.[1];
      const option = longFlag(quoted);
      return choices
        ? `${option} must be one of ${choices} ${see}`
        : `${err.message.replace(/^error: /, '')} ${see}`;
    }
    case 'commander.conflictingOption': {
      const [a, b] = [...err.message.matchAll(/option '([^']*)'/g)].map((m) => longFlag(m[1]!));
      return `${a} cannot be used with ${b} ${see}`;
    }
    default:
      return `${err.message.replace(/^error: /, '')} ${see}`;
  }
}

/** The program, its commands declared; its errors become {@link ParseStop}. */
function program(outcome: Outcome): Command {
  const root = new Command('keyledger')
    .description('keyledger — passwordless mutual authentication with OpenPGP keys on a permissioned ledger')
    .version(version(), '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .helpCommand('help [command]', 'show the help of a command')
    .enablePositionalOptions()
    .configureOutput({ outputError: () => {} })
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ keyledger serve --admin alice@example.org          (operator)',
        '  $ keyledger admin invite alice@example.org           (operator)',
        '  $ keyledger init --id alice@example.org              (user)',
        '  $ keyledger register --server http://127.0.0.1:7420 --invite CODE',
        '  $ keyledger login',
        '  $ keyledger ledger verify --data ./keyledger-data   (auditor)',
        '',
        'Passphrases (node, or your key): from the environment, --passphrase-file FILE, a prompt, or',
        '--insecure-dev-passphrase (public, demos only). "keyledger COMMAND --help" (or "keyledger help',
        'COMMAND") shows the options and examples of a command.',
        'Exit status: 0 success, 1 a check failed, 2 error (the message starts with its code).',
      ].join('\n'),
    );
  declareCommands(root, outcome);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const command of all(root))
    command.exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')
        throw new ParseStop(undefined, 0);
      if (err.code === 'commander.help') throw new ParseStop(undefined, 2);
      throw new ParseStop(parseErrorLine(err, command), 2);
    });
  return root;
}

/**
 * KEYLEDGER_NATIVE_OPENPGP=0 turns the native OpenPGP path off for every command (docs/configuration.md;
 * `serve` also reads it as its `nativeOpenPgp` setting).
 * @throws KlError `KL_CONFIG_INVALID` for a value other than 1, true, 0 or false.
 */
function nativeOpenPgpFromEnvironment(): void {
  const value = process.env.KEYLEDGER_NATIVE_OPENPGP;
  if (value === undefined || value === '') return;
  const on = ({ '1': true, true: true, '0': false, false: false } as Record<string, boolean>)[value];
  if (on === undefined)
    throw new KlError('KL_CONFIG_INVALID', 'KEYLEDGER_NATIVE_OPENPGP must be 1, true, 0 or false');
  setNativeOpenPgp(on);
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  endQuietlyWhenOutputCloses();
  // `keyledger help ledger verify` is `keyledger ledger verify --help`, at any depth.
  const args = argv[0] === 'help' && argv.length > 1 ? [...argv.slice(1), '--help'] : argv;
  const outcome: Outcome = { code: 0 };
  try {
    nativeOpenPgpFromEnvironment();
    await program(outcome).parseAsync(args, { from: 'user' });
    return outcome.code;
  } catch (thrown) {
    if (thrown instanceof ParseStop) {
      if (thrown.line) info(`error KL_BAD_INPUT: ${thrown.line}`);
      return thrown.exitCode;
    }
    const err = missingPackageError(thrown) ?? thrown;
    if (isKlError(err)) info(`error ${err.code}: ${err.message}`);
    else info(`error: ${(err as Error).message ?? String(err)}`);
    const dir = await outcome.nodeDataDir?.();
    if (dir) {
      const hint = (await import('./dev-passphrase.js')).devPassphraseHint(err, dir);
      if (hint) info(hint);
    }
    return 2;
  }
}
