/**
 * Another writer with an EVM-engine server's own registrar and account keys (a replica): writes
 * validly signed keyledger transactions to the server's contract while the test decides what the
 * server reads, or when.
 */
import { randomBytes } from 'node:crypto';
import { dataPaths, readGenesisFile } from '../../src/ledger/data-dir.js';
import { EvmSequencer } from '../../src/ledger/evm-sequencer.js';
import type { EvmEngineInfo } from '../../src/ledger/genesis.js';
import { openKeyFile, openSecretFile } from '../../src/ledger/sealed-key-file.js';
import { signTransaction, type TxEnvelope, txidOf } from '../../src/ledger/transactions.js';
import { canonicalize } from '../../src/protocol/canonical-json.js';
import { PASSPHRASE, registration } from '../helpers.js';

/** A registration envelope, its canonical text and its txid. */
export interface SignedWrite {
  envelope: TxEnvelope;
  text: string;
  txid: string;
}

/** A replica of the server over `dataDir`, writing to the chain at `rpcUrl`; stop it with `stop()`. */
export function evmReplica(dataDir: string, rpcUrl: string, chainId: string) {
  const paths = dataPaths(dataDir);
  const { genesis } = readGenesisFile(paths.genesis);
  const account = `0x${openSecretFile(paths.evmAccountKey, PASSPHRASE, 'evm-account').toString('hex')}`;
  const registrar = openKeyFile(paths.registrarKey, PASSPHRASE, 'registrar');
  const engine = genesis.engine as EvmEngineInfo;
  const seq = new EvmSequencer({ rpcUrl, engine, privateKey: account, pollMs: 20 });
  return {
    /** The server's Ethereum account key (the contract's governor for a first server). */
    account,
    engine,
    /** A signed registration of `id` (not sent). */
    registration(id: string): SignedWrite {
      const envelope = signTransaction({
        chain: chainId,
        intent: { type: 'KeyRegistered', body: registration(id) },
        signer: registrar,
        now: Date.now(),
        nonce: randomBytes(16).toString('hex'),
      });
      const text = canonicalize(envelope);
      return { envelope, text, txid: txidOf(envelope) };
    },
    /** Sends `write` to the contract (one chain transaction); resolves once it is mined. */
    send: (write: SignedWrite) => seq.submit({ envelope: write.envelope, text: write.text, txid: '' }),
    /** Signs and sends a registration of `id`; resolves once it is mined. */
    register(id: string): Promise<unknown> {
      return this.send(this.registration(id));
    },
    stop: () => seq.stop(),
  };
}
