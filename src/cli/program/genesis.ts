/**
 * `keyledger genesis contribute | propose | sign | combine | adopt`: a genesis made jointly by
 * several organisations, each with its own servers (docs/deploy-besu.md "Several organisations").
 */
import { type Command, Option } from 'commander';
import { collect, jsonOption, nodePassphraseOptions, type OptionValues } from '../options.js';
import { act, type Context, dataOr, examples, given, passphraseOf, str, withOptions } from './shared.js';

const load = () => import('../commands/genesis.js');

/** `--data DIR` of a genesis subcommand. */
const dataOption = (what: string) => new Option('--data <DIR>', `${what} (default ./keyledger-data)`);
const outOption = (file: string) => new Option('--out <FILE>', `where to write it (default ${file})`);
const rpcOption = () => new Option('--rpc <URL>', "the chain node's JSON-RPC URL (required)");

/**
 * An action that hands `work` every positional argument, variadic ones (commander's arrays)
 * flattened in order.
 */
export function withFiles(
  context: Context,
  work: (v: OptionValues, files: string[]) => Promise<number>,
  nodeDir?: (v: OptionValues) => string,
): (...params: unknown[]) => Promise<void> {
  return (...params) => {
    const files = params
      .slice(0, -2)
      .flatMap((p) => (typeof p === 'string' ? [p] : Array.isArray(p) ? (p as string[]) : []));
    return act(context, (v) => work(v, files), nodeDir)(...params);
  };
}

/** `keyledger genesis …`: the group, then each subcommand. */
export function declareGenesis(program: Command, context: Context): void {
  const genesis = program
    .command('genesis')
    .summary('contribute | propose | sign | combine | adopt: a genesis made by several organisations')
    .description(
      'A genesis made jointly by several organisations on an EVM chain: each contributes its keys, one proposes the genesis (deploying the contract), each signs it, the proposer combines the signatures, each adopts the result in its data directory.',
    );
  examples(genesis, [
    'keyledger genesis contribute --data ./org-a --org org-a',
    'keyledger genesis propose a.json b.json --quorum 2 --name example --rpc http://10.0.0.1:8545 --data ./org-a',
  ]);
  declareContribute(genesis, context);
  declarePropose(genesis, context);
  declareSign(genesis, context);
  declareCombine(genesis, context);
  declareAdopt(genesis, context);
}

function declareContribute(genesis: Command, context: Context): void {
  const c = genesis
    .command('contribute')
    .summary("make this organisation's keys and its contribution")
    .description(
      "On each organisation's first server: makes its node keys (validator, registrar, OpenPGP server key, Ethereum account; sealed under the node passphrase) without a genesis, and writes DATA/contribution.json, signed by its validator key.",
    );
  withOptions(c, [
    dataOption('the new data directory'),
    new Option('--org <NAME>', "the organisation's name in the ledger (required)"),
    new Option('--url <URL>', "this server's public URL, listed for clients"),
    outOption('DATA/contribution.json'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(c, [
    'keyledger genesis contribute --data ./org-b --org org-b --url https://kl.org-b.example',
  ]).action(
    act(
      context,
      async (v) =>
        (await load()).genesisContribute({
          data: str(v, 'data') ?? './keyledger-data',
          ...given('org', str(v, 'org')),
          ...given('url', str(v, 'url')),
          ...given('out', str(v, 'out')),
          ...passphraseOf(v),
          json: !!v.json,
        }),
      dataOr('./keyledger-data'),
    ),
  );
}

function declarePropose(genesis: Command, context: Context): void {
  const c = genesis
    .command('propose')
    .argument('<CONTRIB...>', "the contributions, the proposer's first")
    .summary('check the contributions and write the genesis proposal')
    .description(
      "Checks every contribution's signature and keys and writes the proposal: the genesis (every organisation's validator, the proposer's registrar and server key, the quorum) and the admissions of the other organisations' servers. The KeyRegistry contract is deployed from the proposer's account (--data, its governor), or --contract ADDR --from-block N is attached. Several organisations need --quorum 2 or more (a majority).",
    );
  withOptions(c, [
    new Option('--quorum <N>', 'validator approvals a governance change needs (required; a majority)'),
    new Option('--name <NAME>', 'the ledger name').default('keyledger'),
    rpcOption(),
    dataOption("the proposer's data directory, whose account deploys the contract"),
    new Option('--contract <ADDRESS>', 'attach to this deployed KeyRegistry instead'),
    new Option('--from-block <N>', 'the block the contract was deployed in'),
    new Option(
      '--insecure-dev-funder-key <KEY>',
      "pay for every contribution's account from this key (development chains only)",
    ),
    outOption('./genesis-proposal.json'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(c, [
    'keyledger genesis propose ./org-a/contribution.json ./b.json --quorum 2 --name example --rpc http://10.0.0.1:8545 --data ./org-a',
  ]).action(
    withFiles(context, async (v, files) =>
      (await load()).genesisPropose({
        files,
        ...given('quorum', str(v, 'quorum')),
        ...given('name', str(v, 'name')),
        ...given('rpc', str(v, 'rpc')),
        data: str(v, 'data') ?? './keyledger-data',
        ...given('contract', str(v, 'contract')),
        ...given('fromBlock', str(v, 'fromBlock')),
        ...given('insecureDevFunderKey', str(v, 'insecureDevFunderKey')),
        ...given('out', str(v, 'out')),
        ...passphraseOf(v),
        json: !!v.json,
      }),
    ),
  );
}

function declareSign(genesis: Command, context: Context): void {
  const c = genesis
    .command('sign')
    .argument('<PROPOSAL>', 'the genesis proposal')
    .summary("sign the proposal with this organisation's validator key")
    .description(
      "Prints every organisation of the proposal (name, validator and registrar key ids, account, server fingerprint, URL) to check against what each told you, checks the proposal is what its contributions make and holds this organisation's contribution as made, then signs the genesis (its chain id) and the admissions it carries with the validator key of DATA. --expect ORG=KEYID (repeatable) pins every organisation expected: one missing, with another validator key, or not expected is refused.",
    );
  withOptions(c, [
    dataOption('this organisation’s data directory'),
    new Option(
      '--expect <ORG=KEYID>',
      'an organisation expected and its validator key id (repeatable; then no other may be in the proposal)',
    ).argParser(collect),
    outOption('./genesis-signature-KEYID.json'),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(c, [
    'keyledger genesis sign ./genesis-proposal.json --data ./org-b',
    'keyledger genesis sign ./genesis-proposal.json --data ./org-b --expect org-a=KEYID --expect org-b=KEYID',
  ]).action(
    act(
      context,
      async (v, [file]) =>
        (await load()).genesisSign({
          file: file!,
          data: str(v, 'data') ?? './keyledger-data',
          expect: Array.isArray(v.expect) ? (v.expect as string[]) : [],
          ...given('out', str(v, 'out')),
          ...passphraseOf(v),
          json: !!v.json,
        }),
      dataOr('./keyledger-data'),
    ),
  );
}

function declareCombine(genesis: Command, context: Context): void {
  const c = genesis
    .command('combine')
    .argument('<PROPOSAL>', 'the genesis proposal')
    .argument('<SIG...>', 'one signature from every contributing organisation')
    .summary('combine the signatures into the joint genesis')
    .description(
      'Checks a valid signature from every contributing organisation and writes the joint genesis file.',
    );
  withOptions(c, [outOption('./joint-genesis.json'), jsonOption()]);
  examples(c, ['keyledger genesis combine ./genesis-proposal.json a.sig.json b.sig.json']).action(
    withFiles(context, async (v, files) =>
      (await load()).genesisCombine({ files, ...given('out', str(v, 'out')), json: !!v.json }),
    ),
  );
}

function declareAdopt(genesis: Command, context: Context): void {
  const c = genesis
    .command('adopt')
    .argument('<FILE>', 'the joint genesis')
    .summary("finish this organisation's data directory from the joint genesis")
    .description(
      "Refuses a genesis that does not contain this data directory's keys or whose contract orders another ledger; writes the ledger files. On the organisation whose account governs the contract: binds it, writes the admissions approved at genesis time and lets the other organisations' accounts write (run it there first). Then `keyledger serve --data DIR`.",
    );
  withOptions(c, [
    dataOption('this organisation’s data directory'),
    rpcOption(),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(c, [
    'keyledger genesis adopt ./joint-genesis.json --data ./org-a --rpc http://10.0.0.1:8545',
  ]).action(
    act(
      context,
      async (v, [file]) =>
        (await load()).genesisAdopt({
          file: file!,
          data: str(v, 'data') ?? './keyledger-data',
          ...given('rpc', str(v, 'rpc')),
          ...passphraseOf(v),
          json: !!v.json,
        }),
      dataOr('./keyledger-data'),
    ),
  );
}
