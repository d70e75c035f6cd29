/**
 * What the governor of a KeyRegistry contract does on the chain (docs/deploy-besu.md "A second
 * server"): bind the contract to its keyledger ledger once, and let a server's Ethereum account write
 * (or stop it). Anyone can read which ledger a contract is bound to: a server checks it at start.
 */
import { Contract, Wallet } from 'ethers';
import { isKlError, KlError } from '../protocol/errors.js';
import { evmProvider, registryArtifact } from './evm-sequencer.js';
import type { EvmEngineInfo } from './genesis.js';

const UNBOUND = `0x${'0'.repeat(64)}`;

/** How a failed chain call reads for a person (the node's short message, bounded). */
function chainFailure(what: string, err: unknown): KlError {
  if (isKlError(err)) return err;
  const e = err as { shortMessage?: string; message?: string; revert?: { name?: string } };
  if (e.revert?.name === 'NotGovernor')
    return new KlError('KL_NOT_PERMITTED', `${what}: this server's account is not the contract's governor`);
  return new KlError(
    'KL_LEDGER_UNAVAILABLE',
    `${what}: ${e.shortMessage ?? e.message ?? String(err)}`.slice(0, 300),
  );
}

/**
 * The keyledger chain id the contract is bound to (hex, no 0x), or null when it is not bound yet or
 * predates binding (a contract without `keyledgerChain`).
 * @throws KlError `KL_LEDGER_UNAVAILABLE` when the node cannot be asked.
 */
export async function boundChain(rpcUrl: string, engine: EvmEngineInfo): Promise<string | null> {
  const provider = evmProvider(rpcUrl);
  try {
    const network = await provider.getNetwork();
    if (Number(network.chainId) !== engine.chainId)
      throw new KlError(
        'KL_CONFIG_INVALID',
        `the EVM node at ${rpcUrl} serves chain ${network.chainId}, but this ledger is ordered by chain ${engine.chainId}`,
      );
    if ((await provider.getCode(engine.contract)) === '0x')
      throw new KlError(
        'KL_CONFIG_INVALID',
        `there is no contract at ${engine.contract} on chain ${engine.chainId} (a node that lost its state, or the wrong node)`,
      );
    const contract = new Contract(engine.contract, registryArtifact().abi, provider);
    let bound: string;
    try {
      bound = String(await contract.getFunction('keyledgerChain')());
    } catch (err) {
      if (
        (err as { code?: string }).code === 'CALL_EXCEPTION' ||
        (err as { code?: string }).code === 'BAD_DATA'
      )
        return null; // a contract from before binding
      throw err;
    }
    return bound === UNBOUND ? null : bound.slice(2);
  } catch (err) {
    throw chainFailure(`cannot read the contract at ${engine.contract}`, err);
  } finally {
    provider.destroy();
  }
}

/** A governor's transaction on the contract, waited for until final. */
async function asGovernor(
  o: { rpcUrl: string; privateKey: string; engine: EvmEngineInfo },
  what: string,
  send: (contract: Contract) => Promise<{ wait(confirmations?: number): Promise<unknown> }>,
): Promise<void> {
  const provider = evmProvider(o.rpcUrl);
  try {
    const wallet = new Wallet(o.privateKey, provider);
    const contract = new Contract(o.engine.contract, registryArtifact().abi, wallet);
    const tx = await send(contract);
    await tx.wait(1);
  } catch (err) {
    throw chainFailure(what, err);
  } finally {
    provider.destroy();
  }
}

/** Binds the contract to the ledger `chain` (hex chain id); only the governor can, and only once. */
export function bindChain(o: {
  rpcUrl: string;
  privateKey: string;
  engine: EvmEngineInfo;
  chain: string;
}): Promise<void> {
  return asGovernor(o, 'cannot bind the contract to this ledger', (contract) =>
    contract.getFunction('bindChain')(`0x${o.chain}`),
  );
}

/** Lets `account` write to the contract as a registrar (or stops it); only the governor can. */
export function setRegistrarAccount(o: {
  rpcUrl: string;
  privateKey: string;
  engine: EvmEngineInfo;
  account: string;
  allowed: boolean;
}): Promise<void> {
  return asGovernor(o, `cannot ${o.allowed ? 'allow' : 'stop'} the account ${o.account}`, (contract) =>
    contract.getFunction('setRegistrar')(o.account, o.allowed),
  );
}
