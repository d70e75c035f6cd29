/**
 * The EVM engine (docs/architecture.md "The EVM engine", docs/deploy-besu.md): keyledger transactions ordered
 * by a permissioned EVM chain (Hyperledger Besu / GoQuorum with QBFT) through the KeyRegistry contract
 * (contracts/KeyRegistry.sol), with ethers v6 over standard JSON-RPC.
 *
 * Writing: each registrar-signed transaction goes to the contract function that enforces its rule
 * (the contract mirrors the permission table: registrars write keys, anchors and audit events; the
 * governor writes governance). `submit` resolves once the transaction's block has `confirmations`
 * confirmations (1 on QBFT: blocks are final when sealed). Reverts become typed errors.
 * Reading: the follower reads the contract's `KeyledgerTx` and `KeyStored` events in chain order
 * (logs only, never historical state: a node that reloads or prunes its state keeps its logs),
 * checks that the txid the contract computed is the RFC 6962 leaf hash of the envelope it carries
 * and that a key change carries the key the contract stored, and feeds each EVM block's
 * transactions to the local ledger (`EmbeddedLedger.ingest`), which re-checks every signature and
 * state rule and derives the same blocks, proofs and receipts as the embedded engine. It stores the
 * block read with its hash and checks on every poll that the chain still holds that block: a chain
 * that went back or was replaced is a fault (docs/deploy-besu.md "The follower"). The contract numbers
 * its `KeyledgerTx` events (`seq`, from 0): the follower requires them without gap or repeat, and as
 * many as the contract counts (`txCount`) at the last block read, so a node that hides or replays
 * events is a fault too; the stored position carries the count read so far.
 */
import { readFileSync } from 'node:fs';
import {
  Contract,
  ContractFactory,
  type InterfaceAbi,
  JsonRpcProvider,
  type Log,
  toUtf8Bytes,
  Wallet,
} from 'ethers';
import { toHex } from '../protocol/bytes.js';
import { type ErrorCode, KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import type { ChainOutbox, OutboxEntry } from './chain-outbox.js';
import type { Sequencer } from './embedded-ledger.js';
import type { EvmEngineInfo } from './genesis.js';
import { leafHash } from './merkle.js';
import {
  type LastSend,
  OutboxSender,
  type OutboxTransport,
  type Sent,
  waitsForNobody,
} from './outbox-sender.js';
import type { ChainChange, ChainStatus } from './sequencer-adapter.js';
import type { TxBodies, TxEnvelope } from './transactions.js';

/** The compiled contract (dist/contracts/KeyRegistry.json, made by `npm run build` from source). */
export interface RegistryArtifact {
  abi: InterfaceAbi;
  bytecode: string;
  solcVersion: string;
  sourceHash: string;
}

/** Loads the contract build output. */
export function registryArtifact(): RegistryArtifact {
  const url = new URL('../../dist/contracts/KeyRegistry.json', import.meta.url);
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as RegistryArtifact;
  } catch {
    throw new KlError('KL_DATA_DIR', 'dist/contracts/KeyRegistry.json is missing: run npm run build');
  }
}

/** A JSON-RPC provider that never serves a stale nonce or block number (rapid sequential sends). */
export function evmProvider(rpcUrl: string): JsonRpcProvider {
  // The chain id is fixed for a deployment (checked against the genesis): ask for it once, not per call.
  // No batching stall (ethers waits 10 ms per call to batch requests by default).
  return new JsonRpcProvider(rpcUrl, undefined, {
    cacheTimeout: -1,
    staticNetwork: true,
    polling: true,
    batchStallTime: 0,
    batchMaxCount: 1,
  });
}

const REVERTS: Record<string, [ErrorCode, string]> = {
  NotRegistrar: ['KL_NOT_PERMITTED', "this server's account is not a registrar of the contract"],
  NotGovernor: ['KL_NOT_PERMITTED', "this server's account is not the contract's governor"],
  NotActive: ['KL_KEY_REVOKED', 'the key of this identity is not active'],
  RoleUnchanged: ['KL_ROLE_EXISTS', 'the identity already has (or lacks) this role'],
};

/** Turns an ethers failure into a typed error: a revert names the rule, anything else the RPC. */
function chainError(err: unknown, contract: Contract): KlError {
  const e = err as {
    code?: string;
    data?: string;
    revert?: { name?: string };
    info?: { error?: { data?: string } };
    shortMessage?: string;
    message?: string;
  };
  let name = e.revert?.name;
  const data = e.data ?? e.info?.error?.data;
  if (!name && typeof data === 'string' && data.startsWith('0x')) {
    try {
      name = contract.interface.parseError(data)?.name;
    } catch {
      // not one of ours
    }
  }
  if (name && Object.hasOwn(REVERTS, name)) {
    const [code, message] = REVERTS[name]!;
    return new KlError(code, `${message} (the chain refused the transaction: ${name})`);
  }
  if (e.code === 'CALL_EXCEPTION')
    return new KlError(
      'KL_NOT_PERMITTED',
      `the chain refused the transaction: ${e.shortMessage ?? 'reverted'}`,
    );
  return new KlError(
    'KL_LEDGER_UNAVAILABLE',
    `the EVM node cannot be reached or refused the request: ${e.shortMessage ?? e.message ?? String(err)}`.slice(
      0,
      300,
    ),
  );
}

const hash32 = (text: string) => `0x${sha256Hex(text)}`;

/** The key a registration, rotation or recovery envelope carries (parsed once), or null for any other text. */
function keyChange(text: string): { id: string; fingerprint: string; publicKey: string } | null {
  try {
    const env = JSON.parse(text) as TxEnvelope;
    const type = env?.tx?.type;
    type KeyPart = { fingerprint?: unknown; publicKey?: unknown };
    const body = env?.tx?.body as (KeyPart & { id?: unknown; device?: KeyPart }) | undefined;
    // A recovery stores its new device's key as a registration does.
    const b = type === 'Recovered' ? body?.device : body;
    if (type !== 'KeyRegistered' && type !== 'KeyRotated' && type !== 'Recovered') return null;
    if (typeof body?.id !== 'string') return null;
    if (typeof b?.fingerprint !== 'string' || typeof b.publicKey !== 'string') return null;
    return { id: body.id, fingerprint: b.fingerprint, publicKey: b.publicKey };
  } catch {
    return null;
  }
}
const idHash = (id: string) => hash32(id);

/** Options of {@link EvmSequencer}. */
export interface EvmSequencerOptions {
  rpcUrl: string;
  engine: EvmEngineInfo;
  /** The server's Ethereum account (a registrar of the contract; the governor for governance). */
  privateKey: string;
  /** Confirmations before a write counts as final (1 on QBFT). */
  confirmations?: number;
  /** How often the follower polls for new blocks, ms. */
  pollMs?: number;
  /** Told about transactions the chain ordered but the ledger's rules refused. */
  onRefused?: (txid: string, reason: string) => void;
  log?: (line: string) => void;
}

/** What the follower feeds: one EVM block's keyledger transactions. */
export type Ingest = (batch: { texts: string[]; time: number; cursor: string }) => unknown;

/**
 * A position on the chain: a block read into the ledger, its hash, and how many `KeyledgerTx`
 * events the contract had emitted up to and including it (the `seq` of the next one); null: not
 * known yet (a position stored by an older version).
 */
export interface ChainCursor {
  number: number;
  hash: string | null;
  seq: number | null;
}

/**
 * Reads a stored follower position: `NUMBER:HASH:SEQ`, or as older versions stored it, `NUMBER:HASH`
 * or a bare block number (what is missing is then taken from the chain on the next read, and the
 * position stored again in full).
 * @throws KlError `KL_LEDGER_CORRUPT` for anything else.
 */
export function parseCursor(cursor: string | null): ChainCursor | null {
  if (cursor === null) return null;
  const m = /^([0-9]{1,15})(?::(0x[0-9a-f]{64})(?::([0-9]{1,15}))?)?$/.exec(cursor);
  if (!m)
    throw new KlError(
      'KL_LEDGER_CORRUPT',
      'the stored chain position is not a block number, hash and transaction count',
    );
  return { number: Number(m[1]), hash: m[2] ?? null, seq: m[3] === undefined ? null : Number(m[3]) };
}

/** The stored form of a complete position (see {@link parseCursor}). */
export function cursorText(c: { number: number; hash: string; seq: number }): string {
  return `${c.number}:${c.hash}:${c.seq}`;
}

/** A fault of the chain followed: a stable key (one change per key) and what a person reads. */
type Fault = { key: string; detail: string };

/** Orders keyledger transactions on an EVM chain and follows what the chain ordered. */
export class EvmSequencer implements Sequencer {
  readonly provider: JsonRpcProvider;
  readonly contract: Contract;
  private readonly wallet: Wallet;
  /** The next nonce of the account (null: ask the node). Sends are serialised, so one counter. */
  private nonce: number | null = null;
  /** The node lost a send: the next broadcast asks it for the account's nonce again. */
  private recountNonce = false;
  private readonly confirmations: number;
  private readonly pollMs: number;
  private sendChain: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** When the follower last read up to the chain's final block (wall clock, ms). */
  lastSyncAt = 0;
  /**
   * Readiness: the chain counts as stale after this many ms without a full read (the server's
   * `maxLedgerStalenessMs`; infinite with `insecureAllowStaleLedger`). Also when "unreachable" is told.
   */
  staleAfterMs = 30_000;
  private timer: NodeJS.Timeout | null = null;
  private following: Promise<void> | null = null;
  /** The last block read into the ledger (as stored in its `evm-cursor`). */
  private cursor: ChainCursor | null = null;
  private head: number | null = null;
  private fault: Fault | null = null;
  /** The last read failure logged (one line per different failure, not per poll). */
  private lastError: string | null = null;
  private unreachableTold = false;
  private readonly listeners = new Set<(change: ChainChange) => void>();
  /** Writes nobody waits for, through the outbox (null: none given). */
  private sender: OutboxSender | null = null;

  constructor(private readonly o: EvmSequencerOptions) {
    this.provider = evmProvider(o.rpcUrl);
    // Receipts are polled at this interval (ethers' default, 4 s, would add seconds to every write).
    this.provider.pollingInterval = Math.min(o.pollMs ?? 250, 250);
    // One writer per account, nonces in order (a node that automines refuses gaps).
    this.wallet = new Wallet(o.privateKey, this.provider);
    this.contract = new Contract(o.engine.contract, registryArtifact().abi, this.wallet);
    this.confirmations = Math.max(1, o.confirmations ?? 1);
    this.pollMs = o.pollMs ?? 250;
  }

  /** The account's address. */
  get address(): Promise<string> {
    return Promise.resolve(this.wallet.address);
  }

  /**
   * Keeps writes nobody waits for (audit events) in `outbox` until they are read back from a block
   * (docs/reliability.md "The chain away"); `onLedger` tells whether a txid is on the ledger already
   * (checked before every resend).
   */
  useOutbox(outbox: ChainOutbox, onLedger: (txid: string) => Promise<boolean>): void {
    this.sender = new OutboxSender({
      outbox,
      onLedger,
      engine: 'the chain',
      label: 'EVM follower',
      ...(this.o.log ? { log: this.o.log } : {}),
      ...(this.o.onRefused ? { onRefused: this.o.onRefused } : {}),
    });
  }

  /** The connection to the chain (see {@link ChainStatus}). */
  status(): ChainStatus {
    const read = this.cursor?.number ?? null;
    const stalenessMs = Date.now() - this.lastSyncAt;
    return {
      head: this.head,
      read,
      lag: this.head !== null && read !== null ? Math.max(0, this.head - read) : null,
      stalenessMs,
      fault: this.fault?.detail ?? null,
      queued: this.sender?.size() ?? 0,
      refusedWrites: this.sender?.refusedCount() ?? 0,
      ok: this.fault === null && stalenessMs <= this.staleAfterMs,
    };
  }

  /**
   * Tells `listener` each change of the chain connection (a fault, its end, the chain unreachable
   * beyond the staleness limit, back); a state that holds already is told at once. Returns the
   * unsubscribe function.
   */
  onChange(listener: (change: ChainChange) => void): () => void {
    this.listeners.add(listener);
    if (this.fault) listener({ kind: 'fault', detail: this.fault.detail });
    if (this.unreachableTold) listener({ kind: 'unreachable', detail: this.unreachableDetail() });
    return () => this.listeners.delete(listener);
  }

  private tell(change: ChainChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // a listener never stops the follower
      }
    }
  }

  /** The contract function and arguments that implement one keyledger transaction. */
  private callFor(envelope: TxEnvelope, text: string): { name: string; args: unknown[] } {
    const bytes = toUtf8Bytes(text);
    const { type, body } = envelope.tx;
    switch (type) {
      case 'KeyRegistered': {
        const b = body as TxBodies['KeyRegistered'];
        return {
          name: 'registerKey',
          args: [idHash(b.id), hash32(b.fingerprint), hash32(b.publicKey), bytes],
        };
      }
      case 'KeyRotated': {
        const b = body as TxBodies['KeyRotated'];
        return {
          name: 'rotateKey',
          args: [idHash(b.id), hash32(b.oldFingerprint), hash32(b.fingerprint), hash32(b.publicKey), bytes],
        };
      }
      case 'KeyRevoked': {
        const b = body as TxBodies['KeyRevoked'];
        return { name: 'revokeKey', args: [idHash(b.id), hash32(b.fingerprint), bytes] };
      }
      case 'DeviceAdded': {
        const b = body as TxBodies['DeviceAdded'];
        return { name: 'deviceKey', args: [idHash(b.id), hash32(b.fingerprint), hash32(b.publicKey), bytes] };
      }
      case 'DeviceRevoked': {
        const b = body as TxBodies['DeviceRevoked'];
        return {
          name: 'deviceKey',
          args: [idHash(b.id), hash32(b.fingerprint), `0x${'0'.repeat(64)}`, bytes],
        };
      }
      case 'RecoveryKeySet': {
        const b = body as TxBodies['RecoveryKeySet'];
        return {
          name: 'recoveryKey',
          args: [idHash(b.id), hash32(b.fingerprint), hash32(b.publicKey), bytes],
        };
      }
      case 'Recovered': {
        const { id, device, nextRecovery } = body as TxBodies['Recovered'];
        return {
          name: 'recover',
          args: [
            idHash(id),
            hash32(device.fingerprint),
            hash32(device.publicKey),
            hash32(nextRecovery.fingerprint),
            hash32(nextRecovery.publicKey),
            bytes,
          ],
        };
      }
      case 'HashAnchored':
        return { name: 'anchorHash', args: [`0x${(body as TxBodies['HashAnchored']).hash}`, bytes] };
      case 'AuditEvent':
        return { name: 'auditEvent', args: [bytes] };
      case 'RoleGranted':
      case 'RoleRevoked':
        return {
          name: 'governance',
          args: [idHash((body as TxBodies['RoleGranted']).id), type === 'RoleGranted', true, bytes],
        };
      default:
        return { name: 'governance', args: [`0x${'0'.repeat(64)}`, false, false, bytes] };
    }
  }

  private fees: { at: number; value: Promise<Record<string, bigint>> } | null = null;

  /** Fee fields for a transaction, asked of the node at most every 2 s (0 on gas-free networks). */
  private feeFields(): Promise<Record<string, bigint>> {
    const now = Date.now();
    if (!this.fees || now - this.fees.at > 2_000) {
      const value = this.provider.getFeeData().then((f) => {
        const fields: Record<string, bigint> =
          f.maxFeePerGas !== null && f.maxPriorityFeePerGas !== null
            ? { maxFeePerGas: f.maxFeePerGas * 2n, maxPriorityFeePerGas: f.maxPriorityFeePerGas }
            : { gasPrice: f.gasPrice ?? 0n };
        return fields;
      });
      this.fees = { at: now, value };
      value.catch(() => (this.fees = null));
    }
    return this.fees.value;
  }

  /**
   * Sends one signed transaction to the contract function of its type and waits until final. The
   * call is simulated first (a refusal is a typed error and nothing is sent); sends are serialised
   * for nonce order, waiting for finality is not, so writes pipeline. Refused at once while the
   * chain is faulted. A write nobody waits for (an audit event, with an outbox) is queued durably
   * first: if the chain cannot take it, it fails with `KL_LEDGER_UNAVAILABLE` and details
   * `{ queued: true }`, and is sent when the chain is back.
   */
  async submit({
    envelope,
    text,
    txid,
  }: {
    envelope: TxEnvelope;
    text: string;
    txid: string;
  }): Promise<void> {
    if (this.sender && waitsForNobody(envelope)) {
      const fault = this.fault ? `the chain this server follows is faulted (${this.fault.detail})` : null;
      return this.sender.submit(txid, text, fault, () => this.sendFinal(envelope, text));
    }
    if (this.fault)
      throw new KlError(
        'KL_LEDGER_UNAVAILABLE',
        `the chain this server follows is faulted (${this.fault.detail}): writes are refused until it is back`,
      );
    const sent = await this.sendFinal(envelope, text);
    await sent.final;
  }

  /** Broadcasts one transaction; `final` settles once it has its confirmations (a revert: refused). */
  private async sendFinal(envelope: TxEnvelope, text: string): Promise<Sent & { final: Promise<void> }> {
    const tx = await this.broadcast(envelope, text);
    const final = tx
      .wait(this.confirmations)
      .then((receipt) => {
        if (receipt?.status !== 1) throw new Error('the transaction reverted on chain');
      })
      .catch((err: unknown) => {
        throw chainError(err, this.contract);
      });
    return { handle: tx.hash, final };
  }

  /** Simulates, signs and broadcasts one transaction (broadcasts in call order per account). */
  private async broadcast(envelope: TxEnvelope, text: string) {
    const { name, args } = this.callFor(envelope, text);
    const fn = this.contract.getFunction(name);
    let request: Awaited<ReturnType<typeof fn.populateTransaction>>;
    let gasLimit: bigint;
    let fees: Record<string, bigint>;
    try {
      [request, gasLimit, fees] = await Promise.all([
        fn.populateTransaction(...args),
        fn.estimateGas(...args),
        this.feeFields(),
      ]);
    } catch (err) {
      throw chainError(err, this.contract);
    }
    const send = async () => {
      // Another writer with the same account (a replica) took our nonce: ask the node again and resend.
      for (let tries = 1; ; tries++) {
        try {
          // Re-read inside the serialised send, never reset from outside it (a send under way counts on it).
          if (this.recountNonce) {
            this.nonce = null;
            this.recountNonce = false;
          }
          this.nonce ??= await this.provider.getTransactionCount(this.wallet.address, 'pending');
          // Signed here and broadcast in one call: no per-send fee or nonce round trips.
          const signed = await this.wallet.signTransaction({
            to: request.to,
            data: request.data,
            nonce: this.nonce,
            gasLimit: (gasLimit * 12n) / 10n,
            chainId: this.o.engine.chainId,
            ...('maxFeePerGas' in fees ? { type: 2 } : { type: 0 }),
            ...fees,
          });
          const response = await this.provider.broadcastTransaction(signed);
          this.nonce += 1;
          return response;
        } catch (err) {
          this.nonce = null; // ahead of the chain now: recount from the node
          const e = err as { code?: string; message?: string };
          const nonceClash =
            e.code === 'NONCE_EXPIRED' || /nonce|replacement transaction/i.test(e.message ?? '');
          if (!nonceClash || tries >= 30) throw chainError(err, this.contract);
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 50));
        }
      }
    };
    const sent = this.sendChain.then(send, send);
    this.sendChain = sent.catch(() => {});
    return sent;
  }

  /** How the outbox sender sends a queued write on this chain (see {@link OutboxTransport}). */
  private readonly transport: OutboxTransport = {
    send: (envelope, text) => this.sendFinal(envelope, text),
    lastSend: (due) => this.lastSend(due),
  };

  /**
   * What became of the chain transaction of the last send of `due`: still with the node (pending,
   * or mined: then the follower reads it back; sending again would put the envelope on the chain
   * twice; it is checked again after the resend delay), mined and reverted (a refusal), or no longer
   * known to the node (dropped from its pool, a node restarted: send again).
   */
  private async lastSend(due: OutboxEntry): Promise<LastSend> {
    try {
      const tx = await this.provider.getTransaction(due.chainTx!);
      if (!tx) {
        // Its nonce is free again: the resend must take it, else it waits behind the gap for good.
        this.recountNonce = true;
        return 'gone';
      }
      if (tx.blockNumber !== null && (await this.provider.getTransactionReceipt(due.chainTx!))?.status === 0)
        return { refused: `its chain transaction ${due.chainTx} reverted` };
    } catch (err) {
      throw chainError(err, this.contract);
    }
    return 'held';
  }

  /**
   * Starts following the chain from `cursor` (the stored position, see {@link parseCursor}), feeding
   * `ingest` one EVM block at a time. Polls every `pollMs`: each poll first checks that the chain
   * still holds the block last read with the same hash (else a fault, see {@link ChainStatus}),
   * then reads the final blocks after it, then sends queued writes. Resolves after the first poll.
   */
  follow(ingest: Ingest, cursor: string | null): Promise<void> {
    this.cursor = parseCursor(cursor);
    const tick = async () => {
      if (this.stopped) return;
      try {
        await this.poll(ingest);
      } catch (err) {
        this.failed(err);
      }
      if (!this.stopped)
        this.timer = setTimeout(() => {
          this.following = tick();
        }, this.pollMs);
    };
    this.following = tick();
    return this.following;
  }

  /**
   * One poll of the follower. A fault found while reading (events out of number) holds until a read
   * finds none: the position does not move past it.
   */
  private async poll(ingest: Ingest): Promise<void> {
    const head = await this.provider.getBlockNumber();
    this.head = head;
    let fault = await this.checkCursor(head, ingest);
    this.answered();
    if (!fault) fault = await this.catchUp(ingest, head);
    this.setFault(fault);
    if (fault) return;
    this.lastSyncAt = Date.now();
    await this.sender?.flush(this.transport, () => !this.stopped && !this.fault);
  }

  /**
   * Whether the chain still holds the block last read, with the hash read: a head below it, or
   * another block at its height, is a fault (a chain that went back or was reorganised past
   * finality: what this ledger holds is not on it). A position stored without its hash or count
   * (older versions) takes them from the chain now and is stored again in full.
   */
  private async checkCursor(head: number, ingest: Ingest): Promise<Fault | null> {
    const c = this.cursor;
    if (!c) return null;
    if (head < c.number)
      return {
        key: `behind ${c.number}`,
        detail: `the chain went back: its head is below block ${c.number}, which this server already read (a node restarted without its state, or rolled back)`,
      };
    const block = await this.provider.getBlock(c.number);
    if (!block?.hash)
      return {
        key: `missing ${c.number}`,
        detail: `the chain no longer serves block ${c.number}, which this server already read`,
      };
    if (c.hash !== null && block.hash !== c.hash)
      return {
        key: `replaced ${c.number} ${block.hash}`,
        detail: `block ${c.number} on the chain is not the block this server read (hash ${block.hash.slice(0, 12)}…, read ${c.hash.slice(0, 12)}…): the chain was reorganised past finality or replaced`,
      };
    if (c.hash === null || c.seq === null) {
      const full = { number: c.number, hash: block.hash, seq: c.seq ?? (await this.countThrough(c.number)) };
      ingest({ texts: [], time: 0, cursor: cursorText(full) });
      this.cursor = full;
    }
    return null;
  }

  /**
   * How many `KeyledgerTx` events the contract emitted up to and including block `number`, from the
   * logs (the last event at or before it, read backwards 1,000 blocks at a time): once, for a
   * position stored by an older version.
   */
  private async countThrough(number: number): Promise<number> {
    const topic = this.contract.interface.getEvent('KeyledgerTx')!.topicHash;
    for (let to = number; to >= this.o.engine.fromBlock; to -= 1_000) {
      const fromBlock = Math.max(this.o.engine.fromBlock, to - 999);
      const logs = await this.provider.getLogs({
        address: this.o.engine.contract,
        fromBlock,
        toBlock: to,
        topics: [topic],
      });
      const last = logs.at(-1);
      if (last) return seqOf(last) + 1;
    }
    return 0;
  }

  /** Records the fault state; tells a change once (log line, listeners). */
  private setFault(fault: Fault | null): void {
    if ((fault?.key ?? null) === (this.fault?.key ?? null)) return;
    const was = this.fault;
    this.fault = fault;
    if (fault) {
      this.o.log?.(`EVM follower: FAULT ${fault.detail}; logins and writes are refused`);
      this.tell({ kind: 'fault', detail: fault.detail });
    } else if (was) {
      const detail = `the chain serves block ${this.cursor?.number} as read again: following it again`;
      this.o.log?.(`EVM follower: fault cleared, ${detail}`);
      this.tell({ kind: 'fault_cleared', detail });
    }
  }

  private unreachableDetail(): string {
    const since =
      this.lastSyncAt === 0
        ? 'since this server started'
        : `for ${Math.round((Date.now() - this.lastSyncAt) / 1000)} s`;
    return `the chain has not been read ${since}: ${this.lastError ?? 'no answer'}`;
  }

  /** The node answered: the end of a failure (a line and, past the staleness limit, a change). */
  private answered(): void {
    if (this.lastError !== null) this.o.log?.('EVM follower: the chain node answers again');
    this.lastError = null;
    if (this.unreachableTold) {
      this.unreachableTold = false;
      this.tell({ kind: 'reachable', detail: 'the chain node answers again' });
    }
  }

  /** A poll failed: one line per different failure; past the staleness limit, one change. */
  private failed(err: unknown): void {
    const message = (err as Error).message ?? String(err);
    if (message !== this.lastError) this.o.log?.(`EVM follower: ${message}`);
    this.lastError = message;
    const limit = Number.isFinite(this.staleAfterMs) ? this.staleAfterMs : 30_000;
    if (!this.unreachableTold && Date.now() - this.lastSyncAt > limit) {
      this.unreachableTold = true;
      this.tell({ kind: 'unreachable', detail: this.unreachableDetail() });
    }
  }

  /**
   * Reads the final blocks after the cursor up to `head`, feeding each block with keyledger logs.
   * Each range read must continue the contract's numbering (see {@link numberingFault}) before any of
   * it is fed; else the fault is returned and the position stays before it.
   */
  private async catchUp(ingest: Ingest, head: number): Promise<Fault | null> {
    const final = head - (this.confirmations - 1);
    let next = this.cursor ? this.cursor.number + 1 : this.o.engine.fromBlock;
    // A follower that starts at the contract's first block has read none of its events.
    let seq = this.cursor?.seq ?? 0;
    while (next <= final && !this.stopped) {
      const to = Math.min(final, next + 999);
      const logs = await this.readRange(next, to);
      const fault = await this.numberingFault(logs, seq, to === final ? to : null);
      if (fault) return fault;
      const byBlock = new Map<number, Log[]>();
      for (const l of logs) {
        const list = byBlock.get(l.blockNumber) ?? [];
        list.push(l);
        byBlock.set(l.blockNumber, list);
      }
      for (const [number, list] of byBlock) {
        const block = await this.provider.getBlock(number);
        if (!block?.hash) throw new KlError('KL_LEDGER_UNAVAILABLE', `block ${number} is not available`);
        if (list.some((l) => l.blockHash !== block.hash))
          throw new KlError('KL_LEDGER_UNAVAILABLE', `block ${number} changed while it was read`);
        seq += list.filter((l) => l.topics[0] === this.txTopic).length;
        const { texts, seen } = this.textsOf(list);
        const cursor = { number, hash: block.hash, seq };
        const r = ingest({ texts, time: block.timestamp * 1000, cursor: cursorText(cursor) }) as {
          refused?: Array<{ txid: string; reason: string }>;
        };
        this.cursor = cursor;
        await this.sender?.readBack(seen, r?.refused);
        for (const x of r?.refused ?? []) this.o.onRefused?.(x.txid, x.reason);
      }
      // Blocks without keyledger transactions only move the cursor (with the hash of the last).
      if (this.cursor?.number !== to) {
        const end = await this.provider.getBlock(to);
        if (!end?.hash) throw new KlError('KL_LEDGER_UNAVAILABLE', `block ${to} is not available`);
        const cursor = { number: to, hash: end.hash, seq };
        ingest({ texts: [], time: 0, cursor: cursorText(cursor) });
        this.cursor = cursor;
      }
      next = to + 1;
    }
    return null;
  }

  private get txTopic(): string {
    return this.contract.interface.getEvent('KeyledgerTx')!.topicHash;
  }

  /** The contract's keyledger logs of blocks `from`..`to`, in chain order (block, then index). */
  private async readRange(from: number, to: number): Promise<Log[]> {
    const logs = await this.provider.getLogs({
      address: this.o.engine.contract,
      fromBlock: from,
      toBlock: to,
      topics: [[this.txTopic, STORED_TOPIC(this.contract)]],
    });
    if (logs.some((l) => l.blockNumber < from || l.blockNumber > to))
      throw new KlError('KL_LEDGER_UNAVAILABLE', `the node answered logs outside blocks ${from}-${to}`);
    return [...logs].sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
  }

  /**
   * A fault when the `KeyledgerTx` events of `logs` do not number on from `seq` one by one (a node
   * that hides events leaves a gap, one that replays them repeats a number), or when `countAt` (the
   * last block of the chain read) is given and the contract's `txCount` there is not the number
   * reached (events hidden at the end).
   */
  private async numberingFault(logs: Log[], seq: number, countAt: number | null): Promise<Fault | null> {
    let next = seq;
    for (const l of logs) {
      if (l.topics[0] !== this.txTopic) continue;
      const got = seqOf(l);
      if (got !== next)
        return {
          key: `numbering ${next} ${got} ${l.blockNumber}`,
          detail: `the chain node served keyledger transaction number ${got} in block ${l.blockNumber} where number ${next} comes next: it ${got > next ? 'hides' : 'replays'} events of the contract`,
        };
      next += 1;
    }
    if (countAt === null) return null;
    let count: number;
    try {
      count = Number(await this.contract.getFunction('txCount')({ blockTag: countAt }));
    } catch (err) {
      throw chainError(err, this.contract);
    }
    if (count === next) return null;
    return {
      key: `count ${next} ${count} ${countAt}`,
      detail: `the contract counts ${count} keyledger transactions at block ${countAt}, but the chain node served events of ${next}: it ${count > next ? 'hides' : 'invents'} events of the contract`,
    };
  }

  /**
   * The envelopes of one block's logs, in order, and the txids read. Read what was written, not what
   * anyone says was: the contract's txid must be the leaf hash of the envelope, and a registration
   * or rotation must come right after the `KeyStored` event of the same call naming the same
   * identity, fingerprint and key hash (what the contract stored): a writer that stored one key's
   * hash while logging another key is caught here, from the logs alone.
   */
  private textsOf(list: Log[]): { texts: string[]; seen: string[] } {
    const texts: string[] = [];
    const seen: string[] = [];
    let stored: { log: Log; id: string; fingerprint: string; keyHash: string } | null = null;
    for (const l of list) {
      const parsed = this.contract.interface.parseLog(l);
      if (!parsed) continue;
      if (parsed.name === 'KeyStored') {
        const { id, fingerprint, keyHash } = parsed.args as unknown as Record<string, string>;
        stored = { log: l, id: id!, fingerprint: fingerprint!, keyHash: keyHash! };
        continue;
      }
      const bytes = Buffer.from((parsed.args.envelope as string).slice(2), 'hex');
      const txid = toHex(leafHash(bytes));
      seen.push(txid);
      const before = stored;
      stored = null;
      if (`0x${txid}` !== parsed.args.txid) {
        this.o.onRefused?.(String(parsed.args.txid), 'the event txid is not the hash of its envelope');
        continue;
      }
      const text = bytes.toString('utf8');
      const key = keyChange(text);
      if (key) {
        const s =
          before && before.log.transactionHash === l.transactionHash && before.log.index === l.index - 1
            ? before
            : null;
        const why = !s
          ? 'the chain stored no key record for this key change'
          : s.id !== idHash(key.id) ||
              s.fingerprint !== hash32(key.fingerprint) ||
              s.keyHash !== hash32(key.publicKey)
            ? 'the key stored on the chain is not the key in the transaction'
            : null;
        if (why) {
          this.o.onRefused?.(txid, `${why} (${key.id})`);
          continue;
        }
      }
      texts.push(text);
    }
    return { texts, seen };
  }

  /** Stops following and sending. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.following?.catch(() => {});
    await this.sendChain.catch(() => {});
    this.provider.destroy();
  }
}

const STORED_TOPIC = (c: Contract) => c.interface.getEvent('KeyStored')!.topicHash;

/** The `seq` of a `KeyledgerTx` log (its first indexed topic). */
const seqOf = (l: Log): number => Number(BigInt(l.topics[1] ?? '0x0'));

/** Deploys KeyRegistry from `privateKey` (governor), making `registrar` (default the same account) a registrar. */
export async function deployRegistry(o: {
  rpcUrl: string;
  privateKey: string;
  registrar?: string;
}): Promise<EvmEngineInfo> {
  const provider = evmProvider(o.rpcUrl);
  try {
    const wallet = new Wallet(o.privateKey, provider);
    const { abi, bytecode } = registryArtifact();
    const factory = new ContractFactory(abi, bytecode, wallet);
    let contract: Awaited<ReturnType<typeof factory.deploy>>;
    try {
      contract = await factory.deploy(o.registrar ?? wallet.address);
      await contract.waitForDeployment();
    } catch (err) {
      throw new KlError(
        'KL_LEDGER_UNAVAILABLE',
        `could not deploy the registry from ${wallet.address}: ${(err as Error & { shortMessage?: string }).shortMessage ?? (err as Error).message}`.slice(
          0,
          300,
        ),
      );
    }
    const receipt = await contract.deploymentTransaction()!.wait(1);
    const network = await provider.getNetwork();
    return {
      type: 'evm',
      chainId: Number(network.chainId),
      contract: (await contract.getAddress()).toLowerCase(),
      fromBlock: receipt!.blockNumber,
    };
  } finally {
    provider.destroy();
  }
}
