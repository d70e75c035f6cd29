/**
 * The commands that read and check what a node recorded: `keyledger audit`, `logs decrypt`,
 * `receipt verify`, and `demo`, which shows all of it on a ledger of its own. (`keyledger ledger`
 * is in ledger.ts.)
 */
import { type Command, Option } from 'commander';
import { dataOption, homeOption, jsonOption, nodePassphraseOptions, usage } from '../options.js';
import {
  act,
  type Context,
  clientOf,
  commands,
  DEMO_DATA_DIR,
  dataOr,
  examples,
  given,
  passphraseOf,
  str,
  withOptions,
} from './shared.js';

/** The help of `keyledger logs decrypt`. */
const DECRYPT_DESCRIPTION =
  "Decrypts and prints encrypted log files (FILE alone, or every *.log.enc in DIR/logs). The reader's key: --key FILE, the operator's key (passphrase in KEYLEDGER_OPERATOR_PASSPHRASE); by default the server key of --data DIR (node passphrase: KEYLEDGER_SERVER_PASSPHRASE, --passphrase-file FILE or a prompt); with --home DIR, your own key for the client's logs (and the keys it retired by rotation; passphrase KEYLEDGER_PASSPHRASE). Exit 1 if a line does not decrypt.";

/** The help of `keyledger demo`. */
const DEMO_DESCRIPTION = [
  'Registers N (default 3) real OpenPGP keys on an embedded ledger, anchors a message, revokes a key, and checks every receipt and proof.',
  'DIR defaults to ./keyledger-demo (its own, never the served ./keyledger-data) and is made if needed.',
  'Its keys are protected by KEYLEDGER_SERVER_PASSPHRASE or --passphrase-file FILE if given, else by the public development passphrase (it says so).',
].join('\n\n');

/** `keyledger audit`: lists the audit events of the ledger. */
export function declareAudit(program: Command, context: Context): void {
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
    act(context, async (v) =>
      (await commands.audit()).audit({
        data: str(v, 'data') ?? './keyledger-data',
        ...given('id', str(v, 'id')),
        ...given('since', str(v, 'since')),
        json: !!v.json,
      }),
    ),
  );
}

/** `keyledger logs decrypt`: reads the encrypted log files of a server or of a client home. */
export function declareLogs(program: Command, context: Context): void {
  const logs = program
    .command('logs')
    .summary('decrypt: read the encrypted log files')
    .description('The encrypted log files of a server (DATA/logs) or of a client home.');
  const decrypt = logs
    .command('decrypt')
    .summary('decrypt and print encrypted log files')
    .description(DECRYPT_DESCRIPTION);
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
      context,
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
}

/** `keyledger receipt verify FILE`: checks a receipt of a signed message. */
export function declareReceipt(program: Command, context: Context): void {
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
    act(context, async (v, [file]) =>
      (await commands.audit()).receiptVerify({
        ...clientOf(v),
        file: file!,
        ...given('genesis', str(v, 'genesis')),
      }),
    ),
  );
  examples(receipt, ['keyledger receipt verify agreement.json']);
}

/** `keyledger demo`: a demonstration on a ledger of its own (./keyledger-demo). */
export function declareDemo(program: Command, context: Context): void {
  const demo = program
    .command('demo')
    .summary('a demonstration on a ledger of its own (./keyledger-demo)')
    .description(DEMO_DESCRIPTION);
  withOptions(demo, [
    dataOption(`the demo's data directory (default ${DEMO_DATA_DIR})`),
    new Option('--users <N>', 'how many users to register, 2 to 1000').default('3'),
    ...nodePassphraseOptions(),
  ]);
  examples(demo, ['keyledger demo', 'keyledger demo --users 10 --data /tmp/kl-demo']).action(
    act(
      context,
      async (v) => {
        const users = Number(str(v, 'users') ?? '3');
        if (!Number.isSafeInteger(users) || users < 2 || users > 1000)
          usage('--users must be an integer from 2 to 1000');
        return (await commands.demo()).demo({
          data: str(v, 'data') ?? DEMO_DATA_DIR,
          users,
          ...passphraseOf(v),
        });
      },
      dataOr(DEMO_DATA_DIR),
    ),
  );
}
