import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  leafHash,
  MerkleTree,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from '../src/ledger/merkle.js';
import { equalBytes, toHex } from '../src/protocol/bytes.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`./fixtures/rfc6962/${name}`, import.meta.url), 'utf8'));
const b64 = (s: string) => Buffer.from(s, 'base64');

interface InclusionCase {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface ConsistencyCase {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

const heads = fixture('tree-heads.json') as { leavesHex: string[]; emptyRootHex: string; rootsHex: string[] };
const leaves = heads.leavesHex.map((h) => leafHash(Buffer.from(h, 'hex')));

describe('RFC 6962 Merkle tree hash', () => {
  it('matches the reference tree heads for 0..8 leaves', () => {
    assert.equal(toHex(merkleRoot([])), heads.emptyRootHex);
    heads.rootsHex.forEach((root, i) => {
      assert.equal(toHex(merkleRoot(leaves.slice(0, i + 1))), root, `size ${i + 1}`);
      assert.equal(toHex(new MerkleTree(leaves).root(i + 1)), root, `prefix root of size ${i + 1}`);
    });
  });

  it('agrees with a naive recursive MTH for every size up to 70', () => {
    const naive = (l: Uint8Array[]): Uint8Array => {
      if (l.length === 1) return l[0]!;
      let k = 1;
      while (k * 2 < l.length) k *= 2;
      return Buffer.from(
        createHash('sha256')
          .update(Buffer.from([1]))
          .update(naive(l.slice(0, k)))
          .update(naive(l.slice(k)))
          .digest(),
      );
    };
    const many = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from([i])));
    const tree = new MerkleTree(many);
    for (let n = 1; n <= 70; n++) assert.ok(equalBytes(tree.root(n), naive(many.slice(0, n))), `size ${n}`);
  });
});

describe('RFC 6962 inclusion proofs (transparency-dev vectors)', () => {
  for (const c of fixture('inclusion.json') as InclusionCase[]) {
    it(`${c.wantErr ? 'rejects' : 'accepts'}: ${c.desc}`, () => {
      const ok = verifyInclusion({
        leafHash: b64(c.leafHash),
        index: c.leafIdx,
        treeSize: c.treeSize,
        proof: (c.proof ?? []).map(b64),
        root: b64(c.root),
      });
      assert.equal(ok, !c.wantErr);
    });
  }

  it('generates proofs that match the vectors', () => {
    const tree = new MerkleTree(leaves);
    for (const c of (fixture('inclusion.json') as InclusionCase[]).filter((x) => !x.wantErr)) {
      assert.deepEqual(
        tree.inclusionProof(c.leafIdx, c.treeSize).map((p) => Buffer.from(p).toString('base64')),
        c.proof ?? [],
      );
    }
  });

  it('every proof for every leaf of trees of 1..40 leaves verifies; altered ones do not', () => {
    const many = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    const tree = new MerkleTree(many);
    for (let n = 1; n <= 40; n++) {
      const root = tree.root(n);
      for (let i = 0; i < n; i++) {
        const proof = tree.inclusionProof(i, n);
        assert.ok(
          verifyInclusion({ leafHash: many[i]!, index: i, treeSize: n, proof, root }),
          `leaf ${i} of ${n}`,
        );
        if (n > 1) {
          assert.ok(
            !verifyInclusion({ leafHash: many[i]!, index: (i + 1) % n, treeSize: n, proof, root }),
            'wrong index',
          );
          assert.ok(
            !verifyInclusion({ leafHash: many[i]!, index: i, treeSize: n, proof: proof.slice(1), root }),
            'truncated path',
          );
          assert.ok(
            !verifyInclusion({ leafHash: many[(i + 1) % n]!, index: i, treeSize: n, proof, root }),
            'wrong leaf',
          );
        }
        assert.ok(
          !verifyInclusion({ leafHash: many[i]!, index: i, treeSize: n, proof: [...proof, root], root }),
          'extra element',
        );
        assert.ok(
          !verifyInclusion({
            leafHash: many[i]!,
            index: i,
            treeSize: n,
            proof,
            root: tree.root(n === 40 ? 39 : n + 1),
          }),
          'wrong root',
        );
      }
    }
  });
});

describe('RFC 6962 consistency proofs (transparency-dev vectors)', () => {
  for (const c of fixture('consistency.json') as ConsistencyCase[]) {
    it(`${c.wantErr ? 'rejects' : 'accepts'}: ${c.desc}`, () => {
      const ok = verifyConsistency({
        size1: c.size1,
        size2: c.size2,
        root1: b64(c.root1),
        root2: b64(c.root2),
        proof: (c.proof ?? []).map(b64),
      });
      assert.equal(ok, !c.wantErr);
    });
  }

  it('generates proofs that match the vectors', () => {
    const tree = new MerkleTree(leaves);
    for (const c of (fixture('consistency.json') as ConsistencyCase[]).filter((x) => !x.wantErr)) {
      assert.deepEqual(
        tree.consistencyProof(c.size1, c.size2).map((p) => Buffer.from(p).toString('base64')),
        c.proof ?? [],
      );
    }
  });

  it('every pair of sizes 1 ≤ m ≤ n ≤ 33 verifies; tampered proofs do not', () => {
    const many = Array.from({ length: 33 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
    const tree = new MerkleTree(many);
    const other = new MerkleTree(many.map((l, i) => (i === 0 ? leafHash(Buffer.from('forged')) : l)));
    for (let n = 1; n <= 33; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = tree.consistencyProof(m, n);
        const args = { size1: m, size2: n, root1: tree.root(m), root2: tree.root(n), proof };
        assert.ok(verifyConsistency(args), `${m} -> ${n}`);
        assert.ok(!verifyConsistency({ ...args, root1: other.root(m) }), `forked history ${m} -> ${n}`);
        if (proof.length > 0) {
          assert.ok(!verifyConsistency({ ...args, proof: proof.slice(0, -1) }), `truncated ${m} -> ${n}`);
          const flipped = proof.map((p, i) =>
            i === 0 ? Buffer.from(p.map((b, j) => (j === 0 ? b ^ 1 : b))) : p,
          );
          assert.ok(!verifyConsistency({ ...args, proof: flipped }), `modified ${m} -> ${n}`);
        }
      }
    }
  });
});
