/**
 * RFC 6962 Merkle hash trees (§2.1), audit paths (§2.1.1) and consistency proofs (§2.1.2), with the
 * verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2. Pure: no I/O, no state beyond memory.
 *
 * Used twice in the ledger: each block's transaction root is the Merkle Tree Hash of its transactions,
 * and every header carries the root of the *history tree* over the hashes of all earlier blocks, so a
 * client holding an old checkpoint can be shown that a newer one only appended to it.
 */
import { copyBytes, equalBytes } from '../protocol/bytes.js';
import { sha256 } from '../protocol/hash.js';

const LEAF_PREFIX = Uint8Array.of(0x00);
/** Most incomplete-subtree hashes a tree remembers. */
const MAX_EDGES = 4096;
const NODE_PREFIX = Uint8Array.of(0x01);

/** RFC 6962 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, data);
}

/** RFC 6962 interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE_PREFIX, left, right);
}

/** Largest power of two strictly smaller than n (n ≥ 2), the split point k of RFC 6962 §2.1. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Merkle Tree Hash (RFC 6962 §2.1) of a list of leaf hashes. The empty tree hashes to SHA-256(""). */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  return new MerkleTree(leaves).root();
}

/**
 * An append-only Merkle tree over leaf hashes that keeps every complete aligned subtree, so roots of
 * any prefix, audit paths and consistency proofs cost O(log² n) hashes.
 */
export class MerkleTree {
  // levels[h][i] is the hash of the complete subtree of 2^h leaves starting at leaf i·2^h.
  private readonly levels: Uint8Array[][] = [[]];
  /** Hashes of incomplete subtrees already computed, by `start:end` (see mth). */
  private readonly edges = new Map<string, Uint8Array>();

  /** Builds a tree over the given leaf hashes (each already `leafHash(...)`). */
  constructor(leaves: Iterable<Uint8Array> = []) {
    for (const leaf of leaves) this.append(leaf);
  }

  /** Number of leaves. */
  get size(): number {
    return this.levels[0]!.length;
  }

  /** Appends one leaf hash. */
  append(leaf: Uint8Array): void {
    let h = 0;
    let node: Uint8Array = copyBytes(leaf);
    let index = this.levels[0]!.length;
    this.levels[0]!.push(node);
    // Every time the new node closes a pair, the parent subtree becomes complete.
    while (index % 2 === 1) {
      const left = this.levels[h]![index - 1]!;
      node = nodeHash(left, node);
      h += 1;
      index = (index - 1) / 2;
      if (!this.levels[h]) this.levels[h] = [];
      this.levels[h]!.push(node);
    }
  }

  /** The leaf hash at `index`. */
  leaf(index: number): Uint8Array {
    const l = this.levels[0]![index];
    if (!l) throw new RangeError('leaf index out of range');
    return l;
  }

  /** Merkle Tree Hash of the first `size` leaves (default: all). */
  root(size = this.size): Uint8Array {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size)
      throw new RangeError('size out of range');
    if (size === 0) return sha256();
    return this.mth(0, size);
  }

  /** Audit path (RFC 6962 §2.1.1) for leaf `index` in the tree of the first `size` leaves. */
  inclusionProof(index: number, size = this.size): Uint8Array[] {
    if (!Number.isSafeInteger(size) || size < 1 || size > this.size)
      throw new RangeError('size out of range');
    if (!Number.isSafeInteger(index) || index < 0 || index >= size)
      throw new RangeError('index out of range');
    return this.path(index, 0, size);
  }

  /** Consistency proof (RFC 6962 §2.1.2) between the trees of the first `size1` and `size2` leaves. */
  consistencyProof(size1: number, size2 = this.size): Uint8Array[] {
    if (!Number.isSafeInteger(size2) || size2 < 0 || size2 > this.size)
      throw new RangeError('size2 out of range');
    if (!Number.isSafeInteger(size1) || size1 < 0 || size1 > size2)
      throw new RangeError('size1 out of range');
    if (size1 === 0 || size1 === size2) return [];
    return this.subproof(size1, 0, size2, true);
  }

  // MTH(D[start:end]); complete aligned subtrees come from the cache.
  private mth(start: number, end: number): Uint8Array {
    const n = end - start;
    if (n === 1) return this.levels[0]![start]!;
    if ((n & (n - 1)) === 0 && start % n === 0) {
      const h = Math.log2(n);
      const cached = this.levels[h]?.[start / n];
      if (cached) return cached;
    }
    // An incomplete subtree (the right edge): leaves are only appended, so D[start:end] never
    // changes once it exists, and the audit paths of one tree ask for the same edges again and again.
    const key = `${start}:${end}`;
    const known = this.edges.get(key);
    if (known) return known;
    const k = splitPoint(n);
    const hash = nodeHash(this.mth(start, start + k), this.mth(start + k, end));
    if (this.edges.size >= MAX_EDGES) this.edges.clear();
    this.edges.set(key, hash);
    return hash;
  }

  // PATH(m, D[start:end]) of RFC 6962 §2.1.1, m relative to start.
  private path(m: number, start: number, end: number): Uint8Array[] {
    const n = end - start;
    if (n === 1) return [];
    const k = splitPoint(n);
    if (m < k) return [...this.path(m, start, start + k), this.mth(start + k, end)];
    return [...this.path(m - k, start + k, end), this.mth(start, start + k)];
  }

  // SUBPROOF(m, D[start:end], b) of RFC 6962 §2.1.2.
  private subproof(m: number, start: number, end: number, b: boolean): Uint8Array[] {
    const n = end - start;
    if (m === n) return b ? [] : [this.mth(start, end)];
    const k = splitPoint(n);
    if (m <= k) return [...this.subproof(m, start, start + k, b), this.mth(start + k, end)];
    return [...this.subproof(m - k, start + k, end, false), this.mth(start, start + k)];
  }
}

const equal = equalBytes;

/** Inputs of {@link verifyInclusion}. */
export interface InclusionCheck {
  /** The leaf hash (already `leafHash(data)`). */
  leafHash: Uint8Array;
  /** Zero-based index of the leaf. */
  index: number;
  /** Number of leaves in the tree the root belongs to. */
  treeSize: number;
  /** Audit path, bottom-up. */
  proof: readonly Uint8Array[];
  /** Expected Merkle Tree Hash. */
  root: Uint8Array;
}

/** Verifies an audit path (RFC 9162 §2.1.3.2). Returns false on any mismatch or malformed input. */
export function verifyInclusion({ leafHash: leaf, index, treeSize, proof, root }: InclusionCheck): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize)) return false;
  if (index < 0 || index >= treeSize) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r: Uint8Array = copyBytes(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** Inputs of {@link verifyConsistency}. */
export interface ConsistencyCheck {
  size1: number;
  size2: number;
  root1: Uint8Array;
  root2: Uint8Array;
  proof: readonly Uint8Array[];
}

/**
 * Verifies a consistency proof (RFC 9162 §2.1.4.2): the tree of `size2` leaves with root `root2`
 * extends the tree of `size1` leaves with root `root1`. Returns false on any mismatch.
 */
export function verifyConsistency({ size1, size2, root1, root2, proof }: ConsistencyCheck): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2)) return false;
  if (size1 < 0 || size2 < size1) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0) return proof.length === 0; // every tree extends the empty tree
  if (proof.length === 0) return false;
  const path = [...proof];
  // Step 2: a power-of-two first tree is itself a node of the second; its root starts the path.
  if ((size1 & (size1 - 1)) === 0) path.unshift(root1);
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = copyBytes(path[0]!);
  let sr: Uint8Array = copyBytes(path[0]!);
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}
