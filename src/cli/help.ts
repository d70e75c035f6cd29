/**
 * The help texts of the `keyledger` command, one per command (and subcommand).
 */
import { COMMAND_OPTIONS, commandKey, OPTIONS, type OptionName } from './options.js';

/** Help text by command (`''` is the general help; `"ledger verify"` a subcommand's). */
export const HELP: Record<string, string> = {
  '': `keyledger — passwordless mutual authentication with OpenPGP keys on a permissioned ledger

server (operator):
  keyledger serve [--config FILE] [--data DIR] [--host 127.0.0.1] [--port 7420] [--challenge-ttl 60s]
                  [--admin IDENTITY]... [--public-url URL] [--tls-cert FILE --tls-key FILE]
                  [--ledger evm --rpc URL [--contract ADDR --from-block N]]
                  [--smtp-url URL [--smtp-from ADDR] [--insecure-smtp-plaintext]]
                  [--operator-key FILE] [--quiet] [--insecure-plain-logs]
  keyledger config check [--config FILE] | config schema   validate / describe the configuration
  keyledger admin invite IDENTITY [--data DIR] [--expires 24h] [--json]
  keyledger admin grant | ungrant IDENTITY [--data DIR]   the admin role, on the ledger

user:
  keyledger init --id IDENTITY [--name NAME] [--home DIR] [--gpg FPR [--gpg-home DIR] | --import FILE]
                 [--rsa] [--force]
  keyledger register --server URL (--invite CODE | --email [--code CODE]) [--home DIR] [--chain ID]
                     [--trust-first-use]
  keyledger login [--home DIR] [--json]                     check your key and the server (logs out)
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
  keyledger demo [--data DIR] [--users N]                    a ledger of its own (./keyledger-demo)

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
  --smtp-from; --insecure-smtp-plaintext allows a relay without TLS.
  Console: after the banner, one line per event on stdout (time in UTC): registered, login, logout,
  ended (timeout, revoked…), revoked/rotated key, role, ALERT, refused; never a code, key or token.
  Refusals are summarised per source (IPv4 /24, IPv6 /64) every 10 s. --json: the start object, then
  one JSON object per event ("event": its kind). -q, --quiet (setting quiet, KEYLEDGER_QUIET=1): no
  event lines (audit trail unchanged).
  The log in DATA/logs is encrypted to the server key, or to --operator-key FILE (an OpenPGP public
  key); --insecure-plain-logs also prints it in clear on stderr (development only).`,
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
  shell: `keyledger shell [--home DIR]
  An interactive session with the demo service: each line you type is sent as a message and its
  reply shown; renewals and alerts are shown as they happen. Commands (never sent): /sign TEXT,
  /note put NAME TEXT, /note get NAME, /notes, /sessions, /renew, /send TEXT (sends TEXT as it is),
  /help; /quit, exit or Ctrl-D logs out and leaves. Lines piped in run the same way, without prompts.`,
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
  Checks that the ledger only grew since your last checkpoint, runs the mutual authentication
  handshake (your key as the ledger holds it, the server's key as pinned), then logs out. A session
  lives as long as the command that holds its keys (in memory only): send, shell and session open
  their own. Use it to check that your key, your passphrase and the server work.`,
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
  demo: `keyledger demo [--data DIR] [--users N]
  Registers N (default 3) real OpenPGP keys on an embedded ledger, anchors a message, revokes a key,
  and checks every receipt and proof. DIR defaults to ./keyledger-demo (its own, never the served
  ./keyledger-data) and is made if needed. Its keys are protected by KEYLEDGER_SERVER_PASSPHRASE or
  --passphrase-file FILE if given, else by the public development passphrase (it says so).`,
};

/** What a string option's value is, as the option lists show it. */
const VALUE: Partial<Record<OptionName, string>> = {
  data: 'DIR',
  home: 'DIR',
  'gpg-home': 'DIR',
  config: 'FILE',
  'passphrase-file': 'FILE',
  'new-passphrase-file': 'FILE',
  'operator-key': 'FILE',
  'tls-cert': 'FILE',
  'tls-key': 'FILE',
  import: 'FILE',
  key: 'FILE',
  file: 'FILE',
  out: 'FILE',
  genesis: 'FILE',
  checkpoint: 'FILE',
  port: 'N',
  'from-block': 'N',
  height: 'N',
  users: 'N',
  'public-url': 'URL',
  server: 'URL',
  rpc: 'URL',
  'smtp-url': 'URL',
  id: 'IDENTITY',
  admin: 'IDENTITY',
  gpg: 'FINGERPRINT',
  contract: 'ADDRESS',
  'challenge-ttl': 'DURATION',
  expires: 'DURATION',
  'smtp-from': 'ADDRESS',
  ledger: 'ENGINE',
  host: 'HOST',
  reason: 'REASON',
  name: 'NAME',
  since: 'DATE',
  tx: 'TXID',
  code: 'CODE',
  invite: 'CODE',
  chain: 'ID',
  'insecure-dev-funder-key': 'KEY',
};

/** The options `command` takes, one list (from COMMAND_OPTIONS, so help and parser always agree). */
function optionList(command: string): string {
  const options = COMMAND_OPTIONS[command]!;
  if (options.length === 0) return `Options of keyledger ${command}: none.`;
  const shown = options.map((name) =>
    OPTIONS[name].type === 'string' ? `--${name} ${VALUE[name] ?? 'VALUE'}` : `--${name}`,
  );
  return `Options of keyledger ${command}: ${shown.join(', ')}; -h, --help.`;
}

/**
 * The help of `cmd sub`, else of `cmd`, else the general help; for a command, followed by the
 * list of every option it takes.
 */
export function helpFor(cmd: string | undefined, sub: string | undefined): string {
  const own = (key: string) => (Object.hasOwn(HELP, key) ? HELP[key] : undefined);
  const text = (sub !== undefined ? own(`${cmd} ${sub}`) : undefined) ?? own(cmd ?? '') ?? HELP['']!;
  const command = commandKey(cmd, sub);
  return command !== undefined && text !== HELP[''] ? `${text}\n${wrap(optionList(command))}` : text;
}

/** `text` wrapped at 100 columns, continuation lines indented by two spaces. */
function wrap(text: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > 100) {
      lines.push(line);
      line = `  ${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}
