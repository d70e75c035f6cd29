/**
 * The options the `keyledger` commands share (each command declares which of them it takes, in
 * program.ts), and the `serve` settings they give.
 */
import { Option } from 'commander';
import { KlError } from '../protocol/errors.js';
import type { ConfigFile } from '../server/config.js';

/** The values commander parsed for one command (`--gpg-home` as `gpgHome`, `--no-open` as `open`). */
export type OptionValues = Record<string, string | string[] | boolean | undefined>;

/** A usage error (exit 2, `KL_BAD_INPUT`). */
export function usage(message: string): never {
  throw new KlError('KL_BAD_INPUT', message);
}

/** Appends a repeated option's value (`--admin A --admin B`): the argParser of such an option. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * The reasons a key is revoked for, as a KeyRevoked statement carries them (after the Reason for
 * Revocation of RFC 9580).
 */
export const REVOCATION_REASONS = ['compromised', 'superseded', 'retired', 'unspecified'] as const;

/** `--data DIR`: the server's data directory; `what` says which default applies. */
export function dataOption(what = 'the server data directory (default ./keyledger-data)'): Option {
  return new Option('--data <DIR>', what);
}

/** `--home DIR`: the user's keyledger home. */
export function homeOption(): Option {
  return new Option('--home <DIR>', 'your keyledger home (default ~/.keyledger, or KEYLEDGER_HOME)');
}

/** `--insecure-dev-funder-key KEY`: pay for new Ethereum accounts on a development chain. */
export function devFunderOption(): Option {
  return new Option(
    '--insecure-dev-funder-key <KEY>',
    'pay for the account from this key (development chains only)',
  );
}

/** `--json`: results as JSON on stdout. */
export function jsonOption(): Option {
  return new Option('--json', 'print the result as JSON');
}

/** `--passphrase-file FILE` for the user's key. */
export function userPassphraseOption(): Option {
  return new Option(
    '--passphrase-file <FILE>',
    'passphrase of your key from FILE (else KEYLEDGER_PASSPHRASE, else a prompt)',
  );
}

/** `--passphrase-file FILE` and `--insecure-dev-passphrase` for the node keys. */
export function nodePassphraseOptions(): Option[] {
  return [
    new Option(
      '--passphrase-file <FILE>',
      'passphrase of the node keys from FILE (else KEYLEDGER_SERVER_PASSPHRASE, else a prompt)',
    ),
    new Option('--insecure-dev-passphrase', 'use the public development passphrase (demos only)'),
  ];
}

/** `--reason REASON` of a key revocation. */
export function reasonOption(): Option {
  return new Option('--reason <REASON>', 'why the key is revoked')
    .choices(REVOCATION_REASONS)
    .default('compromised');
}

/** `--gpg`, `--gpg-home`, `--import`, `--rsa`: where a new key comes from (init, rotate-key). */
export function keySourceOptions(): Option[] {
  return [
    new Option('--rsa', 'make an RSA-3072 key (default: Ed25519/Cv25519)'),
    new Option('--gpg <FINGERPRINT>', 'use a key that stays in GnuPG (gpg-agent, smartcard)'),
    new Option('--gpg-home <DIR>', 'the GnuPG home of --gpg'),
    new Option(
      '--import <FILE>',
      'import an armored secret key made by another tool (its passphrase in KEYLEDGER_IMPORT_PASSPHRASE)',
    ),
  ];
}

/**
 * The settings of `serve` given as flags (`serve` and `config check`): they override the file and
 * the KEYLEDGER_* environment (docs/configuration.md).
 */
export function serveSettingOptions(): Option[] {
  return [
    new Option('--config <FILE>', 'the configuration file (JSON, docs/configuration.md)'),
    new Option('--data <DIR>', 'the data directory (default ./keyledger-data)'),
    new Option('--host <HOST>', 'address to listen on (default 127.0.0.1)'),
    new Option('--port <N>', 'port to listen on, 0 for any free port (default 7420)'),
    new Option('--challenge-ttl <DURATION>', 'how long a login challenge lives (default 60s)'),
    new Option('--admin <IDENTITY>', 'give IDENTITY the admin role once registered (repeatable)').argParser(
      collect,
    ),
    new Option('--public-url <URL>', 'the address people use to reach the server (dashboard links)'),
    new Option('--tls-cert <FILE>', 'serve https:// and wss:// with this PEM certificate (with --tls-key)'),
    new Option('--tls-key <FILE>', 'the PEM private key of --tls-cert'),
    new Option('--smtp-url <URL>', 'the mail relay for emailed codes (smtp://user:pass@host:587)'),
    new Option('--smtp-from <ADDRESS>', 'the sender of emailed codes'),
    new Option('--insecure-smtp-plaintext', 'allow a mail relay without TLS'),
    new Option(
      '--operator-key <FILE>',
      'encrypt the log to this OpenPGP public key (default: the server key)',
    ),
    new Option('--ledger <ENGINE>', 'the ledger engine of a new data directory').choices([
      'embedded',
      'evm',
      'etcd',
    ]),
    new Option('--etcd <URLS>', 'the etcd cluster, comma-separated client URLs (implies --ledger etcd)'),
    new Option('--etcd-prefix <PREFIX>', 'the key prefix of a new etcd-ordered ledger (/keyledger/NAME)'),
    new Option('--rpc <URL>', 'the EVM node (--ledger evm)'),
    new Option('--contract <ADDRESS>', 'attach to this KeyRegistry contract instead of deploying one'),
    new Option('--from-block <N>', 'the block the contract was deployed at (with --contract)'),
    new Option('-q, --quiet', 'no event lines on the console (setting quiet, KEYLEDGER_QUIET=1)'),
  ];
}

/** Settings given as `serve` flags (only those given: they override the file and the environment). */
export function serveFlags(v: OptionValues): ConfigFile {
  const text = (name: string): string | undefined => (typeof v[name] === 'string' ? v[name] : undefined);
  let port: number | undefined;
  const portText = text('port');
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port > 65535) usage('--port must be 0 to 65535');
  }
  const smtpUrl = text('smtpUrl');
  const smtpFrom = text('smtpFrom');
  const smtp =
    smtpUrl !== undefined
      ? {
          url: smtpUrl,
          ...(smtpFrom ? { from: smtpFrom } : {}),
          ...(v.insecureSmtpPlaintext ? { insecurePlaintext: true } : {}),
        }
      : undefined;
  const admins = Array.isArray(v.admin) ? v.admin : [];
  const [dataDir, host, challengeTtl, operatorKey, publicUrl, cert, key] = [
    'data',
    'host',
    'challengeTtl',
    'operatorKey',
    'publicUrl',
    'tlsCert',
    'tlsKey',
  ].map(text);
  const flags: ConfigFile = {
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(challengeTtl !== undefined ? { challengeTtl } : {}),
    ...(operatorKey !== undefined ? { operatorKey } : {}),
    ...(admins.length ? { admins } : {}),
    ...(publicUrl !== undefined ? { publicUrl } : {}),
    ...(v.quiet ? { quiet: true } : {}),
    // One of the two alone completes (or misses) the other from the file or the environment.
    ...(cert !== undefined || key !== undefined
      ? {
          tls: {
            ...(cert !== undefined ? { cert } : {}),
            ...(key !== undefined ? { key } : {}),
          } as NonNullable<ConfigFile['tls']>,
        }
      : {}),
    ...(smtp ? { smtp } : {}),
  };
  const fromBlock = text('fromBlock');
  const ledger = {
    ...(text('ledger') !== undefined ? { engine: text('ledger') as 'embedded' | 'evm' | 'etcd' } : {}),
    ...(text('etcd') !== undefined
      ? {
          etcd: text('etcd')!
            .split(',')
            .map((u) => u.trim()),
        }
      : {}),
    ...(text('etcdPrefix') !== undefined ? { etcdPrefix: text('etcdPrefix') } : {}),
    ...(text('rpc') !== undefined ? { rpcUrl: text('rpc') } : {}),
    ...(text('contract') !== undefined ? { contract: text('contract') } : {}),
    ...(fromBlock !== undefined ? { fromBlock: Number(fromBlock) } : {}),
  };
  if (Object.keys(ledger).length) flags.ledger = ledger;
  return flags;
}
