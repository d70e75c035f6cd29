/** Invitation and emailed codes at rest (src/server/identity-proofs.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentityProofs } from '../src/server/identity-proofs.js';
import { tempDir } from './helpers.js';

describe('emailed codes', () => {
  it('any number of codes for one address: each supersedes the last, none collides, the table stays small', () => {
    const dir = tempDir();
    const proofs = new IdentityProofs(dir);
    const now = Date.now();
    // 20,000 codes of 8 digits for one address: an earlier code coming up again is likely; it must
    // not fail (it did: a duplicate key, a 500 found by fuzzing).
    let last = '';
    let previous = '';
    for (let i = 0; i < 20_000; i++) {
      previous = last;
      last = proofs.issueEmailCode('a@example.org', now, now + 60_000);
    }
    proofs.check('a@example.org', 'email', last, now);
    if (previous !== last)
      assert.throws(() => proofs.check('a@example.org', 'email', previous, now), {
        code: 'KL_IDENTITY_PROOF_INVALID',
      });
    const rows = proofs.db
      .prepare("SELECT count(*) AS n FROM identity_proofs WHERE method = 'email'")
      .get() as { n: number };
    assert.equal(rows.n, 1);
    proofs.close();
  });
});
