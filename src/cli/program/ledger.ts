/**
 * `keyledger ledger verify | show | init | deploy`: check, read or make the ledger of a data
 * directory (embedded, or ordered by an EVM chain or an etcd cluster).
 */
import { type Command, Option } from 'commander';
import { KlError } from '../../protocol/errors.js';
import {
  collect,
  devFunderOption,
  jsonOption,
  nodePassphraseOptions,
  type OptionValues,
  serveFlags,
} from '../options.js';
import {
  act,
  type Context,
  commands,
  dataOr,
  examples,
  given,
  passphraseOf,
  str,
  withOptions,
} from './shared.js';

/** The help of `keyledger ledger verify`. */
const VERIFY_DESCRIPTION =
  'Replays and checks the whole ledger (exit 1 naming the first bad block). --checkpoint FILE: a checkpoint (signed header) kept from earlier, which the ledger must still contain. --mark-verified (node passphrase, server stopped): if it verifies, records the node\'s verified checkpoint at its top, so a node refused for "no valid verified checkpoint" starts on this history — your decision. Progress goes to stderr (a few lines when it is not a terminal); --quiet hides it.';

/** The help of `keyledger ledger show`. */
const SHOW_DESCRIPTION =
  "Without a selector: the ledger's name, chain id, height and its last 10 blocks. --height N: block N and its transactions. --id IDENTITY: the key record of IDENTITY, its history and its proof, checked against the genesis (exit 1 if the proof fails). --tx TXID: one transaction and its inclusion proof (exit 1 if it fails).";

/** The help of `keyledger ledger deploy`. */
const DEPLOY_DESCRIPTION =
  "A new data directory whose ledger is ordered by a distributed engine. --engine evm (default): makes this node's Ethereum account (sealed under the node passphrase) and deploys KeyRegistry from it (or attaches to ADDRESS); on a development chain (anvil, Hardhat) --insecure-dev-funder-key pays for the account with a public key. --engine etcd --etcd URL,URL,URL [--etcd-prefix /keyledger/NAME]: the genesis names the prefix, bound to the new ledger at once (a prefix that orders another ledger is refused; docs/deploy-etcd.md).";

/** The `--data` option of every ledger subcommand (required: the group's preAction hook checks it). */
const ledgerData = () => new Option('--data <DIR>', 'the data directory (required)');

/** The options every ledger subcommand passes on, as the command modules take them. */
const common = (v: OptionValues) => ({
  data: str(v, 'data')!,
  json: !!v.json,
  quiet: !!v.quiet,
  ...passphraseOf(v),
});

/** `keyledger ledger …`: the group, then each subcommand. */
export function declareLedger(program: Command, context: Context): void {
  const ledger = program
    .command('ledger')
    .summary('verify | show | init | deploy: check, read or make a ledger')
    .description(
      'The ledger of a data directory: verify it, show it, make a new one (embedded, or ordered by an EVM chain or an etcd cluster).',
    );
  // Required, but checked after the options (a mistyped option is the better thing to report).
  ledger.hook('preAction', (_ledger, action) => {
    if (action.opts().data === undefined)
      action.error("error: required option '--data <DIR>' not specified", {
        code: 'commander.missingMandatoryOptionValue',
      });
  });
  declareVerify(ledger, context);
  declareShow(ledger, context);
  declareLedgerInit(ledger, context);
  declareDeploy(ledger, context);
  examples(ledger, [
    'keyledger ledger verify --data ./keyledger-data',
    'keyledger ledger show --data ./keyledger-data',
  ]);
}

/** Most worker threads `ledger verify` starts. */
const MAX_VERIFY_THREADS = 64;

/** `--threads N`: a whole number of worker threads, 0 to {@link MAX_VERIFY_THREADS}. */
function threadsOf(text: string | undefined): { threads?: number } {
  if (text === undefined) return {};
  const threads = Number(text);
  if (!/^\d+$/.test(text) || threads > MAX_VERIFY_THREADS)
    throw new KlError('KL_BAD_INPUT', `--threads must be a whole number from 0 to ${MAX_VERIFY_THREADS}`);
  return { threads };
}

/** `keyledger ledger verify`: replays and checks the whole ledger. */
function declareVerify(ledger: Command, context: Context): void {
  const verify = ledger
    .command('verify')
    .summary('replay and check the whole ledger')
    .description(VERIFY_DESCRIPTION);
  withOptions(verify, [
    ledgerData(),
    new Option('--checkpoint <FILE>', 'a checkpoint the ledger must still contain (repeatable)').argParser(
      collect,
    ),
    new Option('--mark-verified', "record the node's verified checkpoint at the top"),
    new Option('--threads <N>', 'worker threads checking signatures (default: one per core; 0: none)'),
    new Option('-q, --quiet', 'no progress'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(verify, [
    'keyledger ledger verify --data ./keyledger-data',
    'keyledger ledger verify --data ./keyledger-data --checkpoint cp.json --quiet',
    'keyledger ledger verify --data ./keyledger-data --threads 4',
  ]).action(
    act(
      context,
      async (v) =>
        (await commands.ledger()).ledgerVerify({
          ...common(v),
          checkpoints: Array.isArray(v.checkpoint) ? v.checkpoint : [],
          markVerified: !!v.markVerified,
          ...threadsOf(str(v, 'threads')),
        }),
      dataOr('./keyledger-data'),
    ),
  );
}

/** `keyledger ledger show`: blocks, transactions and key records, with their proofs. */
function declareShow(ledger: Command, context: Context): void {
  const show = ledger
    .command('show')
    .summary('blocks, transactions and key records, with their proofs')
    .description(SHOW_DESCRIPTION);
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
    act(context, async (v) => {
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
}

/** `keyledger ledger init`: makes a new data directory (embedded ledger). */
function declareLedgerInit(ledger: Command, context: Context): void {
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
      context,
      async (v) => (await commands.ledger()).ledgerInit({ ...common(v), ...given('name', str(v, 'name')) }),
      dataOr('./keyledger-data'),
    ),
  );
}

/** `keyledger ledger deploy`: a new data directory whose ledger is ordered by an EVM chain or etcd. */
function declareDeploy(ledger: Command, context: Context): void {
  const deploy = ledger
    .command('deploy')
    .summary('make a new data directory whose ledger is ordered by an EVM chain or an etcd cluster')
    .description(DEPLOY_DESCRIPTION);
  withOptions(deploy, [
    ledgerData(),
    new Option('--engine <ENGINE>', 'what orders the ledger').choices(['evm', 'etcd']).default('evm'),
    new Option('--rpc <URL>', 'the EVM node'),
    new Option('--contract <ADDRESS>', 'attach to this KeyRegistry contract instead of deploying one'),
    new Option('--from-block <N>', 'the block the contract was deployed at (with --contract)'),
    devFunderOption(),
    new Option('--etcd <URLS>', "the etcd cluster members' client URLs, comma-separated"),
    new Option('--etcd-prefix <PREFIX>', 'the key prefix of the new ledger (/keyledger/NAME)'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(deploy, [
    'keyledger ledger deploy --data ./keyledger-data --rpc http://127.0.0.1:8545',
    'keyledger ledger deploy --data ./node2 --rpc http://besu:8545 --contract 0x5FbDB2315678afecb367f032d93F642f64180aa3 --from-block 1',
    'keyledger ledger deploy --engine etcd --data ./keyledger-data --etcd http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379 --etcd-prefix /keyledger/example',
  ]).action(
    act(
      context,
      async (v) =>
        v.engine === 'etcd'
          ? (await import('../commands/etcd-setup.js')).etcdDeploy({
              ...common(v),
              ledger: { engine: 'etcd', ...serveFlags(v).ledger },
            })
          : (await commands.evmSetup()).ledgerDeploy({
              ...common(v),
              ledger: { engine: 'evm', ...serveFlags(v).ledger },
              ...given('insecureDevFunderKey', str(v, 'insecureDevFunderKey')),
            }),
      dataOr('./keyledger-data'),
    ),
  );
}
