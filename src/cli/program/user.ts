/**
 * A user's commands, run with the key in their home: `keyledger init`, `register`, `login`,
 * `whoami`, `status`, `send`, `shell`, `session list | revoke`, `rotate-key`, `revoke-key` and
 * `device request | approve | list | revoke`.
 */
import { type Command, Option } from 'commander';
import { homeOption, jsonOption, keySourceOptions, reasonOption, userPassphraseOption } from '../options.js';
import { act, type Context, clientOf, commands, examples, given, str, withOptions } from './shared.js';

/** The help of `keyledger register`. */
const REGISTER_DESCRIPTION = [
  'Registers your key. Give the invitation (or emailed code) whole: the part after the "." pins the server, which is checked before anything is sent; without it (or --chain ID, the ledger id you got out of band) the server is not authenticated: the command says so and sends the code only if you confirm on the terminal, or with --trust-first-use (trust on first use).',
  "The code travels sealed to the server key inside a statement signed by your key; the command waits until the ledger committed it, verifies the receipt against the ledger's genesis and pins the server key.",
  "--email alone asks for a code by email; run again with --email --code 'THE LINE FROM THE EMAIL'.",
].join('\n\n');

/** The help of `keyledger rotate-key`. */
const ROTATE_DESCRIPTION = [
  'Replaces your key on the ledger (KeyRotated, signed by the current and by the new key): makes a new key (or uses the one given), logs in with the current key, has the server write the rotation, verifies the receipt, installs the new key and logs in with it. The old private key moves to HOME/retired/.',
  'The new key is protected by KEYLEDGER_NEW_PASSPHRASE or --new-passphrase-file, else by the current passphrase. Every session opened with the old key ends. If the rotation is interrupted, run the command again: it finishes it (or starts over if the ledger never changed).',
].join('\n\n');

/**
 * `--server URL` of the commands that talk to a server: one server of your ledger, used alone
 * (docs/protocol.md "Several servers").
 */
export function serverOption(): Option {
  return new Option(
    '--server <URL>',
    'use this server of your ledger only: it must serve your ledger with the server key you pinned (then it joins your servers); default: your servers, the last one used first, the next when one is down',
  );
}

/** `keyledger init`: makes your key (or uses one from GnuPG or a file). */
export function declareInit(program: Command, context: Context): void {
  const init = program
    .command('init')
    .summary('make your key (or use one from GnuPG or a file)')
    .description(
      'Makes a v4 Ed25519/Cv25519 key (--rsa: RSA-3072) protected by KEYLEDGER_PASSPHRASE or --passphrase-file (prompted on a terminal), in --home (default ~/.keyledger, or KEYLEDGER_HOME).',
    );
  withOptions(init, [
    new Option('--id <IDENTITY>', 'your identity: your email address (required)'),
    new Option('--name <NAME>', 'your name in the key (default: the part of --id before @)'),
    new Option(
      '--device <NAME>',
      'a name for this device (e.g. laptop: letters, digits, spaces, . _ -; at most 40), shown by device list',
    ),
    homeOption(),
    userPassphraseOption(),
    ...keySourceOptions(),
    new Option('--force', 'make a new key in a home that has one (the old one moves to HOME/retired/)'),
    jsonOption(),
  ]);
  examples(init, [
    'keyledger init --id alice@example.org',
    'keyledger init --id alice@example.org --device laptop',
    'keyledger init --id alice@example.org --gpg 0123456789ABCDEF0123456789ABCDEF01234567',
  ]).action(
    act(context, async (v) =>
      (await commands.init()).init({
        ...clientOf(v),
        ...given('id', str(v, 'id')),
        ...given('name', str(v, 'name')),
        ...given('gpg', str(v, 'gpg')),
        ...given('gpgHome', str(v, 'gpgHome')),
        ...given('importFile', str(v, 'import')),
        ...given('device', str(v, 'device')),
        force: !!v.force,
        rsa: !!v.rsa,
      }),
    ),
  );
}

/** `keyledger register`: registers your key with an invitation or an emailed code. */
export function declareRegister(program: Command, context: Context): void {
  const register = program
    .command('register')
    .summary('register your key with an invitation or an emailed code')
    .description(REGISTER_DESCRIPTION);
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
    act(context, async (v) =>
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
}

/** `keyledger login`: checks your key and the server (logs in, then out). */
export function declareLogin(program: Command, context: Context): void {
  const login = program
    .command('login')
    .summary('check your key and the server (logs in, then out)')
    .description(
      "Checks that the ledger only grew since your last checkpoint, runs the mutual authentication handshake (your key as the ledger holds it, the server's key as pinned), then logs out. A session lives as long as the command that holds its keys (in memory only): send, shell and session open their own. Use it to check that your key, your passphrase and the server work.",
    );
  withOptions(login, [serverOption(), homeOption(), userPassphraseOption(), jsonOption()]);
  examples(login, [
    'keyledger login',
    'keyledger login --home ~/.keyledger-work --json',
    'keyledger login --server https://kl2.example.org',
  ]).action(act(context, async (v) => (await commands.login()).loginCommand(clientOf(v))));
}

/** `keyledger whoami`: your identity, key fingerprint and server. */
export function declareWhoami(program: Command, context: Context): void {
  const whoami = program
    .command('whoami')
    .summary('your identity, key fingerprint and server')
    .description('Shows your identity, key fingerprint and server (nothing is asked of the server).');
  withOptions(whoami, [homeOption(), jsonOption()]);
  examples(whoami, ['keyledger whoami', 'keyledger whoami --json']).action(
    act(context, async (v) => (await commands.whoami()).whoami(clientOf(v))),
  );
}

/** `keyledger servers list | add | remove`: the servers of your ledger. */
export function declareServers(program: Command, context: Context): void {
  const servers = program
    .command('servers')
    .summary('list | add | remove: the servers of your ledger')
    .description(
      'The servers of your ledger (one deployment: the same genesis, several servers). Commands that talk to a server use the last one that answered, and the next one when it is down or behind, never when it refuses (a refusal is an answer). A server joins the list only once it has shown that it serves your ledger with the server key you pinned at registration; servers listed by a server you use join too, each checked before its first use.',
    );
  const list = servers
    .command('list')
    .summary('list the servers of your ledger')
    .description(
      'Lists the servers of your ledger, in the order they are tried (nothing is asked of a server).',
    );
  withOptions(list, [homeOption(), jsonOption()]);
  examples(list, ['keyledger servers list', 'keyledger servers list --json']).action(
    act(context, async (v) => (await commands.servers()).serversCommand({ ...clientOf(v), sub: 'list' })),
  );
  const add = servers
    .command('add')
    .argument('<URL>', "the server's URL")
    .summary('add a server of your ledger (checked first)')
    .description(
      'Asks the server who it is and adds it only if it serves your ledger (same chain id and genesis) with the server key you pinned; otherwise nothing changes (KL_SERVER_KEY_MISMATCH).',
    );
  withOptions(add, [new Option('--prefer', 'make it the server tried first'), homeOption(), jsonOption()]);
  examples(add, [
    'keyledger servers add https://kl2.example.org',
    'keyledger servers add https://kl2.example.org --prefer',
  ]).action(
    act(context, async (v, [url]) =>
      (await commands.servers()).serversCommand({
        ...clientOf(v),
        sub: 'add',
        url: url!,
        prefer: !!v.prefer,
      }),
    ),
  );
  const remove = servers
    .command('remove')
    .argument('<URL>', 'a server, as servers list shows it')
    .summary('remove a server from your list')
    .description('Removes a server from your list (the last checked one cannot be removed).');
  withOptions(remove, [homeOption(), jsonOption()]);
  examples(remove, ['keyledger servers remove https://kl2.example.org']).action(
    act(context, async (v, [url]) =>
      (await commands.servers()).serversCommand({ ...clientOf(v), sub: 'remove', url: url! }),
    ),
  );
  examples(servers, ['keyledger servers list', 'keyledger servers add https://kl2.example.org']);
}

/** `keyledger status`: what the ledger holds for you now, verified. */
export function declareStatus(program: Command, context: Context): void {
  const status = program
    .command('status')
    .summary('what the ledger holds for you now, verified')
    .description(
      'Shows identity, pinned server key and ledger, and verifies what the ledger holds for you now. Exit: 0 the ledger holds this key, active; 1 a check failed (server key or proof); 2 error (e.g. KL_CHECKPOINT_INVALID: history cut short); 3 the ledger holds ANOTHER key; 4 revoked; 5 unknown.',
    );
  withOptions(status, [serverOption(), homeOption(), jsonOption()]);
  examples(status, ['keyledger status', 'keyledger status --json']).action(
    act(context, async (v) => (await commands.status()).status(clientOf(v))),
  );
}

/** `keyledger send MESSAGE`: one message to the demo service in a fresh session. */
export function declareSend(program: Command, context: Context): void {
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
    serverOption(),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(send, ['keyledger send "hello"', 'keyledger send "I agree" --sign --out agreement.json']).action(
    act(context, async (v, [message]) =>
      (await commands.send()).send({
        ...clientOf(v),
        message: message!,
        sign: !!v.sign,
        ...given('out', str(v, 'out')),
      }),
    ),
  );
}

/** `keyledger shell`: an interactive session with the demo service. */
export function declareShell(program: Command, context: Context): void {
  const shell = program
    .command('shell')
    .summary('an interactive session with the demo service')
    .description(
      'An interactive session with the demo service: each line you type is sent as a message and its reply shown; renewals and alerts are shown as they happen. Commands (never sent): /sign TEXT, /note put NAME TEXT, /note get NAME, /notes, /sessions, /renew, /send TEXT (sends TEXT as it is), /help; /quit, exit or Ctrl-D logs out and leaves. Lines piped in run the same way, without prompts.',
    );
  withOptions(shell, [serverOption(), homeOption(), userPassphraseOption()]);
  examples(shell, ['keyledger shell', 'printf "ping\\n/sessions\\n" | keyledger shell']).action(
    act(context, async (v) => {
      const { json: _json, ...client } = clientOf(v);
      return (await commands.shell()).shell(client);
    }),
  );
}

/** `keyledger session list | revoke`: your other live sessions. */
export function declareSession(program: Command, context: Context): void {
  const session = program
    .command('session')
    .summary('list | revoke: your other live sessions')
    .description('Lists or ends your other live sessions (the command opens a session of its own to ask).');
  const sessionList = session
    .command('list')
    .summary('list your other live sessions')
    .description('Lists your other live sessions.');
  withOptions(sessionList, [serverOption(), homeOption(), userPassphraseOption(), jsonOption()]);
  examples(sessionList, ['keyledger session list', 'keyledger session list --json']).action(
    act(context, async (v) => (await commands.session()).sessionCommand({ ...clientOf(v), sub: 'list' })),
  );
  const sessionRevoke = session
    .command('revoke')
    .argument('<SESSION_ID>', 'a session, as session list shows it')
    .summary('end one of your sessions')
    .description('Ends one of your other live sessions.');
  withOptions(sessionRevoke, [serverOption(), homeOption(), userPassphraseOption(), jsonOption()]);
  examples(sessionRevoke, ['keyledger session revoke 5Hq2dXW0aVxS1r3b8nJk4A']).action(
    act(context, async (v, [target]) =>
      (await commands.session()).sessionCommand({
        ...clientOf(v),
        sub: 'revoke',
        target: target!,
      }),
    ),
  );
  examples(session, ['keyledger session list', 'keyledger session revoke 5Hq2dXW0aVxS1r3b8nJk4A']);
}

/** `keyledger rotate-key`: replaces your key on the ledger. */
export function declareRotateKey(program: Command, context: Context): void {
  const rotate = program
    .command('rotate-key')
    .summary('replace your key on the ledger')
    .description(ROTATE_DESCRIPTION);
  withOptions(rotate, [
    ...keySourceOptions(),
    new Option(
      '--new-passphrase-file <FILE>',
      'passphrase of the new key (else KEYLEDGER_NEW_PASSPHRASE, else the current one)',
    ),
    serverOption(),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(rotate, [
    'keyledger rotate-key',
    'keyledger rotate-key --rsa --new-passphrase-file new.pass',
  ]).action(
    act(context, async (v) =>
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
}

/** `keyledger revoke-key`: revokes your key on the ledger. */
export function declareRevokeKey(program: Command, context: Context): void {
  const revoke = program
    .command('revoke-key')
    .summary('revoke your key on the ledger')
    .description(
      'Revokes your key on the ledger (signed by the key itself); every session of your identity ends.',
    );
  withOptions(revoke, [reasonOption(), serverOption(), homeOption(), userPassphraseOption(), jsonOption()]);
  examples(revoke, ['keyledger revoke-key', 'keyledger revoke-key --reason retired']).action(
    act(context, async (v) =>
      (await commands.session()).revokeKey({ ...clientOf(v), ...given('reason', str(v, 'reason')) }),
    ),
  );
}

/** The help of `keyledger device`. */
const DEVICE_DESCRIPTION = [
  'The devices of your identity: each holds a key of its own on the ledger, and each logs in with it. A new device makes its key (keyledger init --id YOU --device NAME) and asks to join (device request); it shows a short code, which you type on a device already enrolled (device approve CODE). The ledger records the new key signed by both.',
  'device list shows the devices the ledger proves (state proof checked against your pinned genesis); device revoke ends one device: its key is revoked on the ledger and its sessions end, the other devices go on.',
].join('\n\n');

/** The module of the `device` subcommands, loaded when one runs. */
const deviceModule = () => import('../commands/device.js');

/** `keyledger device request | approve | list | revoke`: the devices of your identity. */
export function declareDevice(program: Command, context: Context): void {
  const device = program
    .command('device')
    .summary('request | approve | list | revoke: the devices of your identity')
    .description(DEVICE_DESCRIPTION);
  const request = device
    .command('request')
    .summary('ask to add this device to your identity (shows a code, waits)')
    .description(
      "On the new device: signs a request with this home's key and sends it to --server, prints the code to type on a device already enrolled (valid 10 minutes), the new key's fingerprint and the ledger id, then waits until that device approved it. Once the ledger holds the new key, the receipt is verified against the genesis and the ledger is pinned as at registration. Without --chain the server is trusted on first use: said plainly, and sent only once you confirm on the terminal (or --yes). With --json: one line when the code is given, one once added.",
    );
  withOptions(request, [
    new Option('--server <URL>', 'a server of your ledger (required)'),
    new Option(
      '--chain <ID>',
      'the ledger id, as device list shows it on your other device (pins the server)',
    ),
    new Option(
      '--invite <CODE>',
      "an operator's invitation for this device (keyledger admin invite ID --device): no approval needed",
    ),
    new Option('--yes', 'accept a server nothing authenticated (no --chain)'),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(request, [
    'keyledger device request --server https://kl.example.org --chain 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    'keyledger device request --server https://kl.example.org --yes --json',
    'keyledger device request --server https://kl.example.org --invite KL-ABCD-EFGH-JKMN-PQRS-TVWX.0123456789abcdef0123456789abcdef',
  ]).action(
    act(context, async (v) =>
      (await deviceModule()).deviceCommand({
        ...clientOf(v),
        sub: 'request',
        ...given('chain', str(v, 'chain')),
        ...given('invite', str(v, 'invite')),
        yes: !!v.yes,
      }),
    ),
  );
  const approve = device
    .command('approve')
    .argument('<CODE>', 'the code the new device shows (XXXX-XXXX)')
    .summary('add the device that shows CODE to your identity')
    .description(
      "On a device already enrolled: logs in, shows the name and fingerprint of the device that asked under CODE and, once you confirm (or with --yes), signs its addition with this device's key; the ledger writes it and the receipt is verified.",
    );
  withOptions(approve, [
    new Option('--check <NUMBER>', 'the check number the new device shows (else asked on the terminal)'),
    new Option('--yes', 'approve without asking (compare the fingerprint first)'),
    serverOption(),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(approve, [
    'keyledger device approve 7KQ4-M2XD',
    'keyledger device approve 7KQ4-M2XD --check "318 204" --yes --json',
  ]).action(
    act(context, async (v, [code]) =>
      (await deviceModule()).deviceCommand({
        ...clientOf(v),
        sub: 'approve',
        code: code!,
        ...given('check', str(v, 'check')),
        yes: !!v.yes,
      }),
    ),
  );
  const list = device
    .command('list')
    .summary('the devices of your identity, as the ledger proves them')
    .description(
      "Lists your identity's active devices (this one marked) and the keys it held before, from its key record's state proof, checked against your pinned genesis, with each device's last login read from the audit trail on the ledger (every event's receipt checked; this logs in, so it needs your key).",
    );
  withOptions(list, [serverOption(), homeOption(), userPassphraseOption(), jsonOption()]);
  examples(list, ['keyledger device list', 'keyledger device list --json']).action(
    act(context, async (v) => (await deviceModule()).deviceCommand({ ...clientOf(v), sub: 'list' })),
  );
  const revoke = device
    .command('revoke')
    .argument('<DEVICE>', 'the device: its full fingerprint or its name, as device list shows them')
    .summary('revoke one device of your identity')
    .description(
      'Revokes one device key of your identity on the ledger (signed by this device): its sessions end, the other devices go on. The device is found in the proven key record; you are asked to confirm (or --yes). Revoking this device itself ends this session too, and this home can no longer log in.',
    );
  withOptions(revoke, [
    reasonOption().default('retired'),
    new Option('--yes', 'revoke without asking'),
    serverOption(),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(revoke, [
    'keyledger device revoke phone --reason retired',
    'keyledger device revoke 0123456789abcdef0123456789abcdef01234567 --yes',
  ]).action(
    act(context, async (v, [target]) =>
      (await deviceModule()).deviceCommand({
        ...clientOf(v),
        sub: 'revoke',
        target: target!,
        ...given('reason', str(v, 'reason')),
        yes: !!v.yes,
      }),
    ),
  );
  examples(device, [
    'keyledger device request --server https://kl.example.org',
    'keyledger device approve 7KQ4-M2XD',
    'keyledger device list',
  ]);
}
