/**
 * The EVM engine (docs/architecture.md "The EVM engine", docs/deploy-besu.md): keyledger transactions ordered
 * by a permissioned EVM chain (Hyperledger Besu / GoQuorum with QBFT) through the KeyRegistry contract
 * (contracts/KeyRegistry.sol), with ethers v6 over standard JSON-RPC.
 *
 * Writing: each registrar-signed transaction goes to the contract function that enforces its rule
 * (the contract mirrors the permission table: registrars write keys, anchors and audit events; the
 * governor writes governance). `submit` resolves once the transaction's block has `confirmations`
 * confirmations (1 on QBFT: blocks are final when sealed). Reverts become typed errors.
 * Reading: the follower reads the contract's `KeyledgerTx` events in chain order, checks that the
 * txid the contract computed is the RFC 6962 leaf hash of the envelope it carries, and feeds each
 * EVM block's transactions to the local ledger (`EmbeddedLedger.ingest`), which re-checks every
 * signature and state rule and derives the same blocks, proofs and receipts as the embedded engine.
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
import type { Sequencer } from './embedded-ledger.js';
import type { EvmEngineInfo } from './genesis.js';
import { leafHash } from './merkle.js';
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
  IdentityTaken: ['KL_IDENTITY_TAKEN', 'this identity is already registered'],
  KeyInUse: ['KL_KEY_IN_USE', 'this key is already registered to an identity'],
  NotActive: ['KL_KEY_REVOKED', 'the key of this identity is not active'],
  WrongKey: ['KL_KEY_MISMATCH', 'the transaction names another key than the one on the chain'],
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

/** The key a registration or rotation envelope carries (parsed once), or null for any other text. */
function keyChange(text: string): { id: string; fingerprint: string; publicKey: string } | null {
  try {
    const env = JSON.parse(text) as TxEnvelope;
    const type = env?.tx?.type;
    const b = env?.tx?.body as Partial<TxBodies['KeyRegistered']> | undefined;
    if (type !== 'KeyRegistered' && type !== 'KeyRotated') return null;
    if (typeof b?.id !== 'string' || typeof b.fingerprint !== 'string' || typeof b.publicKey !== 'string')
      return null;
    return { id: b.id, fingerprint: b.fingerprint, publicKey: b.publicKey };
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

/** Orders keyledger transactions on an EVM chain and follows what the chain ordered. */
export class EvmSequencer implements Sequencer {
  readonly provider: JsonRpcProvider;
  readonly contract: Contract;
  private readonly wallet: Wallet;
  /** The next nonce of the account (null: ask the node). Sends are serialised, so one counter. */
  private nonce: number | null = null;
  private readonly confirmations: number;
  private readonly pollMs: number;
  private sendChain: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** When the follower last read up to the chain's final block (wall clock, ms). */
  lastSyncAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private following: Promise<void> | null = null;

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
   * for nonce order, waiting for finality is not, so writes pipeline.
   */
  async submit({ envelope, text }: { envelope: TxEnvelope; text: string; txid: string }): Promise<void> {
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
    const tx = await sent;
    try {
      const receipt = await tx.wait(this.confirmations);
      if (receipt?.status !== 1) throw new Error('the transaction reverted on chain');
    } catch (err) {
      throw chainError(err, this.contract);
    }
  }

  /**
   * Starts following the chain from `cursor` (the last EVM block already ingested, or null), feeding
   * `ingest` one EVM block at a time. Polls every `pollMs`; RPC failures are logged and retried.
   * Resolves after the first catch-up.
   */
  follow(ingest: Ingest, cursor: string | null): Promise<void> {
    let next = cursor === null ? this.o.engine.fromBlock : Number(cursor) + 1;
    const tick = async () => {
      if (this.stopped) return;
      try {
        next = await this.catchUp(ingest, next);
        this.lastSyncAt = Date.now();
      } catch (err) {
        this.o.log?.(`EVM follower: ${(err as Error).message}`);
      }
      if (!this.stopped)
        this.timer = setTimeout(() => {
          this.following = tick();
        }, this.pollMs);
    };
    this.following = tick();
    return this.following;
  }

  /** Reads final blocks from `from` on; returns the next block to read. */
  private async catchUp(ingest: Ingest, from: number): Promise<number> {
    const head = await this.provider.getBlockNumber();
    const final = head - (this.confirmations - 1);
    let next = from;
    while (next <= final && !this.stopped) {
      const to = Math.min(final, next + 999);
      const logs = await this.contract.queryFilter(this.contract.filters.KeyledgerTx!(), next, to);
      const byBlock = new Map<number, Log[]>();
      for (const l of logs) {
        const list = byBlock.get(l.blockNumber) ?? [];
        list.push(l);
        byBlock.set(l.blockNumber, list);
      }
      for (const [number, list] of [...byBlock.entries()].sort((a, b) => a[0] - b[0])) {
        list.sort((a, b) => a.index - b.index);
        const block = await this.provider.getBlock(number);
        if (!block) throw new KlError('KL_LEDGER_UNAVAILABLE', `block ${number} is not available`);
        let texts: string[] = [];
        for (const l of list) {
          const parsed = this.contract.interface.parseLog(l);
          const bytes = Buffer.from((parsed!.args.envelope as string).slice(2), 'hex');
          // Read what was written, not what anyone says was: the contract's txid must be the leaf hash.
          if (`0x${toHex(leafHash(bytes))}` !== parsed!.args.txid) {
            this.o.onRefused?.(String(parsed!.args.txid), 'the event txid is not the hash of its envelope');
            continue;
          }
          texts.push(bytes.toString('utf8'));
        }
        // The contract's storage shows the state at the end of the block: check the last key
        // change of each identity in it against the key its envelope carries.
        const lastChange = new Map<string, { i: number; key: NonNullable<ReturnType<typeof keyChange>> }>();
        texts.forEach((t, i) => {
          const key = keyChange(t);
          if (key) lastChange.set(key.id, { i, key });
        });
        const dropped = new Set<number>();
        for (const [id, { i, key }] of lastChange) {
          const mismatch = await this.storedKeyMismatch(key, number);
          if (mismatch) {
            this.o.onRefused?.(toHex(leafHash(Buffer.from(texts[i]!, 'utf8'))), `${mismatch} (${id})`);
            dropped.add(i);
          }
        }
        texts = texts.filter((_, i) => !dropped.has(i));
        const r = ingest({ texts, time: block.timestamp * 1000, cursor: String(number) }) as {
          refused?: Array<{ txid: string; reason: string }>;
        };
        for (const x of r?.refused ?? []) this.o.onRefused?.(x.txid, x.reason);
      }
      // Blocks without keyledger transactions only move the cursor.
      ingest({ texts: [], time: 0, cursor: String(to) });
      next = to + 1;
    }
    return next;
  }

  /**
   * For a key registration or rotation, checks that the key hash and fingerprint the contract
   * stored (as of that block) are those of the key in the envelope: a writer that stored one key's
   * hash while logging another key is caught here. Returns why it does not match, or null.
   */
  private async storedKeyMismatch(
    b: { id: string; fingerprint: string; publicKey: string },
    blockNumber: number,
  ): Promise<string | null> {
    const stored = (await this.contract.record!(idHash(b.id), { blockTag: blockNumber })) as {
      fingerprint: string;
      keyHash: string;
    };
    if (stored.keyHash !== hash32(b.publicKey) || stored.fingerprint !== hash32(b.fingerprint))
      return 'the key stored on the chain is not the key in the transaction';
    return null;
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
