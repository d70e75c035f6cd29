/**
 * Full offline audit of an embedded ledger's data directory (`keyledger ledger verify`). Trusts only
 * genesis.json and re-derives everything else from the stored transactions: every block's hash, link,
 * height, time, validator signatures, transaction ids, transaction signatures and permissions, every
 * state rule, the transaction root, the state root and the history root; then checks that the stored
 * state table is exactly the replayed state. Stops at the first problem and names it.
 */
import Database from 'better-sqlite3';
import { equalBytes, toHex } from '../protocol/bytes.js';
import { canonicalize } from '../protocol/canonical-json.js';
import { isKlError } from '../protocol/errors.js';
import { type BlockSigners, verifySignedHeader } from './block.js';
import { checkStoredHeader, checkStoredTx, checkTxCount, checkTxRoot } from './block-check.js';
import { dataPaths, readGenesisFile } from './data-dir.js';
import type { Genesis } from './genesis.js';
import { leafHash, MerkleTree } from './merkle.js';
import { blockSigners, verifyNodeAdmission, verifyNodeRemoval } from './node-admission.js';
import type { PublicKeyInfo } from './signing-keys.js';
import { applyTransaction, genesisEntries, WorkingState } from './state-machine.js';
import { StateTree } from './state-tree.js';
import { checkEnvelopeShape, type TxEnvelope } from './transactions.js';
import { readVerifiedCheckpoint } from './verified-checkpoint.js';

/** Result of {@link verifyLedgerData}. */
export interface LedgerVerification {
  ok: boolean;
  blocks: number;
  transactions: number;
  stateEntries: number;
  /** The first problem found, if any. */
  problem?: { height?: number; txid?: string; reason: string };
}

/** A problem found in the ledger: what, and where. */
export class Problem extends Error {
  constructor(
    readonly reason: string,
    readonly height?: number,
    readonly txid?: string,
  ) {
    super(reason);
  }
}

/** Options of {@link verifyLedgerData}. */
export interface VerifyLedgerOptions {
  dataDir: string;
  /** Called after each block with (height, total blocks). */
  onProgress?: (height: number, total: number) => void;
  /**
   * Checkpoints (signed headers) obtained earlier, e.g. kept by clients. Each must be signed by the
   * validators and be part of the ledger. This is what catches a ledger cut short at the end: without
   * an outside checkpoint, a shorter but internally valid chain cannot be told apart.
   */
  knownCheckpoints?: unknown[];
}

/** One transaction row of the `txs` table, as the audit reads it. */
interface AuditTxRow {
  txid: string;
  idx: number;
  type: string;
  subject: string | null;
  envelope: string;
}

/** One row of the `blocks` table. */
interface AuditBlockRow {
  height: number;
  hash: string;
  header: string;
  signatures: string;
}

/**
 * What a worker thread found about one transaction row before the replay reaches it (see
 * verify-parallel.ts): the leaf hash of the text it checked, and the public key its signature is valid
 * for. The replay uses it only when the leaf hash is the one of its own row; anything else (a
 * worker's refusal included) is checked again here, so a precheck can only save work, never change
 * a verdict.
 */
export interface TxPrecheck {
  /** RFC 6962 leaf hash of the envelope text the worker checked. */
  leaf: Uint8Array;
  /** The public key the signature verified with, or undefined when it did not (or was not tried). */
  verifiedWith: string | undefined;
}

/**
 * Parses and checks a stored envelope's text: canonical JSON and a well-formed transaction.
 * @throws Error whose message says what is wrong.
 */
export function envelopeOfText(text: string): TxEnvelope {
  const parsed = JSON.parse(text) as unknown;
  if (canonicalize(parsed) !== text) throw new Error('not canonical');
  return checkEnvelopeShape(parsed).envelope;
}

/**
 * The audit of one data directory, block by block (docs/ledger.md "Audit: `keyledger ledger verify`"): the
 * synchronous {@link verifyLedgerData} and the worker-thread driver (verify-parallel.ts) feed it the
 * same rows in the same order.
 */
export class LedgerAudit {
  readonly genesis: Genesis;
  readonly chainId: string;
  /** Whose header signatures count: the genesis, or on a chain-ordered ledger, admitted servers too. */
  readonly signers: BlockSigners;
  readonly totalBlocks: number;
  readonly totalTransactions: number;
  blocks = 0;
  transactions = 0;
  private readonly db: Database.Database;
  private readonly txsOf: Database.Statement;
  /** Replayed state: key → canonical JSON text. */
  private readonly state = new Map<string, string>();
  private readonly source = {
    get: (key: string) => {
      const text = this.state.get(key);
      return text === undefined ? undefined : JSON.parse(text);
    },
  };
  private tree = StateTree.empty();
  private readonly history = new MerkleTree();
  private readonly hashes: string[] = [];
  private prevHash: string;
  private prevTime = 0;

  constructor(readonly dataDir: string) {
    const paths = dataPaths(dataDir);
    const { genesis, chainId } = readGenesisFile(paths.genesis);
    this.genesis = genesis;
    this.chainId = chainId;
    this.prevHash = chainId;
    this.db = new Database(paths.db, { readonly: true, fileMustExist: true });
    this.txsOf = this.db.prepare(
      'SELECT txid, idx, type, subject, envelope FROM txs WHERE height = ? ORDER BY idx',
    );
    this.totalBlocks = (this.db.prepare('SELECT count(*) AS n FROM blocks').get() as { n: number }).n;
    this.totalTransactions = (this.db.prepare('SELECT count(*) AS n FROM txs').get() as { n: number }).n;
    this.servers = genesis.engine ? this.admittedServers() : [];
    this.signers = genesis.engine
      ? blockSigners(
          genesis,
          this.servers.map((s) => s.validator),
        )
      : genesis;
  }

  /** Servers admitted to a chain-ordered ledger, and the height of their removal, if any. */
  private readonly servers: Array<{ registrar: string; validator: PublicKeyInfo; removedAt: number }>;

  /**
   * Whose signatures count on block `height`: a removed server's only up to the block that removed
   * it (its signature on later blocks vouches for nothing).
   */
  private signersAt(height: number): BlockSigners {
    if (!this.servers.some((s) => s.removedAt < height)) return this.signers;
    const keys = this.servers.filter((s) => s.removedAt >= height).map((s) => s.validator);
    return blockSigners(this.genesis, keys);
  }

  /**
   * The validator keys of servers admitted to a chain-ordered ledger: each `RegistrarAdded` row with
   * a server whose admission verifies against the genesis alone (node-admission.ts), wherever it is.
   */
  private admittedServers(): Array<{ registrar: string; validator: PublicKeyInfo; removedAt: number }> {
    const removedAt = new Map<string, number>();
    for (const { body, height } of this.governanceBodies('RegistrarRemoved')) {
      const result = verifyNodeRemoval({ genesis: this.genesis, chain: this.chainId, removal: body });
      if (result.verified && !removedAt.has(result.removal.keyId))
        removedAt.set(result.removal.keyId, height);
    }
    const servers = [];
    for (const { body } of this.governanceBodies('RegistrarAdded')) {
      const result = verifyNodeAdmission({ genesis: this.genesis, chain: this.chainId, admission: body });
      if (result.verified)
        servers.push({
          registrar: result.admission.keyId,
          validator: result.admission.node.validator,
          removedAt: removedAt.get(result.admission.keyId) ?? Number.POSITIVE_INFINITY,
        });
    }
    return servers;
  }

  /** The bodies (and heights) of the stored rows of a registrar change (malformed rows are left to the replay). */
  private *governanceBodies(
    type: 'RegistrarAdded' | 'RegistrarRemoved',
  ): Generator<{ body: unknown; height: number }> {
    const rows = this.db
      .prepare('SELECT envelope, height FROM txs WHERE type = ? ORDER BY height')
      .iterate(type);
    for (const row of rows as Iterable<{ envelope: string; height: number }>) {
      try {
        yield {
          body: (JSON.parse(row.envelope) as { tx?: { body?: unknown } }).tx?.body,
          height: row.height,
        };
      } catch {
        // A malformed row: the replay names it.
      }
    }
  }

  /** Checks the stored genesis and replays the genesis entries. */
  begin(): void {
    const storedGenesis = this.meta('genesis');
    if (storedGenesis !== canonicalize(this.genesis))
      throw new Problem('the database genesis differs from genesis.json');
    if (this.meta('chain') !== this.chainId) throw new Problem('the database chain id is wrong');
    const start = new WorkingState({ get: () => undefined }, this.tree);
    for (const e of genesisEntries(this.genesis)) start.put(e);
    for (const [k, { text }] of start.writes) this.state.set(k, text);
    this.tree = start.tree;
  }

  /** Every stored block row, by height. */
  blockRows(): IterableIterator<AuditBlockRow> {
    return this.db
      .prepare('SELECT height, hash, header, signatures FROM blocks ORDER BY height')
      .iterate() as IterableIterator<AuditBlockRow>;
  }

  /**
   * Public keys that may have signed transactions: the genesis's validators and registrars and
   * every key a `RegistrarAdded` row names, valid or not (workers only try them; the replay decides
   * which key counts).
   */
  candidateKeys(): string[] {
    const keys = new Set<string>([
      ...this.genesis.validators.map((v) => v.publicKey),
      ...this.genesis.registrars.map((r) => r.publicKey),
    ]);
    for (const { body } of this.governanceBodies('RegistrarAdded')) {
      const key = (body as { publicKey?: unknown } | undefined)?.publicKey;
      if (typeof key === 'string') keys.add(key);
    }
    return [...keys];
  }

  /** Checks one block and its transactions, and replays them. `prechecks` are by index in the block. */
  block(row: AuditBlockRow, prechecks?: readonly (TxPrecheck | undefined)[]): void {
    const height = this.blocks + 1;
    if (row.height !== height) throw new Problem(`block ${height} is missing`, height);
    const { header } = checkStoredHeader(row, {
      genesis: this.signersAt(height),
      chainId: this.chainId,
      height,
      prevHash: this.prevHash,
      prevTime: this.prevTime,
      historyRoot: toHex(this.history.root()),
    });
    const ws = new WorkingState(this.source, this.tree);
    const rows = this.txsOf.all(height) as AuditTxRow[];
    checkTxCount(header, rows.length);
    const ids = rows.map((tx, i) => {
      const id = checkStoredTx(height, i, tx);
      const precheck = prechecks?.[i];
      const trusted = precheck !== undefined && equalBytes(precheck.leaf, id);
      this.transaction(ws, tx, header.time, height, trusted ? precheck : undefined);
      return id;
    });
    checkTxRoot(header, ids);
    if (toHex(ws.tree.root()) !== header.stateRoot)
      throw new Problem(`block ${height}: state root is wrong`, height);
    for (const [k, { text }] of ws.writes) this.state.set(k, text);
    this.tree = ws.tree;
    this.history.append(leafHash(Buffer.from(row.hash, 'hex')));
    this.prevHash = row.hash;
    this.hashes.push(row.hash);
    this.prevTime = header.time;
    this.blocks += 1;
  }

  private transaction(
    ws: WorkingState,
    tx: AuditTxRow,
    blockTime: number,
    height: number,
    precheck: TxPrecheck | undefined,
  ): void {
    let envelope: TxEnvelope;
    try {
      // A worker checked this very text (same leaf hash): canonical and well formed.
      envelope = precheck ? (JSON.parse(tx.envelope) as TxEnvelope) : envelopeOfText(tx.envelope);
    } catch (err) {
      throw new Problem(
        `block ${height}: transaction ${tx.txid} is malformed: ${(err as Error).message}`,
        height,
        tx.txid,
      );
    }
    const subject = (envelope.tx.body as { id?: string }).id ?? null;
    if (envelope.tx.type !== tx.type || subject !== tx.subject) {
      throw new Problem(
        `block ${height}: index columns of transaction ${tx.txid} are wrong`,
        height,
        tx.txid,
      );
    }
    try {
      applyTransaction(ws, envelope, {
        genesis: this.genesis,
        chain: this.chainId,
        height,
        txid: tx.txid,
        blockTime,
        ...(precheck?.verifiedWith === undefined ? {} : { signatureVerifiedWith: precheck.verifiedWith }),
      });
    } catch (err) {
      throw new Problem(
        `block ${height}: transaction ${tx.txid} is invalid: ${(err as Error).message}`,
        height,
        tx.txid,
      );
    }
    this.transactions += 1;
  }

  /**
   * After the last block: no stray transaction rows, the stored state is exactly the replayed state,
   * and the node's verified checkpoint and the known checkpoints are part of this history.
   */
  finish(knownCheckpoints: readonly unknown[]): LedgerVerification {
    const stored = (this.db.prepare('SELECT count(*) AS n FROM txs').get() as { n: number }).n;
    if (stored !== this.transactions)
      throw new Problem(`${stored - this.transactions} transaction rows belong to no block`);
    const stateEntries = this.compareState();
    const { hashes, signers, chainId } = this;
    // The node's own record of how far it verified (verified-checkpoint.ts): a ledger that no longer
    // reaches it, or holds another block there, was cut short or rewritten.
    const node = readVerifiedCheckpoint(this.meta('verified'), signers, chainId);
    if (node && node.height > hashes.length)
      throw new Problem(
        `the ledger ends at block ${hashes.length} but this node verified block ${node.height} earlier: it was cut short`,
        node.height,
      );
    if (node && hashes[node.height - 1] !== node.hash)
      throw new Problem(
        `block ${node.height} differs from the block this node verified earlier: history was rewritten`,
        node.height,
      );
    for (const value of knownCheckpoints) {
      let cp: ReturnType<typeof verifySignedHeader>;
      try {
        cp = verifySignedHeader(value, signers, chainId);
      } catch (err) {
        throw new Problem(`a known checkpoint is not valid: ${(err as Error).message}`);
      }
      const h = cp.header.height;
      if (h > hashes.length)
        throw new Problem(
          `the ledger ends at block ${hashes.length} but a checkpoint at block ${h} exists: it was cut short`,
          h,
        );
      if (hashes[h - 1] !== cp.hash)
        throw new Problem(`block ${h} differs from the known checkpoint: history was rewritten`, h);
    }
    return { ok: true, blocks: this.blocks, transactions: this.transactions, stateEntries };
  }

  /** The stored state must be exactly the replayed state. @returns the number of entries. */
  private compareState(): number {
    let rowsSeen = 0;
    const rows = this.db.prepare('SELECT key, value FROM state ORDER BY key').iterate();
    for (const row of rows as Iterable<{ key: string; value: string }>) {
      rowsSeen += 1;
      const want = this.state.get(row.key);
      if (want === undefined) throw new Problem(`state row ${row.key} is not explained by any transaction`);
      if (want !== row.value) throw new Problem(`state row ${row.key} differs from the replayed state`);
    }
    if (rowsSeen !== this.state.size)
      throw new Problem(`${this.state.size - rowsSeen} state rows are missing`);
    return rowsSeen;
  }

  /** The verdict for an audit that stopped on `err`. */
  failure(err: unknown): LedgerVerification {
    const damage = isKlError(err, 'KL_LEDGER_CORRUPT')
      ? new Problem(
          err.message,
          err.details?.height as number | undefined,
          err.details?.txid as string | undefined,
        )
      : err;
    const problem =
      damage instanceof Problem
        ? {
            reason: damage.reason,
            ...(damage.height ? { height: damage.height } : {}),
            ...(damage.txid ? { txid: damage.txid } : {}),
          }
        : { reason: `cannot read the ledger: ${(err as Error).message}` };
    return { ok: false, blocks: this.blocks, transactions: this.transactions, stateEntries: 0, problem };
  }

  close(): void {
    this.db.close();
  }

  private meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)
      ?.value;
  }
}

/** Re-checks a whole data directory in this thread. Never throws for a bad ledger; reports it. */
export function verifyLedgerData({
  dataDir,
  onProgress,
  knownCheckpoints = [],
}: VerifyLedgerOptions): LedgerVerification {
  const audit = new LedgerAudit(dataDir);
  try {
    audit.begin();
    for (const row of audit.blockRows()) {
      audit.block(row);
      onProgress?.(audit.blocks, audit.totalBlocks);
    }
    return audit.finish(knownCheckpoints);
  } catch (err) {
    return audit.failure(err);
  } finally {
    audit.close();
  }
}
