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
