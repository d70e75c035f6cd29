/**
 * `keyledger node join` (docs/deploy-besu.md "A second server", docs/deploy-etcd.md "A second
 * server"): a further server of a deployment ordered by an EVM chain or an etcd cluster, with keys
 * of its own, and its join request for the governor.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { callJson, endpoint } from '../../client/http.js';
import { chainIdOf, checkGenesis, type Genesis } from '../../ledger/genesis.js';
import type { JoinRequest } from '../../ledger/node-admission.js';
import { KlError } from '../../protocol/errors.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/**
 * The genesis of the deployment: from a file, or from a server and then checked against `chain`
 * (required: a genesis fetched from the network is trusted only against a ledger id the operator
 * got out of band).
 */
async function deploymentGenesis(o: { genesis?: string; from?: string; chain?: string }) {
  if (!o.genesis === !o.from)
    throw new KlError('KL_BAD_INPUT', 'give the genesis with --genesis FILE or --from URL');
  if (o.from && !o.chain)
    throw new KlError(
      'KL_BAD_INPUT',
      "--from URL needs --chain ID: a genesis read from the network is trusted only against the ledger id you got out of band (from the first server's operator, `keyledger ledger show`)",
    );
  let value: unknown;
  if (o.genesis) {
    try {
      value = JSON.parse(readFileSync(o.genesis, 'utf8'));
    } catch (err) {
      throw new KlError('KL_BAD_INPUT', `cannot read the genesis ${o.genesis}: ${(err as Error).message}`);
    }
  } else value = await callJson<unknown>('GET', endpoint(o.from!, '/v1/ledger/genesis'));
  // genesis.json holds { genesis, chainId } or the genesis itself; the server answers the genesis.
  const doc = (value as { genesis?: unknown }).genesis ?? value;
  const genesis = checkGenesis(doc);
  const chain = chainIdOf(genesis);
  if (o.chain && o.chain.toLowerCase() !== chain)
    throw new KlError('KL_CHECKPOINT_INVALID', `the genesis is of ledger ${chain}, not of ${o.chain}`);
  return { genesis, chain };
}

/** Options of {@link nodeJoin}. */
export interface NodeJoinOptions {
  data: string;
  /** EVM engine: the chain node's JSON-RPC URL. */
  rpc?: string;
  /** etcd engine: the cluster's client URLs, comma-separated. */
  etcd?: string;
  genesis?: string;
  from?: string;
  chain?: string;
  name?: string;
  url?: string;
  insecureDevFunderKey?: string;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  json?: boolean;
}

/** `keyledger node join`: makes the data directory and prints what the governor needs. */
export async function nodeJoin(o: NodeJoinOptions): Promise<number> {
  const { genesis, chain } = await deploymentGenesis(o);
  const engine = genesis.engine;
  if (engine?.type === 'evm' && !o.rpc)
    throw new KlError(
      'KL_BAD_INPUT',
      "--rpc URL (the chain node's JSON-RPC URL) is required: this ledger is ordered by an EVM chain",
    );
  if (engine?.type === 'etcd' && !o.etcd)
    throw new KlError(
      'KL_BAD_INPUT',
      "--etcd URL,URL,URL (the cluster's client URLs) is required: this ledger is ordered by an etcd cluster",
    );
  info(
    engine?.type === 'etcd'
      ? `joining ledger ${chain} (${genesis.name}), etcd prefix ${engine.prefix}`
      : `joining ledger ${chain} (${genesis.name}), contract ${engine?.contract ?? '(none)'} on chain ${engine?.chainId ?? '(none)'}`,
  );
  const passphrase = await resolvePassphrase(o, { confirm: true });
  const { request, account } = await joinWith(o, genesis, passphrase);
  const file = join(o.data, 'join-request.json');
  if (o.json)
    out(
      JSON.stringify({
        dataDir: o.data,
        chain,
        ...(account ? { account } : {}),
        request: file,
        registrar: request.keyId,
      }),
    );
  else
    out(`server ${request.name} made in ${o.data}
  ledger      ${chain}${account ? `\n  account     ${account}` : ''}
  server key  ${request.node.server.fingerprint}
  validator   ${request.node.validator.keyId}
  registrar   ${request.keyId}
next:
  1. start it:                    keyledger serve --data ${o.data}
  2. on the governor's server:    keyledger admin registrar add ${file}`);
  return 0;
}

/** Makes the joining server with its engine's settings; an embedded genesis is refused there. */
async function joinWith(
  o: NodeJoinOptions,
  genesis: Genesis,
  passphrase: string,
): Promise<{ request: JoinRequest; account?: string }> {
  const common = {
    dataDir: o.data,
    passphrase,
    genesis,
    name: o.name ?? hostname().slice(0, 64),
    ...(o.url ? { url: o.url } : {}),
  };
  if (genesis.engine?.type === 'etcd')
    return (await import('../../server/etcd-node.js')).joinEtcdNode({
      ...common,
      endpoints: o.etcd!.split(',').map((u) => u.trim()),
    });
  const { joinEvmNode } = await import('../../server/evm-node.js');
  return joinEvmNode({
    ...common,
    rpcUrl: o.rpc ?? '',
    ...(o.insecureDevFunderKey ? { insecureDevFunderKey: o.insecureDevFunderKey } : {}),
  });
}
