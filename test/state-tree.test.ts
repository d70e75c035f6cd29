import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { EMPTY_HASH, StateTree, verifyStateProof } from '../src/ledger/state-tree.js';
import { equalBytes, toHex } from '../src/protocol/bytes.js';
import { sha256 } from '../src/protocol/hash.js';

const key = (s: string) => sha256(Buffer.from(s));

function build(entries: Array<[Uint8Array, Uint8Array]>): StateTree {
  let t = StateTree.empty();
  for (const [k, v] of entries) t = t.set(k, v);
  return t;
}

describe('state tree (compact sparse Merkle tree)', () => {
  it('has the all-zero root when empty and proves absence there', () => {
    const t = StateTree.empty();
    assert.ok(equalBytes(t.root(), EMPTY_HASH));
    assert.ok(verifyStateProof({ key: key('a'), value: null, proof: t.prove(key('a')), root: t.root() }));
  });

  it('root depends only on the set of entries, not on insertion order', () => {
    const entries = Array.from({ length: 200 }, (_, i): [Uint8Array, Uint8Array] => [
      key(`k${i}`),
      key(`v${i}`),
    ]);
    const shuffled = [...entries].sort(() => Math.random() - 0.5);
    assert.ok(equalBytes(build(entries).root(), build(shuffled).root()));
  });

  it('proves every member and the absence of non-members; wrong values and roots fail', () => {
    const entries = Array.from({ length: 300 }, (_, i): [Uint8Array, Uint8Array] => [
      key(`id${i}`),
      randomBytes(32),
    ]);
    const t = build(entries);
    const root = t.root();
    for (const [k, v] of entries) {
      const proof = t.prove(k);
      assert.ok(verifyStateProof({ key: k, value: v, proof, root }));
      assert.ok(!verifyStateProof({ key: k, value: randomBytes(32), proof, root }), 'wrong value');
      assert.ok(!verifyStateProof({ key: k, value: null, proof, root }), 'member claimed absent');
      assert.ok(!verifyStateProof({ key: k, value: v, proof, root: randomBytes(32) }), 'wrong root');
      if (proof.siblings.length > 0) {
        const tampered = { siblings: [...proof.siblings.slice(0, -1), randomBytes(32).toString('hex')] };
        assert.ok(!verifyStateProof({ key: k, value: v, proof: tampered, root }), 'tampered sibling');
        assert.ok(
          !verifyStateProof({ key: k, value: v, proof: { siblings: proof.siblings.slice(1) }, root }),
          'truncated',
        );
      }
    }
    for (let i = 0; i < 100; i++) {
      const k = key(`absent${i}`);
      const proof = t.prove(k);
      assert.ok(verifyStateProof({ key: k, value: null, proof, root }), 'absence');
      assert.ok(!verifyStateProof({ key: k, value: randomBytes(32), proof, root }), 'absent claimed present');
    }
  });

  it('an absence proof cannot borrow a leaf from another path', () => {
    const entries = Array.from({ length: 50 }, (_, i): [Uint8Array, Uint8Array] => [
      key(`m${i}`),
      randomBytes(32),
    ]);
    const t = build(entries);
    const [k0, v0] = entries[0]!;
    const proof = t.prove(k0);
    // Claim "k0 is absent, the slot holds some other leaf" using a leaf whose key diverges early.
    const other = entries.find(([k]) => k[0]! >> 7 !== k0[0]! >> 7)!;
    const forged = {
      siblings: proof.siblings,
      other: { key: toHex(other[0]), value: toHex(other[1]) },
    };
    assert.ok(!verifyStateProof({ key: k0, value: null, proof: forged, root: t.root() }));
    assert.ok(verifyStateProof({ key: k0, value: v0, proof, root: t.root() }));
  });

  it('is persistent: setting a key returns a new tree and leaves the old one intact', () => {
    const t1 = build([[key('a'), key('1')]]);
    const r1 = t1.root();
    const t2 = t1.set(key('a'), key('2')).set(key('b'), key('3'));
    assert.ok(equalBytes(t1.root(), r1));
    assert.ok(!equalBytes(t2.root(), r1));
    assert.ok(equalBytes(t1.get(key('a'))!, key('1')));
    assert.ok(equalBytes(t2.get(key('a'))!, key('2')));
  });

  it('refuses malformed proofs without throwing', () => {
    const t = build([[key('a'), key('1')]]);
    for (const proof of [
      { siblings: ['zz'] },
      { siblings: 'x' },
      { siblings: new Array(300).fill('0'.repeat(64)) },
      null,
    ]) {
      assert.equal(
        verifyStateProof({ key: key('a'), value: key('1'), proof: proof as never, root: t.root() }),
        false,
      );
    }
  });
});
