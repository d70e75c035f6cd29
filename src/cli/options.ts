/**
 * The options of the `keyledger` command line, and the `serve` settings they give.
 */
import type { parseArgs } from 'node:util';
import { KlError } from '../protocol/errors.js';
import type { ConfigFile } from '../server/config.js';

/** Every option of every command (parseArgs, strict): each command's help says which it reads. */
export const OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  name: { type: 'string' },
  height: { type: 'string' },
  id: { type: 'string' },
  tx: { type: 'string' },
  users: { type: 'string' },
  checkpoint: { type: 'string', multiple: true },
  'mark-verified': { type: 'boolean' },
  host: { type: 'string' },
  port: { type: 'string' },
  'challenge-ttl': { type: 'string' },
  expires: { type: 'string' },
  home: { type: 'string' },
  gpg: { type: 'string' },
  'gpg-home': { type: 'string' },
  import: { type: 'string' },
  force: { type: 'boolean' },
  rsa: { type: 'boolean' },
  server: { type: 'string' },
  invite: { type: 'string' },
  email: { type: 'boolean' },
  code: { type: 'string' },
  chain: { type: 'string' },
  'trust-first-use': { type: 'boolean' },
  'smtp-url': { type: 'string' },
  'smtp-from': { type: 'string' },
  'insecure-smtp-plaintext': { type: 'boolean' },
  'passphrase-file': { type: 'string' },
  config: { type: 'string' },
  ledger: { type: 'string' },
  rpc: { type: 'string' },
  contract: { type: 'string' },
  'from-block': { type: 'string' },
  'insecure-dev-funder-key': { type: 'string' },
  admin: { type: 'string', multiple: true },
  'public-url': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'no-open': { type: 'boolean' },
  'new-passphrase-file': { type: 'string' },
  sign: { type: 'boolean' },
  out: { type: 'string' },
  reason: { type: 'string' },
  since: { type: 'string' },
  genesis: { type: 'string' },
  'operator-key': { type: 'string' },
  'insecure-plain-logs': { type: 'boolean' },
  key: { type: 'string' },
  file: { type: 'string' },
  'insecure-dev-passphrase': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** The name of an option. */
export type OptionName = keyof typeof OPTIONS;

const SERVE_SETTINGS: readonly OptionName[] = [
  'config',
  'data',
  'host',
  'port',
  'challenge-ttl',
  'operator-key',
  'admin',
  'public-url',
  'tls-cert',
  'tls-key',
  'smtp-url',
  'smtp-from',
  'insecure-smtp-plaintext',
  'ledger',
  'rpc',
  'contract',
  'from-block',
  'quiet',
];
const NODE_PASSPHRASE: readonly OptionName[] = ['passphrase-file', 'insecure-dev-passphrase'];
const USER: readonly OptionName[] = ['home', 'passphrase-file', 'json'];
const KEY_SOURCE: readonly OptionName[] = ['gpg', 'gpg-home', 'import', 'rsa'];

/**
 * The options each command takes (besides -h/--help and -v/--version): any other is refused with a
 * pointer to that command's help, so a mistyped or misplaced option never passes silently. Keyed
 * by command, or by `command subcommand` where subcommands differ.
 */
export const COMMAND_OPTIONS: Record<string, readonly OptionName[]> = {
  serve: [...SERVE_SETTINGS, ...NODE_PASSPHRASE, 'insecure-plain-logs', 'json'],
  'config check': [...SERVE_SETTINGS, 'json'],
  'config schema': [],
  'admin invite': ['data', 'expires', 'json'],
  'admin grant': ['data', 'json'],
  'admin ungrant': ['data', 'json'],
  'admin dashboard': [...USER, 'no-open'],
  'admin sessions': ['data', 'json'],
  'admin alerts': ['data', 'json'],
  'admin revoke-session': ['data', 'json'],
  'admin revoke-key': ['data', 'json', 'reason'],
  init: [...USER, 'id', 'name', ...KEY_SOURCE, 'force'],
  register: [...USER, 'server', 'invite', 'email', 'code', 'chain', 'trust-first-use'],
  login: USER,
  whoami: ['home', 'json'],
  status: ['home', 'json'],
  send: [...USER, 'sign', 'out'],
  shell: ['home', 'passphrase-file'],
  session: USER,
  'rotate-key': [...USER, ...KEY_SOURCE, 'new-passphrase-file'],
  'revoke-key': [...USER, 'reason'],
  audit: ['data', 'id', 'since', 'json'],
  'logs decrypt': ['data', 'home', 'key', 'file', 'json', ...NODE_PASSPHRASE],
  'receipt verify': ['home', 'genesis', 'json'],
  'ledger verify': ['data', 'checkpoint', 'mark-verified', 'quiet', 'json', ...NODE_PASSPHRASE],
  'ledger show': ['data', 'height', 'id', 'tx', 'json'],
  'ledger init': ['data', 'name', 'json', ...NODE_PASSPHRASE],
  'ledger deploy': [
    'data',
    'rpc',
    'contract',
    'from-block',
    'insecure-dev-funder-key',
    'json',
    ...NODE_PASSPHRASE,
  ],
  demo: ['data', 'users', ...NODE_PASSPHRASE],
};

/** The key of COMMAND_OPTIONS (and of the help) for a command line's first two words, if any. */
export function commandKey(cmd: string | undefined, sub: string | undefined): string | undefined {
  if (cmd === undefined) return undefined;
  if (sub !== undefined && Object.hasOwn(COMMAND_OPTIONS, `${cmd} ${sub}`)) return `${cmd} ${sub}`;
  return Object.hasOwn(COMMAND_OPTIONS, cmd) ? cmd : undefined;
}

/** The parsed option values. */
export type OptionValues = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** A usage error (exit 2, `KL_BAD_INPUT`). */
export function usage(message: string): never {
  throw new KlError('KL_BAD_INPUT', message);
}

/** Settings given as `serve` flags (only those given: they override the file and the environment). */
export function serveFlags(v: OptionValues): ConfigFile {
  let port: number | undefined;
  if (v.port !== undefined) {
    port = Number(v.port);
    if (!/^\d+$/.test(v.port) || port > 65535) usage('--port must be 0 to 65535');
  }
  const smtp =
    v['smtp-url'] !== undefined
      ? {
          url: v['smtp-url'],
          ...(v['smtp-from'] ? { from: v['smtp-from'] } : {}),
          ...(v['insecure-smtp-plaintext'] ? { insecurePlaintext: true } : {}),
        }
      : undefined;
  const flags: ConfigFile = {
    ...(v.data !== undefined ? { dataDir: v.data } : {}),
    ...(v.host !== undefined ? { host: v.host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(v['challenge-ttl'] !== undefined ? { challengeTtl: v['challenge-ttl'] } : {}),
    ...(v['operator-key'] !== undefined ? { operatorKey: v['operator-key'] } : {}),
    ...(v.admin?.length ? { admins: v.admin } : {}),
    ...(v['public-url'] !== undefined ? { publicUrl: v['public-url'] } : {}),
    ...(v.quiet ? { quiet: true } : {}),
    // One of the two alone completes (or misses) the other from the file or the environment.
    ...(v['tls-cert'] !== undefined || v['tls-key'] !== undefined
      ? {
          tls: {
            ...(v['tls-cert'] !== undefined ? { cert: v['tls-cert'] } : {}),
            ...(v['tls-key'] !== undefined ? { key: v['tls-key'] } : {}),
          } as NonNullable<ConfigFile['tls']>,
        }
      : {}),
    ...(smtp ? { smtp } : {}),
  };
  const ledger = {
    ...(v.ledger !== undefined ? { engine: v.ledger as 'embedded' | 'evm' } : {}),
    ...(v.rpc !== undefined ? { rpcUrl: v.rpc } : {}),
    ...(v.contract !== undefined ? { contract: v.contract } : {}),
    ...(v['from-block'] !== undefined ? { fromBlock: Number(v['from-block']) } : {}),
  };
  if (Object.keys(ledger).length) flags.ledger = ledger;
  return flags;
}
