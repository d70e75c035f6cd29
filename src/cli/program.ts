/**
 * The commands of `keyledger`, declared with commander: each one's arguments, options, help and
 * examples, and the module that does its work. That module is imported only in the command's
 * action, so a command loads only what it uses (bench/cli-start.ts measures it).
 */
import { type Command, Option } from 'commander';
import { defaultHome } from '../client/home.js';
import { parseDuration } from '../protocol/duration.js';
import {
  collect,
  dataOption,
  homeOption,
  jsonOption,
  keySourceOptions,
  nodePassphraseOptions,
  type OptionValues,
  reasonOption,
  serveFlags,
  serveSettingOptions,
  usage,
  userPassphraseOption,
} from './options.js';

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

/** The demo's own data directory: never the one `npm start` serves. */
const DEMO_DATA_DIR = './keyledger-demo';

/** What every command's help ends with. */
const EXIT_STATUS = 'Exit status: 0 success, 1 a check failed, 2 error (the message starts with its code).';

/** `text` as an option value, or undefined. */
function str(v: OptionValues, name: string): string | undefined {
  const value = v[name];
  return typeof value === 'string' ? value : undefined;
}

/** `{ [key]: value }` when value is defined, else `{}` (the commands take optional keys, not undefined). */
function given<K extends string, T>(key: K, value: T | undefined): { [P in K]?: T } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: T };
}

/** The passphrase options of a command, as the command modules take them. */
function passphraseOf(v: OptionValues): { passphraseFile?: string; insecureDevPassphrase: boolean } {
  return {
    ...given('passphraseFile', str(v, 'passphraseFile')),
    insecureDevPassphrase: !!v.insecureDevPassphrase,
  };
}

/** The options of a user command, as the command modules take them. */
function clientOf(v: OptionValues): { home: string; json: boolean; passphraseFile?: string } {
  return {
    home: str(v, 'home') ?? defaultHome(),
    json: !!v.json,
    ...given('passphraseFile', str(v, 'passphraseFile')),
  };
}

/** Adds `options` to `command`. */
function withOptions(command: Command, options: Option[]): Command {
  for (const option of options) command.addOption(option);
  return command;
}

/** Adds an "Examples:" section to the help of `command`, then the exit status. */
function examples(command: Command, lines: string[]): Command {
  return command.addHelpText(
    'after',
    `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n\n${EXIT_STATUS}`,
  );
}

/**
 * Declares every command of `keyledger` on `program`; an action records its exit code (and, for
 * the commands that open a data directory with the node passphrase, that directory) in `outcome`.
 */
export function declareCommands(program: Command, outcome: Outcome): void {
  /**
   * The action that runs `work` with the command's options and arguments (commander has checked
   * that every required argument is there) and records its exit code.
   */
  const act =
    (
      work: (v: OptionValues, args: string[]) => Promise<number> | number,
      nodeDir?: (v: OptionValues) => Promise<string | undefined> | string | undefined,
    ) =>
    async (...params: unknown[]): Promise<void> => {
      const command = params[params.length - 1] as Command;
      const v = command.opts() as OptionValues;
      const args = params.slice(0, -2).filter((p): p is string => typeof p === 'string');
      if (nodeDir && !v.insecureDevPassphrase) outcome.nodeDataDir = async () => nodeDir(v);
      outcome.code = await work(v, args);
    };
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
  const dataOr = (fallback: string) => (v: OptionValues) => str(v, 'data') ?? fallback;

  // ---- server (operator) ----
  const serve = program
    .command('serve')
    .summary('run the server (initialises its data directory on first start)')
    .description(
      [
        "Starts the server; initialises DIR (default ./keyledger-data) on first start: the ledger, its validator key and the server's OpenPGP key, pinned in the genesis.",
        'Settings come from --config FILE (JSON, docs/configuration.md), then KEYLEDGER_* environment variables, then these flags; keyledger config check shows the result.',
        '--ledger evm --rpc URL [--contract ADDRESS --from-block N]: on first start, a ledger ordered by an EVM chain (Besu/GoQuorum QBFT): deploys the KeyRegistry contract, or attaches to ADDRESS (docs/deploy-besu.md). Later starts read the engine from the data directory; --rpc changes the node.',
        '--admin names identities that get the admin role on the ledger once registered (the first admin); --public-url is the address people use to reach the server (dashboard links; https:// makes the dashboard cookie Secure).',
        '--tls-cert FILE --tls-key FILE (PEM): serve https:// and wss://; on SIGHUP both files are read again and serve new connections (live ones are kept); a bad pair is refused and the previous certificate keeps serving. Behind a TLS proxy instead: README, "Deploying".',
        'Also serves /admin (dashboard), /openapi.json and /docs, /metrics, /healthz, /readyz.',
        'Emailed codes: KEYLEDGER_SMTP_URL, KEYLEDGER_SMTP_FROM, or --smtp-url, --smtp-from.',
        'Console: after the banner, one line per event on stdout (time in UTC): registered, login, logout, ended (timeout, revoked…), revoked/rotated key, role, ALERT, refused; never a code, key or token. Refusals are summarised per source (IPv4 /24, IPv6 /64) every 10 s. --json: the start object, then one JSON object per event ("event": its kind). --quiet: no event lines (audit trail unchanged).',
        'The log in DATA/logs is encrypted to the server key, or to --operator-key FILE; --insecure-plain-logs also prints it in clear on stderr (development only).',
      ].join('\n\n'),
    );
  withOptions(serve, [
    ...serveSettingOptions(),
    ...nodePassphraseOptions(),
    new Option('--insecure-plain-logs', 'also print the log in clear on stderr (development only)'),
    new Option('--json', 'the start object, then one JSON object per event'),
  ]);
  examples(serve, [
    'keyledger serve --data ./keyledger-data --admin alice@example.org',
    'keyledger serve --config /etc/keyledger.json --tls-cert cert.pem --tls-key key.pem',
    'keyledger serve --ledger evm --rpc http://127.0.0.1:8545',
  ]).action(
    act(
      async (v) =>
        (await commands.server()).serve({
          ...given('configFile', str(v, 'config')),
          flags: serveFlags(v),
          json: !!v.json,
          ...passphraseOf(v),
          insecurePlainLogs: !!v.insecurePlainLogs,
        }),
      async (v) => {
        try {
          const { loadConfig, serverOptionsOf } = await import('../server/config.js');
          const file = str(v, 'config');
          return serverOptionsOf(loadConfig({ ...(file ? { file } : {}), flags: serveFlags(v) })).dataDir;
        } catch {
          return str(v, 'data') ?? './keyledger-data';
        }
      },
    ),
  );

  const config = program
    .command('config')
    .summary('check | schema: validate or describe the configuration of serve')
    .description('The configuration keyledger serve uses (docs/configuration.md).');
  const check = config
    .command('check')
    .summary('validate the configuration serve would use, and print it')
    .description(
      'Validates the configuration keyledger serve would use (file, then KEYLEDGER_* environment, then flags) against its schema and prints it with secrets hidden; exit 2 with every problem otherwise.',
    );
  withOptions(check, [...serveSettingOptions(), jsonOption()]);
  examples(check, [
    'keyledger config check --config /etc/keyledger.json',
    'keyledger config check --port 7000 --json',
  ]).action(
    act(async (v) =>
      (await commands.config()).configCheck({
        ...given('configFile', str(v, 'config')),
        flags: serveFlags(v),
        json: !!v.json,
      }),
    ),
  );
  examples(
    config
      .command('schema')
      .summary('print the JSON schema of the configuration file')
      .description('Prints the JSON schema of the configuration file (reference: docs/configuration.md).'),
    ['keyledger config schema > keyledger.schema.json'],
  ).action(act(async () => (await commands.config()).configSchema()));
  examples(config, ['keyledger config check', 'keyledger config schema']);

  const admin = program
    .command('admin')
    .summary('invite | grant | ungrant | dashboard | sessions | alerts | revoke-session | revoke-key')
    .description(
      "Operator commands on the data directory (invite, grant, ungrant) or through DATA/admin.sock of the running server (sessions, alerts, revoke-session, revoke-key; mode 0600: the operator's account only); dashboard runs from an admin's own machine with their key.",
    );
  const invite = admin
    .command('invite')
    .argument('<IDENTITY>', 'the email address the invitation is bound to')
    .summary('print a one-time invitation code')
    .description(
      'Prints a one-time invitation code bound to IDENTITY (stored hashed, expiring, single use).',
    );
  withOptions(invite, [
    dataOption(),
    new Option('--expires <DURATION>', 'how long the code is valid').default('24h'),
    jsonOption(),
  ]);
  examples(invite, ['keyledger admin invite bob@example.org --expires 2h']).action(
    act(async (v, [identity]) =>
      (await commands.invite()).adminInvite({
        data: str(v, 'data') ?? './keyledger-data',
        identity: identity!,
        expiresMs: parseDuration(str(v, 'expires') ?? '24h', '--expires'),
        json: !!v.json,
      }),
    ),
  );
  for (const [name, grant] of [
    ['grant', true],
    ['ungrant', false],
  ] as const) {
    const c = admin
      .command(name)
      .argument('<IDENTITY>', 'a registered identity')
      .summary(grant ? 'grant the admin role on the ledger' : 'remove the admin role on the ledger')
      .description(
        `${grant ? 'Grants' : 'Removes'} the admin role on the ledger (a governance transaction approved by the node's validator); the identity must be registered.`,
      );
    withOptions(c, [dataOption(), jsonOption()]);
    examples(c, [`keyledger admin ${name} alice@example.org --data ./keyledger-data`]).action(
      act(async (v, [id]) =>
        (await commands.admin()).adminGrant({
          data: str(v, 'data') ?? './keyledger-data',
          id: id!,
          grant,
          json: !!v.json,
        }),
      ),
    );
  }
  const dashboard = admin
    .command('dashboard')
    .summary('a one-time link to the web dashboard')
    .description(
      'Logs in with your key (the normal handshake), asks for a one-time dashboard link (valid 60 s, single use; your identity must hold the admin role), prints it and opens it in a browser if there is one.',
    );
  withOptions(dashboard, [
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
    new Option('--no-open', 'print the link only'),
  ]);
  examples(dashboard, ['keyledger admin dashboard', 'keyledger admin dashboard --no-open']).action(
    act(async (v) =>
      (await commands.dashboardLink()).adminDashboard({ ...clientOf(v), open: v.open !== false }),
    ),
  );
  const socketCommand = (
    name: 'sessions' | 'alerts' | 'revoke-session' | 'revoke-key',
    c: Command,
    example: string,
  ) => {
    withOptions(c, [dataOption(), jsonOption(), ...(name === 'revoke-key' ? [reasonOption()] : [])]);
    examples(c, [example]).action(
      act(async (v, [target]) =>
        (await commands.admin()).adminSessionCommand({
          data: str(v, 'data') ?? './keyledger-data',
          ...(name === 'revoke-session' || name === 'revoke-key'
            ? { sub: name, target: target! }
            : { sub: name }),
          ...given('reason', str(v, 'reason')),
          json: !!v.json,
        }),
      ),
    );
  };
  socketCommand(
    'sessions',
    admin
      .command('sessions')
      .summary('list the live sessions')
      .description('Lists the live sessions of the running server.'),
    'keyledger admin sessions --data ./keyledger-data --json',
  );
  socketCommand(
    'alerts',
    admin
      .command('alerts')
      .summary('list the security alerts')
      .description('Lists the newest security alerts of the running server.'),
    'keyledger admin alerts',
  );
  socketCommand(
    'revoke-session',
    admin
      .command('revoke-session')
      .argument('<SESSION_ID>', 'a session, as admin sessions lists it')
      .summary('end a live session')
      .description('Ends a live session of the running server.'),
    'keyledger admin revoke-session 5Hq2dXW0aVxS1r3b8nJk4A',
  );
  socketCommand(
    'revoke-key',
    admin
      .command('revoke-key')
      .argument('<IDENTITY>', 'the identity whose key is revoked')
      .summary("revoke a user's key on the ledger")
      .description("Revokes IDENTITY's key on the ledger; every session of that identity ends."),
    'keyledger admin revoke-key mallory@example.org --reason compromised',
  );
  examples(admin, [
    'keyledger admin invite bob@example.org',
    'keyledger admin grant alice@example.org',
    'keyledger admin sessions',
  ]);

  // ---- user ----
  const init = program
    .command('init')
    .summary('make your key (or use one from GnuPG or a file)')
    .description(
      'Makes a v4 Ed25519/Cv25519 key (--rsa: RSA-3072) protected by KEYLEDGER_PASSPHRASE or --passphrase-file (prompted on a terminal), in --home (default ~/.keyledger, or KEYLEDGER_HOME).',
    );
  withOptions(init, [
    new Option('--id <IDENTITY>', 'your identity: your email address (required)'),
    new Option('--name <NAME>', 'your name in the key (default: the part of --id before @)'),
    homeOption(),
    userPassphraseOption(),
    ...keySourceOptions(),
    new Option('--force', 'make a new key in a home that has one (the old one moves to HOME/retired/)'),
    jsonOption(),
  ]);
  examples(init, [
    'keyledger init --id alice@example.org',
    'keyledger init --id alice@example.org --gpg 0123456789ABCDEF0123456789ABCDEF01234567',
  ]).action(
    act(async (v) =>
      (await commands.init()).init({
        ...clientOf(v),
        ...given('id', str(v, 'id')),
        ...given('name', str(v, 'name')),
        ...given('gpg', str(v, 'gpg')),
        ...given('gpgHome', str(v, 'gpgHome')),
        ...given('importFile', str(v, 'import')),
        force: !!v.force,
        rsa: !!v.rsa,
      }),
    ),
  );

  const register = program
    .command('register')
    .summary('register your key with an invitation or an emailed code')
    .description(
      [
        'Registers your key. Give the invitation (or emailed code) whole: the part after the "." pins the server, which is checked before anything is sent; without it (or --chain ID, the ledger id you got out of band) the server is not authenticated: the command says so and sends the code only if you confirm on the terminal, or with --trust-first-use (trust on first use).',
        "The code travels sealed to the server key inside a statement signed by your key; the command waits until the ledger committed it, verifies the receipt against the ledger's genesis and pins the server key.",
        "--email alone asks for a code by email; run again with --email --code 'THE LINE FROM THE EMAIL'.",
      ].join('\n\n'),
    );
  withOptions(register, [
    new Option('--server <URL>', 'the server (required)'),
    new Option('--invite <CODE>', 'the invitation code, whole'),
    new Option('--email', 'register by an emailed code'),
    new Option('--code <CODE>', 'the line from the email (with --email)'),
    new Option('--chain <ID>', 'the ledger id, got out of band (pins the server)'),
    new Option('--trust-first-use', 'send the code to a server nothing authenticated'),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(register, [
    'keyledger register --server https://kl.example.org --invite KL-XXXX-XXXX.YYYY',
    'keyledger register --server https://kl.example.org --email',
  ]).action(
    act(async (v) =>
      (await commands.register()).registerCommand({
        ...clientOf(v),
        ...given('server', str(v, 'server')),
        ...given('invite', str(v, 'invite')),
        email: !!v.email,
        ...given('code', str(v, 'code')),
        ...given('chain', str(v, 'chain')),
        trustFirstUse: !!v.trustFirstUse,
      }),
    ),
  );

  const login = program
    .command('login')
    .summary('check your key and the server (logs in, then out)')
    .description(
      "Checks that the ledger only grew since your last checkpoint, runs the mutual authentication handshake (your key as the ledger holds it, the server's key as pinned), then logs out. A session lives as long as the command that holds its keys (in memory only): send, shell and session open their own. Use it to check that your key, your passphrase and the server work.",
    );
  withOptions(login, [homeOption(), userPassphraseOption(), jsonOption()]);
  examples(login, ['keyledger login', 'keyledger login --home ~/.keyledger-work --json']).action(
    act(async (v) => (await commands.login()).loginCommand(clientOf(v))),
  );

  const whoami = program
    .command('whoami')
    .summary('your identity, key fingerprint and server')
    .description('Shows your identity, key fingerprint and server (nothing is asked of the server).');
  withOptions(whoami, [homeOption(), jsonOption()]);
  examples(whoami, ['keyledger whoami', 'keyledger whoami --json']).action(
    act(async (v) => (await commands.whoami()).whoami(clientOf(v))),
  );

  const status = program
    .command('status')
    .summary('what the ledger holds for you now, verified')
    .description(
      'Shows identity, pinned server key and ledger, and verifies what the ledger holds for you now. Exit: 0 the ledger holds this key, active; 1 a check failed (server key or proof); 2 error (e.g. KL_CHECKPOINT_INVALID: history cut short); 3 the ledger holds ANOTHER key; 4 revoked; 5 unknown.',
    );
  withOptions(status, [homeOption(), jsonOption()]);
  examples(status, ['keyledger status', 'keyledger status --json']).action(
    act(async (v) => (await commands.status()).status(clientOf(v))),
  );

  const send = program
    .command('send')
    .argument('<MESSAGE>', 'the message (quote it if it has spaces)')
    .summary('one message to the demo service in a fresh session')
    .description(
      'Logs in, sends MESSAGE to the demo service, prints the reply, logs out. --sign signs MESSAGE with your key; the server verifies it, anchors its hash on the ledger and returns a receipt (verified here); --out saves message, signature and receipt for keyledger receipt verify.',
    );
  withOptions(send, [
    new Option('--sign', 'sign the message and have its hash anchored on the ledger'),
    new Option('--out <FILE>', 'save message, signature and receipt (with --sign)'),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(send, ['keyledger send "hello"', 'keyledger send "I agree" --sign --out agreement.json']).action(
    act(async (v, [message]) =>
      (await commands.send()).send({
        ...clientOf(v),
        message: message!,
        sign: !!v.sign,
        ...given('out', str(v, 'out')),
      }),
    ),
  );

  const shell = program
    .command('shell')
    .summary('an interactive session with the demo service')
    .description(
      'An interactive session with the demo service: each line you type is sent as a message and its reply shown; renewals and alerts are shown as they happen. Commands (never sent): /sign TEXT, /note put NAME TEXT, /note get NAME, /notes, /sessions, /renew, /send TEXT (sends TEXT as it is), /help; /quit, exit or Ctrl-D logs out and leaves. Lines piped in run the same way, without prompts.',
    );
  withOptions(shell, [homeOption(), userPassphraseOption()]);
  examples(shell, ['keyledger shell', 'printf "ping\\n/sessions\\n" | keyledger shell']).action(
    act(async (v) => {
      const { json: _json, ...client } = clientOf(v);
      return (await commands.shell()).shell(client);
    }),
  );

  const session = program
    .command('session')
    .summary('list | revoke: your other live sessions')
    .description('Lists or ends your other live sessions (the command opens a session of its own to ask).');
  const sessionList = session
    .command('list')
    .summary('list your other live sessions')
    .description('Lists your other live sessions.');
  withOptions(sessionList, [homeOption(), userPassphraseOption(), jsonOption()]);
  examples(sessionList, ['keyledger session list', 'keyledger session list --json']).action(
    act(async (v) => (await commands.session()).sessionCommand({ ...clientOf(v), sub: 'list' })),
  );
  const sessionRevoke = session
    .command('revoke')
    .argument('<SESSION_ID>', 'a session, as session list shows it')
    .summary('end one of your sessions')
    .description('Ends one of your other live sessions.');
  withOptions(sessionRevoke, [homeOption(), userPassphraseOption(), jsonOption()]);
  examples(sessionRevoke, ['keyledger session revoke 5Hq2dXW0aVxS1r3b8nJk4A']).action(
    act(async (v, [target]) =>
      (await commands.session()).sessionCommand({
        ...clientOf(v),
        sub: 'revoke',
        target: target!,
      }),
    ),
  );
  examples(session, ['keyledger session list', 'keyledger session revoke 5Hq2dXW0aVxS1r3b8nJk4A']);

  const rotate = program
    .command('rotate-key')
    .summary('replace your key on the ledger')
    .description(
      [
        'Replaces your key on the ledger (KeyRotated, signed by the current and by the new key): makes a new key (or uses the one given), logs in with the current key, has the server write the rotation, verifies the receipt, installs the new key and logs in with it. The old private key moves to HOME/retired/.',
        'The new key is protected by KEYLEDGER_NEW_PASSPHRASE or --new-passphrase-file, else by the current passphrase. Every session opened with the old key ends. If the rotation is interrupted, run the command again: it finishes it (or starts over if the ledger never changed).',
      ].join('\n\n'),
    );
  withOptions(rotate, [
    ...keySourceOptions(),
    new Option(
      '--new-passphrase-file <FILE>',
      'passphrase of the new key (else KEYLEDGER_NEW_PASSPHRASE, else the current one)',
    ),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(rotate, [
    'keyledger rotate-key',
    'keyledger rotate-key --rsa --new-passphrase-file new.pass',
  ]).action(
    act(async (v) =>
      (await commands.rotate()).rotateKeyCommand({
        ...clientOf(v),
        ...given('gpg', str(v, 'gpg')),
        ...given('gpgHome', str(v, 'gpgHome')),
        ...given('importFile', str(v, 'import')),
        ...given('newPassphraseFile', str(v, 'newPassphraseFile')),
        rsa: !!v.rsa,
      }),
    ),
  );

  const revoke = program
    .command('revoke-key')
    .summary('revoke your key on the ledger')
    .description(
      'Revokes your key on the ledger (signed by the key itself); every session of your identity ends.',
    );
  withOptions(revoke, [reasonOption(), homeOption(), userPassphraseOption(), jsonOption()]);
  examples(revoke, ['keyledger revoke-key', 'keyledger revoke-key --reason retired']).action(
    act(async (v) =>
      (await commands.session()).revokeKey({ ...clientOf(v), ...given('reason', str(v, 'reason')) }),
    ),
  );

  // ---- auditor ----
  const audit = program
    .command('audit')
    .summary('list the audit events of the ledger')
    .description(
      'Lists audit events from the ledger (identities are stored hashed; --id hashes yours to match). Every event is checked against its block first: if the ledger is damaged, nothing is listed (exit 1).',
    );
  withOptions(audit, [
    dataOption(),
    new Option('--id <IDENTITY>', "only this identity's events"),
    new Option('--since <DATE>', 'only events from DATE on (ISO 8601)'),
    jsonOption(),
  ]);
  examples(audit, [
    'keyledger audit --data ./keyledger-data --id alice@example.org',
    'keyledger audit --since 2026-01-01 --json',
  ]).action(
    act(async (v) =>
      (await commands.audit()).audit({
        data: str(v, 'data') ?? './keyledger-data',
        ...given('id', str(v, 'id')),
        ...given('since', str(v, 'since')),
        json: !!v.json,
      }),
    ),
  );

  const logs = program
    .command('logs')
    .summary('decrypt: read the encrypted log files')
    .description('The encrypted log files of a server (DATA/logs) or of a client home.');
  const decrypt = logs
    .command('decrypt')
    .summary('decrypt and print encrypted log files')
    .description(
      "Decrypts and prints encrypted log files (FILE alone, or every *.log.enc in DIR/logs). The reader's key: --key FILE, the operator's key (passphrase in KEYLEDGER_OPERATOR_PASSPHRASE); by default the server key of --data DIR (node passphrase: KEYLEDGER_SERVER_PASSPHRASE, --passphrase-file FILE or a prompt); with --home DIR, your own key for the client's logs (and the keys it retired by rotation; passphrase KEYLEDGER_PASSPHRASE). Exit 1 if a line does not decrypt.",
    );
  withOptions(decrypt, [
    dataOption('the server data directory whose logs are read'),
    new Option('--key <FILE>', "the operator's secret key (else the server key of --data)"),
    new Option('--home <DIR>', 'a client home whose logs are read, with your key'),
    new Option('--file <FILE>', 'this log file only'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(decrypt, [
    'keyledger logs decrypt --data ./keyledger-data',
    'keyledger logs decrypt --data ./keyledger-data --key operator.asc --file server-2026-01-01.log.enc',
    'keyledger logs decrypt --home ~/.keyledger',
  ]).action(
    act(
      async (v) =>
        (await commands.logs()).logsDecrypt({
          ...passphraseOf(v),
          json: !!v.json,
          ...given('data', str(v, 'data')),
          ...given('home', str(v, 'home')),
          ...given('key', str(v, 'key')),
          ...given('file', str(v, 'file')),
        }),
      (v) => str(v, 'data'),
    ),
  );
  examples(logs, ['keyledger logs decrypt --data ./keyledger-data']);

  const receipt = program
    .command('receipt')
    .summary('verify: check a receipt of a signed message')
    .description('Receipts of signed messages (keyledger send --sign --out FILE).');
  const receiptVerify = receipt
    .command('verify')
    .argument('<FILE>', 'a file saved by keyledger send --sign --out FILE')
    .summary('check a receipt and its signature against the ledger')
    .description(
      'Checks a receipt (from keyledger send --sign --out FILE) against the ledger genesis, and the OpenPGP signature against the key the ledger held for the signer at that block (asks the server pinned in --home for the key record and its proofs). Exit 1 if any check fails.',
    );
  withOptions(receiptVerify, [
    new Option('--genesis <FILE>', 'the ledger genesis to check against'),
    homeOption(),
    jsonOption(),
  ]);
  examples(receiptVerify, [
    'keyledger receipt verify agreement.json',
    'keyledger receipt verify agreement.json --genesis genesis.json --json',
  ]).action(
    act(async (v, [file]) =>
      (await commands.audit()).receiptVerify({
        ...clientOf(v),
        file: file!,
        ...given('genesis', str(v, 'genesis')),
      }),
    ),
  );
  examples(receipt, ['keyledger receipt verify agreement.json']);

  const ledger = program
    .command('ledger')
    .summary('verify | show | init | deploy: check, read or make a ledger')
    .description(
      'The ledger of a data directory: verify it, show it, make a new one (embedded, or ordered by an EVM chain).',
    );
  const ledgerData = () => new Option('--data <DIR>', 'the data directory (required)');
  // Required, but checked after the options (a mistyped option is the better thing to report).
  ledger.hook('preAction', (_ledger, action) => {
    if (action.opts().data === undefined)
      action.error("error: required option '--data <DIR>' not specified", {
        code: 'commander.missingMandatoryOptionValue',
      });
  });
  const common = (v: OptionValues) => ({
    data: str(v, 'data')!,
    json: !!v.json,
    quiet: !!v.quiet,
    ...passphraseOf(v),
  });
  const verify = ledger
    .command('verify')
    .summary('replay and check the whole ledger')
    .description(
      'Replays and checks the whole ledger (exit 1 naming the first bad block). --checkpoint FILE: a checkpoint (signed header) kept from earlier, which the ledger must still contain. --mark-verified (node passphrase, server stopped): if it verifies, records the node\'s verified checkpoint at its top, so a node refused for "no valid verified checkpoint" starts on this history — your decision. Progress goes to stderr (a few lines when it is not a terminal); --quiet hides it.',
    );
  withOptions(verify, [
    ledgerData(),
    new Option('--checkpoint <FILE>', 'a checkpoint the ledger must still contain (repeatable)').argParser(
      collect,
    ),
    new Option('--mark-verified', "record the node's verified checkpoint at the top"),
    new Option('-q, --quiet', 'no progress'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(verify, [
    'keyledger ledger verify --data ./keyledger-data',
    'keyledger ledger verify --data ./keyledger-data --checkpoint cp.json --quiet',
  ]).action(
    act(
      async (v) =>
        (await commands.ledger()).ledgerVerify({
          ...common(v),
          checkpoints: Array.isArray(v.checkpoint) ? v.checkpoint : [],
          markVerified: !!v.markVerified,
        }),
      dataOr('./keyledger-data'),
    ),
  );
  const show = ledger
    .command('show')
    .summary('blocks, transactions and key records, with their proofs')
    .description(
      "Without a selector: the ledger's name, chain id, height and its last 10 blocks. --height N: block N and its transactions. --id IDENTITY: the key record of IDENTITY, its history and its proof, checked against the genesis (exit 1 if the proof fails). --tx TXID: one transaction and its inclusion proof (exit 1 if it fails).",
    );
  withOptions(show, [
    ledgerData(),
    new Option('--height <N>', 'block N and its transactions').conflicts(['id', 'tx']),
    new Option('--id <IDENTITY>', 'the key record of IDENTITY and its proof').conflicts(['tx']),
    new Option('--tx <TXID>', 'one transaction and its inclusion proof'),
    jsonOption(),
  ]);
  examples(show, [
    'keyledger ledger show --data ./keyledger-data',
    'keyledger ledger show --data ./keyledger-data --id alice@example.org',
  ]).action(
    act(async (v) => {
      const ledgerCommands = await commands.ledger();
      const height = ledgerCommands.parseHeight(str(v, 'height'));
      return ledgerCommands.ledgerShow({
        ...common(v),
        ...given('height', height),
        ...given('id', str(v, 'id')),
        ...given('tx', str(v, 'tx')),
      });
    }),
  );
  const ledgerInit = ledger
    .command('init')
    .summary('make a new data directory (embedded ledger)')
    .description(
      'Makes the keys and the genesis of a new data directory (embedded ledger). The node passphrase comes from KEYLEDGER_SERVER_PASSPHRASE, --passphrase-file FILE or a prompt.',
    );
  withOptions(ledgerInit, [
    ledgerData(),
    new Option('--name <NAME>', 'the name of the ledger'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(ledgerInit, ['keyledger ledger init --data ./keyledger-data --name "Example Corp"']).action(
    act(
      async (v) => (await commands.ledger()).ledgerInit({ ...common(v), ...given('name', str(v, 'name')) }),
      dataOr('./keyledger-data'),
    ),
  );
  const deploy = ledger
    .command('deploy')
    .summary('make a new data directory whose ledger is ordered by an EVM chain')
    .description(
      "A new data directory whose ledger is ordered by an EVM chain: makes this node's Ethereum account (sealed under the node passphrase) and deploys KeyRegistry from it (or attaches to ADDRESS). On a development chain (anvil, Hardhat) --insecure-dev-funder-key pays for the account with a public key.",
    );
  withOptions(deploy, [
    ledgerData(),
    new Option('--rpc <URL>', 'the EVM node'),
    new Option('--contract <ADDRESS>', 'attach to this KeyRegistry contract instead of deploying one'),
    new Option('--from-block <N>', 'the block the contract was deployed at (with --contract)'),
    new Option(
      '--insecure-dev-funder-key <KEY>',
      'pay for the account from this key (development chains only)',
    ),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(deploy, [
    'keyledger ledger deploy --data ./keyledger-data --rpc http://127.0.0.1:8545',
    'keyledger ledger deploy --data ./node2 --rpc http://besu:8545 --contract 0x5FbDB2315678afecb367f032d93F642f64180aa3 --from-block 1',
  ]).action(
    act(
      async (v) =>
        (await commands.evmSetup()).ledgerDeploy({
          ...common(v),
          ledger: { engine: 'evm', ...serveFlags(v).ledger },
          ...given('insecureDevFunderKey', str(v, 'insecureDevFunderKey')),
        }),
      dataOr('./keyledger-data'),
    ),
  );
  examples(ledger, [
    'keyledger ledger verify --data ./keyledger-data',
    'keyledger ledger show --data ./keyledger-data',
  ]);

  const demo = program
    .command('demo')
    .summary('a demonstration on a ledger of its own (./keyledger-demo)')
    .description(
      [
        'Registers N (default 3) real OpenPGP keys on an embedded ledger, anchors a message, revokes a key, and checks every receipt and proof.',
        'DIR defaults to ./keyledger-demo (its own, never the served ./keyledger-data) and is made if needed.',
        'Its keys are protected by KEYLEDGER_SERVER_PASSPHRASE or --passphrase-file FILE if given, else by the public development passphrase (it says so).',
      ].join('\n\n'),
    );
  withOptions(demo, [
    dataOption(`the demo's data directory (default ${DEMO_DATA_DIR})`),
    new Option('--users <N>', 'how many users to register, 2 to 1000').default('3'),
    ...nodePassphraseOptions(),
  ]);
  examples(demo, ['keyledger demo', 'keyledger demo --users 10 --data /tmp/kl-demo']).action(
    act(async (v) => {
      const users = Number(str(v, 'users') ?? '3');
      if (!Number.isSafeInteger(users) || users < 2 || users > 1000)
        usage('--users must be an integer from 2 to 1000');
      return (await commands.demo()).demo({
        data: str(v, 'data') ?? DEMO_DATA_DIR,
        users,
        ...passphraseOf(v),
      });
    }, dataOr(DEMO_DATA_DIR)),
  );
}
