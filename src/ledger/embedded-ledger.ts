/**
 * The embedded ledger engine: one validator (like Fabric's solo orderer) on SQLite in WAL mode with
 * synchronous=FULL. Transactions submitted while a block is being written wait and go into the next
 * block together (group commit). `submit()` resolves only after the SQLite transaction that holds
 * the block has committed, i.e. after it is on disk: that is the ledger's "confirmation".
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync } from 'node:fs';
import Database from 'better-sqlite3';
import { canonicalize } from '../protocol/canonical-json.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { sha256 } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { type BlockHeader, blockHashOf, type SignedHeader, signHeader, verifySignedHeader } from './block.js';
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
import {
  acquireWriterLock,
  dataPaths,
  ensureDir,
  isInitialised,
  readGenesisFile,
  refusePartialDataDir,
  writeGenesisFile,
} from './data-dir.js';
import { GOVERNANCE_DOMAIN } from './domains.js';
import { chainIdOf, checkGenesis, type Genesis } from './genesis.js';
import type { BlockView, CommittedTransaction, GovernanceIntent, IdentityListing, Ledger } from './ledger.js';
import { leafHash, MerkleTree } from './merkle.js';
import type { ConsistencyProof, KeyRecordProof, TransactionReceipt } from './proofs.js';
import { openKeyFile, sealKeyFile } from './sealed-key-file.js';
import { SigningKey } from './signing-keys.js';
import {
  applyTransaction,
  GOVERNANCE_KEY,
  genesisEntries,
  governanceMessage,
  identityKey,
  type KeyRecord,
  stateTreeKey,
  WorkingState,
} from './state-machine.js';
import { StateTree } from './state-tree.js';
import { type StorageFault, storageError, storageFault } from './storage-fault.js';
import {
  checkEnvelopeShape,
  MAX_TX_BYTES,
  signTransactionBytes,
  type TxEnvelope,
  type TxIntent,
  type TxType,
} from './transactions.js';
import {
  originPoint,
  readVerifiedCheckpoint,
  signVerifiedCheckpoint,
  VERIFIED_KEY,
  type VerifiedPoint,
} from './verified-checkpoint.js';

/** Options of {@link initEmbeddedLedger}. */
export interface InitOptions {
  dataDir: string;
  /** Protects the validator and registrar keys at rest. */
  passphrase: string;
  /** Human name of the ledger. */
  name?: string;
  /** The server's OpenPGP key to pin in the genesis. */
  server?: Genesis['server'];
  /** The EVM chain that orders this ledger (docs/architecture.md "The EVM engine"). */
  engine?: Genesis['engine'];
  now?: () => number;
}

/**
 * Initialises a data directory: makes the validator and registrar keys (sealed under `passphrase`),
 * writes the genesis and creates the database with the node's origin verified checkpoint (height 0,
 * verified-checkpoint.ts). Refuses a directory that is already initialised.
 */
export function initEmbeddedLedger({
  dataDir,
  passphrase,
  name = 'keyledger',
  server,
  engine,
  now = Date.now,
}: InitOptions): {
  genesis: Genesis;
  chainId: string;
} {
  if (isInitialised(dataDir)) throw new KlError('KL_DATA_DIR', `${dataDir} already holds a ledger`);
  refusePartialDataDir(dataDir);
  if (!passphrase)
    throw new KlError('KL_PASSPHRASE_REQUIRED', 'a passphrase is required to protect the ledger keys');
  ensureDir(dataDir);
  const paths = dataPaths(dataDir);
  const validator = SigningKey.generate();
  const registrar = SigningKey.generate();
  const genesis = checkGenesis({
    v: 1,
    name,
    createdAt: now(),
    validators: [validator.info()],
    quorum: 1,
    registrars: [{ ...registrar.info(), name: 'local registrar' }],
    ...(server ? { server } : {}),
    ...(engine ? { engine } : {}),
  });
  sealKeyFile(paths.validatorKey, validator, passphrase, 'validator');
  sealKeyFile(paths.registrarKey, registrar, passphrase, 'registrar');
  const chainId = chainIdOf(genesis);
  const db = new Database(paths.db);
  // SQLite gives the -wal and -shm files the database file's mode.
  chmodSync(paths.db, 0o600);
  try {
    createSchema(db);
    db.prepare('INSERT INTO meta(key, value) VALUES (?, ?), (?, ?), (?, ?), (?, ?)').run(
      'format',
      '1',
      'genesis',
      canonicalize(genesis),
      'chain',
      chainId,
      VERIFIED_KEY,
      JSON.stringify(signVerifiedCheckpoint(chainId, originPoint(chainId), validator)),
    );
    const insert = db.prepare('INSERT INTO state(key, value) VALUES (?, ?)');
    for (const e of genesisEntries(genesis)) insert.run(e.key, canonicalize(e.value));
  } finally {
    db.close();
  }
  // genesis.json last: its presence marks the directory as initialised.
  writeGenesisFile(paths.genesis, genesis);
  return { genesis, chainId };
}

/** SQL schema of the embedded engine. */
export function createSchema(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS blocks (
      height INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, header TEXT NOT NULL, signatures TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS txs (
      txid TEXT PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL, type TEXT NOT NULL,
      subject TEXT, envelope TEXT NOT NULL, UNIQUE (height, idx));
    CREATE INDEX IF NOT EXISTS txs_subject ON txs(subject, height, idx);
    CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
}

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
   * Orders transactions elsewhere (docs/architecture.md "The EVM engine"): `submit` hands each signed
   * transaction to the sequencer, and blocks are written only from what the sequencer feeds back through
   * {@link EmbeddedLedger.ingest}, so every node derives the same ledger from the same order.
   */
  sequencer?: Sequencer;
}

/** Orders signed transactions somewhere else (an EVM chain). */
export interface Sequencer {
  /** Sends one signed transaction to be ordered; resolves once it is final there. */
  submit(tx: { envelope: TxEnvelope; text: string; txid: string }): Promise<void>;
  /** When the ledger last caught up with everything the sequencer ordered (wall clock, ms). */
  readonly lastSyncAt: number;
}

interface Pending {
  envelope: TxEnvelope;
  txid: string;
  text: string;
  local: boolean;
  /** performance.now() at submit. */
  since: number;
  resolve: (r: TransactionReceipt) => void;
  reject: (e: unknown) => void;
}

function subjectOf(envelope: TxEnvelope): string | null {
  const body = envelope.tx.body as { id?: string };
  return typeof body.id === 'string' ? body.id : null;
}

/** The embedded, single-validator ledger engine. */
export class EmbeddedLedger implements Ledger {
  readonly genesis: Genesis;
  readonly chainId: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly maxBlockTxs: number;
  private readonly batchWaitMs: number;
  private readonly observeCommit: ((ms: number) => void) | undefined;
  private readonly sequencer: Sequencer | undefined;
  /** Transactions sent to the sequencer, waiting to come back through `ingest`. */
  private readonly awaiting = new Map<
    string,
    { resolve: (r: TransactionReceipt) => void; reject: (e: unknown) => void }
  >();
  private readonly validator: SigningKey | null;
  private readonly registrar: SigningKey | null;
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
  private pending: Pending[] = [];
  private flushTimer: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private closed = false;
  private readonly noncePrefix = randomBytes(8).toString('hex');
  private nonceCounter = 0n;
  private readonly stmt: ReturnType<EmbeddedLedger['prepare']>;

  private constructor(opts: OpenOptions) {
    const paths = dataPaths(opts.dataDir);
    if (!isInitialised(opts.dataDir))
      throw new KlError('KL_DATA_DIR', `${opts.dataDir} holds no ledger; initialise it first`);
    this.now = opts.now ?? Date.now;
    this.maxBlockTxs = Math.max(1, Math.min(opts.maxBlockTxs ?? 1000, 10_000));
    this.batchWaitMs = Math.max(0, opts.batchWaitMs ?? 0);
    this.observeCommit = opts.observeCommit;
    this.sequencer = opts.sequencer;
    const fromFile = readGenesisFile(paths.genesis);
    this.releaseLock = opts.passphrase !== undefined ? acquireWriterLock(opts.dataDir) : null;
    try {
      this.validator =
        opts.passphrase !== undefined ? openKeyFile(paths.validatorKey, opts.passphrase, 'validator') : null;
      this.registrar =
        opts.passphrase !== undefined ? openKeyFile(paths.registrarKey, opts.passphrase, 'registrar') : null;
      this.db = new Database(paths.db, { fileMustExist: true });
    } catch (err) {
      this.releaseLock?.();
      throw err;
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      this.stmt = this.prepare();
      const meta = this.stmt.meta.get('genesis') as { value: string } | undefined;
      if (!meta) throw new KlError('KL_LEDGER_CORRUPT', 'the database holds no genesis');
      this.genesis = checkGenesis(JSON.parse(meta.value));
      this.chainId = chainIdOf(this.genesis);
      if (this.chainId !== fromFile.chainId)
        throw new KlError('KL_LEDGER_CORRUPT', 'genesis.json does not match the database');
      if (this.validator && !this.genesis.validators.some((v) => v.keyId === this.validator!.keyId)) {
        throw new KlError('KL_LEDGER_CORRUPT', 'the validator key is not named in the genesis');
      }
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

  private prepare() {
    const db = this.db;
    return {
      meta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      metaPut: db.prepare(
        'INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      stateGet: db.prepare('SELECT value FROM state WHERE key = ?'),
      stateAll: db.prepare('SELECT key, value FROM state'),
      statePut: db.prepare(
        'INSERT INTO state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      txExists: db.prepare('SELECT 1 FROM txs WHERE txid = ?'),
      txGet: db.prepare('SELECT height, idx, envelope FROM txs WHERE txid = ?'),
      txInsert: db.prepare(
        'INSERT INTO txs(txid, height, idx, type, subject, envelope) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      txidsOfBlock: db.prepare('SELECT txid FROM txs WHERE height = ? ORDER BY idx'),
      txsOfSubject: db.prepare('SELECT txid FROM txs WHERE subject = ? ORDER BY height, idx LIMIT ?'),
      blockInsert: db.prepare('INSERT INTO blocks(height, hash, header, signatures) VALUES (?, ?, ?, ?)'),
      blockGet: db.prepare('SELECT hash, header, signatures FROM blocks WHERE height = ?'),
      blockHeaders: db.prepare('SELECT height, hash, header FROM blocks ORDER BY height'),
      blockSignatures: db.prepare('SELECT signatures FROM blocks WHERE height = ?'),
      txRowsOfBlock: db.prepare('SELECT txid, idx, envelope FROM txs WHERE height = ? ORDER BY idx'),
      txCount: db.prepare('SELECT count(*) AS n FROM txs'),
      blockCount: db.prepare('SELECT count(*) AS n FROM blocks'),
      identityKeys: db.prepare(
        "SELECT key FROM state WHERE key >= 'identity:' AND key < 'identity;' AND key LIKE ? ESCAPE '\\' ORDER BY key LIMIT ?",
      ),
      identityCounts: db.prepare(
        "SELECT json_extract(value, '$.status') AS status, count(*) AS n FROM state WHERE key >= 'identity:' AND key < 'identity;' GROUP BY status",
      ),
    };
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
          this.genesis,
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
            genesis: this.genesis,
            chainId: this.chainId,
            height: expected,
            prevHash,
            prevTime,
            historyRoot: this.history.root().toString('hex'),
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
    const height = expected - 1;
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
      if (!genesisState.tree.root().equals(tree.root()))
        throw ledgerDamage('state does not match the genesis');
      return { tree, last: null };
    }
    const last = this.readRow(height);
    try {
      verifySignedHeader(last, this.genesis, this.chainId);
    } catch (err) {
      throw ledgerDamage(`block ${height}: ${(err as Error).message}`, height);
    }
    if (last.header.historyRoot !== this.history.root(height - 1).toString('hex')) {
      throw ledgerDamage(
        `the block hashes do not form the history signed in block ${height} (a block header was changed)`,
        height,
      );
    }
    if (last.header.stateRoot !== tree.root().toString('hex')) {
      throw ledgerDamage(`stored state does not match block ${height}`, height);
    }
    this.signaturesChecked.add(height);
    this.verifiedHeight = from;
    return { tree, last };
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
      !leafHash(Buffer.from(row.hash, 'hex')).equals(this.history.leaf(height - 1))
    ) {
      throw ledgerDamage(`block ${height} was changed outside the ledger`, height);
    }
    const block = this.readRow(height);
    if (!this.signaturesChecked.has(height)) {
      try {
        verifySignedHeader(block, this.genesis, this.chainId);
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
    const row = this.stmt.stateGet.get(key) as { value: string } | undefined;
    const expected = this.tree.get(stateTreeKey(key));
    if (!row) {
      if (expected) throw new KlError('KL_LEDGER_CORRUPT', `state entry ${key} is missing from the database`);
      return undefined;
    }
    if (!expected || !sha256(Buffer.from(row.value, 'utf8')).equals(expected)) {
      throw new KlError('KL_LEDGER_CORRUPT', `state entry ${key} was changed outside the ledger`);
    }
    return JSON.parse(row.value);
  };

  private enqueue(
    envelope: TxEnvelope,
    txid: string,
    text: string,
    local: boolean,
  ): Promise<TransactionReceipt> {
    if (this.closed) return Promise.reject(new KlError('KL_LEDGER_CLOSED', 'the ledger is closed'));
    if (!this.validator)
      return Promise.reject(new KlError('KL_NOT_PERMITTED', 'the ledger is open read-only'));
    if (this.sequencer) return this.viaSequencer(envelope, txid, text);
    return new Promise((resolve, reject) => {
      this.pending.push({ envelope, txid, text, local, since: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  /** Sends a transaction to the sequencer and resolves when it comes back as part of a block. */
  private viaSequencer(envelope: TxEnvelope, txid: string, text: string): Promise<TransactionReceipt> {
    if (this.awaiting.has(txid) || this.stmt.txExists.get(txid))
      return Promise.reject(
        new KlError('KL_TX_DUPLICATE', 'this transaction is already on the ledger', { txid }),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.awaiting.delete(txid);
        reject(new KlError('KL_LEDGER_UNAVAILABLE', 'the transaction was ordered but not seen back in time'));
      }, 120_000);
      timer.unref();
      const settle = {
        resolve: (r: TransactionReceipt) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.awaiting.set(txid, settle);
      this.sequencer!.submit({ envelope, text, txid }).catch((err: unknown) => {
        this.awaiting.delete(txid);
        settle.reject(err);
      });
    });
  }

  /**
   * Writes one block from transactions ordered by the sequencer (the EVM engine's follower), in that
   * order, at that time; `cursor` (the sequencer's position, e.g. an EVM block number) is stored in
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
    const refused: Array<{ txid: string; reason: string }> = [];
    const pending: Pending[] = [];
    for (const text of batch.texts) {
      let envelope: TxEnvelope;
      let txid: string;
      try {
        ({ txid } = checkEnvelopeShape(JSON.parse(text)));
        envelope = JSON.parse(text) as TxEnvelope;
      } catch (err) {
        refused.push({
          txid: leafHash(Buffer.from(text, 'utf8')).toString('hex'),
          reason: (err as Error).message,
        });
        continue;
      }
      const waiter = this.awaiting.get(txid);
      this.awaiting.delete(txid);
      pending.push({
        envelope,
        txid,
        text,
        local: false,
        since: performance.now(),
        resolve: (r) => waiter?.resolve(r),
        reject: (e) => {
          refused.push({ txid, reason: (e as Error).message });
          waiter?.reject(e);
        },
      });
    }
    const time = Math.max(batch.time, this.last?.header.time ?? 0);
    const written = this.buildBlock(pending, time, validator, ['evm-cursor', batch.cursor]);
    return { written, refused };
  }

  /**
   * Waits (at most `ms`) until every transaction sent to the sequencer has come back or failed: a
   * graceful shutdown lets in-flight writes finish before the follower stops.
   */
  async drain(ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (this.awaiting.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }

  /**
   * How long ago (ms, wall clock) this ledger last confirmed it holds everything ordered so far: 0
   * for the embedded engine (it orders its own writes); with a sequencer, the time since the chain
   * was last read to its end.
   */
  staleness(): number {
    return this.sequencer ? Date.now() - this.sequencer.lastSyncAt : 0;
  }

  /**
   * The storage fault that made the last block write fail (disk full, data directory read-only) and
   * since when, or null once a block was written again. Reads and proofs are unaffected.
   */
  storageFault(): { fault: StorageFault; since: number } | null {
    return this.storage;
  }

  /** The sequencer's stored position (see {@link ingest}), or null before the first block. */
  sequencerCursor(): string | null {
    return (this.stmt.meta.get('evm-cursor') as { value: string } | undefined)?.value ?? null;
  }

  /**
   * Cancels a scheduled flush with the function that matches its kind. (Passing a Timeout to
   * clearImmediate corrupts Node's immediate queue: other code's setImmediate callbacks get lost.)
   */
  private cancelFlush(): void {
    const t = this.flushTimer;
    this.flushTimer = null;
    if (!t) return;
    if (this.batchWaitMs > 0) clearTimeout(t as NodeJS.Timeout);
    else clearImmediate(t as NodeJS.Immediate);
  }

  private schedule(): void {
    if (this.flushTimer || this.pending.length === 0) return;
    this.flushTimer =
      this.batchWaitMs > 0
        ? setTimeout(() => this.flush(), this.batchWaitMs)
        : setImmediate(() => this.flush());
  }

  async submit(intent: TxIntent): Promise<TransactionReceipt> {
    if (!this.registrar) throw new KlError('KL_NOT_PERMITTED', 'the ledger is open read-only');
    // signTransaction checks the body's shape; the copy keeps later changes by the caller out.
    const { envelope, bytes } = signTransactionBytes({
      chain: this.chainId,
      intent: structuredClone(intent),
      signer: this.registrar,
      now: this.now(),
      nonce: this.nextNonce(),
    });
    if (bytes.length > MAX_TX_BYTES) {
      throw new KlError(
        'KL_TX_TOO_LARGE',
        `transaction is ${bytes.length} bytes; the limit is ${MAX_TX_BYTES}`,
      );
    }
    return this.enqueue(envelope, leafHash(bytes).toString('hex'), bytes.toString('utf8'), true);
  }

  private governanceChain: Promise<unknown> = Promise.resolve();

  /**
   * Writes a role change approved by this node's validator (the embedded engine's only validator,
   * so its approval is the quorum). Calls are serialised: each reads the governance sequence the
   * previous one left.
   */
  governance(intent: GovernanceIntent): Promise<TransactionReceipt> {
    const run = async () => {
      if (!this.validator) throw new KlError('KL_NOT_PERMITTED', 'the ledger is open read-only');
      const govSeq = (this.stateGet(GOVERNANCE_KEY) as { govSeq: number } | undefined)?.govSeq ?? 0;
      const body = { id: canonicalIdentity(intent.body.id), role: intent.body.role, govSeq };
      const sig = this.validator.sign(GOVERNANCE_DOMAIN, governanceMessage(this.chainId, intent.type, body));
      return this.submit({
        type: intent.type,
        body: { ...body, approvals: [{ validator: this.validator.keyId, sig }] },
      } as TxIntent);
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
    const text = bytes.toString('utf8');
    // Work on our own copy: the caller's object may change after this call.
    return this.enqueue(JSON.parse(text) as TxEnvelope, txid, text, false);
  }

  /** Builds, writes and announces one block from the pending queue. */
  private flush(): void {
    this.flushTimer = null;
    const validator = this.validator;
    if (!validator || this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.maxBlockTxs);
    this.buildBlock(batch, Math.max(this.now(), this.last?.header.time ?? 0), validator);
    this.schedule();
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
      txRoot: txTree.root().toString('hex'),
      stateRoot: state.tree.root().toString('hex'),
      historyRoot: this.history.root().toString('hex'),
      proposer: validator.keyId,
    };
    const signed = signHeader(header, validator);
    try {
      this.db.transaction(() => {
        this.stmt.blockInsert.run(
          height,
          signed.hash,
          canonicalize(header),
          JSON.stringify(signed.signatures),
        );
        accepted.forEach((p, i) => {
          this.stmt.txInsert.run(p.txid, height, i, p.envelope.tx.type, subjectOf(p.envelope), p.text);
        });
        for (const [key, { text }] of state.writes) this.stmt.statePut.run(key, text);
        if (meta) this.stmt.metaPut.run(meta[0], meta[1]);
      })();
    } catch (err) {
      // The SQLite transaction rolled back: nothing of the block is on disk, and nothing in memory
      // has changed yet — the next block is built on the last committed one, as if this never was.
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
      return;
    }
    this.storage = null;
    // Durable: now (and only now) the block becomes visible and its transactions confirmed.
    this.tree = state.tree;
    this.history.append(leafHash(Buffer.from(signed.hash, 'hex')));
    this.last = signed;
    this.signaturesChecked.add(height);
    this.txTotal += accepted.length;
    const done = performance.now();
    accepted.forEach((p, index) => {
      this.observeCommit?.(done - p.since);
      p.resolve({
        envelope: p.envelope,
        txid: p.txid,
        index,
        proof: txTree.inclusionProof(index).map((h) => h.toString('hex')),
        block: signed,
      });
    });
    if (this.events.listenerCount('committed') > 0) {
      accepted.forEach((p, index) => {
        const event: CommittedTransaction = {
          txid: p.txid,
          type: p.envelope.tx.type as TxType,
          height,
          index,
          envelope: p.envelope,
        };
        this.events.emit('committed', event);
      });
    }
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
    const proof = tree.inclusionProof(row.idx).map((h) => h.toString('hex'));
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
    // Each record is read through the state tree check, like every other state read.
    const records = keys.map((k) => this.stateGet(k.key) as KeyRecord);
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
    const hex = (list: Buffer[]) => list.map((h) => h.toString('hex'));
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
    return this.pending.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const w of this.awaiting.values())
      w.reject(new KlError('KL_LEDGER_CLOSED', 'the ledger closed before the chain answered'));
    this.awaiting.clear();
    this.cancelFlush();
    while (this.pending.length > 0 && this.validator) this.flush();
    this.cancelFlush();
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
