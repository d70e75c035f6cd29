/**
 * Opens what a server node runs on (docs/architecture.md): initialises the data directory on first
 * start, loads the server key, opens the embedded ledger — ordered by an EVM chain or an etcd cluster
 * when the genesis names one (docs/architecture.md "The EVM engine", docs/deploy-etcd.md) — and
 * checks the server key is the one the genesis pins (or, on a joined server, its join request's).
 */
import { ChainOutbox, chainOutboxPath } from '../ledger/chain-outbox.js';
import { dataPaths, readGenesisFile } from '../ledger/data-dir.js';
import { EmbeddedLedger } from '../ledger/embedded-ledger.js';
import type { EtcdSequencer } from '../ledger/etcd-sequencer.js';
import type { EvmSequencer } from '../ledger/evm-sequencer.js';
import type { EtcdEngineInfo, EvmEngineInfo } from '../ledger/genesis.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { IdentityProofs } from './identity-proofs.js';
import { readJoinRequest } from './joined-node.js';
import { initNodeIfNeeded } from './node.js';
import { loadServerKey, type ServerKey } from './server-key.js';

/** Options of {@link openNode}. */
export interface OpenNodeOptions {
  /** The node's data directory (created and initialised on first use). */
  dataDir: string;
  /** The node passphrase that seals its keys. */
  passphrase: string;
  /** The clock (default `Date.now`). */
  now?: () => number;
  /** Group-commit window of the ledger, ms (default 2). */
  ledgerBatchWaitMs?: number;
  /** EVM engine: the node's JSON-RPC URL (default: DATA/evm.json) and follower poll interval. */
  evm?: { rpcUrl?: string; pollMs?: number };
  /** etcd engine: the cluster's client URLs (default: DATA/etcd.json) and follower poll interval. */
  etcd?: { endpoints?: string[]; pollMs?: number };
  /** Told each commit's duration (metrics). */
  observeCommit?: (ms: number) => void;
  /** Where the node's lines go (default: nowhere). */
  log?: (line: string) => void;
  /** Told what the chain follower reports (the node unreachable, a transaction left out). */
  problem?: (line: string) => void;
  /**
   * EVM and etcd engines: the chain (cluster) counts as stale (readiness, the "unreachable" alert) after this many ms
   * without a full read (the server's `maxLedgerStalenessMs`; default 30 s; infinite to never).
   */
  chainStaleAfterMs?: number;
}

/**
 * An open node: its ledger, its sequencer (EVM or etcd engine), its server key and its identity
 * proofs.
 */
export interface OpenNode {
  ledger: EmbeddedLedger;
  sequencer: EvmSequencer | EtcdSequencer | undefined;
  serverKey: ServerKey;
  /** Invitations and emailed codes, kept in the data directory. */
  proofs: IdentityProofs;
  /** Stops the sequencer (after in-flight chain writes, when `drain`), closes the ledger and the proofs. */
  close(drain?: boolean): Promise<void>;
}

/** Opens the node of `o.dataDir`. */
export async function openNode(options: OpenNodeOptions): Promise<OpenNode> {
  const o = {
    now: Date.now,
    ledgerBatchWaitMs: 2,
    observeCommit: () => {},
    log: () => {},
    problem: () => {},
    ...options,
  };
  await initNodeIfNeeded({ dataDir: o.dataDir, passphrase: o.passphrase, now: o.now });
  const serverKey = await loadServerKey(o.dataDir, o.passphrase);
  const { engine } = readGenesisFile(dataPaths(o.dataDir).genesis).genesis;
  const tell = (line: string) => {
    o.log(line);
    o.problem(line);
  };
  const sequencer =
    engine?.type === 'evm'
      ? await evmSequencerOf(o, engine, tell)
      : engine?.type === 'etcd'
        ? (await import('./etcd-node.js')).etcdSequencerFor({
            dataDir: o.dataDir,
            prefix: engine.prefix,
            ...(o.etcd?.endpoints ? { endpoints: o.etcd.endpoints } : {}),
            ...(o.etcd?.pollMs ? { pollMs: o.etcd.pollMs } : {}),
            now: o.now,
            log: tell,
          })
        : undefined;
  if (sequencer && o.chainStaleAfterMs !== undefined) sequencer.staleAfterMs = o.chainStaleAfterMs;
  // A short batching window lets concurrent registrations and audit events share blocks (fewer
  // fsyncs and signatures per transaction) for at most this many ms of added latency.
  const ledger = EmbeddedLedger.open({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    now: o.now,
    batchWaitMs: o.ledgerBatchWaitMs,
    observeCommit: o.observeCommit,
    ...(sequencer ? { sequencer } : {}),
  });
  // Audit events written while the chain (the etcd cluster) is away wait here, durably, until read
  // back from its order (docs/reliability.md "The chain away").
  const outbox = sequencer ? new ChainOutbox(chainOutboxPath(o.dataDir)) : undefined;
  if (sequencer && outbox) sequencer.useOutbox(outbox, (txid) => holds(ledger, txid));
  const proofs = new IdentityProofs(o.dataDir);
  let stopRetries = () => {};
  const close = async (drain = false) => {
    stopRetries();
    if (sequencer) {
      if (drain) await ledger.drain(10_000); // in-flight chain writes (audit events just written) finish
      await sequencer.stop();
    }
    await ledger.close();
    outbox?.close();
    proofs.close();
  };
  try {
    if (engine?.type === 'evm') await followEvm(o, engine, sequencer as EvmSequencer, ledger);
    if (engine?.type === 'etcd')
      stopRetries = await followEtcd(o, engine, sequencer as EtcdSequencer, ledger);
  } catch (err) {
    await close();
    throw err;
  }
  // A further server of a deployment has a key of its own (its join request, admitted by
  // governance: node-admission.ts); any other server has the key the genesis pins.
  const joined = engine ? readJoinRequest(o.dataDir) : null;
  if ((joined?.node.server.fingerprint ?? ledger.genesis.server?.fingerprint) !== serverKey.fingerprint) {
    await close();
    throw new KlError('KL_LEDGER_CORRUPT', 'the server key is not the one pinned in the genesis');
  }
  return { ledger, sequencer, serverKey, proofs, close };
}

/** Whether the ledger holds the transaction `txid` (checked before a queued write is sent again). */
function holds(ledger: EmbeddedLedger, txid: string): Promise<boolean> {
  return ledger.getTransaction(txid).then(
    () => true,
    (err: unknown) => {
      if (isKlError(err, 'KL_TX_UNKNOWN')) return false;
      throw err;
    },
  );
}

type Opened = Required<Pick<OpenNodeOptions, 'dataDir' | 'passphrase' | 'log'>> & OpenNodeOptions;

/** The EVM engine's sequencer (ethers is loaded only for that engine). */
async function evmSequencerOf(o: Opened, engine: EvmEngineInfo, log: (line: string) => void) {
  return (await import('./evm-node.js')).evmSequencerFor({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    engine,
    ...(o.evm?.rpcUrl ? { rpcUrl: o.evm.rpcUrl } : {}),
    ...(o.evm?.pollMs ? { pollMs: o.evm.pollMs } : {}),
    log,
  });
}

/** EVM engine: the contract's binding checked (docs/deploy-besu.md "A second server"), then the follower. */
async function followEvm(
  o: Opened,
  engine: EvmEngineInfo,
  sequencer: EvmSequencer,
  ledger: EmbeddedLedger,
): Promise<void> {
  o.log(
    `ledger ordered by EVM chain ${engine.chainId}, contract ${engine.contract}, account ${await sequencer.address}`,
  );
  await (await import('./evm-node.js')).checkChainBinding({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    engine,
    chain: ledger.chainId,
    ...(o.evm?.rpcUrl ? { rpcUrl: o.evm.rpcUrl } : {}),
    log: o.log,
  });
  await sequencer.follow((batch) => ledger.ingest(batch), ledger.sequencerCursor());
}

/** etcd engine: the prefix bound to this ledger (docs/deploy-etcd.md), then the follower. */
async function followEtcd(
  o: Opened,
  engine: EtcdEngineInfo,
  sequencer: EtcdSequencer,
  ledger: EmbeddedLedger,
): Promise<() => void> {
  o.log(`ledger ordered by the etcd cluster, prefix ${engine.prefix}`);
  return (await import('./etcd-node.js')).followWhenBound({
    sequencer,
    prefix: engine.prefix,
    dataDir: o.dataDir,
    chain: ledger.chainId,
    follow: () => sequencer.follow((batch) => ledger.ingest(batch), ledger.sequencerCursor()),
    log: o.log,
  });
}
