/**
 * The EVM engine (issue 6): keyledger transactions ordered by a permissioned EVM chain (Hyperledger
 * Besu / GoQuorum with QBFT) through the KeyRegistry contract (contracts/KeyRegistry.sol), with
 * ethers v6 over standard JSON-RPC.
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
  sha256 as ethSha256,
  type InterfaceAbi,
  JsonRpcProvider,
  type Log,
  NonceManager,
  toUtf8Bytes,
  Wallet,
} from 'ethers';
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
  return new JsonRpcProvider(rpcUrl, undefined, { cacheTimeout: -1, staticNetwork: false, polling: true });
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
  if (name && REVERTS[name]) {
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

/** The identity a key registration or rotation envelope is about, or null. */
function keyChangeId(text: string): string | null {
  try {
    const env = JSON.parse(text) as TxEnvelope;
    const type = env?.tx?.type;
    const id = (env?.tx?.body as { id?: unknown })?.id;
    return (type === 'KeyRegistered' || type === 'KeyRotated') && typeof id === 'string' ? id : null;
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
  private readonly signer: NonceManager;
  private readonly confirmations: number;
  private readonly pollMs: number;
  private sendChain: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private following: Promise<void> | null = null;

  constructor(private readonly o: EvmSequencerOptions) {
    this.provider = evmProvider(o.rpcUrl);
    const wallet = new Wallet(o.privateKey, this.provider);
    // One writer per account, nonces in order (a node that automines refuses gaps).
    this.signer = new NonceManager(wallet);
    this.contract = new Contract(o.engine.contract, registryArtifact().abi, this.signer);
    this.confirmations = Math.max(1, o.confirmations ?? 1);
    this.pollMs = o.pollMs ?? 250;
  }

  /** The account's address. */
  get address(): Promise<string> {
    return this.signer.getAddress();
  }

  /** Sends one signed transaction to the contract function of its type and waits until final. */
  submit({ envelope, text }: { envelope: TxEnvelope; text: string; txid: string }): Promise<void> {
    const run = async () => {
      const bytes = toUtf8Bytes(text);
      const { type, body } = envelope.tx;
      let call: Promise<{ wait: (n: number) => Promise<unknown> }>;
      const c = this.contract;
      try {
        switch (type) {
          case 'KeyRegistered': {
            const b = body as TxBodies['KeyRegistered'];
            call = c.registerKey!(idHash(b.id), hash32(b.fingerprint), hash32(b.publicKey), bytes);
            break;
          }
          case 'KeyRotated': {
            const b = body as TxBodies['KeyRotated'];
            call = c.rotateKey!(
              idHash(b.id),
              hash32(b.oldFingerprint),
              hash32(b.fingerprint),
              hash32(b.publicKey),
              bytes,
            );
            break;
          }
          case 'KeyRevoked': {
            const b = body as TxBodies['KeyRevoked'];
            call = c.revokeKey!(idHash(b.id), hash32(b.fingerprint), bytes);
            break;
          }
          case 'HashAnchored':
            call = c.anchorHash!(`0x${(body as TxBodies['HashAnchored']).hash}`, bytes);
            break;
          case 'AuditEvent':
            call = c.auditEvent!(bytes);
            break;
          case 'RoleGranted':
          case 'RoleRevoked':
            call = c.governance!(
              idHash((body as TxBodies['RoleGranted']).id),
              type === 'RoleGranted',
              true,
              bytes,
            );
            break;
          default:
            call = c.governance!(`0x${'0'.repeat(64)}`, false, false, bytes);
        }
        const sent = await call;
        await sent.wait(this.confirmations);
      } catch (err) {
        // A failed send leaves the nonce manager ahead of the chain: start again from the node's count.
        this.signer.reset();
        throw err;
      }
    };
    // Another writer with the same account (a replica) took our nonce: ask the node again and resend.
    const attempt = async (): Promise<void> => {
      for (let tries = 1; ; tries++) {
        try {
          return await run();
        } catch (err) {
          const e = err as { code?: string; message?: string };
          const nonceClash =
            e.code === 'NONCE_EXPIRED' || /nonce|replacement transaction/i.test(e.message ?? '');
          if (!nonceClash || tries >= 30) throw chainError(err, this.contract);
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 50));
        }
      }
    };
    const result = this.sendChain.then(attempt, attempt);
    this.sendChain = result.catch(() => {});
    return result;
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
      } catch (err) {
        this.o.log?.(`EVM follower: ${(err as Error).message}`);
      }
      if (!this.stopped) this.timer = setTimeout(() => void (this.following = tick()), this.pollMs);
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
        const texts: string[] = [];
        for (const l of list) {
          const parsed = this.contract.interface.parseLog(l);
          const bytes = Buffer.from((parsed!.args.envelope as string).slice(2), 'hex');
          // Read what was written, not what anyone says was: the contract's txid must be the leaf hash.
          if (`0x${leafHash(bytes).toString('hex')}` !== parsed!.args.txid) {
            this.o.onRefused?.(String(parsed!.args.txid), 'the event txid is not the hash of its envelope');
            continue;
          }
          texts.push(bytes.toString('utf8'));
        }
        // The contract's storage shows the state at the end of the block: check the last key
        // change of each identity in it against the key its envelope carries.
        const lastChange = new Map<string, number>();
        texts.forEach((t, i) => {
          const id = keyChangeId(t);
          if (id) lastChange.set(id, i);
        });
        for (const [id, i] of lastChange) {
          const mismatch = await this.storedKeyMismatch(texts[i]!, number);
          if (mismatch) {
            this.o.onRefused?.(
              leafHash(Buffer.from(texts[i]!, 'utf8')).toString('hex'),
              `${mismatch} (${id})`,
            );
            texts.splice(i, 1, '');
          }
        }
        for (let i = texts.length - 1; i >= 0; i--) if (texts[i] === '') texts.splice(i, 1);
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
  private async storedKeyMismatch(text: string, blockNumber: number): Promise<string | null> {
    let env: TxEnvelope;
    try {
      env = JSON.parse(text) as TxEnvelope;
    } catch {
      return null; // not an envelope: the ledger refuses it itself
    }
    const type = env?.tx?.type;
    if (type !== 'KeyRegistered' && type !== 'KeyRotated') return null;
    const b = env.tx.body as TxBodies['KeyRegistered'];
    if (typeof b?.id !== 'string' || typeof b.publicKey !== 'string' || typeof b.fingerprint !== 'string')
      return null;
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

/** SHA-256 as the contract computes it (for tests and tools). */
export const contractSha256 = (bytes: Uint8Array): string => ethSha256(bytes);
