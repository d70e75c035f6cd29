/** Invitation and emailed codes at rest (src/server/identity-proofs.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentityProofs, MAX_LIVE_EMAIL_CODES } from '../src/server/identity-proofs.js';
import { tempDir } from './helpers.js';

const count = (proofs: IdentityProofs) =>
  (
    proofs.db.prepare("SELECT count(*) AS n FROM identity_proofs WHERE method = 'email'").get() as {
      n: number;
    }
  ).n;

describe('emailed codes', () => {
  it("a new code leaves the earlier ones valid (a stranger asking cannot void the owner's code)", () => {
    const proofs = new IdentityProofs(tempDir());
    const now = Date.now();
    const first = proofs.issueEmailCode('a@example.org', now, now + 60_000);
    const second = proofs.issueEmailCode('a@example.org', now + 1, now + 60_000);
    proofs.check('a@example.org', 'email', first, now + 2);
    proofs.check('a@example.org', 'email', second, now + 2);
    assert.equal(proofs.liveEmailCodes('a@example.org', now + 2), 2);
    // Once one is used, the others go with it; expired codes never count.
    proofs.consume('a@example.org', 'email', second, now + 3);
    assert.throws(() => proofs.check('a@example.org', 'email', first, now + 4), {
      code: 'KL_IDENTITY_PROOF_INVALID',
    });
    assert.equal(proofs.liveEmailCodes('a@example.org', now + 4), 0);
    const late = proofs.issueEmailCode('b@example.org', now, now + 10);
    assert.throws(() => proofs.check('b@example.org', 'email', late, now + 10), {
      code: 'KL_IDENTITY_PROOF_INVALID',
    });
    proofs.close();
  });

  it('any number of codes for one address: the newest stay valid, none collides, the table stays small', () => {
    const proofs = new IdentityProofs(tempDir());
    const now = Date.now();
    // 20,000 codes of 8 digits for one address: an earlier code coming up again is likely; it must
    // not fail (it did: a duplicate key, a 500 found by fuzzing).
    const issued: string[] = [];
    for (let i = 0; i < 20_000; i++) issued.push(proofs.issueEmailCode('a@example.org', now, now + 60_000));
    const newest = issued.slice(-MAX_LIVE_EMAIL_CODES);
    for (const code of newest) proofs.check('a@example.org', 'email', code, now);
    const retired = issued.slice(0, -MAX_LIVE_EMAIL_CODES).filter((c) => !newest.includes(c));
    assert.throws(() => proofs.check('a@example.org', 'email', retired.at(-1)!, now), {
      code: 'KL_IDENTITY_PROOF_INVALID',
    });
    assert.ok(count(proofs) <= MAX_LIVE_EMAIL_CODES);
    proofs.close();
  });

  it('wrong codes are not counted against the identity: the right code still works after many', () => {
    const proofs = new IdentityProofs(tempDir());
    const now = Date.now();
    const code = proofs.issueEmailCode('c@example.org', now, now + 60_000);
    for (let i = 0; i < 50; i++) {
      const wrong = String((Number(code) + 1 + i) % 1e8).padStart(8, '0');
      assert.throws(() => proofs.check('c@example.org', 'email', wrong, now), {
        code: 'KL_IDENTITY_PROOF_INVALID',
      });
    }
    proofs.check('c@example.org', 'email', code, now);
    proofs.close();
  });
});
