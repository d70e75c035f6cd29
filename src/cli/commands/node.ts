/**
 * `keyledger node join` (docs/deploy-besu.md "A second server"): a further server of a deployment,
 * with keys of its own, and its join request for the governor.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { callJson, endpoint } from '../../client/http.js';
import { chainIdOf, checkGenesis } from '../../ledger/genesis.js';
import { KlError } from '../../protocol/errors.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/** The genesis of the deployment: from a file or a server, checked against `chain` when given. */
async function deploymentGenesis(o: { genesis?: string; from?: string; chain?: string }) {
  if (!o.genesis === !o.from)
    throw new KlError('KL_BAD_INPUT', 'give the genesis with --genesis FILE or --from URL');
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

/** `keyledger node join`: makes the data directory and prints what the governor needs. */
export async function nodeJoin(o: {
  data: string;
  rpc?: string;
  genesis?: string;
  from?: string;
  chain?: string;
  name?: string;
  url?: string;
  insecureDevFunderKey?: string;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  json?: boolean;
}): Promise<number> {
  if (!o.rpc) throw new KlError('KL_BAD_INPUT', "--rpc URL (the chain node's JSON-RPC URL) is required");
  const { genesis, chain } = await deploymentGenesis(o);
  info(
    `joining ledger ${chain} (${genesis.name}), contract ${genesis.engine?.contract ?? '(none)'} on chain ${genesis.engine?.chainId ?? '(none)'}`,
  );
  const passphrase = await resolvePassphrase(o, { confirm: true });
  const { joinEvmNode } = await import('../../server/evm-node.js');
  const { request, account } = await joinEvmNode({
    dataDir: o.data,
    passphrase,
    rpcUrl: o.rpc,
    genesis,
    name: o.name ?? hostname().slice(0, 64),
    ...(o.url ? { url: o.url } : {}),
    ...(o.insecureDevFunderKey ? { insecureDevFunderKey: o.insecureDevFunderKey } : {}),
  });
  const file = join(o.data, 'join-request.json');
  if (o.json)
    out(JSON.stringify({ dataDir: o.data, chain, account, request: file, registrar: request.keyId }));
  else
    out(`server ${request.name} made in ${o.data}
  ledger      ${chain}
  account     ${account}
  server key  ${request.node.server.fingerprint}
  validator   ${request.node.validator.keyId}
  registrar   ${request.keyId}
next:
  1. start it:                    keyledger serve --data ${o.data}
  2. on the governor's server:    keyledger admin registrar add ${file}`);
  return 0;
}
