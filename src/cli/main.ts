/**
 * The `keyledger` command.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultHome } from '../client/home.js';
import { parseDuration } from '../protocol/duration.js';
import { isKlError, KlError } from '../protocol/errors.js';
import type { ConfigFile } from '../server/config.js';
import { init, loginCommand, registerCommand, rotateKeyCommand, status, whoami } from './commands/client.js';
import { demo } from './commands/demo.js';
import { ledgerInit, ledgerShow, ledgerVerify, parseHeight } from './commands/ledger.js';
import { logsDecrypt } from './commands/logs.js';
import { adminInvite, configCheck, configSchema, ledgerDeploy, serve } from './commands/server.js';
import {
  adminDashboard,
  adminGrant,
  adminSessionCommand,
  audit,
  receiptVerify,
  revokeKey,
  send,
  sessionCommand,
  shell,
} from './commands/session.js';
import { endQuietlyWhenOutputCloses, info } from './io.js';

const HELP: Record<string, string> = {
  '': `keyledger — passwordless mutual authentication with OpenPGP keys on a permissioned ledger

server (operator):
  keyledger serve [--config FILE] [--data DIR] [--host 127.0.0.1] [--port 7420] [--challenge-ttl 60s]
                  [--admin IDENTITY]... [--public-url URL] [--tls-cert FILE --tls-key FILE]
                  [--ledger evm --rpc URL [--contract ADDR --from-block N]]
                  [--smtp-url URL [--smtp-from ADDR] [--insecure-smtp-plaintext]]
  keyledger config check [--config FILE] | config schema   validate / describe the configuration
  keyledger admin invite IDENTITY [--data DIR] [--expires 24h] [--json]
  keyledger admin grant | ungrant IDENTITY [--data DIR]   the admin role, on the ledger

user:
  keyledger init --id IDENTITY [--name NAME] [--home DIR] [--gpg FPR [--gpg-home DIR] | --import FILE]
                 [--rsa] [--force]
  keyledger register --server URL (--invite CODE | --email [--code CODE]) [--home DIR] [--chain ID]
                     [--trust-first-use]
  keyledger login [--home DIR] [--json]
  keyledger whoami | status [--home DIR] [--json]
  keyledger send MESSAGE [--sign [--out FILE]] [--json]     one message in a fresh session
  keyledger shell                                            an interactive session
  keyledger session list | revoke SESSION_ID                 your other sessions
  keyledger rotate-key [--rsa | --gpg FPR [--gpg-home DIR] | --import FILE] [--new-passphrase-file FILE]
                                                             replace your key on the ledger
  keyledger revoke-key [--reason compromised]                revoke your key on the ledger

admin (an identity with the admin role, from its own machine):
  keyledger admin dashboard [--home DIR] [--no-open]        a one-time link to the web dashboard

operator (through DATA/admin.sock of the running server):
  keyledger admin sessions | alerts [--data DIR] [--json]
  keyledger admin revoke-session SESSION_ID [--data DIR]
  keyledger admin revoke-key IDENTITY [--reason R] [--data DIR]

ledger (auditor):
  keyledger audit --data DIR [--id IDENTITY] [--since 2026-11-26] [--json]
  keyledger logs decrypt --data DIR [--key FILE] [--file FILE]   (or --home DIR for a client's log)
  keyledger receipt verify FILE [--genesis FILE | --home DIR]
  keyledger ledger verify --data DIR [--checkpoint FILE]... [--mark-verified] [--quiet] [--json]
  keyledger ledger show --data DIR [--height N | --id IDENTITY | --tx TXID] [--json]
  keyledger ledger init --data DIR [--name NAME]
  keyledger ledger deploy --data DIR --rpc URL [--contract ADDR --from-block N]
                          [--insecure-dev-funder-key KEY]                  EVM engine
  keyledger demo [--data DIR] [--users N]

Passphrases (node, or your key): from the environment, --passphrase-file FILE, a prompt, or
--insecure-dev-passphrase (public, demos only). -h, --help; -v, --version.
Run "keyledger COMMAND --help" for details. Exit status: 0 success, 1 a check failed, 2 error
(the message starts with the error code).`,
  serve: `keyledger serve [--config FILE] [--data DIR] [--host 127.0.0.1] [--port 7420] [--challenge-ttl 60s]
                [--admin IDENTITY]... [--public-url URL] [--tls-cert FILE --tls-key FILE]
  Settings come from --config FILE (JSON, docs/configuration.md), then KEYLEDGER_* environment
  variables, then these flags. keyledger config check shows the result.
  --ledger evm --rpc URL [--contract ADDRESS --from-block N]: on first start, a ledger ordered by an
  EVM chain (Besu/GoQuorum QBFT): deploys the KeyRegistry contract, or attaches to ADDRESS
  (docs/deploy-besu.md). Later starts read the engine from the data directory; --rpc changes the node.
  Starts the server; initialises DIR (default ./keyledger-data) on first start: the ledger, its
  validator key and the server's OpenPGP key, pinned in the genesis. --admin names identities that
  get the admin role on the ledger once registered (the first admin); --public-url is the address
  people use to reach the server (dashboard links; https:// makes the dashboard cookie Secure).
  --tls-cert FILE --tls-key FILE (PEM): serve https:// and wss:// (the dashboard cookie is Secure);
  on SIGHUP both files are read again and serve new connections (live ones are kept); a bad pair is
  refused and the previous certificate keeps serving. Behind a TLS proxy instead: README, "Deploying".
  Also serves /admin (dashboard), /openapi.json and /docs, /metrics, /healthz, /readyz.
  Passphrase of the node keys: KEYLEDGER_SERVER_PASSPHRASE, --passphrase-file FILE, a prompt, or
  --insecure-dev-passphrase (public passphrase, demos only).
  Emailed codes: KEYLEDGER_SMTP_URL (smtp://user:pass@host:587), KEYLEDGER_SMTP_FROM, or --smtp-url,
  --smtp-from; --insecure-smtp-plaintext allows a relay without TLS.`,
  admin: `keyledger admin invite IDENTITY [--data DIR] [--expires 24h] [--json]
  Prints a one-time invitation code bound to IDENTITY (stored hashed, expiring, single use).
keyledger admin grant | ungrant IDENTITY [--data DIR]
  Grants or removes the admin role on the ledger (a governance transaction approved by the node's
  validator); the identity must be registered.
keyledger admin dashboard [--home DIR] [--no-open] [--json]
  Logs in with your key (the normal handshake), asks for a one-time dashboard link (valid 60 s, single
  use; your identity must hold the admin role), prints it and opens it in a browser if there is one.
keyledger admin sessions | alerts [--data DIR] [--json]
keyledger admin revoke-session SESSION_ID [--data DIR]
keyledger admin revoke-key IDENTITY [--reason compromised|superseded|retired|unspecified] [--data DIR]
  Talk to the running server through DATA/admin.sock (mode 0600: the operator's account only).`,
  send: `keyledger send MESSAGE [--sign [--out FILE]] [--home DIR] [--json]
  Logs in, sends MESSAGE to the demo service, prints the reply, logs out. --sign signs MESSAGE with
  your key; the server verifies it, anchors its hash on the ledger and returns a receipt (verified
  here); --out saves message, signature and receipt for keyledger receipt verify.`,
  shell:
    'keyledger shell [--home DIR]\n  An interactive session: messages in, replies out; shows renewals and alerts.',
  session:
    'keyledger session list | revoke SESSION_ID [--home DIR]\n  Lists or ends your other live sessions.',
  'revoke-key':
    'keyledger revoke-key [--reason compromised|superseded|retired|unspecified] [--home DIR]\n  Revokes your key on the ledger (signed by the key itself); every session of your identity ends.',
  'rotate-key': `keyledger rotate-key [--rsa | --gpg FPR [--gpg-home DIR] | --import FILE] [--home DIR] [--json]
  Replaces your key on the ledger (KeyRotated, signed by the current and by the new key): makes a
  new key (or uses the one given), logs in with the current key, has the server write the rotation,
  verifies the receipt, installs the new key and logs in with it. The old private key moves to
  HOME/retired/. The new key is protected by KEYLEDGER_NEW_PASSPHRASE or --new-passphrase-file,
  else by the current passphrase. Every session opened with the old key ends. If the rotation is
  interrupted, run the command again: it finishes it (or starts over if the ledger never changed).`,
  audit:
    'keyledger audit --data DIR [--id IDENTITY] [--since DATE] [--json]\n  Lists audit events from the ledger (identities are stored hashed; --id hashes yours to match).\n  Every event is checked against its block first: if the ledger is damaged, nothing is listed (exit 1).',
  receipt:
    'keyledger receipt verify FILE [--genesis FILE | --home DIR] [--json]\n  Checks a receipt (from keyledger send --sign --out FILE) against the ledger genesis, and the\n  OpenPGP signature against the key the ledger held for the signer at that block (asks the server\n  pinned in --home for the key record and its proofs). Exit 1 if any check fails.',
  init: `keyledger init --id IDENTITY [--name NAME] [--home DIR] [--force]
  Makes a v4 Ed25519/Cv25519 key (--rsa: RSA-3072) protected by KEYLEDGER_PASSPHRASE or
  --passphrase-file (prompted on a terminal). --home defaults to ~/.keyledger (KEYLEDGER_HOME).
  --gpg FPR [--gpg-home DIR]  use a key that stays in GnuPG (gpg-agent, smartcard)
  --import FILE               import an armored secret key made by another tool (its current
                              passphrase from KEYLEDGER_IMPORT_PASSPHRASE, if any)`,
  register: `keyledger register --server URL (--invite CODE | --email [--code CODE]) [--home DIR] [--chain ID] [--trust-first-use] [--json]
  Registers your key. Give the invitation (or emailed code) whole: the part after the "." pins the
  server, which is checked before anything is sent; without it (or --chain ID, the ledger id you got
  out of band) the server is not authenticated: the command says so and sends the code only if you
  confirm on the terminal, or with --trust-first-use (trust on first use). The code travels sealed
  to the server key inside a statement signed by your key; the command waits until the ledger
  committed it, verifies the receipt against the ledger's genesis and pins the server key.
  --email alone asks for a code by email; run again with --email --code 'THE LINE FROM THE EMAIL'.`,
  login: `keyledger login [--home DIR] [--json]
  Checks that the ledger only grew since your last checkpoint, then runs the mutual authentication
  handshake and prints the session id and expiry.`,
  whoami: 'keyledger whoami [--home DIR] [--json]\n  Shows your identity, key fingerprint and server.',
  status:
    'keyledger status [--home DIR] [--json]\n  Shows identity, pinned server key and ledger, and verifies what the ledger holds for you now.\n  Exit: 0 the ledger holds this key, active; 1 a check failed (server key or proof); 2 error (e.g.\n  KL_CHECKPOINT_INVALID: history cut short); 3 the ledger holds ANOTHER key; 4 revoked; 5 unknown.',
  ledger: `keyledger ledger verify | show | init | deploy --data DIR ...
  keyledger ledger verify --data DIR [--checkpoint FILE]... [--mark-verified] [--quiet] [--json]
  keyledger ledger show --data DIR [--height N | --id IDENTITY | --tx TXID] [--json]
  keyledger ledger init --data DIR [--name NAME]
  keyledger ledger deploy --data DIR --rpc URL [--contract ADDRESS --from-block N]
Run "keyledger ledger verify --help" (show, init, deploy) for each one.`,
  'ledger verify': `keyledger ledger verify --data DIR [--checkpoint FILE]... [--mark-verified] [--quiet] [--json]
  Replays and checks the whole ledger (exit 1 naming the first bad block). --checkpoint FILE: a
  checkpoint (signed header) kept from earlier, which the ledger must still contain. --mark-verified
  (node passphrase, server stopped): if it verifies, records the node's verified checkpoint at its
  top, so a node refused for "no valid verified checkpoint" starts on this history — your decision.
  Progress goes to stderr (a few lines when it is not a terminal); --quiet hides it.`,
  'ledger show': `keyledger ledger show --data DIR [--height N | --id IDENTITY | --tx TXID] [--json]
  Without a selector: the ledger's name, chain id, height and its last 10 blocks. --height N: block
  N and its transactions. --id IDENTITY: the key record of IDENTITY, its history and its proof,
  checked against the genesis (exit 1 if the proof fails). --tx TXID: one transaction and its
  inclusion proof (exit 1 if it fails).`,
  'ledger init': `keyledger ledger init --data DIR [--name NAME]
  Makes the keys and the genesis of a new data directory (embedded ledger). The node passphrase
  comes from KEYLEDGER_SERVER_PASSPHRASE, --passphrase-file FILE or a prompt.`,
  'ledger deploy': `keyledger ledger deploy --data DIR --rpc URL [--contract ADDRESS --from-block N] [--insecure-dev-funder-key KEY]
  A new data directory whose ledger is ordered by an EVM chain: makes this node's Ethereum account
  (sealed under the node passphrase) and deploys KeyRegistry from it (or attaches to ADDRESS). On a
  development chain (anvil, Hardhat) --insecure-dev-funder-key pays for the account with a public key.`,
  logs: `keyledger logs decrypt (--data DIR [--key FILE] | --home DIR) [--file FILE] [--json]
  Decrypts and prints encrypted log files (FILE alone, or every *.log.enc in DIR/logs). The reader's
  key: --key FILE, the operator's key (passphrase in KEYLEDGER_OPERATOR_PASSPHRASE); by default the
  server key of --data DIR (node passphrase: KEYLEDGER_SERVER_PASSPHRASE, --passphrase-file FILE or
  a prompt); with --home DIR, your own key for the client's logs (and the keys it retired by
  rotation; passphrase KEYLEDGER_PASSPHRASE). Exit 1 if a line does not decrypt.`,
  config: `keyledger config check [--config FILE] [serve flags] [--json]
  Validates the configuration keyledger serve would use (file, then KEYLEDGER_* environment, then
  flags) against its schema and prints it with secrets hidden; exit 2 with every problem otherwise.
keyledger config schema
  Prints the JSON schema of the configuration file (reference: docs/configuration.md).`,
  demo: 'keyledger demo [--data DIR] [--users N]\n  Registers real OpenPGP keys on an embedded ledger and checks every proof.',
};

const OPTIONS = {
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

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Settings given as `serve` flags (only those given: they override the file and the environment). */
function serveFlags(v: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values']): ConfigFile {
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

/** The help of `cmd sub`, else of `cmd`, else the general help. */
function helpFor(cmd: string | undefined, sub: string | undefined): string {
  const own = (key: string) => (Object.hasOwn(HELP, key) ? HELP[key] : undefined);
  return (sub !== undefined ? own(`${cmd} ${sub}`) : undefined) ?? own(cmd ?? '') ?? HELP['']!;
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

function usage(message: string): never {
  throw new KlError('KL_BAD_INPUT', message);
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  endQuietlyWhenOutputCloses();
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
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
        return await serve({
          ...(v.config ? { configFile: v.config } : {}),
          flags: serveFlags(v),
          json,
          ...passphrase,
          insecurePlainLogs: v['insecure-plain-logs'] ?? false,
        });
      case 'config':
        if (sub === 'schema') return configSchema();
        if (sub !== 'check') usage('usage: keyledger config check [--config FILE] | keyledger config schema');
        return configCheck({ ...(v.config ? { configFile: v.config } : {}), flags: serveFlags(v), json });
      case 'admin':
        if (sub === 'invite') {
          if (!arg) usage('usage: keyledger admin invite IDENTITY [--data DIR] [--expires 24h]');
          return await adminInvite({
            data,
            identity: arg,
            expiresMs: parseDuration(v.expires ?? '24h', '--expires'),
            json,
          });
        }
        if (sub === 'dashboard') return await adminDashboard({ ...client, open: !v['no-open'] });
        if (sub === 'grant' || sub === 'ungrant') {
          if (!arg) usage(`usage: keyledger admin ${sub} IDENTITY [--data DIR]`);
          return await adminGrant({ data, id: arg, grant: sub === 'grant', json });
        }
        if (sub === 'sessions' || sub === 'alerts' || sub === 'revoke-session' || sub === 'revoke-key') {
          return await adminSessionCommand({
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
        return await send({
          ...client,
          ...(sub !== undefined ? { message: sub } : {}),
          sign: v.sign ?? false,
          ...(v.out ? { out: v.out } : {}),
        });
      case 'shell':
        return await shell(client);
      case 'session':
        return await sessionCommand({ ...client, ...(sub ? { sub } : {}), ...(arg ? { target: arg } : {}) });
      case 'rotate-key':
        return await rotateKeyCommand({
          ...client,
          ...(v.gpg ? { gpg: v.gpg } : {}),
          ...(v['gpg-home'] ? { gpgHome: v['gpg-home'] } : {}),
          ...(v.import ? { importFile: v.import } : {}),
          ...(v['new-passphrase-file'] ? { newPassphraseFile: v['new-passphrase-file'] } : {}),
          rsa: v.rsa ?? false,
        });
      case 'revoke-key':
        return await revokeKey({ ...client, ...(v.reason ? { reason: v.reason } : {}) });
      case 'audit':
        return await audit({
          data,
          ...(v.id ? { id: v.id } : {}),
          ...(v.since ? { since: v.since } : {}),
          json,
        });
      case 'logs':
        if (sub !== 'decrypt')
          usage('usage: keyledger logs decrypt (--data DIR [--key FILE] | --home DIR) [--file F] [--json]');
        return await logsDecrypt({
          ...passphrase,
          json,
          ...(v.data ? { data: v.data } : {}),
          ...(v.home ? { home: v.home } : {}),
          ...(v.key ? { key: v.key } : {}),
          ...(v.file ? { file: v.file } : {}),
        });
      case 'receipt':
        if (sub !== 'verify') usage('usage: keyledger receipt verify FILE [--genesis FILE]');
        return await receiptVerify({
          ...client,
          ...(arg ? { file: arg } : {}),
          ...(v.genesis ? { genesis: v.genesis } : {}),
        });
      case 'init':
        return await init({
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
        return await registerCommand({
          ...client,
          ...(v.server ? { server: v.server } : {}),
          ...(v.invite ? { invite: v.invite } : {}),
          email: v.email ?? false,
          ...(v.code ? { code: v.code } : {}),
          ...(v.chain ? { chain: v.chain } : {}),
          trustFirstUse: v['trust-first-use'] ?? false,
        });
      case 'login':
        return await loginCommand(client);
      case 'whoami':
        return await whoami(client);
      case 'status':
        return await status(client);
      case 'demo': {
        const users = v.users === undefined ? 3 : Number(v.users);
        if (!Number.isSafeInteger(users) || users < 2 || users > 1000)
          usage('--users must be an integer from 2 to 1000');
        return await demo({ data, users, ...passphrase });
      }
      case 'ledger': {
        if (!v.data) usage('--data DIR is required');
        const common = { data, json, quiet: v.quiet ?? false, ...passphrase };
        if (sub === 'init') return await ledgerInit({ ...common, ...(v.name ? { name: v.name } : {}) });
        if (sub === 'deploy')
          return await ledgerDeploy({
            ...common,
            ledger: { engine: 'evm', ...serveFlags(v).ledger },
            ...(v['insecure-dev-funder-key'] ? { insecureDevFunderKey: v['insecure-dev-funder-key'] } : {}),
          });
        if (sub === 'verify')
          return await ledgerVerify({
            ...common,
            checkpoints: v.checkpoint ?? [],
            markVerified: v['mark-verified'] ?? false,
          });
        if (sub === 'show') {
          if ([v.height, v.id, v.tx].filter((x) => x !== undefined).length > 1)
            usage('give at most one of --height, --id, --tx');
          const height = parseHeight(v.height);
          return await ledgerShow({
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
    return 2;
  }
}
