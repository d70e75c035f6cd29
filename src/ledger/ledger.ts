/**
 * The one interface the server uses to talk to a ledger, whatever engine stands behind it (the
 * embedded SQLite engine today; an EVM chain later). Every method that returns ledger data returns it
 * with a proof that the pure verifiers in proofs.ts can check against the genesis alone.
 */
import type { BlockSigners, SignedHeader } from './block.js';
import type { Genesis } from './genesis.js';
import type { ConsistencyProof, KeyRecordProof, TransactionReceipt } from './proofs.js';
import type { KeyRecord } from './state-machine.js';
import type { IdentityRole, NodeInfo, TxEnvelope, TxIntent, TxType } from './transactions.js';

/** A committed transaction, as told to subscribers. */
export interface CommittedTransaction {
  txid: string;
  type: TxType;
  height: number;
  index: number;
  envelope: TxEnvelope;
}

/** A block with its transaction ids. */
export interface BlockView {
  block: SignedHeader;
  txids: string[];
}

/** A permissioned ledger. */
/** What {@link Ledger.listIdentities} returns. */
export interface IdentityListing {
  records: KeyRecord[];
  counts: { active: number; revoked: number };
}

/** A role change, before the engine adds its governance sequence and approvals. */
export type GovernanceIntent =
  | { type: 'RoleGranted' | 'RoleRevoked'; body: { id: string; role: IdentityRole } }
  | {
      type: 'RegistrarAdded';
      /** The registrar's key, its name, and the server it runs (chain-ordered ledgers). */
      body: { keyId: string; publicKey: string; name: string; node?: NodeInfo };
    }
  | { type: 'RegistrarRemoved'; body: { keyId: string } };

/** Options of {@link Ledger.submit}. */
export interface SubmitOptions {
  /**
   * How long the transaction may wait for others to share its block, ms (group commit, docs/ledger.md
   * "Commit and durability"); default: the ledger's batch wait. Engines that do not batch ignore it.
   */
  maxWaitMs?: number;
}

/** What the server and tools need of a ledger engine (docs/ledger.md). */
export interface Ledger {
  /** The genesis document (the root of trust). */
  readonly genesis: Genesis;
  /** Hash of the genesis. */
  readonly chainId: string;
  /**
   * Whose signatures make this ledger's block headers valid: the genesis validators, or, on a ledger
   * ordered by a chain, with the servers admitted to it (node-admission.ts `blockSigners`).
   */
  readonly signers: BlockSigners;
  /**
   * Signs `intent` with this node's registrar key and writes it. Resolves only once the block that
   * holds it is committed and durable (docs/protocol.md "Phase 1", step 4; docs/ledger.md "Commit and
   * durability"), with the receipt the client will verify. Rejects with a typed error if the transaction is
   * invalid.
   */
  submit(intent: TxIntent, options?: SubmitOptions): Promise<TransactionReceipt>;
  /** Writes a transaction signed elsewhere (another registrar, or validators for governance). */
  submitSigned(envelope: TxEnvelope): Promise<TransactionReceipt>;
  /** The identity's current key record (or null) with a state proof against the latest checkpoint. */
  getKeyRecord(id: string): Promise<KeyRecordProof>;
  /**
   * Ms since the ledger last confirmed it is current (0 when it orders its own writes; `Infinity`
   * while the chain that orders it is faulted: gone backwards or reorganised).
   */
  staleness(): number;
  /** Identities whose id contains `query` (case-insensitive), in id order, and counts by status. */
  listIdentities(options?: { query?: string; limit?: number }): Promise<IdentityListing>;
  /**
   * Writes a governance change about an identity's roles (RoleGranted / RoleRevoked), with the
   * approvals this engine's governance requires; resolves once committed.
   */
  governance(intent: GovernanceIntent): Promise<TransactionReceipt>;
  /** A transaction with its inclusion proof. */
  getTransaction(txid: string): Promise<TransactionReceipt>;
  /** One block and its transaction ids. */
  getBlock(height: number): Promise<BlockView>;
  /** Transactions that name `id` (registrations, rotations, revocations, anchors), oldest first. */
  transactionsFor(id: string, options?: { limit?: number }): Promise<TransactionReceipt[]>;
  /** The latest signed block header; null before the first block. */
  checkpoint(): Promise<SignedHeader | null>;
  /** Proof that the checkpoint at `toHeight` (default: latest) extends the one at `fromHeight`. */
  consistency(fromHeight: number, toHeight?: number): Promise<ConsistencyProof>;
  /** Calls `listener` for every committed transaction; returns the unsubscribe function. */
  subscribe(listener: (tx: CommittedTransaction) => void): () => void;
  /** Writes what is pending, then closes. */
  close(): Promise<void>;
}
