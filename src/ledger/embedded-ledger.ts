/**
 * The embedded ledger engine: one validator (like Fabric's solo orderer) on SQLite in WAL mode with
 * synchronous=FULL. Transactions submitted while a block is being written wait and go into the next
 * block together (group commit). `submit()` resolves only after the SQLite transaction that holds
 * the block has committed, i.e. after it is on disk: that is the ledger's "confirmation".
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import Database from 'better-sqlite3';
import { equalBytes, fromUtf8, toHex } from '../protocol/bytes.js';
import { canonicalize } from '../protocol/canonical-json.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { sha256 } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import {
  type BlockHeader,
  type BlockSigners,
  blockHashOf,
  type SignedHeader,
  signHeader,
  verifySignedHeader,
} from './block.js';
import {
  checkStoredHeader,
  checkStoredTx,
  checkStoredTxs,
  checkTxCount,
  checkTxRoot,
  headerTextMatchesHash,
  ledgerDamage,
  type StoredTx,
} from './block-check.js';
import { BlockQueue, type Pending } from './block-queue.js';
import { acquireWriterLock, dataPaths, isInitialised, readGenesisFile } from './data-dir.js';
import { GOVERNANCE_DOMAIN } from './domains.js';
import { prepareStatements, type Statements } from './embedded-store.js';
import { chainIdOf, checkGenesis, type Genesis } from './genesis.js';
import { quorumNeeded } from './governance-proposal.js';
import type {
  BlockView,
  CommittedTransaction,
  GovernanceIntent,
  IdentityListing,
  Ledger,
  SubmitOptions,
} from './ledger.js';
import { leafHash, MerkleTree } from './merkle.js';
import {
  admissionOf,
  admittedValidators,
  blockSigners,
  type NodeAdmission,
  type NodeRemoval,
  removalOf,
} from './node-admission.js';
import type { ConsistencyProof, KeyRecordProof, TransactionReceipt } from './proofs.js';
import { openKeyFile } from './sealed-key-file.js';
import { type ChainStatus, type Sequencer, SequencerAdapter } from './sequencer-adapter.js';
import type { SigningKey } from './signing-keys.js';
import {
  applyTransaction,
  GOVERNANCE_KEY,
  genesisEntries,
  governanceMessage,
  identityKey,
  type KeyRecord,
  type RegistrarRecord,
  stateTreeKey,
  WorkingState,
} from './state-machine.js';
import { StateTree } from './state-tree.js';
import { type StorageFault, storageError, storageFault } from './storage-fault.js';
import {
  type Approval,
  checkEnvelopeShape,
  MAX_TX_BYTES,
  prepareTransaction,
  sealTransaction,
  type TxEnvelope,
  type TxIntent,
  type TxType,
} from './transactions.js';
import { TransactionSigner } from './tx-signer.js';
import {
  readVerifiedCheckpoint,
  signVerifiedCheckpoint,
  VERIFIED_KEY,
  type VerifiedPoint,
} from './verified-checkpoint.js';

export { createSchema, type InitOptions, initEmbeddedLedger } from './embedded-init.js';
export type { Sequencer } from './sequencer-adapter.js';

/** Options of {@link EmbeddedLedger.open}. */
export interface OpenOptions {
  dataDir: string;
  /** Opens the keys; without it the ledger is read-only (reads and proofs work, writes are refused). */
  passphrase?: string;
  /** Clock, milliseconds since the epoch. */
  now?: () => number;
  /** Most transactions in one block (group commit). Default 1000. */
  maxBlockTxs?: number;
  /** How long to wait for more transactions before writing a block. Default 0 (next tick). */
  batchWaitMs?: number;
  /** Told, for every transaction, the ms from `submit` to its block being durable (metrics). */
  observeCommit?: (ms: number) => void;
  /**
   * Worker threads that sign transactions while a backlog waits (see tx-signer.ts). Default: 1 on a
   * machine with several cores, else 0 (always in this thread).
   */
  signingThreads?: number;
  /**
   * Orders transactions elsewhere (docs/architecture.md "The EVM engine"): `submit` hands each signed
   * transaction to the sequencer, and blocks are written only from what the sequencer feeds back through
   * {@link EmbeddedLedger.ingest}, so every node derives the same ledger from the same order.
   */
  sequencer?: Sequencer;
}

function subjectOf(envelope: TxEnvelope): string | null {
  const body = envelope.tx.body as { id?: string };
  return typeof body.id === 'string' ? body.id : null;
}

/** The embedded, single-validator ledger engine. */
/** The longest a submitted transaction may be told to wait for its block (one minute). */
const MAX_SUBMIT_WAIT_MS = 60_000;
/** Transactions waiting (queued or being signed) from which new ones are signed on worker threads. */
const SIGN_ELSEWHERE_BACKLOG = 64;

export class EmbeddedLedger implements Ledger {
  readonly genesis: Genesis;
  readonly chainId: string;
  /** Whose signatures make this ledger's block headers valid (node-admission.ts `blockSigners`). */
  readonly signers: BlockSigners;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly observeCommit: ((ms: number) => void) | undefined;
  /** With a sequencer: the transactions sent to it, waiting to come back through `ingest`. */
  private readonly sequencer: SequencerAdapter | undefined;
  private readonly queue: BlockQueue;
  private readonly validator: SigningKey | null;
  private readonly registrar: SigningKey | null;
  private readonly signer: TransactionSigner | null;
  private readonly releaseLock: (() => void) | null;
  private readonly events = new EventEmitter();
  private readonly history = new MerkleTree();
  private tree: StateTree;
  private last: SignedHeader | null;
  /** Heights whose validator signatures this process has verified. */
  private readonly signaturesChecked = new Set<number>();
  /** Checked txid lists of recently read blocks, by block hash (see blockTxids). */
  private readonly txidCache = new Map<string, { ids: Buffer[]; tree: MerkleTree }>();
  /** Height up to which the node's verified checkpoint vouches for the stored rows. */
  private verifiedHeight = 0;
  /** Transactions in the committed blocks. */
  private txTotal = 0;
  /** Set while blocks cannot be written (disk full, read-only); cleared by the next committed block. */
  private storage: { fault: StorageFault; since: number } | null = null;
  private closed = false;
  private readonly noncePrefix = randomBytes(8).toString('hex');
  private nonceCounter = 0n;
  private readonly stmt: Statements;

  private constructor(opts: OpenOptions) {
    const paths = dataPaths(opts.dataDir);
    if (!isInitialised(opts.dataDir))
      throw new KlError('KL_DATA_DIR', `${opts.dataDir} holds no ledger; initialise it first`);
    this.now = opts.now ?? Date.now;
    this.observeCommit = opts.observeCommit;
    this.sequencer = opts.sequencer ? new SequencerAdapter(opts.sequencer) : undefined;
    this.queue = new BlockQueue({
      maxBlockTxs: Math.max(1, Math.min(opts.maxBlockTxs ?? 1000, 10_000)),
      batchWaitMs: Math.max(0, opts.batchWaitMs ?? 0),
      write: (batch) => {
        if (this.validator)
          this.buildBlock(batch, Math.max(this.now(), this.last?.header.time ?? 0), this.validator);
      },
    });
    const fromFile = readGenesisFile(paths.genesis);
    this.releaseLock = opts.passphrase !== undefined ? acquireWriterLock(opts.dataDir) : null;
    try {
      this.validator =
        opts.passphrase !== undefined ? openKeyFile(paths.validatorKey, opts.passphrase, 'validator') : null;
      this.registrar =
        opts.passphrase !== undefined ? openKeyFile(paths.registrarKey, opts.passphrase, 'registrar') : null;
      this.db = new Database(paths.db, { fileMustExist: true });
      const threads = opts.signingThreads ?? (availableParallelism() > 1 ? 1 : 0);
      this.signer = this.registrar
        ? new TransactionSigner(this.registrar, { threads: Math.max(0, Math.min(Math.floor(threads), 8)) })
        : null;
    } catch (err) {
      this.releaseLock?.();
      throw err;
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      // 32 MiB of page cache (SQLite's default is 2 MiB): the txid and state indexes of a ledger
      // with a million identities stay in memory instead of being read back for every block.
      this.db.pragma('cache_size = -32768');
      this.stmt = prepareStatements(this.db);
      const meta = this.stmt.meta.get('genesis') as { value: string } | undefined;
      if (!meta) throw new KlError('KL_LEDGER_CORRUPT', 'the database holds no genesis');
      this.genesis = checkGenesis(JSON.parse(meta.value));
      this.chainId = chainIdOf(this.genesis);
      if (this.chainId !== fromFile.chainId)
        throw new KlError('KL_LEDGER_CORRUPT', 'genesis.json does not match the database');
      // On a ledger ordered by a chain, a second server signs what it derives with its own key,
      // admitted by governance (node-admission.ts); otherwise the genesis must name the key.
      if (
        this.validator &&
        !this.genesis.engine &&
        !this.genesis.validators.some((v) => v.keyId === this.validator!.keyId)
      ) {
        throw new KlError('KL_LEDGER_CORRUPT', 'the validator key is not named in the genesis');
      }
      this.signers = this.genesis.engine
        ? blockSigners(this.genesis, [
            ...(this.validator ? [this.validator.info()] : []),
            ...admittedValidators(this.genesis, this.chainId, this.registrarRecords()),
          ])
        : this.genesis;
      ({ tree: this.tree, last: this.last } = this.load(opts.dataDir));
      this.advanceVerifiedCheckpoint();
    } catch (err) {
      this.db.close();
      this.releaseLock?.();
      if (isKlError(err)) throw err;
      throw new KlError('KL_LEDGER_CORRUPT', `cannot open the ledger: ${(err as Error).message}`, undefined, {
        cause: err,
      });
    }
  }

  /**
   * Opens an initialised data directory. With `passphrase` the ledger can write (and takes the
   * directory's writer lock); without, it serves reads and proofs only. Opening checks that the
   * stored state and block history match the last signed header; `keyledger ledger verify` checks
   * everything.
   */
  static open(opts: OpenOptions): EmbeddedLedger {
    return new EmbeddedLedger(opts);
  }

  /**
   * Loads and checks the stored ledger (docs/ledger.md "Integrity at start"), all in one read
   * transaction so that a writer appending meanwhile cannot make the snapshot inconsistent. On every
   * start: each header hashes to its stored hash, the hashes form the history the last (signed) block
   * commits to, the transaction rows number what the headers say, and the state rows give the last
   * block's state root. Above the node's verified checkpoint, also: each block's validator signatures,
   * links, and its transaction rows against its transaction root. A node (keys open) refuses a
   * ledger without a valid verified checkpoint: deleting the record must not turn "history cut short"
   * into "check everything" (docs/ledger.md "Integrity at start").
   * @throws KlError `KL_LEDGER_CORRUPT` saying what is damaged, or that the checkpoint is missing.
   */
  private load(dataDir: string): { tree: StateTree; last: SignedHeader | null } {
    let loaded: { tree: StateTree; last: SignedHeader | null } | { unverified: number };
    try {
      loaded = this.db.transaction(() => {
        const anchor = readVerifiedCheckpoint(
          (this.stmt.meta.get(VERIFIED_KEY) as { value: string } | undefined)?.value,
          this.signers,
          this.chainId,
          this.validator?.keyId,
          { origin: true },
        );
        if (!anchor && this.validator) return { unverified: (this.stmt.blockCount.get() as { n: number }).n };
        return this.loadUnguarded(anchor);
      })();
    } catch (err) {
      if (isKlError(err, 'KL_LEDGER_CORRUPT')) {
        throw new KlError(
          'KL_LEDGER_CORRUPT',
          `the ledger in ${dataDir} is damaged: ${err.message}. It was changed outside keyledger; run \`keyledger ledger verify --data ${dataDir}\` for a full report`,
          err.details ? { ...err.details } : undefined,
          { cause: err },
        );
      }
      throw err;
    }
    if ('unverified' in loaded) {
      const blocks = loaded.unverified;
      throw new KlError(
        'KL_LEDGER_CORRUPT',
        `the ledger in ${dataDir} has ${blocks} block${blocks === 1 ? '' : 's'} but no valid verified checkpoint (it was deleted or changed, or the directory was made by an older keyledger), so this node cannot tell whether its history was cut short: run \`keyledger ledger verify --data ${dataDir}\`; if it verifies and this history is the one you expect, \`keyledger ledger verify --data ${dataDir} --mark-verified\` records it`,
        { blocks },
      );
    }
    return loaded;
  }

  private loadUnguarded(anchor: VerifiedPoint | null): { tree: StateTree; last: SignedHeader | null } {
    let tree = StateTree.empty();
    for (const row of this.stmt.stateAll.iterate() as Iterable<{ key: string; value: string }>) {
      tree = tree.set(stateTreeKey(row.key), sha256(Buffer.from(row.value, 'utf8')));
    }
    const from = anchor?.height ?? 0;
    const { height, txsAbove } = this.replayHistory(anchor);
    if (height < from) {
      throw ledgerDamage(
        `history cut short: the ledger ends at block ${height}, but this node verified block ${from} earlier`,
        height + 1,
      );
    }
    const storedTxs = (this.stmt.txCount.get() as { n: number }).n;
    const txs = (anchor?.txs ?? 0) + txsAbove;
    if (storedTxs > txs) throw ledgerDamage(`${storedTxs - txs} transaction rows belong to no block`);
    if (storedTxs < txs) throw ledgerDamage(`${txs - storedTxs} transactions are missing`);
    this.txTotal = txs;
    if (height === 0) {
      const genesisState = new WorkingState({ get: () => undefined }, StateTree.empty());
      for (const e of genesisEntries(this.genesis)) genesisState.put(e);
      if (!equalBytes(genesisState.tree.root(), tree.root()))
        throw ledgerDamage('state does not match the genesis');
      return { tree, last: null };
    }
    const last = this.readRow(height);
    try {
      verifySignedHeader(last, this.signers, this.chainId);
    } catch (err) {
      throw ledgerDamage(`block ${height}: ${(err as Error).message}`, height);
    }
    if (last.header.historyRoot !== toHex(this.history.root(height - 1))) {
      throw ledgerDamage(
        `the block hashes do not form the history signed in block ${height} (a block header was changed)`,
        height,
      );
    }
    if (last.header.stateRoot !== toHex(tree.root())) {
      throw ledgerDamage(`stored state does not match block ${height}`, height);
    }
    this.signaturesChecked.add(height);
    this.verifiedHeight = from;
    return { tree, last };
  }

  /**
   * Walks the stored block headers in order (docs/ledger.md "Integrity at start"): each hashes to its
   * stored hash and extends the history; above the verified checkpoint (`from`), each also carries valid
   * validator signatures, links to its parent and matches its transaction rows; at `from`, it is
   * the block the checkpoint names.
   * @returns the last height, and the transactions counted above the checkpoint.
   */
  private replayHistory(anchor: VerifiedPoint | null): { height: number; txsAbove: number } {
    const from = anchor?.height ?? 0;
    let txsAbove = 0;
    let prevHash = this.chainId;
    let prevTime = 0;
    let expected = 1;
    for (const row of this.stmt.blockHeaders.iterate() as Iterable<{
      height: number;
      hash: string;
      header: string;
    }>) {
      if (row.height !== expected) throw ledgerDamage(`block ${expected} is missing`, expected);
      if (!headerTextMatchesHash(row))
        throw ledgerDamage(`block ${expected}: header does not match its hash`, expected);
      if (expected === from && row.hash !== anchor!.hash) {
        throw ledgerDamage(
          `block ${expected} is not the block this node verified earlier: history was rewritten`,
          expected,
        );
      }
      if (expected > from) {
        const { signatures } = this.stmt.blockSignatures.get(expected) as { signatures: string };
        const signed = checkStoredHeader(
          { ...row, signatures },
          {
            genesis: this.signers,
            chainId: this.chainId,
            height: expected,
            prevHash,
            prevTime,
            historyRoot: toHex(this.history.root()),
          },
        );
        checkStoredTxs(signed.header, this.stmt.txRowsOfBlock.all(expected) as StoredTx[]);
        txsAbove += signed.header.txCount;
        prevTime = signed.header.time;
        this.signaturesChecked.add(expected);
      } else if (expected === from) {
        prevTime = (JSON.parse(row.header) as BlockHeader).time;
      }
      prevHash = row.hash;
      this.history.append(leafHash(Buffer.from(row.hash, 'hex')));
      expected += 1;
    }
    return { height: expected - 1, txsAbove };
  }

  /**
   * Moves the node's verified checkpoint to the last block checked at open (writers only; a failed
   * write is harmless: the next start checks from the older checkpoint).
   */
  private advanceVerifiedCheckpoint(): void {
    const validator = this.validator;
    if (!validator || !this.last || this.last.header.height <= this.verifiedHeight) return;
    const record = signVerifiedCheckpoint(
      this.chainId,
      { height: this.last.header.height, hash: this.last.hash, txs: this.txTotal },
      validator,
    );
    try {
      this.stmt.metaPut.run(VERIFIED_KEY, JSON.stringify(record));
      this.verifiedHeight = record.height;
    } catch {
      // read-only or full disk: the ledger still opens; storage faults show on the first write
    }
  }

  /** A stored block row, parsed, without checks (open checks it; reads go through {@link readBlock}). */
  private readRow(height: number): SignedHeader {
    const row = this.stmt.blockGet.get(height) as
      | { hash: string; header: string; signatures: string }
      | undefined;
    if (!row) throw new KlError('KL_BLOCK_UNKNOWN', `there is no block ${height}`, { height });
    try {
      return {
        header: JSON.parse(row.header) as BlockHeader,
        hash: row.hash,
        signatures: JSON.parse(row.signatures),
      };
    } catch {
      throw ledgerDamage(`block ${height}: header is not valid JSON`, height);
    }
  }

  /**
   * A block as stored, checked against what the ledger verified: its header hashes to the block hash
   * that the signed history holds at that height, and its validator signatures verify (once per
   * block and process). A row changed in the database behind the ledger's back is never served.
   */
  private readBlock(height: number): SignedHeader {
    const top = this.last?.header.height ?? 0;
    if (!Number.isSafeInteger(height) || height < 1 || height > top)
      throw new KlError('KL_BLOCK_UNKNOWN', `there is no block ${height}`, { height });
    const row = this.stmt.blockGet.get(height) as
      | { hash: string; header: string; signatures: string }
      | undefined;
    if (!row) throw ledgerDamage(`block ${height} is missing from the database`, height);
    if (
      !headerTextMatchesHash(row) ||
      !equalBytes(leafHash(Buffer.from(row.hash, 'hex')), this.history.leaf(height - 1))
    ) {
      throw ledgerDamage(`block ${height} was changed outside the ledger`, height);
    }
    const block = this.readRow(height);
    if (!this.signaturesChecked.has(height)) {
      try {
        verifySignedHeader(block, this.signers, this.chainId);
      } catch (err) {
        throw ledgerDamage(`block ${height}: ${(err as Error).message}`, height);
      }
      this.signaturesChecked.add(height);
    }
    return block;
  }

  /**
   * The txids of a block, checked against its header's count and transaction root. The last few
   * checked lists are kept (blocks never change once written), so reading a block's transactions
   * one by one checks its root once, not once per transaction.
   */
  private blockTxids(block: SignedHeader): { ids: Buffer[]; tree: MerkleTree } {
    const cached = this.txidCache.get(block.hash);
    if (cached) return cached;
    const ids = (this.stmt.txidsOfBlock.all(block.header.height) as Array<{ txid: string }>).map((r) =>
      Buffer.from(r.txid, 'hex'),
    );
    checkTxCount(block.header, ids.length);
    const checked = { ids, tree: checkTxRoot(block.header, ids) };
    if (this.txidCache.size >= 8) this.txidCache.delete(this.txidCache.keys().next().value!);
    this.txidCache.set(block.hash, checked);
    return checked;
  }

  /**
   * Reads a state entry and checks it against the in-memory state tree (built from verified blocks):
   * a row changed in the database behind the ledger's back is never used.
   */
  private stateGet = (key: string): unknown => {
    // The state tree (what the signed state root covers) says whether the entry exists: an absent
    // one is not read at all (most reads of a registration are of absent entries). A row the tree
    // does not hold is never used, and `keyledger ledger verify` names it.
    const expected = this.tree.get(stateTreeKey(key));
    if (!expected) return undefined;
    const row = this.stmt.stateGet.get(key) as { value: string } | undefined;
    if (!row) throw new KlError('KL_LEDGER_CORRUPT', `state entry ${key} is missing from the database`);
    if (!equalBytes(sha256(Buffer.from(row.value, 'utf8')), expected)) {
      throw new KlError('KL_LEDGER_CORRUPT', `state entry ${key} was changed outside the ledger`);
    }
    return JSON.parse(row.value);
  };

  private enqueue(
    envelope: TxEnvelope,
    txid: string,
    text: string,
    local: boolean,
    maxWaitMs?: number,
  ): Promise<TransactionReceipt> {
    if (this.closed) return Promise.reject(new KlError('KL_LEDGER_CLOSED', 'the ledger is closed'));
    if (!this.validator)
      return Promise.reject(new KlError('KL_NOT_PERMITTED', 'the ledger is open read-only'));
    if (this.sequencer)
      return this.sequencer.send(envelope, txid, text, this.stmt.txExists.get(txid) !== undefined);
    return new Promise((resolve, reject) => {
      const since = performance.now();
      this.queue.push({
        envelope,
        txid,
        text,
        local,
        since,
        resolve,
        reject,
        ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
      });
    });
  }

  /**
   * Writes one block from transactions ordered by the sequencer (the EVM engine's follower), in that
   * order, at that time; `cursor` (the sequencer's position: an EVM block number and hash) is stored in
   * the same database transaction, so a crash never loses or repeats a block. Transactions the
   * state rules refuse are left out and reported; an empty batch only moves the cursor.
   * @returns the txids written and those refused, with why.
   */
  ingest(batch: { texts: string[]; time: number; cursor: string }): {
    written: string[];
    refused: Array<{ txid: string; reason: string }>;
  } {
    this.assertOpen();
    const validator = this.validator;
    if (!validator) throw new KlError('KL_NOT_PERMITTED', 'the ledger is open read-only');
    if (!this.sequencer) throw new KlError('KL_NOT_PERMITTED', 'this ledger orders its own transactions');
    const refused: Array<{ txid: string; reason: string }> = [];
    const pending = this.sequencer.pendingOf(batch.texts, refused);
    const time = Math.max(batch.time, this.last?.header.time ?? 0);
    const written = this.buildBlock(pending, time, validator, ['evm-cursor', batch.cursor]);
    return { written, refused };
  }

  /**
   * Waits (at most `ms`) until every transaction sent to the sequencer has come back or failed: a
   * graceful shutdown lets in-flight writes finish before the follower stops.
   */
  async drain(ms = 10_000): Promise<void> {
    await this.sequencer?.drain(ms);
  }

  /**
   * How long ago (ms, wall clock) this ledger last confirmed it holds everything ordered so far: 0
   * for the embedded engine (it orders its own writes); with a sequencer, the time since the chain
   * was last read to its end.
   */
  staleness(): number {
    return this.sequencer?.staleness() ?? 0;
  }

  /**
   * With a sequencer (EVM engine), the connection to the chain: head, last block read, lag,
   * staleness, fault, queued writes (docs/deploy-besu.md "The follower"); null for the embedded engine.
   */
  chainStatus(): ChainStatus | null {
    return this.sequencer?.status() ?? null;
  }

  /**
   * The storage fault that made the last block write fail (disk full, data directory read-only) and
   * since when, or null once a block was written again. Reads and proofs are unaffected.
   */
  storageFault(): { fault: StorageFault; since: number } | null {
    return this.storage;
  }

  /**
   * The registrars in the state (genesis and governance), each checked against the state tree;
   * servers of the deployment are those with a `node` (node-admission.ts).
   */
  registrars(): RegistrarRecord[] {
    this.assertOpen();
    const rows = this.db
      .prepare("SELECT key FROM state WHERE key >= 'registrar:' AND key < 'registrar;' ORDER BY key")
      .all() as Array<{ key: string }>;
    return rows.map((row) => this.stateGet(row.key) as RegistrarRecord).filter((r) => r !== undefined);
  }

  /** Admissions of the active further servers of this chain-ordered ledger (node-admission.ts). */
  admittedServers(): NodeAdmission[] {
    if (!this.genesis.engine) return [];
    return this.registrars().flatMap((r) => {
      const admission = r.active ? admissionOf(r) : null;
      return admission ? [admission] : [];
    });
  }

  /** Removal certificates of the servers removed from this chain-ordered ledger (node-admission.ts). */
  removedServers(): NodeRemoval[] {
    if (!this.genesis.engine) return [];
    return this.registrars().flatMap((r) => {
      const removal = removalOf(r);
      return removal ? [removal] : [];
    });
  }

  /** The registrar records in the state, as stored (their admissions are checked by the caller). */
  private registrarRecords(): RegistrarRecord[] {
    const rows = this.db
      .prepare("SELECT value FROM state WHERE key >= 'registrar:' AND key < 'registrar;'")
      .all() as Array<{ value: string }>;
    const records: RegistrarRecord[] = [];
    for (const row of rows) {
      try {
        records.push(JSON.parse(row.value) as RegistrarRecord);
      } catch {
        // a damaged row: the state check at open names it
      }
    }
    return records;
  }

  /** The sequencer's stored position (see {@link ingest}), or null before the first block. */
  sequencerCursor(): string | null {
    return (this.stmt.meta.get('evm-cursor') as { value: string } | undefined)?.value ?? null;
  }

  async submit(intent: TxIntent, options?: SubmitOptions): Promise<TransactionReceipt> {
    const wait = options?.maxWaitMs;
    if (wait !== undefined && !(Number.isFinite(wait) && wait >= 0 && wait <= MAX_SUBMIT_WAIT_MS))
      throw new KlError('KL_BAD_INPUT', `maxWaitMs must be a number of ms from 0 to ${MAX_SUBMIT_WAIT_MS}`);
    if (!this.registrar || !this.signer)
      throw new KlError('KL_NOT_PERMITTED', 'the ledger is open read-only');
    // prepareTransaction checks the body's shape; the copy keeps later changes by the caller out.
    const unsigned = prepareTransaction({
      chain: this.chainId,
      intent: structuredClone(intent),
      signer: this.registrar.keyId,
      now: this.now(),
      nonce: this.nextNonce(),
    });
    // With a backlog, the signature is made on a worker thread while this one writes blocks.
    const busy = this.queue.size + this.signer.pending >= SIGN_ELSEWHERE_BACKLOG;
    const sig = this.signer.sign(unsigned.text, busy);
    const { envelope, bytes } = sealTransaction(unsigned, typeof sig === 'string' ? sig : await sig);
    if (bytes.length > MAX_TX_BYTES) {
      throw new KlError(
        'KL_TX_TOO_LARGE',
        `transaction is ${bytes.length} bytes; the limit is ${MAX_TX_BYTES}`,
      );
    }
    return this.enqueue(envelope, toHex(leafHash(bytes)), fromUtf8(bytes), true, options?.maxWaitMs);
  }

  private governanceChain: Promise<unknown> = Promise.resolve();

  /** The number of governance changes applied so far (the next change's `govSeq`). */
  governanceSeq(): number {
    return (this.stateGet(GOVERNANCE_KEY) as { govSeq: number } | undefined)?.govSeq ?? 0;
  }

  /**
   * Writes a governance change. Without `approved`, approved by this node's validator alone: enough
   * only when the genesis quorum is 1. With it, the approvals a quorum of validators gave offline
   * (governance-proposal.ts) for the governance sequence named there. Calls are serialised: each
   * reads the governance sequence the previous one left.
   * @throws KlError `KL_QUORUM_NOT_MET` (several approvals needed, none given),
   * `KL_GOVERNANCE_STALE` (approved for another governance sequence), and the ledger's refusals.
   */
  governance(
    intent: GovernanceIntent,
    approved?: { govSeq: number; approvals: Approval[] },
  ): Promise<TransactionReceipt> {
    const run = async () => {
      if (!this.validator) throw new KlError('KL_NOT_PERMITTED', 'the ledger is open read-only');
      const govSeq = this.governanceSeq();
      const { quorum } = this.genesis;
      if (!approved && quorum > 1) throw quorumNeeded(quorum);
      if (approved && approved.govSeq !== govSeq)
        throw new KlError(
          'KL_GOVERNANCE_STALE',
          `this change was approved for governance sequence ${approved.govSeq}; the ledger is at ${govSeq}: propose it again`,
          { expected: govSeq },
        );
      const body =
        intent.type === 'RoleGranted' || intent.type === 'RoleRevoked'
          ? { id: canonicalIdentity(intent.body.id), role: intent.body.role, govSeq }
          : { ...intent.body, govSeq };
      const approvals = approved?.approvals ?? [
        {
          validator: this.validator.keyId,
          sig: this.validator.sign(GOVERNANCE_DOMAIN, governanceMessage(this.chainId, intent.type, body)),
        },
      ];
      return this.submit({ type: intent.type, body: { ...body, approvals } } as TxIntent);
    };
    const result = this.governanceChain.then(run, run);
    this.governanceChain = result.catch(() => {});
    return result;
  }

  /** A unique nonce: a random per-process prefix and a counter (uniqueness is all a nonce needs). */
  private nextNonce(): string {
    this.nonceCounter += 1n;
    return this.noncePrefix + this.nonceCounter.toString(16).padStart(16, '0');
  }

  async submitSigned(value: TxEnvelope): Promise<TransactionReceipt> {
    const { bytes, txid } = checkEnvelopeShape(value);
    const text = fromUtf8(bytes);
    // Work on our own copy: the caller's object may change after this call.
    return this.enqueue(JSON.parse(text) as TxEnvelope, txid, text, false);
  }

  /** Applies `batch` in order, rejects what the rules refuse, commits the rest as one block. */
  private buildBlock(
    batch: Pending[],
    time: number,
    validator: SigningKey,
    meta?: [string, string],
  ): string[] {
    const height = (this.last?.header.height ?? 0) + 1;
    const state = new WorkingState({ get: this.stateGet }, this.tree);
    const accepted: Pending[] = [];
    const seen = new Set<string>();
    for (const p of batch) {
      try {
        if (seen.has(p.txid) || this.stmt.txExists.get(p.txid)) {
          throw new KlError('KL_TX_DUPLICATE', 'this transaction is already on the ledger', { txid: p.txid });
        }
        applyTransaction(state, p.envelope, {
          genesis: this.genesis,
          chain: this.chainId,
          height,
          txid: p.txid,
          blockTime: time,
          signatureAlreadyVerified: p.local,
        });
        seen.add(p.txid);
        accepted.push(p);
      } catch (err) {
        p.reject(err);
      }
    }
    if (accepted.length > 0) this.commit(accepted, state, height, time, validator, meta);
    else if (meta) this.stmt.metaPut.run(meta[0], meta[1]);
    return accepted.map((p) => p.txid);
  }

  private commit(
    accepted: Pending[],
    state: WorkingState,
    height: number,
    time: number,
    validator: SigningKey,
    meta?: [string, string],
  ): void {
    const txTree = new MerkleTree(accepted.map((p) => Buffer.from(p.txid, 'hex')));
    const header: BlockHeader = {
      v: 1,
      chain: this.chainId,
      height,
      prevHash: this.last?.hash ?? this.chainId,
      time,
      txCount: accepted.length,
      txRoot: toHex(txTree.root()),
      stateRoot: toHex(state.tree.root()),
      historyRoot: toHex(this.history.root()),
      // Ordered by a chain, every server derives the same header (docs/ledger.md "Servers of one
      // deployment"): the chain proposed the block; the genesis's first validator names it.
      proposer: this.genesis.engine ? this.genesis.validators[0]!.keyId : validator.keyId,
    };
    const signed = signHeader(header, validator);
    if (!this.write(signed, accepted, state, meta)) return;
    // Durable: now (and only now) the block becomes visible and its transactions confirmed.
    this.tree = state.tree;
    this.history.append(leafHash(Buffer.from(signed.hash, 'hex')));
    this.last = signed;
    this.signaturesChecked.add(height);
    this.txTotal += accepted.length;
    this.announce(signed, accepted, txTree);
  }

  /**
   * Writes a signed block, its transactions and state changes in one SQLite transaction. On failure
   * the transaction rolled back: nothing of the block is on disk, and nothing in memory has changed —
   * the next block is built on the last committed one, as if this never was; every transaction of
   * the block is rejected (a storage fault is remembered until a block is written again).
   */
  private write(
    signed: SignedHeader,
    accepted: Pending[],
    state: WorkingState,
    meta?: [string, string],
  ): boolean {
    const { height } = signed.header;
    try {
      this.db.transaction(() => {
        this.stmt.blockInsert.run(
          height,
          signed.hash,
          canonicalize(signed.header),
          JSON.stringify(signed.signatures),
        );
        accepted.forEach((p, i) => {
          this.stmt.txInsert.run(p.txid, height, i, p.envelope.tx.type, subjectOf(p.envelope), p.text);
        });
        for (const [key, { text }] of state.writes) this.stmt.statePut.run(key, text);
        if (meta) this.stmt.metaPut.run(meta[0], meta[1]);
      })();
    } catch (err) {
      const fault = storageFault(err);
      if (fault) this.storage = { fault, since: this.now() };
      const failure =
        storageError(err, `ledger block ${height}`) ??
        new KlError(
          'KL_LEDGER_WRITE_FAILED',
          `the ledger could not write block ${height}: ${(err as Error).message}`,
          {
            height,
          },
        );
      for (const p of accepted) p.reject(failure);
      return false;
    }
    this.storage = null;
    return true;
  }

  /** Confirms a durable block's transactions (receipts with their proofs) and tells subscribers. */
  private announce(signed: SignedHeader, accepted: Pending[], txTree: MerkleTree): void {
    const done = performance.now();
    // The audit paths of a block share most of their nodes: each node's hex is made once.
    const hexOf = new Map<Uint8Array, string>();
    const hex = (node: Uint8Array): string => {
      const known = hexOf.get(node);
      if (known !== undefined) return known;
      const text = toHex(node);
      hexOf.set(node, text);
      return text;
    };
    accepted.forEach((p, index) => {
      this.observeCommit?.(done - p.since);
      p.resolve({
        envelope: p.envelope,
        txid: p.txid,
        index,
        proof: txTree.inclusionProof(index).map(hex),
        block: signed,
      });
    });
    if (this.events.listenerCount('committed') === 0) return;
    accepted.forEach((p, index) => {
      const event: CommittedTransaction = {
        txid: p.txid,
        type: p.envelope.tx.type as TxType,
        height: signed.header.height,
        index,
        envelope: p.envelope,
      };
      this.events.emit('committed', event);
    });
  }

  async getKeyRecord(id: string): Promise<KeyRecordProof> {
    const canonical = canonicalIdentity(id);
    this.assertOpen();
    const record = (this.stateGet(identityKey(canonical)) as KeyRecord | undefined) ?? null;
    const checkpoint = this.last;
    if (!checkpoint) throw new KlError('KL_IDENTITY_UNKNOWN', 'the ledger has no blocks yet');
    return {
      id: canonical,
      record,
      proof: this.tree.prove(stateTreeKey(identityKey(canonical))),
      checkpoint,
    };
  }

  async getTransaction(txid: string): Promise<TransactionReceipt> {
    this.assertOpen();
    if (typeof txid !== 'string' || !/^[0-9a-f]{64}$/.test(txid))
      throw new KlError('KL_BAD_INPUT', 'txid must be 64 hex characters');
    const row = this.stmt.txGet.get(txid) as { height: number; idx: number; envelope: string } | undefined;
    if (!row || row.height > (this.last?.header.height ?? 0))
      throw new KlError('KL_TX_UNKNOWN', 'no such transaction', { txid });
    // The row is served only if it is the transaction its block's signed root holds at its position.
    const block = this.readBlock(row.height);
    const { ids, tree } = this.blockTxids(block);
    if (!ids[row.idx]?.equals(Buffer.from(txid, 'hex')))
      throw ledgerDamage(`block ${row.height}: transaction ${txid} is not at its position`, row.height, txid);
    checkStoredTx(row.height, row.idx, { txid, idx: row.idx, envelope: row.envelope });
    const proof = tree.inclusionProof(row.idx).map(toHex);
    return { envelope: JSON.parse(row.envelope) as TxEnvelope, txid, index: row.idx, proof, block };
  }

  async getBlock(height: number): Promise<BlockView> {
    this.assertOpen();
    if (!Number.isSafeInteger(height) || height < 1)
      throw new KlError('KL_BAD_INPUT', 'height must be a positive integer');
    const block = this.readBlock(height);
    const { ids } = this.blockTxids(block);
    return { block, txids: ids.map((id) => id.toString('hex')) };
  }

  async transactionsFor(id: string, { limit = 100 }: { limit?: number } = {}): Promise<TransactionReceipt[]> {
    const canonical = canonicalIdentity(id);
    this.assertOpen();
    const rows = this.stmt.txsOfSubject.all(canonical, Math.max(1, Math.min(limit, 1000))) as Array<{
      txid: string;
    }>;
    return Promise.all(rows.map((r) => this.getTransaction(r.txid)));
  }

  async listIdentities({
    query = '',
    limit = 50,
  }: {
    query?: string;
    limit?: number;
  } = {}): Promise<IdentityListing> {
    this.assertOpen();
    const pattern = `identity:%${query.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const keys = this.stmt.identityKeys.all(pattern, Math.max(1, Math.min(limit, 500))) as Array<{
      key: string;
    }>;
    // Each record is read through the state tree check, like every other state read; a row the
    // tree does not hold was put there outside the ledger.
    const records = keys.map((k) => {
      const record = this.stateGet(k.key) as KeyRecord | undefined;
      if (!record)
        throw new KlError('KL_LEDGER_CORRUPT', `state entry ${k.key} was added outside the ledger`);
      return record;
    });
    const counts = { active: 0, revoked: 0 };
    for (const row of this.stmt.identityCounts.all() as Array<{ status: string; n: number }>)
      if (row.status === 'active' || row.status === 'revoked') counts[row.status] = row.n;
    return { records, counts };
  }

  async checkpoint(): Promise<SignedHeader | null> {
    this.assertOpen();
    return this.last;
  }

  async consistency(fromHeight: number, toHeight?: number): Promise<ConsistencyProof> {
    this.assertOpen();
    const top = this.last?.header.height ?? 0;
    const to = toHeight ?? top;
    if (toHeight === undefined && Number.isSafeInteger(fromHeight) && fromHeight > top) {
      // A client holds a checkpoint this ledger does not reach: its history was cut short.
      throw new KlError(
        'KL_CHECKPOINT_INVALID',
        `history cut short: this ledger ends at block ${top}, before block ${fromHeight}`,
        { height: top, from: fromHeight },
      );
    }
    if (
      !Number.isSafeInteger(fromHeight) ||
      !Number.isSafeInteger(to) ||
      fromHeight < 1 ||
      fromHeight > to ||
      to > top
    ) {
      throw new KlError('KL_BAD_INPUT', `heights must satisfy 1 ≤ from ≤ to ≤ ${top}`);
    }
    const older = this.readBlock(fromHeight);
    const newer = this.readBlock(to);
    const hex = (list: Uint8Array[]) => list.map(toHex);
    return {
      older,
      newer,
      consistency: hex(this.history.consistencyProof(fromHeight - 1, to - 1)),
      inclusion: fromHeight < to ? hex(this.history.inclusionProof(fromHeight - 1, to - 1)) : [],
    };
  }

  subscribe(listener: (tx: CommittedTransaction) => void): () => void {
    this.events.on('committed', listener);
    return () => this.events.off('committed', listener);
  }

  /** Number of transactions waiting for the next block. */
  get pendingCount(): number {
    return this.queue.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Transactions being signed elsewhere join the queue before it is written out.
    await this.signer?.close();
    if (this.closed) return;
    this.sequencer?.rejectAll(new KlError('KL_LEDGER_CLOSED', 'the ledger closed before the chain answered'));
    this.queue.flushAll();
    this.closed = true;
    this.db.close();
    this.releaseLock?.();
  }

  private assertOpen(): void {
    if (this.closed) throw new KlError('KL_LEDGER_CLOSED', 'the ledger is closed');
  }
}

/** Ledger header hash helper re-exported for tools. */
export { blockHashOf };
