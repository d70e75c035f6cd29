/**
 * `keyledger node join`: a further server of a deployment whose ledger is ordered by an EVM chain or
 * an etcd cluster (docs/deploy-besu.md "A second server", docs/deploy-etcd.md "A second server").
 */
import { type Command, Option } from 'commander';
import { devFunderOption, jsonOption, nodePassphraseOptions } from '../options.js';
import { act, type Context, dataOr, examples, given, passphraseOf, str, withOptions } from './shared.js';

/** The help of `keyledger node join`. */
const JOIN_DESCRIPTION =
  "Makes a further server of a running deployment from its public facts: the genesis (--genesis FILE, or --from URL of one of its servers with --chain ID, the ledger id got out of band: a genesis read from the network is trusted only against it) and what orders the ledger: the chain node (--rpc) for an EVM chain, the cluster (--etcd URL,URL,URL) for etcd. The chain node must serve the genesis's chain and its contract be bound to this genesis; the etcd prefix the genesis names must order this ledger. This server gets keys of its own (OpenPGP server key, validator and registrar keys, on EVM an Ethereum account; all sealed under the node passphrase) and writes DATA/join-request.json: hand it to the deployment's governor, who runs `keyledger admin registrar add FILE`. Start this server with `keyledger serve --data DIR` at once: it follows the chain (cluster), and writes and serves logins once admitted.";

/** `keyledger node …`: the group, then `join`. */
export function declareNode(program: Command, context: Context): void {
  const node = program
    .command('node')
    .summary('join: a further server of a deployment ordered by a chain or an etcd cluster')
    .description('The servers of a deployment whose ledger is ordered by an EVM chain or an etcd cluster.');
  examples(node, [
    'keyledger node join --data ./node2 --rpc http://127.0.0.1:8545 --from http://127.0.0.1:7420 --chain ID',
    'keyledger node join --data ./node2 --etcd http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379 --genesis ./genesis.json',
  ]);
  const join = node
    .command('join')
    .summary('make a further server of a running deployment')
    .description(JOIN_DESCRIPTION);
  withOptions(join, [
    new Option('--data <DIR>', 'the new data directory (default ./keyledger-data)'),
    new Option('--rpc <URL>', "EVM engine: the chain node's JSON-RPC URL"),
    new Option('--etcd <URLS>', "etcd engine: the cluster members' client URLs, comma-separated"),
    new Option('--genesis <FILE>', "the deployment's genesis.json"),
    new Option('--from <URL>', 'read the genesis from this server of the deployment'),
    new Option(
      '--chain <ID>',
      'the ledger id, got out of band: the genesis must have it (required with --from)',
    ),
    new Option('--name <NAME>', "this server's name in the ledger (default: the host name)"),
    new Option('--url <URL>', "this server's public URL, listed for clients once admitted"),
    devFunderOption(),
    ...nodePassphraseOptions(),
    jsonOption(),
  ]);
  examples(join, [
    'keyledger node join --data ./node2 --rpc http://10.0.0.11:8545 --from https://kl1.example.org --chain ID --name kl2 --url https://kl2.example.org',
    'keyledger node join --data ./node2 --etcd http://10.0.0.1:2379,http://10.0.0.2:2379 --from https://kl1.example.org --chain ID --name kl2',
    'keyledger node join --data ./node2 --rpc http://127.0.0.1:8545 --genesis ./genesis.json --name kl2',
  ]).action(
    act(
      context,
      async (v) =>
        (await import('../commands/node.js')).nodeJoin({
          data: str(v, 'data') ?? './keyledger-data',
          ...given('rpc', str(v, 'rpc')),
          ...given('etcd', str(v, 'etcd')),
          ...given('genesis', str(v, 'genesis')),
          ...given('from', str(v, 'from')),
          ...given('chain', str(v, 'chain')),
          ...given('name', str(v, 'name')),
          ...given('url', str(v, 'url')),
          ...given('insecureDevFunderKey', str(v, 'insecureDevFunderKey')),
          ...passphraseOf(v),
          json: !!v.json,
        }),
      dataOr('./keyledger-data'),
    ),
  );
}
