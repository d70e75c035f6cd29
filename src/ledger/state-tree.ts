/**
 * The state tree: a compact sparse Merkle tree over 256-bit keys (SHA-256 of a namespaced state
 * key such as `identity:alice@example.org`), with persistent (copy-on-write) nodes.
 *
 * Shape: a binary trie on the key's bits, most significant bit first. An empty subtree hashes to 32
 * zero bytes; a subtree holding exactly one entry *is* that entry's leaf (placed at the shortest prefix
 * that tells it apart), so depth grows with log2(entries), not 256. Leaf = SHA-256(0x10‖key‖value),
 * inner = SHA-256(0x11‖left‖right). The set of entries determines the tree, hence the root, uniquely.
 *
 * A proof is the list of sibling hashes from the root down to the key's position plus, for absence,
 * the other leaf found there. {@link verifyStateProof} is pure and needs only the root from a signed
 * block header.
 */
import {
  allocBytes,
  equalBytes,
  fromBinaryString,
  fromHex,
  toBinaryString,
  toHex,
} from '../protocol/bytes.js';
import { sha256, sha256Binary } from '../protocol/hash.js';

const LEAF_TAG = Uint8Array.of(0x10);
const INNER_TAG = Uint8Array.of(0x11);
/** Hash of an empty subtree (and root of an empty state). */
export const EMPTY_HASH: Uint8Array = allocBytes(32);

// The tree's own nodes keep keys, values and hashes as binary strings (one character per byte): a
// 32-character string costs a fraction of a 32-byte array, and a ledger holds millions of them.
const LEAF_PREFIX = '\x10';
const INNER_PREFIX = '\x11';
const EMPTY = '\0'.repeat(32);

class Leaf {
  hash: string | undefined = undefined;
  constructor(
    readonly key: string,
    readonly value: string,
  ) {}
}

class Inner {
  hash: string | undefined = undefined;
  constructor(
    readonly left: Node | null,
    readonly right: Node | null,
  ) {}
}

type Node = Leaf | Inner;

function bit(key: Uint8Array, depth: number): 0 | 1 {
  return ((key[depth >> 3]! >> (7 - (depth & 7))) & 1) as 0 | 1;
}

/** {@link bit} of a binary-string key. */
function bitOf(key: string, depth: number): number {
  return (key.charCodeAt(depth >> 3) >> (7 - (depth & 7))) & 1;
}

function hashLeaf(key: Uint8Array, value: Uint8Array): Uint8Array {
  return sha256(LEAF_TAG, key, value);
}

function hashInner(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(INNER_TAG, left, right);
}

function nodeHashOf(node: Node | null): string {
  if (node === null) return EMPTY;
  if (node.hash !== undefined) return node.hash;
  node.hash =
    node instanceof Leaf
      ? sha256Binary(LEAF_PREFIX + node.key + node.value)
      : sha256Binary(INNER_PREFIX + nodeHashOf(node.left) + nodeHashOf(node.right));
  return node.hash;
}

function split(a: Leaf, b: Leaf, depth: number): Inner {
  if (depth >= 256) throw new Error('state tree: duplicate key');
  const ba = bitOf(a.key, depth);
  const bb = bitOf(b.key, depth);
  if (ba === bb) {
    const child = split(a, b, depth + 1);
    return ba ? new Inner(null, child) : new Inner(child, null);
  }
  return ba ? new Inner(b, a) : new Inner(a, b);
}

function insert(node: Node | null, key: string, value: string, depth: number): Node {
  if (node === null) return new Leaf(key, value);
  if (node instanceof Leaf) {
    if (node.key === key) return new Leaf(key, value);
    return split(node, new Leaf(key, value), depth);
  }
  return bitOf(key, depth)
    ? new Inner(node.left, insert(node.right, key, value, depth + 1))
    : new Inner(insert(node.left, key, value, depth + 1), node.right);
}

/** Lowercase hex of a binary string. */
function binaryHex(text: string): string {
  return toHex(fromBinaryString(text));
}

/** A proof about one key against a state root. Hashes are lowercase hex. */
export interface StateProof {
  /** Sibling hashes from the root down to the key's position. */
  siblings: string[];
  /** For an absence proof: the other entry that occupies the key's position, if any. */
  other?: { key: string; value: string };
}

/** An immutable state tree; `set` returns a new tree sharing unchanged nodes. */
export class StateTree {
  private constructor(private readonly rootNode: Node | null) {}

  /** The empty tree. */
  static empty(): StateTree {
    return new StateTree(null);
  }

  /** Root hash. */
  root(): Uint8Array {
    return fromBinaryString(nodeHashOf(this.rootNode));
  }

  /** Returns a tree in which `key` (32 bytes) maps to `value` (32-byte hash). */
  set(key: Uint8Array, value: Uint8Array): StateTree {
    if (key.length !== 32 || value.length !== 32)
      throw new RangeError('state tree keys and values are 32 bytes');
    return new StateTree(insert(this.rootNode, toBinaryString(key), toBinaryString(value), 0));
  }

  /** The value hash stored under `key`, or undefined. */
  get(key: Uint8Array): Uint8Array | undefined {
    const wanted = toBinaryString(key);
    let node = this.rootNode;
    let depth = 0;
    while (node instanceof Inner) node = bitOf(wanted, depth++) ? node.right : node.left;
    return node && node.key === wanted ? fromBinaryString(node.value) : undefined;
  }

  /** Proof of the value (or absence) of `key`. */
  prove(key: Uint8Array): StateProof {
    const wanted = toBinaryString(key);
    const siblings: string[] = [];
    let node = this.rootNode;
    let depth = 0;
    while (node instanceof Inner) {
      const b = bitOf(wanted, depth++);
      siblings.push(binaryHex(nodeHashOf(b ? node.left : node.right)));
      node = b ? node.right : node.left;
    }
    if (node && node.key !== wanted) {
      return { siblings, other: { key: binaryHex(node.key), value: binaryHex(node.value) } };
    }
    return { siblings };
  }
}

/** Inputs of {@link verifyStateProof}. */
export interface StateProofCheck {
  /** SHA-256 of the namespaced state key. */
  key: Uint8Array;
  /** Value hash claimed for the key, or null to check absence. */
  value: Uint8Array | null;
  proof: StateProof;
  /** State root from a trusted (signed) block header. */
  root: Uint8Array;
}

/** Verifies a state proof: `key` maps to `value` (or to nothing) in the tree whose root is `root`. */
export function verifyStateProof({ key, value, proof, root }: StateProofCheck): boolean {
  if (key.length !== 32 || (value !== null && value.length !== 32)) return false;
  if (!Array.isArray(proof?.siblings) || proof.siblings.length > 256) return false;
  const hex = /^[0-9a-f]{64}$/;
  if (!proof.siblings.every((s) => typeof s === 'string' && hex.test(s))) return false;
  const depth = proof.siblings.length;
  let h: Uint8Array;
  if (value !== null) {
    if (proof.other) return false;
    h = hashLeaf(key, value);
  } else if (proof.other) {
    if (!hex.test(proof.other.key) || !hex.test(proof.other.value)) return false;
    const otherKey = fromHex(proof.other.key);
    if (equalBytes(otherKey, key)) return false;
    // The other leaf must sit on the same path, i.e. share the first `depth` bits with `key`.
    for (let d = 0; d < depth; d++) if (bit(otherKey, d) !== bit(key, d)) return false;
    h = hashLeaf(otherKey, fromHex(proof.other.value));
  } else {
    h = EMPTY_HASH;
  }
  for (let d = depth - 1; d >= 0; d--) {
    const s = fromHex(proof.siblings[d]!);
    h = bit(key, d) ? hashInner(s, h) : hashInner(h, s);
  }
  return equalBytes(h, root);
}
