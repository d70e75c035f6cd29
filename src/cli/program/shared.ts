/**
 * What every declaration of a `keyledger` command uses: the outcome it leaves for main.ts, the
 * action factory that records it, the lazy loaders of the command modules (each imported only in
 * its command's action, so a command loads only what it uses: bench/cli-start.ts measures it) and
 * the helpers that read commander's option values and add the help's examples.
 */
import type { Command, Option } from 'commander';
import { defaultHome } from '../../client/home.js';
import type { OptionValues } from '../options.js';

/** What the command that ran leaves for main.ts. */
export interface Outcome {
  /** Its exit code (0 success, 1 a check failed, 2 error; status has more). */
  code: number;
  /**
   * For a command that opens a data directory with the node passphrase: that directory, so that
   * a passphrase error can say when it was made with the development passphrase.
   */
  nodeDataDir?: () => Promise<string | undefined>;
}

/** What a declaration needs from the run: the outcome its action records. */
export interface Context {
  /** Where the action that runs records its exit code (and the data directory it opened). */
  readonly outcome: Outcome;
}

/** The demo's own data directory: never the one `npm start` serves. */
export const DEMO_DATA_DIR = './keyledger-demo';

/** What every command's help ends with. */
export const EXIT_STATUS =
  'Exit status: 0 success, 1 a check failed, 2 error (the message starts with its code).';

/** The modules that do the commands' work, each loaded only when an action needs it. */
export const commands = {
  admin: () => import('../commands/admin.js'),
  audit: () => import('../commands/audit.js'),
  config: () => import('../commands/config.js'),
  dashboardLink: () => import('../commands/dashboard-link.js'),
  demo: () => import('../commands/demo.js'),
  evmSetup: () => import('../commands/evm-setup.js'),
  invite: () => import('../commands/invite.js'),
  init: () => import('../commands/init.js'),
  ledger: () => import('../commands/ledger.js'),
  login: () => import('../commands/login.js'),
  logs: () => import('../commands/logs.js'),
  register: () => import('../commands/register.js'),
  rotate: () => import('../commands/rotate.js'),
  send: () => import('../commands/send.js'),
  server: () => import('../commands/server.js'),
  servers: () => import('../commands/servers.js'),
  session: () => import('../commands/session.js'),
  shell: () => import('../commands/shell.js'),
  status: () => import('../commands/status.js'),
  whoami: () => import('../commands/whoami.js'),
};

/** A command's work: its options and arguments in, its exit code out. */
export type Work = (v: OptionValues, args: string[]) => Promise<number> | number;

/** The data directory a command opens with the node passphrase, from its options. */
export type NodeDir = (v: OptionValues) => Promise<string | undefined> | string | undefined;

/**
 * The action that runs `work` with the command's options and arguments (commander has checked
 * that every required argument is there) and records its exit code in `context.outcome`; with
 * `nodeDir`, also the data directory it opens with the node passphrase (unless that passphrase is
 * the development one).
 */
export function act(
  context: Context,
  work: Work,
  nodeDir?: NodeDir,
): (...params: unknown[]) => Promise<void> {
  return async (...params: unknown[]): Promise<void> => {
    const command = params[params.length - 1] as Command;
    const v = command.opts() as OptionValues;
    const args = params.slice(0, -2).filter((p): p is string => typeof p === 'string');
    if (nodeDir && !v.insecureDevPassphrase) context.outcome.nodeDataDir = async () => nodeDir(v);
    context.outcome.code = await work(v, args);
  };
}

/** The `--data` option's value, else `fallback`. */
export function dataOr(fallback: string): (v: OptionValues) => string {
  return (v) => str(v, 'data') ?? fallback;
}

/** `text` as an option value, or undefined. */
export function str(v: OptionValues, name: string): string | undefined {
  const value = v[name];
  return typeof value === 'string' ? value : undefined;
}

/** `{ [key]: value }` when value is defined, else `{}` (the commands take optional keys, not undefined). */
export function given<K extends string, T>(key: K, value: T | undefined): { [P in K]?: T } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: T };
}

/** The passphrase options of a command, as the command modules take them. */
export function passphraseOf(v: OptionValues): { passphraseFile?: string; insecureDevPassphrase: boolean } {
  return {
    ...given('passphraseFile', str(v, 'passphraseFile')),
    insecureDevPassphrase: !!v.insecureDevPassphrase,
  };
}

/** The options of a user command, as the command modules take them. */
export function clientOf(v: OptionValues): {
  home: string;
  json: boolean;
  passphraseFile?: string;
  server?: string;
} {
  return {
    home: str(v, 'home') ?? defaultHome(),
    json: !!v.json,
    ...given('passphraseFile', str(v, 'passphraseFile')),
    ...given('server', str(v, 'server')),
  };
}

/** Adds `options` to `command`. */
export function withOptions(command: Command, options: Option[]): Command {
  for (const option of options) command.addOption(option);
  return command;
}

/** Adds an "Examples:" section to the help of `command`, then the exit status. */
export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText(
    'after',
    `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n\n${EXIT_STATUS}`,
  );
}
