/**
 * Checks of stored block and transaction rows against the signed block headers (docs/ledger.md
 * "Blocks"), shared by the full offline audit (verify-ledger.ts) and the engine, which runs them when
 * it opens a data directory and on every read (embedded-ledger.ts). Each check throws a
 * `KL_LEDGER_CORRUPT` KlError whose message names the block (and transaction) and whose details
 * carry `height` and `txid`.
 */
import { toHex, utf8 } from '../protocol/bytes.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import {
  type BlockHeader,
  type BlockSigners,
  blockHashOf,
  type SignedHeader,
  verifySignedHeader,
} from './block.js';
import { leafHash, MerkleTree } from './merkle.js';

/** One row of the `blocks` table. */
export interface StoredBlock {
  height: number;
  hash: string;
  /** The header's canonical JSON (RFC 8785), exactly the bytes its hash covers. */
  header: string;
  signatures: string;
}

/** One row of the `txs` table (the columns the checks need). */
export interface StoredTx {
  txid: string;
  idx: number;
  /** The envelope's canonical JSON: its RFC 6962 leaf hash is the txid. */
  envelope: string;
}

/** The error every check throws: the ledger's stored rows do not match what was signed. */
export function ledgerDamage(reason: string, height?: number, txid?: string): KlError {
  return new KlError('KL_LEDGER_CORRUPT', reason, {
    ...(height !== undefined ? { height } : {}),
    ...(txid !== undefined ? { txid } : {}),
  });
}

/**
 * True when a stored header's text hashes to the stored block hash. Headers are stored in canonical
 * JSON, so this is the block hash check without parsing (cheap enough to run on every block at open).
 */
export function headerTextMatchesHash(row: Pick<StoredBlock, 'hash' | 'header'>): boolean {
  return sha256Hex(row.header) === row.hash;
}

/** What a stored header must link to. */
export interface HeaderContext {
  /** Whose signatures count (the genesis, or the signers of a ledger ordered by a chain). */
  genesis: BlockSigners;
  chainId: string;
  /** The height this row must have. */
  height: number;
  /** Hash of the previous block (the chain id before block 1). */
  prevHash: string;
  /** Time of the previous block (0 before block 1). */
  prevTime: number;
  /** History root over blocks 1..height-1, hex. */
  historyRoot: string;
}

/**
 * Checks a stored block row as a link of the chain: parses, validator signatures (quorum), hash,
 * height, link to the previous block, time, history root. Returns the signed header.
 * @throws KlError `KL_LEDGER_CORRUPT`
 */
export function checkStoredHeader(row: StoredBlock, ctx: HeaderContext): SignedHeader {
  const { height } = ctx;
  let header: BlockHeader;
  let signatures: unknown;
  try {
    header = JSON.parse(row.header) as BlockHeader;
    signatures = JSON.parse(row.signatures);
  } catch {
    throw ledgerDamage(`block ${height}: header is not valid JSON`, height);
  }
  let signed: SignedHeader;
  try {
    signed = verifySignedHeader({ header, hash: row.hash, signatures }, ctx.genesis, ctx.chainId);
  } catch (err) {
    throw ledgerDamage(`block ${height}: ${isKlError(err) ? err.message : 'bad header'}`, height);
  }
  if (blockHashOf(header) !== row.hash)
    throw ledgerDamage(`block ${height}: hash does not match header`, height);
  if (header.height !== height)
    throw ledgerDamage(`block ${height}: header says height ${header.height}`, height);
  if (header.prevHash !== ctx.prevHash)
    throw ledgerDamage(`block ${height}: does not link to the previous block`, height);
  if (header.time < ctx.prevTime) throw ledgerDamage(`block ${height}: time goes backwards`, height);
  if (header.historyRoot !== ctx.historyRoot)
    throw ledgerDamage(`block ${height}: history root is wrong`, height);
  return signed;
}

/** Checks that a block holds as many transaction rows as its header says. */
export function checkTxCount(header: BlockHeader, count: number): void {
  if (count !== header.txCount) {
    throw ledgerDamage(
      `block ${header.height}: holds ${count} transactions, header says ${header.txCount}`,
      header.height,
    );
  }
}

/**
 * Checks the `i`-th transaction row of a block: its position and that its envelope hashes to its id.
 * @returns the txid as bytes (a leaf of the block's transaction tree).
 */
export function checkStoredTx(height: number, i: number, tx: StoredTx): Uint8Array {
  if (tx.idx !== i) throw ledgerDamage(`block ${height}: transaction ${i} is missing`, height);
  const id = leafHash(utf8(tx.envelope));
  if (toHex(id) !== tx.txid)
    throw ledgerDamage(`block ${height}: transaction ${tx.txid} does not match its id`, height, tx.txid);
  return id;
}

/** Checks the block's transaction root (RFC 6962) over its txids, in order. */
export function checkTxRoot(header: BlockHeader, ids: readonly Uint8Array[]): MerkleTree {
  const tree = new MerkleTree(ids);
  if (toHex(tree.root()) !== header.txRoot)
    throw ledgerDamage(`block ${header.height}: transaction root is wrong`, header.height);
  return tree;
}

/**
 * The cheap, complete check of a block's transaction rows: count, positions, ids, root. (The full
 * audit also re-checks each transaction's shape, signature and state rules.)
 * @returns the block's transaction tree.
 */
export function checkStoredTxs(header: BlockHeader, rows: readonly StoredTx[]): MerkleTree {
  checkTxCount(header, rows.length);
  return checkTxRoot(
    header,
    rows.map((tx, i) => checkStoredTx(header.height, i, tx)),
  );
}
