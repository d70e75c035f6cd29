/**
 * The operator's commands on a node: `keyledger admin invite | grant | ungrant` on the data
 * directory, `sessions | alerts | revoke-session | revoke-key | revoke-device` through the running server's
 * DATA/admin.sock, and `dashboard` from an admin's own machine.
 */
import { type Command, Option } from 'commander';
import { parseDuration } from '../../protocol/duration.js';
import {
  dataOption,
  homeOption,
  jsonOption,
  nodePassphraseOptions,
  type OptionValues,
  reasonOption,
  userPassphraseOption,
} from '../options.js';
import { withFiles } from './genesis.js';
import {
  act,
  type Context,
  clientOf,
  commands,
  dataOr,
  examples,
  given,
  passphraseOf,
  str,
  withOptions,
} from './shared.js';
import { serverOption } from './user.js';

/** An admin subcommand that asks the running server through DATA/admin.sock. */
type SocketCommand = 'sessions' | 'alerts' | 'revoke-session' | 'revoke-key';

/** `keyledger admin …`: the group, then each subcommand. */
export function declareAdmin(program: Command, context: Context): void {
  const admin = program
    .command('admin')
    .summary(
      'invite | grant | ungrant | dashboard | sessions | alerts | revoke-session | revoke-key | revoke-device | registrar | governance',
    )
    .description(
      "Operator commands on the data directory (invite, grant, ungrant) or through DATA/admin.sock of the running server (sessions, alerts, revoke-session, revoke-key, revoke-device, registrar; mode 0600: the operator's account only); dashboard runs from an admin's own machine with their key.",
    );
  declareInvite(admin, context);
  declareGrant(admin, context, 'grant', true);
  declareGrant(admin, context, 'ungrant', false);
  declareDashboard(admin, context);
  declareSocketCommands(admin, context);
  declareRevokeDevice(admin, context);
  declareRegistrar(admin, context);
  declareGovernance(admin, context);
  examples(admin, [
    'keyledger admin invite bob@example.org',
    'keyledger admin grant alice@example.org',
    'keyledger admin sessions',
  ]);
}

/** `keyledger admin invite IDENTITY`: prints a one-time invitation code. */
function declareInvite(admin: Command, context: Context): void {
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
    new Option(
      '--device',
      'invite a further device of a registered identity (keyledger device request --invite), approved by you (KEYLEDGER_ADMIN)',
    ),
    jsonOption(),
  ]);
  examples(invite, [
    'keyledger admin invite bob@example.org --expires 2h',
    'keyledger admin invite bob@example.org --device',
  ]).action(
    act(context, async (v, [identity]) =>
      (await commands.invite()).adminInvite({
        data: str(v, 'data') ?? './keyledger-data',
        identity: identity!,
        expiresMs: parseDuration(str(v, 'expires') ?? '24h', '--expires'),
        device: !!v.device,
        json: !!v.json,
      }),
    ),
  );
}

/** `keyledger admin grant | ungrant IDENTITY`: grants or removes the admin role on the ledger. */
function declareGrant(admin: Command, context: Context, name: 'grant' | 'ungrant', grant: boolean): void {
  const c = admin
    .command(name)
    .argument('<IDENTITY>', 'a registered identity')
    .summary(grant ? 'grant the admin role on the ledger' : 'remove the admin role on the ledger')
    .description(
      `${grant ? 'Grants' : 'Removes'} the admin role on the ledger (a governance transaction approved by the node's validator); the identity must be registered.`,
    );
  withOptions(c, [dataOption(), jsonOption()]);
  examples(c, [`keyledger admin ${name} alice@example.org --data ./keyledger-data`]).action(
    act(context, async (v, [id]) =>
      (await commands.admin()).adminGrant({
        data: str(v, 'data') ?? './keyledger-data',
        id: id!,
        grant,
        json: !!v.json,
      }),
    ),
  );
}

/** `keyledger admin dashboard`: logs in with your key and opens a one-time dashboard link. */
function declareDashboard(admin: Command, context: Context): void {
  const dashboard = admin
    .command('dashboard')
    .summary('a one-time link to the web dashboard')
    .description(
      'Logs in with your key (the normal handshake), asks for a one-time dashboard link (valid 60 s, single use; your identity must hold the admin role), prints it and opens it in a browser if there is one.',
    );
  withOptions(dashboard, [
    serverOption(),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
    new Option('--no-open', 'print the link only'),
  ]);
  examples(dashboard, ['keyledger admin dashboard', 'keyledger admin dashboard --no-open']).action(
    act(context, async (v) =>
      (await commands.dashboardLink()).adminDashboard({ ...clientOf(v), open: v.open !== false }),
    ),
  );
}

/** `keyledger admin sessions | alerts | revoke-session | revoke-key`, through DATA/admin.sock. */
function declareSocketCommands(admin: Command, context: Context): void {
  declareSocketCommand(
    context,
    'sessions',
    admin
      .command('sessions')
      .summary('list the live sessions')
      .description('Lists the live sessions of the running server.'),
    'keyledger admin sessions --data ./keyledger-data --json',
  );
  declareSocketCommand(
    context,
    'alerts',
    admin
      .command('alerts')
      .summary('list the security alerts')
      .description('Lists the newest security alerts of the running server.'),
    'keyledger admin alerts',
  );
  declareSocketCommand(
    context,
    'revoke-session',
    admin
      .command('revoke-session')
      .argument('<SESSION_ID>', 'a session, as admin sessions lists it')
      .summary('end a live session')
      .description('Ends a live session of the running server.'),
    'keyledger admin revoke-session 5Hq2dXW0aVxS1r3b8nJk4A',
  );
  declareSocketCommand(
    context,
    'revoke-key',
    admin
      .command('revoke-key')
      .argument('<IDENTITY>', 'the identity whose key is revoked')
      .summary("revoke a user's key on the ledger")
      .description("Revokes IDENTITY's key on the ledger; every session of that identity ends."),
    'keyledger admin revoke-key mallory@example.org --reason compromised',
  );
}

/** `keyledger admin revoke-device IDENTITY FPR|NAME`, through DATA/admin.sock. */
function declareRevokeDevice(admin: Command, context: Context): void {
  const c = admin
    .command('revoke-device')
    .argument('<IDENTITY>', 'the identity the device belongs to')
    .argument('<DEVICE>', 'the device: its key fingerprint or its name')
    .summary("revoke one of a user's devices on the ledger")
    .description(
      "Revokes one device key of IDENTITY on the ledger (DeviceRevoked by an operator); that device's sessions end, the others go on. The identity's last device may be revoked this way, which revokes the identity.",
    );
  withOptions(c, [dataOption(), jsonOption(), reasonOption()]);
  examples(c, ['keyledger admin revoke-device alice@example.org phone --reason compromised']).action(
    act(context, async (v, [target, device]) =>
      (await commands.admin()).adminSessionCommand({
        data: str(v, 'data') ?? './keyledger-data',
        sub: 'revoke-device',
        target: target!,
        device: device!,
        ...given('reason', str(v, 'reason')),
        json: !!v.json,
      }),
    ),
  );
}

/** The options, example and action of the socket subcommand `c` (declared as `name`). */
function declareSocketCommand(context: Context, name: SocketCommand, c: Command, example: string): void {
  withOptions(c, [dataOption(), jsonOption(), ...(name === 'revoke-key' ? [reasonOption()] : [])]);
  examples(c, [example]).action(
    act(context, async (v, [target]) =>
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
}

/** `keyledger admin registrar list | add FILE | remove KEYID|NAME`, through DATA/admin.sock. */
function declareRegistrar(admin: Command, context: Context): void {
  const registrar = admin
    .command('registrar')
    .summary("list | add | remove: the ledger's registrars and further servers")
    .description(
      'The ledger\'s registrars, and the further servers of a deployment ordered by a chain (docs/deploy-besu.md "A second server"), through DATA/admin.sock of the governor\'s running server.',
    );
  const list = registrar
    .command('list')
    .summary('list the registrars and servers')
    .description('Lists the registrars of the ledger (genesis and governance), and the server each runs.');
  const add = registrar
    .command('add')
    .argument('<FILE>', 'the join request a new server wrote (its DATA/join-request.json)')
    .summary('admit a further server of the deployment')
    .description(
      "Admits the server of a join request (made by `keyledger node join`): checks it is for this ledger and that its keys read, lets its Ethereum account write to the contract, and writes its admission (RegistrarAdded, approved by this server's validator). Only the contract's governor can.",
    );
  const remove = registrar
    .command('remove')
    .argument('<KEYID|NAME>', 'the registrar, by key id or name (as list shows it)')
    .summary('remove a registrar (and stop its server writing)')
    .description(
      "Stops the registrar's Ethereum account writing to the contract, then writes RegistrarRemoved: what its server writes afterwards is refused by the contract and by the ledger's rules.",
    );
  examples(registrar, [
    'keyledger admin registrar list',
    'keyledger admin registrar add ./node2/join-request.json',
  ]);
  for (const [c, sub, example] of [
    [list, 'list', 'keyledger admin registrar list --data ./keyledger-data'],
    [add, 'add', 'keyledger admin registrar add ./node2/join-request.json --data ./keyledger-data'],
    [remove, 'remove', 'keyledger admin registrar remove kl2 --data ./keyledger-data'],
  ] as const) {
    withOptions(c, [dataOption(), jsonOption()]);
    examples(c, [example]).action(
      act(context, async (v, [target]) =>
        (await commands.admin()).adminRegistrar({
          data: str(v, 'data') ?? './keyledger-data',
          ...(sub === 'list' ? { sub } : { sub, target: target! }),
          json: !!v.json,
        }),
      ),
    );
  }
}

/** `keyledger admin governance propose | sign | submit`: changes a quorum of validators approves. */
function declareGovernance(admin: Command, context: Context): void {
  const governance = admin
    .command('governance')
    .summary('propose | sign | submit: governance changes a quorum of validators approves')
    .description(
      'When the genesis quorum is above one (docs/ledger.md "Governance"): propose a change through the governor\'s DATA/admin.sock (it names the current governance sequence), have each validator\'s organisation sign it offline with its own data directory, and submit it with the signatures once a quorum signed.',
    );
  const propose = governance
    .command('propose')
    .argument('<CHANGE...>', 'registrar add FILE | registrar remove KEYID|NAME | role grant|revoke IDENTITY')
    .summary('write a governance proposal')
    .description(
      'Checks the change against the running ledger and writes the proposal at its current governance sequence (a proposal made stale by another change is refused at submit: propose it again).',
    );
  withOptions(propose, [
    dataOption(),
    new Option('--role <ROLE>', 'the role of role grant|revoke').default('admin'),
    new Option('--out <FILE>', 'where to write it (default ./governance-proposal.json)'),
    jsonOption(),
  ]);
  const sign = governance
    .command('sign')
    .argument('<PROPOSAL>', 'the governance proposal')
    .summary("approve a proposal with this data directory's validator key (offline)")
    .description(
      "Signs the proposal with the validator key of DATA, after checking it is for DATA's ledger; the server need not run.",
    );
  withOptions(sign, [
    dataOption(),
    new Option('--out <FILE>', 'where to write it (default ./governance-signature-KEYID.json)'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  const submit = governance
    .command('submit')
    .argument('<PROPOSAL>', 'the governance proposal')
    .argument('<SIG...>', "the validators' signatures")
    .summary('write a proposal a quorum of validators approved')
    .description(
      "Checks the signatures (the ledger's validators, this proposal, no duplicates, a quorum) and writes the change through the governor's DATA/admin.sock: an admission lets its account write after it is written, a removal stops the account first.",
    );
  withOptions(submit, [dataOption(), jsonOption()]);
  examples(propose, [
    'keyledger admin governance propose registrar add ./node2/join-request.json --data ./org-a',
    'keyledger admin governance propose role grant alice@example.org --data ./org-a',
  ]);
  examples(sign, ['keyledger admin governance sign ./governance-proposal.json --data ./org-b']);
  examples(submit, [
    'keyledger admin governance submit ./governance-proposal.json a.json b.json --data ./org-a',
  ]);
  examples(governance, [
    'keyledger admin governance propose registrar add ./node2/join-request.json --data ./org-a',
    'keyledger admin governance sign ./governance-proposal.json --data ./org-b',
    'keyledger admin governance submit ./governance-proposal.json a.json b.json --data ./org-a',
  ]);
  const common = (v: OptionValues) => ({
    data: str(v, 'data') ?? './keyledger-data',
    ...given('out', str(v, 'out')),
    json: !!v.json,
  });
  const run = (
    work: (v: OptionValues, files: string[]) => Promise<number>,
    nodeDir?: (v: OptionValues) => string,
  ) => withFiles(context, work, nodeDir);
  propose.action(
    run(async (v, what) =>
      (await commands.admin()).adminGovernance({
        ...common(v),
        sub: 'propose',
        what,
        ...given('role', str(v, 'role')),
      }),
    ),
  );
  sign.action(
    run(
      async (v, [file]) =>
        (await commands.admin()).adminGovernance({
          ...common(v),
          ...passphraseOf(v),
          sub: 'sign',
          file: file!,
        }),
      dataOr('./keyledger-data'),
    ),
  );
  submit.action(
    run(async (v, files) => (await commands.admin()).adminGovernance({ ...common(v), sub: 'submit', files })),
  );
}
