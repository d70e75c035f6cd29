/**
 * A new data directory whose ledger is ordered by an EVM chain: `keyledger ledger deploy`, and
 * `keyledger serve --ledger evm` on first start. Loaded only for that engine (ethers).
 */
import { isInitialised } from '../../ledger/data-dir.js';
import { evmEngineOf } from '../../ledger/genesis.js';
import { KlError } from '../../protocol/errors.js';
import type { ConfigFile } from '../../server/config.js';
import { initEvmNode } from '../../server/evm-node.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/** The `ledger` settings of the configuration. */
export type LedgerSettings = NonNullable<ConfigFile['ledger']>;

/** A new EVM-engine data directory: deploys KeyRegistry, or attaches to `contract`. */
export async function initEvm(data: string, passphrase: string, l: LedgerSettings, funder?: string) {
  if (!l.rpcUrl) throw new KlError('KL_CONFIG_INVALID', 'the EVM engine needs --rpc URL (ledger.rpcUrl)');
  const r = await initEvmNode({
    dataDir: data,
    passphrase,
    rpcUrl: l.rpcUrl,
    ...(l.contract ? { contract: { address: l.contract, fromBlock: l.fromBlock ?? 0 } } : {}),
    ...(l.confirmations ? { confirmations: l.confirmations } : {}),
    ...(funder ? { insecureDevFunderKey: funder } : {}),
  });
  const e = evmEngineOf(r.genesis)!;
  info(
    `${l.contract ? 'attached to' : 'deployed'} KeyRegistry ${e.contract} on chain ${e.chainId} (block ${e.fromBlock}); this node's account: ${r.account}`,
  );
  if (l.contract)
    info(
      `the contract's governor must make ${r.account} a registrar (setRegistrar) before this node can write`,
    );
  return r;
}

/**
 * `keyledger ledger deploy --rpc URL --data DIR`: a new EVM-engine data directory with the
 * KeyRegistry contract deployed from a new account of this node (sealed under the node passphrase).
 */
export async function ledgerDeploy(o: {
  data: string;
  ledger: LedgerSettings;
  insecureDevFunderKey?: string;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  json?: boolean;
}): Promise<number> {
  if (isInitialised(o.data)) throw new KlError('KL_DATA_DIR', `${o.data} already holds a ledger`);
  const passphrase = await resolvePassphrase(o, { confirm: true });
  const r = await initEvm(o.data, passphrase, o.ledger, o.insecureDevFunderKey);
  const e = evmEngineOf(r.genesis)!;
  if (o.json) out(JSON.stringify({ ...e, account: r.account, dataDir: o.data }));
  else
    out(`contract ${e.contract}
chain ${e.chainId}
account ${r.account}
start it: keyledger serve --data ${o.data}`);
  return 0;
}
