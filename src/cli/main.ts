/**
 * The `keyledger` command. Each command's module is loaded only when that command runs, so a
 * command starts without loading what it does not use (the server's HTTP stack, the EVM client,
 * SQLite); bench/cli-start.ts measures it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultHome } from '../client/home.js';
import { parseDuration } from '../protocol/duration.js';
import { isKlError } from '../protocol/errors.js';
import { HELP, helpFor } from './help.js';
import { endQuietlyWhenOutputCloses, info } from './io.js';
import { COMMAND_OPTIONS, commandKey, OPTIONS, type OptionValues, serveFlags, usage } from './options.js';

/** The command modules, loaded on first use. */
const commands = {
  admin: () => import('./commands/admin.js'),
  audit: () => import('./commands/audit.js'),
  config: () => import('./commands/config.js'),
  dashboardLink: () => import('./commands/dashboard-link.js'),
  demo: () => import('./commands/demo.js'),
  evmSetup: () => import('./commands/evm-setup.js'),
  invite: () => import('./commands/invite.js'),
  init: () => import('./commands/init.js'),
  ledger: () => import('./commands/ledger.js'),
  login: () => import('./commands/login.js'),
  logs: () => import('./commands/logs.js'),
  register: () => import('./commands/register.js'),
  rotate: () => import('./commands/rotate.js'),
  send: () => import('./commands/send.js'),
  server: () => import('./commands/server.js'),
  session: () => import('./commands/session.js'),
  shell: () => import('./commands/shell.js'),
  status: () => import('./commands/status.js'),
  whoami: () => import('./commands/whoami.js'),
};

/** The demo's own data directory: never the one `npm start` serves. */
const DEMO_DATA_DIR = './keyledger-demo';

/** How the command line is read: every option known, positionals allowed, tokens kept. */
const PARSE = { options: OPTIONS, allowPositionals: true, strict: true, tokens: true } as const;

/** Commands that open a data directory with the node passphrase. */
const NODE_PASSPHRASE_COMMANDS = new Set(['serve', 'ledger', 'logs', 'demo']);

/** The data directory `serve` uses with these options (file, environment, flags), as `serve` reads it. */
async function serveDataDir(v: OptionValues): Promise<string> {
  try {
    const { loadConfig, serverOptionsOf } = await import('../server/config.js');
    return serverOptionsOf(loadConfig({ ...(v.config ? { file: v.config } : {}), flags: serveFlags(v) }))
      .dataDir;
  } catch {
    return v.data ?? './keyledger-data';
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** One line for an option parseArgs refused, naming it and the command whose help lists the options. */
function badOption(err: Error & { code?: string }, argv: string[]): string {
  const { positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: false });
  const [cmd, sub] = positionals;
  const command =
    cmd && Object.hasOwn(HELP, cmd)
      ? sub && Object.hasOwn(HELP, `${cmd} ${sub}`)
        ? `${cmd} ${sub}`
        : cmd
      : '';
  const see = command ? `keyledger ${command} --help` : 'keyledger --help';
  const option = /'(-[^' ]+)/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option)
    return `Unknown option '${option}' (see ${see})`;
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option)
    return `option ${option} ${/argument missing/.test(err.message) ? 'needs a value' : 'takes no value'} (see ${see})`;
  return `${err.message.split('\n')[0]} (see ${see})`;
}

/**
 * The first option given that `command` does not take, as the line that says so (undefined when all
 * fit, or for an unknown command, which is refused as such later).
 */
function optionNotFor(
  command: string | undefined,
  tokens: ReadonlyArray<{ kind: string; name?: string; rawName?: string }>,
): string | undefined {
  if (command === undefined) return undefined;
  const allowed = new Set<string>(COMMAND_OPTIONS[command]);
  for (const t of tokens) {
    if (t.kind !== 'option' || !t.name || t.name === 'help' || t.name === 'version' || allowed.has(t.name))
      continue;
    return `keyledger ${command} takes no option ${t.rawName ?? `--${t.name}`} (see keyledger ${command} --help)`;
  }
  return undefined;
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  endQuietlyWhenOutputCloses();
  let parsed: ReturnType<typeof parseArgs<typeof PARSE>>;
  try {
    parsed = parseArgs({ ...PARSE, args: argv });
  } catch (err) {
    info(`error KL_BAD_INPUT: ${badOption(err as Error & { code?: string }, argv)}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.version) {
    info(version());
    return 0;
  }
  const [cmd, sub, arg] = positionals;
  if (v.help || !cmd) {
    info(helpFor(cmd, sub));
    return v.help ? 0 : 2;
  }
  const misplaced = optionNotFor(commandKey(cmd, sub), parsed.tokens ?? []);
  if (misplaced) {
    info(`error KL_BAD_INPUT: ${misplaced}`);
    return 2;
  }
  const passphrase = {
    ...(v['passphrase-file'] ? { passphraseFile: v['passphrase-file'] } : {}),
    insecureDevPassphrase: v['insecure-dev-passphrase'] ?? false,
  };
  const data = v.data ?? './keyledger-data';
  const json = v.json ?? false;
  const client = { home: v.home ?? defaultHome(), json, ...passphrase };
  try {
    switch (cmd) {
      case 'serve':
        return await (await commands.server()).serve({
          ...(v.config ? { configFile: v.config } : {}),
          flags: serveFlags(v),
          json,
          ...passphrase,
          insecurePlainLogs: v['insecure-plain-logs'] ?? false,
        });
      case 'config':
        if (sub === 'schema') return (await commands.config()).configSchema();
        if (sub !== 'check') usage('usage: keyledger config check [--config FILE] | keyledger config schema');
        return (await commands.config()).configCheck({
          ...(v.config ? { configFile: v.config } : {}),
          flags: serveFlags(v),
          json,
        });
      case 'admin':
        if (sub === 'invite') {
          if (!arg) usage('usage: keyledger admin invite IDENTITY [--data DIR] [--expires 24h]');
          return await (await commands.invite()).adminInvite({
            data,
            identity: arg,
            expiresMs: parseDuration(v.expires ?? '24h', '--expires'),
            json,
          });
        }
        if (sub === 'dashboard')
          return await (await commands.dashboardLink()).adminDashboard({ ...client, open: !v['no-open'] });
        if (sub === 'grant' || sub === 'ungrant') {
          if (!arg) usage(`usage: keyledger admin ${sub} IDENTITY [--data DIR]`);
          return await (await commands.admin()).adminGrant({ data, id: arg, grant: sub === 'grant', json });
        }
        if (sub === 'sessions' || sub === 'alerts' || sub === 'revoke-session' || sub === 'revoke-key') {
          return await (await commands.admin()).adminSessionCommand({
            data,
            sub,
            ...(arg ? { target: arg } : {}),
            ...(v.reason ? { reason: v.reason } : {}),
            json,
          });
        }
        usage(
          'usage: keyledger admin invite|grant|ungrant|dashboard|sessions|alerts|revoke-session|revoke-key ... (see keyledger admin --help)',
        );
        break;
      case 'send':
        return await (await commands.send()).send({
          ...client,
          ...(sub !== undefined ? { message: sub } : {}),
          sign: v.sign ?? false,
          ...(v.out ? { out: v.out } : {}),
        });
      case 'shell':
        return await (await commands.shell()).shell(client);
      case 'session':
        return await (await commands.session()).sessionCommand({
          ...client,
          ...(sub ? { sub } : {}),
          ...(arg ? { target: arg } : {}),
        });
      case 'rotate-key':
        return await (await commands.rotate()).rotateKeyCommand({
          ...client,
          ...(v.gpg ? { gpg: v.gpg } : {}),
          ...(v['gpg-home'] ? { gpgHome: v['gpg-home'] } : {}),
          ...(v.import ? { importFile: v.import } : {}),
          ...(v['new-passphrase-file'] ? { newPassphraseFile: v['new-passphrase-file'] } : {}),
          rsa: v.rsa ?? false,
        });
      case 'revoke-key':
        return await (await commands.session()).revokeKey({
          ...client,
          ...(v.reason ? { reason: v.reason } : {}),
        });
      case 'audit':
        return await (await commands.audit()).audit({
          data,
          ...(v.id ? { id: v.id } : {}),
          ...(v.since ? { since: v.since } : {}),
          json,
        });
      case 'logs':
        if (sub !== 'decrypt')
          usage('usage: keyledger logs decrypt (--data DIR [--key FILE] | --home DIR) [--file F] [--json]');
        return await (await commands.logs()).logsDecrypt({
          ...passphrase,
          json,
          ...(v.data ? { data: v.data } : {}),
          ...(v.home ? { home: v.home } : {}),
          ...(v.key ? { key: v.key } : {}),
          ...(v.file ? { file: v.file } : {}),
        });
      case 'receipt':
        if (sub !== 'verify') usage('usage: keyledger receipt verify FILE [--genesis FILE]');
        return await (await commands.audit()).receiptVerify({
          ...client,
          ...(arg ? { file: arg } : {}),
          ...(v.genesis ? { genesis: v.genesis } : {}),
        });
      case 'init':
        return await (await commands.init()).init({
          ...client,
          ...(v.id ? { id: v.id } : {}),
          ...(v.name ? { name: v.name } : {}),
          ...(v.gpg ? { gpg: v.gpg } : {}),
          ...(v['gpg-home'] ? { gpgHome: v['gpg-home'] } : {}),
          ...(v.import ? { importFile: v.import } : {}),
          force: v.force ?? false,
          rsa: v.rsa ?? false,
        });
      case 'register':
        return await (await commands.register()).registerCommand({
          ...client,
          ...(v.server ? { server: v.server } : {}),
          ...(v.invite ? { invite: v.invite } : {}),
          email: v.email ?? false,
          ...(v.code ? { code: v.code } : {}),
          ...(v.chain ? { chain: v.chain } : {}),
          trustFirstUse: v['trust-first-use'] ?? false,
        });
      case 'login':
        return await (await commands.login()).loginCommand(client);
      case 'whoami':
        return await (await commands.whoami()).whoami(client);
      case 'status':
        return await (await commands.status()).status(client);
      case 'demo': {
        const users = v.users === undefined ? 3 : Number(v.users);
        if (!Number.isSafeInteger(users) || users < 2 || users > 1000)
          usage('--users must be an integer from 2 to 1000');
        return await (await commands.demo()).demo({ data: v.data ?? DEMO_DATA_DIR, users, ...passphrase });
      }
      case 'ledger': {
        if (!v.data) usage('--data DIR is required');
        const common = { data, json, quiet: v.quiet ?? false, ...passphrase };
        if (sub === 'init')
          return await (await commands.ledger()).ledgerInit({
            ...common,
            ...(v.name ? { name: v.name } : {}),
          });
        if (sub === 'deploy')
          return await (await commands.evmSetup()).ledgerDeploy({
            ...common,
            ledger: { engine: 'evm', ...serveFlags(v).ledger },
            ...(v['insecure-dev-funder-key'] ? { insecureDevFunderKey: v['insecure-dev-funder-key'] } : {}),
          });
        if (sub === 'verify')
          return await (await commands.ledger()).ledgerVerify({
            ...common,
            checkpoints: v.checkpoint ?? [],
            markVerified: v['mark-verified'] ?? false,
          });
        if (sub === 'show') {
          if ([v.height, v.id, v.tx].filter((x) => x !== undefined).length > 1)
            usage('give at most one of --height, --id, --tx');
          const height = (await commands.ledger()).parseHeight(v.height);
          return await (await commands.ledger()).ledgerShow({
            ...common,
            ...(height !== undefined ? { height } : {}),
            ...(v.id !== undefined ? { id: v.id } : {}),
            ...(v.tx !== undefined ? { tx: v.tx } : {}),
          });
        }
        break;
      }
    }
    usage(`unknown command "${positionals.join(' ')}" (see keyledger --help)`);
  } catch (err) {
    if (isKlError(err)) info(`error ${err.code}: ${err.message}`);
    else info(`error: ${(err as Error).message ?? String(err)}`);
    if (
      NODE_PASSPHRASE_COMMANDS.has(cmd) &&
      !passphrase.insecureDevPassphrase &&
      !(cmd === 'logs' && !v.data)
    ) {
      const dir =
        cmd === 'serve'
          ? await serveDataDir(v)
          : (v.data ?? (cmd === 'demo' ? DEMO_DATA_DIR : './keyledger-data'));
      const hint = (await import('./dev-passphrase.js')).devPassphraseHint(err, dir);
      if (hint) info(hint);
    }
    return 2;
  }
}
