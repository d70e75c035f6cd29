/**
 * A node whose ledger is ordered by an EVM chain (docs/deploy-besu.md): `initEvmNode` makes its data
 * directory (deploying the KeyRegistry contract if asked), `evmSequencerFor` connects a started
 * node to its chain. Loaded only for that engine: ethers is not needed otherwise.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Wallet } from 'ethers';
import { dataPaths, ensureDir, isInitialised, refusePartialDataDir } from '../ledger/data-dir.js';
import { initEmbeddedLedger } from '../ledger/embedded-ledger.js';
import { bindChain, boundChain, setRegistrarAccount } from '../ledger/evm-governor.js';
import { deployRegistry, EvmSequencer, evmProvider } from '../ledger/evm-sequencer.js';
import { chainIdOf, checkGenesis, type EvmEngineInfo, evmEngineOf, type Genesis } from '../ledger/genesis.js';
import type { JoinRequest } from '../ledger/node-admission.js';
import { openSecretFile, sealSecretFile } from '../ledger/sealed-key-file.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { makeJoinRequest } from './joined-node.js';
import type { RegistrarAccounts } from './server-admission.js';
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
  // A contract that already orders a ledger gets further servers through `node join`: attaching a
  // new genesis to it would make a second, separate ledger on the same contract.
  if (o.contract) await refuseBoundContract(o.rpcUrl, o.contract.address);
  ensureDir(o.dataDir);
  const account = nodeAccount(o.dataDir, o.passphrase);
  if (o.insecureDevFunderKey) await fundDevAccount(o.rpcUrl, o.insecureDevFunderKey, account.address);
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
  writeFileSync(dataPaths(o.dataDir).evmSettings, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  const server = await createServerKey(o.dataDir, o.passphrase, { now: new Date((o.now ?? Date.now)()) });
  const { genesis } = initEmbeddedLedger({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    name: o.name ?? 'keyledger',
    server,
    engine,
    ...(o.now ? { now: o.now } : {}),
  });
  // The deploying account is the governor: it binds the contract to this ledger at once.
  if (!o.contract)
    await bindChain({ rpcUrl: o.rpcUrl, privateKey: account.privateKey, engine, chain: chainIdOf(genesis) });
  return { genesis, account: account.address };
}

/** This node's Ethereum account: made and sealed on first use, kept if a later step fails. */
export function nodeAccount(dataDir: string, passphrase: string): Wallet {
  // The account is made (and sealed) first and kept if deploying fails, so that a network with an
  // accounts allowlist can allowlist it and the same command, run again, uses it.
  const paths = dataPaths(dataDir);
  if (existsSync(paths.evmAccountKey))
    return new Wallet(`0x${openSecretFile(paths.evmAccountKey, passphrase, 'evm-account').toString('hex')}`);
  const account = Wallet.createRandom();
  sealSecretFile(
    paths.evmAccountKey,
    Buffer.from(account.privateKey.slice(2), 'hex'),
    passphrase,
    'evm-account',
  );
  return new Wallet(account.privateKey);
}

/** Pays for `address` from a funded development account (anvil, Hardhat: their keys are public). */
export async function fundDevAccount(rpcUrl: string, funderKey: string, address: string): Promise<void> {
  const provider = evmProvider(rpcUrl);
  try {
    const funder = new Wallet(funderKey, provider);
    const tx = await funder.sendTransaction({ to: address, value: 10n ** 20n });
    await tx.wait(1);
  } catch (err) {
    throw new KlError(
      'KL_LEDGER_UNAVAILABLE',
      `could not fund ${address}: ${(err as Error).message}`.slice(0, 300),
    );
  } finally {
    provider.destroy();
  }
}

/** @throws KlError `KL_CONFIG_INVALID` when the contract at `address` already orders a ledger. */
async function refuseBoundContract(rpcUrl: string, address: string): Promise<void> {
  const provider = evmProvider(rpcUrl);
  let chainId: number;
  try {
    chainId = Number((await provider.getNetwork()).chainId);
  } catch (err) {
    throw new KlError(
      'KL_LEDGER_UNAVAILABLE',
      `cannot reach ${rpcUrl}: ${(err as Error).message}`.slice(0, 300),
    );
  } finally {
    provider.destroy();
  }
  const bound = await boundChain(rpcUrl, {
    type: 'evm',
    chainId,
    contract: address.toLowerCase(),
    fromBlock: 0,
  });
  if (bound !== null)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `the contract ${address} already orders a keyledger ledger (${bound.slice(0, 16)}…): a further server of that deployment is made with \`keyledger node join\`, not with a genesis of its own`,
    );
}

/** Options of {@link joinEvmNode}. */
export interface JoinEvmNodeOptions {
  dataDir: string;
  passphrase: string;
  rpcUrl: string;
  /** The deployment's genesis (public: `GET /v1/ledger/genesis` of any of its servers). */
  genesis: unknown;
  /** This server's name in the ledger (its registrar name). */
  name: string;
  /** This server's public URL, listed for clients once it is admitted. */
  url?: string;
  confirmations?: number;
  /** See {@link InitEvmNodeOptions.insecureDevFunderKey}. */
  insecureDevFunderKey?: string;
  now?: () => number;
}

/**
 * Makes a further server of a running deployment from its public facts (docs/deploy-besu.md "A
 * second server"): checks the chain node serves the genesis's chain and that the contract is bound
 * to this genesis, then makes this server's own keys (OpenPGP server key, validator, registrar,
 * Ethereum account, all sealed) and its join request (DATA/join-request.json) for the governor.
 * The server starts and follows the chain at once; it writes and serves logins once admitted.
 */
export async function joinEvmNode(o: JoinEvmNodeOptions): Promise<{ request: JoinRequest; account: string }> {
  const genesis = checkGenesis(o.genesis);
  const engine = evmEngineOf(genesis);
  if (!engine)
    throw new KlError(
      'KL_BAD_INPUT',
      genesis.engine
        ? `this genesis is ordered by the ${genesis.engine.type} engine, not an EVM chain: join it with that engine's settings`
        : 'this genesis orders its ledger itself (embedded engine): it has one server',
    );
  if (isInitialised(o.dataDir)) throw new KlError('KL_DATA_DIR', `${o.dataDir} already holds a ledger`);
  refusePartialDataDir(o.dataDir);
  const chain = chainIdOf(genesis);
  const bound = await boundChain(o.rpcUrl, engine);
  if (bound !== chain)
    throw new KlError(
      'KL_CONFIG_INVALID',
      bound === null
        ? `the contract ${engine.contract} is not bound to a ledger yet: start the deployment's first server (it binds the contract) and try again`
        : `the contract ${engine.contract} orders another ledger (${bound.slice(0, 16)}…) than this genesis (${chain.slice(0, 16)}…)`,
    );
  ensureDir(o.dataDir);
  const account = nodeAccount(o.dataDir, o.passphrase);
  if (o.insecureDevFunderKey) await fundDevAccount(o.rpcUrl, o.insecureDevFunderKey, account.address);
  const settings: EvmSettings = { rpcUrl: o.rpcUrl, confirmations: o.confirmations ?? 1 };
  writeFileSync(dataPaths(o.dataDir).evmSettings, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  const request = await makeJoinRequest({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    genesis,
    chain,
    name: o.name,
    account: account.address.toLowerCase(),
    ...(o.url ? { url: o.url } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
  return { request, account: account.address };
}

/**
 * At start: the contract must order this data directory's ledger. A contract bound to another
 * ledger is refused with a message that says so; an unbound one (made before binding existed) is
 * bound by its governor, or reported. A node that cannot be reached is left to the follower (the
 * ledger then fails closed as stale).
 * @throws KlError `KL_CONFIG_INVALID`
 */
export async function checkChainBinding(o: {
  dataDir: string;
  passphrase: string;
  engine: EvmEngineInfo;
  chain: string;
  rpcUrl?: string;
  log: (line: string) => void;
}): Promise<void> {
  const rpcUrl = o.rpcUrl ?? readSettings(o.dataDir).rpcUrl;
  if (!rpcUrl) throw new KlError('KL_DATA_DIR', 'no EVM node configured: give --rpc URL');
  let bound: string | null;
  try {
    bound = await boundChain(rpcUrl, o.engine);
  } catch (err) {
    if (isKlError(err, 'KL_LEDGER_UNAVAILABLE')) {
      o.log(`cannot check which ledger the contract orders yet: ${err.message}`);
      return;
    }
    throw err;
  }
  if (bound === o.chain) return;
  if (bound !== null)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `the contract ${o.engine.contract} on chain ${o.engine.chainId} orders another ledger (${bound.slice(0, 16)}…) than the one in ${o.dataDir} (${o.chain.slice(0, 16)}…): this data directory does not belong to that deployment (a further server of a deployment is made with \`keyledger node join\`)`,
    );
  try {
    const key = openSecretFile(dataPaths(o.dataDir).evmAccountKey, o.passphrase, 'evm-account');
    await bindChain({ rpcUrl, privateKey: `0x${key.toString('hex')}`, engine: o.engine, chain: o.chain });
    o.log(`contract ${o.engine.contract} bound to this ledger (${o.chain.slice(0, 16)}…)`);
  } catch (err) {
    o.log(`the contract is not bound to a ledger and this server cannot bind it: ${(err as Error).message}`);
  }
}

/** DATA/evm.json, or nothing. */
function readSettings(dataDir: string): Partial<EvmSettings> {
  const path = dataPaths(dataDir).evmSettings;
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as EvmSettings) : {};
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
  const settings = readSettings(o.dataDir);
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

/**
 * The governor's side of admitting servers (server-admission.ts): this node's sealed account lets an
 * account write to the contract, or stops it. Only the contract's governor succeeds.
 */
export function registrarAccountsFor(o: {
  dataDir: string;
  passphrase: string;
  engine: EvmEngineInfo;
  rpcUrl?: string;
}): RegistrarAccounts {
  return {
    async setAccount(account, allowed) {
      const rpcUrl = o.rpcUrl ?? readSettings(o.dataDir).rpcUrl;
      if (!rpcUrl) throw new KlError('KL_DATA_DIR', 'no EVM node configured: give --rpc URL');
      const key = openSecretFile(dataPaths(o.dataDir).evmAccountKey, o.passphrase, 'evm-account');
      await setRegistrarAccount({
        rpcUrl,
        privateKey: `0x${key.toString('hex')}`,
        engine: o.engine,
        account,
        allowed,
      });
    },
  };
}
