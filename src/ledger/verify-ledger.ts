/**
 * Full offline audit of an embedded ledger's data directory (`keyledger ledger verify`). Trusts only
 * genesis.json and re-derives everything else from the stored transactions: every block's hash, link,
 * height, time, validator signatures, transaction ids, transaction signatures and permissions, every
 * state rule, the transaction root, the state root and the history root; then checks that the stored
 * state table is exactly the replayed state. Stops at the first problem and names it.
 */
import Database from 'better-sqlite3';
import { toHex } from '../protocol/bytes.js';
import { canonicalize } from '../protocol/canonical-json.js';
import { isKlError } from '../protocol/errors.js';
import { verifySignedHeader } from './block.js';
import { checkStoredHeader, checkStoredTx, checkTxCount, checkTxRoot } from './block-check.js';
import { dataPaths, readGenesisFile } from './data-dir.js';
import { leafHash, MerkleTree } from './merkle.js';
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

class Problem extends Error {
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

/** Re-checks a whole data directory. Never throws for a bad ledger; reports it. */
export function verifyLedgerData({
  dataDir,
  onProgress,
  knownCheckpoints = [],
}: VerifyLedgerOptions): LedgerVerification {
  const paths = dataPaths(dataDir);
  const { genesis, chainId } = readGenesisFile(paths.genesis);
  const db = new Database(paths.db, { readonly: true, fileMustExist: true });
  let blocks = 0;
  let transactions = 0;
  let stateEntries = 0;
  try {
    const meta = db.prepare('SELECT value FROM meta WHERE key = ?');
    const storedGenesis = (meta.get('genesis') as { value: string } | undefined)?.value;
    if (storedGenesis !== canonicalize(genesis))
      throw new Problem('the database genesis differs from genesis.json');
    if ((meta.get('chain') as { value: string } | undefined)?.value !== chainId)
      throw new Problem('the database chain id is wrong');

    // Replayed state: key → canonical JSON text.
    const state = new Map<string, string>();
    let tree = StateTree.empty();
    const start = new WorkingState({ get: () => undefined }, tree);
    for (const e of genesisEntries(genesis)) start.put(e);
    for (const [k, { text }] of start.writes) state.set(k, text);
    tree = start.tree;
    const source = { get: (key: string) => (state.has(key) ? JSON.parse(state.get(key)!) : undefined) };

    const history = new MerkleTree();
    const total = (db.prepare('SELECT count(*) AS n FROM blocks').get() as { n: number }).n;
    const txsOf = db.prepare(
      'SELECT txid, idx, type, subject, envelope FROM txs WHERE height = ? ORDER BY idx',
    );
    const hashes: string[] = [];
    let prevHash = chainId;
    let prevTime = 0;
    let expected = 1;
    for (const row of db
      .prepare('SELECT height, hash, header, signatures FROM blocks ORDER BY height')
      .iterate() as Iterable<{
      height: number;
      hash: string;
      header: string;
      signatures: string;
    }>) {
      const height = expected;
      if (row.height !== expected) throw new Problem(`block ${expected} is missing`, expected);
      const { header } = checkStoredHeader(row, {
        genesis,
        chainId,
        height,
        prevHash,
        prevTime,
        historyRoot: toHex(history.root()),
      });

      const ws = new WorkingState(source, tree);
      const ids: Uint8Array[] = [];
      const rows = txsOf.all(height) as Array<{
        txid: string;
        idx: number;
        type: string;
        subject: string | null;
        envelope: string;
      }>;
      checkTxCount(header, rows.length);
      rows.forEach((tx, i) => {
        const id = checkStoredTx(height, i, tx);
        let envelope: TxEnvelope;
        try {
          const parsed = JSON.parse(tx.envelope) as unknown;
          if (canonicalize(parsed) !== tx.envelope) throw new Error('not canonical');
          envelope = checkEnvelopeShape(parsed).envelope;
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
            genesis,
            chain: chainId,
            height,
            txid: tx.txid,
            blockTime: header.time,
          });
        } catch (err) {
          throw new Problem(
            `block ${height}: transaction ${tx.txid} is invalid: ${(err as Error).message}`,
            height,
            tx.txid,
          );
        }
        ids.push(id);
        transactions += 1;
      });
      checkTxRoot(header, ids);
      if (toHex(ws.tree.root()) !== header.stateRoot)
        throw new Problem(`block ${height}: state root is wrong`, height);
      for (const [k, { text }] of ws.writes) state.set(k, text);
      tree = ws.tree;
      history.append(leafHash(Buffer.from(row.hash, 'hex')));
      prevHash = row.hash;
      hashes.push(row.hash);
      prevTime = header.time;
      blocks += 1;
      expected += 1;
      onProgress?.(height, total);
    }
    const stored = (db.prepare('SELECT count(*) AS n FROM txs').get() as { n: number }).n;
    if (stored !== transactions)
      throw new Problem(`${stored - transactions} transaction rows belong to no block`);

    // The stored state must be exactly the replayed state.
    let rowsSeen = 0;
    for (const row of db.prepare('SELECT key, value FROM state ORDER BY key').iterate() as Iterable<{
      key: string;
      value: string;
    }>) {
      rowsSeen += 1;
      const want = state.get(row.key);
      if (want === undefined) throw new Problem(`state row ${row.key} is not explained by any transaction`);
      if (want !== row.value) throw new Problem(`state row ${row.key} differs from the replayed state`);
    }
    if (rowsSeen !== state.size) throw new Problem(`${state.size - rowsSeen} state rows are missing`);
    stateEntries = rowsSeen;

    // The node's own record of how far it verified (verified-checkpoint.ts): a ledger that no longer
    // reaches it, or holds another block there, was cut short or rewritten.
    const node = readVerifiedCheckpoint(
      (meta.get('verified') as { value: string } | undefined)?.value,
      genesis,
      chainId,
    );
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
        cp = verifySignedHeader(value, genesis, chainId);
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
    return { ok: true, blocks, transactions, stateEntries };
  } catch (err) {
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
    return { ok: false, blocks, transactions, stateEntries, problem };
  } finally {
    db.close();
  }
}
