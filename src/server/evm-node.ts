/**
 * A node whose ledger is ordered by an EVM chain (docs/deploy-besu.md): `initEvmNode` makes its data
 * directory (deploying the KeyRegistry contract if asked), `evmSequencerFor` connects a started
 * node to its chain. Loaded only for that engine: ethers is not needed otherwise.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Wallet } from 'ethers';
import { dataPaths, ensureDir, isInitialised, refusePartialDataDir } from '../ledger/data-dir.js';
import { initEmbeddedLedger } from '../ledger/embedded-ledger.js';
import { deployRegistry, EvmSequencer, evmProvider } from '../ledger/evm-sequencer.js';
import type { EvmEngineInfo, Genesis } from '../ledger/genesis.js';
import { openSecretFile, sealSecretFile } from '../ledger/sealed-key-file.js';
import { KlError } from '../protocol/errors.js';
import { createServerKey } from './server-key.js';

/** The node's EVM settings (DATA/evm.json). */
export interface EvmSettings {
  rpcUrl: string;
  confirmations: number;
}

/** Options of {@link initEvmNode}. */
export interface InitEvmNodeOptions {
  dataDir: string;
  passphrase: string;
  rpcUrl: string;
  /** Attach to this deployed contract instead of deploying one (the account must be made a registrar). */
  contract?: { address: string; fromBlock: number };
  confirmations?: number;
  /**
   * A funded account's private key that pays for this node's account (development chains such as
   * anvil or Hardhat, whose accounts are public). Besu/GoQuorum networks usually run gas-free.
   */
  insecureDevFunderKey?: string;
  name?: string;
  now?: () => number;
}

/**
 * Makes an EVM-engine node: server OpenPGP key, ledger keys, a new Ethereum account (sealed under the
 * passphrase, never written in clear), the KeyRegistry contract deployed from that account (or the
 * given one attached), and a genesis that names the chain and contract.
 */
export async function initEvmNode(o: InitEvmNodeOptions): Promise<{ genesis: Genesis; account: string }> {
  if (isInitialised(o.dataDir)) throw new KlError('KL_DATA_DIR', `${o.dataDir} already holds a ledger`);
  refusePartialDataDir(o.dataDir);
  ensureDir(o.dataDir);
  const paths = dataPaths(o.dataDir);
  // The account is made (and sealed) first and kept if deploying fails, so that a network with an
  // accounts allowlist can allowlist it and the same command, run again, uses it.
  const kept = existsSync(paths.evmAccountKey);
  const account = kept
    ? new Wallet(`0x${openSecretFile(paths.evmAccountKey, o.passphrase, 'evm-account').toString('hex')}`)
    : Wallet.createRandom();
  if (!kept)
    sealSecretFile(
      paths.evmAccountKey,
      Buffer.from(account.privateKey.slice(2), 'hex'),
      o.passphrase,
      'evm-account',
    );
  if (o.insecureDevFunderKey) {
    const provider = evmProvider(o.rpcUrl);
    try {
      const funder = new Wallet(o.insecureDevFunderKey, provider);
      const tx = await funder.sendTransaction({ to: account.address, value: 10n ** 20n });
      await tx.wait(1);
    } catch (err) {
      throw new KlError(
        'KL_LEDGER_UNAVAILABLE',
        `could not fund ${account.address}: ${(err as Error).message}`.slice(0, 300),
      );
    } finally {
      provider.destroy();
    }
  }
  let engine: EvmEngineInfo;
  if (o.contract) {
    const provider = evmProvider(o.rpcUrl);
    try {
      const network = await provider.getNetwork();
      engine = {
        type: 'evm',
        chainId: Number(network.chainId),
        contract: o.contract.address.toLowerCase(),
        fromBlock: o.contract.fromBlock,
      };
    } catch (err) {
      throw new KlError(
        'KL_LEDGER_UNAVAILABLE',
        `cannot reach ${o.rpcUrl}: ${(err as Error).message}`.slice(0, 300),
      );
    } finally {
      provider.destroy();
    }
  } else {
    engine = await deployRegistry({ rpcUrl: o.rpcUrl, privateKey: account.privateKey }).catch(
      (err: Error) => {
        throw new KlError(
          'KL_LEDGER_UNAVAILABLE',
          `${err.message} (this node's account is ${account.address})`,
        );
      },
    );
  }
  const settings: EvmSettings = { rpcUrl: o.rpcUrl, confirmations: o.confirmations ?? 1 };
  writeFileSync(paths.evmSettings, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  const server = await createServerKey(o.dataDir, o.passphrase, { now: new Date((o.now ?? Date.now)()) });
  const { genesis } = initEmbeddedLedger({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    name: o.name ?? 'keyledger',
    server,
    engine,
    ...(o.now ? { now: o.now } : {}),
  });
  return { genesis, account: account.address };
}

/** The sequencer of an EVM-engine node, with its sealed account key and settings. */
export function evmSequencerFor(o: {
  dataDir: string;
  passphrase: string;
  engine: EvmEngineInfo;
  rpcUrl?: string;
  pollMs?: number;
  log?: (line: string) => void;
}): EvmSequencer {
  const paths = dataPaths(o.dataDir);
  const settings: Partial<EvmSettings> = existsSync(paths.evmSettings)
    ? (JSON.parse(readFileSync(paths.evmSettings, 'utf8')) as EvmSettings)
    : {};
  const rpcUrl = o.rpcUrl ?? settings.rpcUrl;
  if (!rpcUrl) throw new KlError('KL_DATA_DIR', 'no EVM node configured: give --rpc URL');
  const key = openSecretFile(paths.evmAccountKey, o.passphrase, 'evm-account');
  return new EvmSequencer({
    rpcUrl,
    engine: o.engine,
    privateKey: `0x${key.toString('hex')}`,
    confirmations: settings.confirmations ?? 1,
    ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    ...(o.log
      ? { log: o.log, onRefused: (txid, why) => o.log!(`chain transaction ${txid} left out: ${why}`) }
      : {}),
  });
}
