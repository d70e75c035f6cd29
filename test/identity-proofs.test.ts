/** Invitation and emailed codes at rest (src/server/identity-proofs.ts). */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
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

describe('device invitations taken for a key', () => {
  const id = 'd@example.org';
  const laptop = 'a'.repeat(40);

  it('a taken invitation passes again for the key it was taken for only; given back, for any key', () => {
    const proofs = new IdentityProofs(tempDir());
    const now = Date.now();
    const code = proofs.issueInvite(id, now, now + 60_000, { issuer: 'ops@example.org' });
    assert.deepEqual(proofs.check(id, 'device', code, now, laptop), {
      issuer: 'ops@example.org',
      used: false,
    });
    proofs.consume(id, 'device', code, now, laptop);
    assert.deepEqual(proofs.check(id, 'device', code, now, laptop), {
      issuer: 'ops@example.org',
      used: true,
    });
    for (const other of [undefined, 'b'.repeat(40)])
      assert.throws(() => proofs.check(id, 'device', code, now, other), {
        code: 'KL_IDENTITY_PROOF_INVALID',
      });
    // Still bound to its identity and its expiry.
    assert.throws(() => proofs.check('e@example.org', 'device', code, now, laptop), {
      code: 'KL_IDENTITY_PROOF_INVALID',
    });
    assert.throws(() => proofs.check(id, 'device', code, now + 60_000, laptop), {
      code: 'KL_IDENTITY_PROOF_INVALID',
    });
    proofs.release(id, 'device', code);
    assert.equal(proofs.check(id, 'device', code, now, 'b'.repeat(40)).used, false);
    // A registration code taken with no key named passes for no key.
    const invite = proofs.issueInvite(id, now, now + 60_000);
    proofs.consume(id, 'invite', invite, now);
    assert.throws(() => proofs.check(id, 'invite', invite, now, laptop), {
      code: 'KL_IDENTITY_PROOF_INVALID',
    });
    proofs.close();
  });

  /** A row as an earlier version wrote it: the code hashed as identity-proofs.ts hashes it (L read as 1). */
  const oldRow = (method: string, code: string) => [
    id,
    method,
    createHash('sha256')
      .update(`${method}\n${id}\n${code.replace(/-/g, '').replace(/L/g, '1')}`)
      .digest(),
  ];
  const LIVE = 'KL-0000-1111-2222-3333-4444';
  const TAKEN = 'KL-5555-6666-7777-8888-9999';

  for (const [version, columns, method] of [
    ['1 (registration invitations and emailed codes)', '', 'invite'],
    ['2 (device invitations with their issuer)', ', issuer TEXT', 'device'],
  ] as const)
    it(`a store of version ${version} is brought up to date, its codes kept; a code taken before stays taken`, () => {
      const dir = tempDir();
      const now = Date.now();
      const old = new Database(join(dir, 'server.sqlite'));
      old.exec(`CREATE TABLE identity_proofs (
        id TEXT NOT NULL, method TEXT NOT NULL, hash BLOB NOT NULL, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, used_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0${columns},
        PRIMARY KEY (id, method, hash))`);
      const insert = old.prepare(
        'INSERT INTO identity_proofs(id, method, hash, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)',
      );
      insert.run(...oldRow(method, LIVE), now, now + 60_000, null);
      insert.run(...oldRow(method, TAKEN), now, now + 60_000, now);
      old.close();

      const proofs = new IdentityProofs(dir);
      const names = (
        proofs.db.prepare('PRAGMA table_info(identity_proofs)').all() as Array<{ name: string }>
      ).map((c) => c.name);
      assert.ok(names.includes('issuer') && names.includes('used_for'), names.join());
      assert.deepEqual(proofs.check(id, method, LIVE, now, laptop), { issuer: null, used: false });
      // Taken before the key was recorded: taken for good, whichever key asks.
      assert.throws(() => proofs.check(id, method, TAKEN, now, laptop), {
        code: 'KL_IDENTITY_PROOF_INVALID',
      });
      proofs.consume(id, method, LIVE, now, laptop);
      assert.equal(proofs.check(id, method, LIVE, now, laptop).used, true);
      proofs.close();
      // Opened again: nothing changes.
      const again = new IdentityProofs(dir);
      assert.equal(again.check(id, method, LIVE, now, laptop).used, true);
      again.close();
    });
});
