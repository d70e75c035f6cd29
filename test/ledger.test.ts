import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { dataPaths, modeOf } from '../src/ledger/data-dir.js';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import type { CommittedTransaction } from '../src/ledger/ledger.js';
import {
  verifyCheckpointConsistency,
  verifyKeyRecordProof,
  verifyTransactionReceipt,
} from '../src/ledger/proofs.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { generateKeyPair } from '../src/pgp/key-pair.js';
import { isKlError } from '../src/protocol/errors.js';
import {
  fakeKey,
  fakeSignature,
  freshLedger,
  manualClock,
  PASSPHRASE,
  registration,
  tempDir,
} from './helpers.js';

const code = (c: string) => (err: unknown) => isKlError(err) && err.code === c;

describe('embedded ledger: commit and receipts', () => {
  it('registers a real OpenPGP key; the receipt and the key record verify against the genesis alone', async () => {
    const clock = manualClock();
    const { ledger } = freshLedger({ now: clock });
    const key = await generateKeyPair({ id: 'alice@example.org', name: 'Alice' });
    const receipt = await ledger.submit({
      type: 'KeyRegistered',
      body: {
        id: key.id,
        name: 'Alice',
        fingerprint: key.fingerprint,
        publicKey: key.publicKey,
        algorithm: key.algorithm,
      },
    });
    assert.equal(receipt.block.header.height, 1);
    assert.equal(receipt.block.header.time, clock());
    const genesis = JSON.parse(JSON.stringify(ledger.genesis));
    assert.deepEqual(verifyTransactionReceipt({ genesis, receipt }), {
      verified: true,
      txid: receipt.txid,
      height: 1,
      envelope: receipt.envelope,
    });
    const proof = await ledger.getKeyRecord('Alice@Example.ORG');
    const check = verifyKeyRecordProof({ genesis, proof });
    assert.ok(check.verified);
    assert.equal(check.record?.fingerprint, key.fingerprint);
    assert.equal(check.record?.status, 'active');
    await ledger.close();
  });

  it('groups transactions submitted together into one block (group commit)', async () => {
    const { ledger } = freshLedger();
    const receipts = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        ledger.submit({ type: 'KeyRegistered', body: registration(`u${i}@example.org`) }),
      ),
    );
    assert.deepEqual(new Set(receipts.map((r) => r.block.header.height)), new Set([1]));
    assert.equal(receipts[0]!.block.header.txCount, 50);
    receipts.forEach((r, i) => {
      assert.equal(r.index, i);
      assert.ok(verifyTransactionReceipt({ genesis: ledger.genesis, receipt: r }).verified);
    });
    await ledger.close();
  });

  it('splits a large batch at maxBlockTxs', async () => {
    const { ledger } = freshLedger({ maxBlockTxs: 10 });
    const receipts = await Promise.all(
      Array.from({ length: 25 }, () =>
        ledger.submit({ type: 'HashAnchored', body: { hash: 'a'.repeat(64), algorithm: 'sha256' } }),
      ),
    );
    assert.deepEqual(
      receipts.map((r) => r.block.header.txCount),
      [...Array(10).fill(10), ...Array(10).fill(10), ...Array(5).fill(5)],
    );
    assert.equal((await ledger.checkpoint())!.header.height, 3);
    await ledger.close();
  });

  it('lets each transaction wait its own time: a patient one joins the next due block, a lone one waits its maxWaitMs', async () => {
    const { ledger } = freshLedger({ batchWaitMs: 20 });
    const anchor = (c: string, options?: { maxWaitMs: number }) =>
      ledger.submit({ type: 'HashAnchored', body: { hash: c.repeat(64), algorithm: 'sha256' } }, options);
    // A patient transaction and a pressed one: one block, written when the pressed one is due.
    let t0 = performance.now();
    const [patient, pressed] = await Promise.all([anchor('a', { maxWaitMs: 5_000 }), anchor('b')]);
    assert.ok(performance.now() - t0 < 2_000, 'the block waited for the patient transaction');
    assert.equal(patient.block.header.height, pressed.block.header.height);
    assert.equal(pressed.block.header.txCount, 2);
    // A pressed transaction after a patient one brings the block forward.
    t0 = performance.now();
    const slow = anchor('c', { maxWaitMs: 300 });
    const fast = await anchor('d', { maxWaitMs: 0 });
    assert.equal((await slow).block.header.height, fast.block.header.height);
    assert.ok(performance.now() - t0 < 250, 'the pressed transaction waited for the patient one');
    // Alone, a patient transaction waits its own time, not the ledger's 20 ms.
    t0 = performance.now();
    await anchor('e', { maxWaitMs: 300 });
    assert.ok(performance.now() - t0 >= 290, 'a patient transaction was written before it was due');
    await ledger.close();
  });

  it('resolves submit only after the block is in the database (a second reader sees it at once)', async () => {
    const { ledger, dataDir } = freshLedger();
    const r = await ledger.submit({
      type: 'HashAnchored',
      body: { hash: 'b'.repeat(64), algorithm: 'sha256' },
    });
    const reader = EmbeddedLedger.open({ dataDir });
    const got = await reader.getTransaction(r.txid);
    assert.equal(got.txid, r.txid);
    assert.deepEqual(got.block, r.block);
    await reader.close();
    await ledger.close();
  });

  it('keeps everything across close and reopen, and proves the new checkpoint extends the old one', async () => {
    const { ledger, dataDir } = freshLedger();
    await ledger.submit({ type: 'KeyRegistered', body: registration('bob@example.org') });
    const old = (await ledger.checkpoint())!;
    await ledger.close();
    const again = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE });
    for (let i = 0; i < 5; i++) await again.submit({ type: 'AuditEvent', body: { event: 'login', at: i } });
    const proof = await again.consistency(old.header.height);
    assert.equal(proof.older.hash, old.hash);
    assert.ok(verifyCheckpointConsistency({ genesis: again.genesis, proof }).verified);
    assert.equal((await again.getKeyRecord('bob@example.org')).record?.id, 'bob@example.org');
    await again.close();
    assert.ok(verifyLedgerData({ dataDir }).ok);
  });

  it('tells subscribers about each committed transaction', async () => {
    const { ledger } = freshLedger();
    const seen: CommittedTransaction[] = [];
    const off = ledger.subscribe((t) => seen.push(t));
    const r = await ledger.submit({
      type: 'AuditEvent',
      body: { event: 'session_start', at: 1, session: 'abcdefgh' },
    });
    off();
    await ledger.submit({ type: 'AuditEvent', body: { event: 'session_end', at: 2, session: 'abcdefgh' } });
    assert.deepEqual(
      seen.map((s) => [s.txid, s.type, s.height]),
      [[r.txid, 'AuditEvent', 1]],
    );
    await ledger.close();
  });

  it('lists the transactions of an identity, oldest first', async () => {
    const { ledger } = freshLedger();
    const reg = registration('carol@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: reg });
    await ledger.submit({
      type: 'HashAnchored',
      body: { hash: 'c'.repeat(64), algorithm: 'sha256', id: 'carol@example.org' },
    });
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: 'carol@example.org',
        fingerprint: reg.fingerprint,
        reason: 'retired',
        by: 'owner',
        ownerSignature: fakeSignature(),
      },
    });
    const list = await ledger.transactionsFor('carol@example.org');
    assert.deepEqual(
      list.map((r) => r.envelope.tx.type),
      ['KeyRegistered', 'HashAnchored', 'KeyRevoked'],
    );
    await ledger.close();
  });
});

describe('embedded ledger: key record rules', () => {
  it('refuses a second registration of an identity, and the same key for two identities', async () => {
    const { ledger } = freshLedger();
    const reg = registration('dave@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: reg });
    await assert.rejects(
      ledger.submit({ type: 'KeyRegistered', body: registration('dave@example.org') }),
      code('KL_IDENTITY_TAKEN'),
    );
    await assert.rejects(
      ledger.submit({ type: 'KeyRegistered', body: { ...reg, id: 'dave2@example.org' } }),
      code('KL_KEY_IN_USE'),
    );
    await ledger.close();
  });

  it('refuses identities that are not canonical (case or Unicode variants cannot slip in)', async () => {
    const { ledger } = freshLedger();
    for (const id of ['Eve@example.org', 'eve@EXAMPLE.org', ' eve@example.org', 'ｅve@example.org']) {
      await assert.rejects(
        ledger.submit({ type: 'KeyRegistered', body: registration(id) }),
        code('KL_TX_MALFORMED'),
        id,
      );
    }
    await ledger.close();
  });

  it('refuses a key whose armor holds another armor line (a second block, or one that ends as another kind)', async () => {
    const { ledger } = freshLedger();
    const reg = registration('frank@example.org');
    const body = reg.publicKey.split('\n').slice(1, -2).join('\n');
    for (const publicKey of [
      `-----BEGIN PGP PUBLIC KEY BLOCK-----\n${body}\n-----END PGP SIGNATURE-----\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n${body}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
      `-----BEGIN PGP PUBLIC KEY BLOCK-----\n${body}\n-----BEGIN PGP SIGNATURE-----\n${body}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
    ]) {
      await assert.rejects(
        ledger.submit({ type: 'KeyRegistered', body: { ...reg, publicKey } }),
        code('KL_TX_MALFORMED'),
      );
    }
    await ledger.submit({ type: 'KeyRegistered', body: reg });
    await ledger.close();
  });

  it('in one block, only the first of two registrations of an identity wins', async () => {
    const { ledger } = freshLedger();
    const results = await Promise.allSettled([
      ledger.submit({ type: 'KeyRegistered', body: registration('race@example.org') }),
      ledger.submit({ type: 'KeyRegistered', body: registration('race@example.org') }),
    ]);
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    assert.ok(code('KL_IDENTITY_TAKEN')((results[1] as PromiseRejectedResult).reason));
    await ledger.close();
  });

  it('rotation needs the current fingerprint; revocation is final until a new registration', async () => {
    const { ledger } = freshLedger();
    const reg = registration('frank@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: reg });
    const next = fakeKey();
    const rotate = (old: string) => ({
      type: 'KeyRotated' as const,
      body: {
        id: 'frank@example.org',
        oldFingerprint: old,
        ...next,
        algorithm: 'ed25519-legacy',
        oldKeySignature: fakeSignature(),
        newKeySignature: fakeSignature(),
      },
    });
    await assert.rejects(ledger.submit(rotate(fakeKey().fingerprint)), code('KL_KEY_MISMATCH'));
    await ledger.submit(rotate(reg.fingerprint));
    let rec = (await ledger.getKeyRecord('frank@example.org')).record!;
    assert.equal(rec.fingerprint, next.fingerprint);
    assert.deepEqual(
      rec.history.map((h) => [h.fingerprint, h.reason]),
      [[reg.fingerprint, 'rotated']],
    );

    const revoke = {
      type: 'KeyRevoked' as const,
      body: {
        id: 'frank@example.org',
        fingerprint: next.fingerprint,
        reason: 'compromised' as const,
        by: 'admin' as const,
        admin: 'root@example.org',
      },
    };
    await ledger.submit(revoke);
    await assert.rejects(ledger.submit(revoke), code('KL_KEY_REVOKED'));
    await assert.rejects(ledger.submit(rotate(next.fingerprint)), code('KL_KEY_REVOKED'));
    rec = (await ledger.getKeyRecord('frank@example.org')).record!;
    assert.equal(rec.status, 'revoked');
    assert.equal(rec.revocation?.by, 'admin');

    // A revoked key can never come back, but the identity may register a new key.
    await assert.rejects(
      ledger.submit({
        type: 'KeyRegistered',
        body: { ...registration('frank@example.org'), fingerprint: next.fingerprint },
      }),
      code('KL_KEY_IN_USE'),
    );
    const fresh = registration('frank@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: fresh });
    rec = (await ledger.getKeyRecord('frank@example.org')).record!;
    assert.equal(rec.status, 'active');
    assert.deepEqual(
      rec.history.map((h) => h.reason),
      ['rotated', 'revoked'],
    );
    await ledger.close();
  });

  it('unknown identities: revocation is refused and the record proof shows absence', async () => {
    const { ledger } = freshLedger();
    await ledger.submit({ type: 'KeyRegistered', body: registration('gina@example.org') });
    await assert.rejects(
      ledger.submit({
        type: 'KeyRevoked',
        body: {
          id: 'nobody@example.org',
          fingerprint: fakeKey().fingerprint,
          reason: 'retired',
          by: 'owner',
          ownerSignature: fakeSignature(),
        },
      }),
      code('KL_IDENTITY_UNKNOWN'),
    );
    const proof = await ledger.getKeyRecord('nobody@example.org');
    assert.equal(proof.record, null);
    assert.ok(verifyKeyRecordProof({ genesis: ledger.genesis, proof }).verified);
    await ledger.close();
  });
});

describe('embedded ledger: data directory', () => {
  it('keeps private keys sealed with mode 0600 in a 0700 directory; a wrong passphrase opens nothing', async () => {
    const dataDir = `${tempDir()}/d`;
    initEmbeddedLedger({ dataDir, passphrase: PASSPHRASE });
    const p = dataPaths(dataDir);
    assert.equal(modeOf(p.validatorKey), 0o600);
    assert.equal(modeOf(p.registrarKey), 0o600);
    assert.equal(modeOf(dataDir), 0o700);
    assert.ok(!readFileSync(p.validatorKey, 'utf8').includes('PRIVATE'));
    assert.throws(() => EmbeddedLedger.open({ dataDir, passphrase: 'wrong' }), code('KL_PASSPHRASE_WRONG'));
    assert.ok(!existsSync(p.lock), 'a failed open leaves no lock behind');
    assert.throws(() => initEmbeddedLedger({ dataDir, passphrase: PASSPHRASE }), code('KL_DATA_DIR'));
  });

  it('allows one writer at a time; readers are always welcome; a read-only ledger refuses writes', async () => {
    const { ledger, dataDir } = freshLedger();
    assert.throws(() => EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE }), code('KL_DATA_DIR'));
    const reader = EmbeddedLedger.open({ dataDir });
    await assert.rejects(
      reader.submit({ type: 'AuditEvent', body: { event: 'login', at: 1 } }),
      code('KL_NOT_PERMITTED'),
    );
    await reader.close();
    await ledger.close();
    const second = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE });
    await second.close();
  });

  it('finishes pending writes on close and refuses new ones after', async () => {
    const { ledger, dataDir } = freshLedger();
    const pending = ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: 1 } });
    await ledger.close();
    const r = await pending;
    assert.equal(r.block.header.height, 1);
    await assert.rejects(
      ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: 2 } }),
      code('KL_LEDGER_CLOSED'),
    );
    assert.ok(verifyLedgerData({ dataDir }).ok);
  });

  it('block time never goes backwards even when the clock does', async () => {
    const clock = manualClock();
    const { ledger } = freshLedger({ now: clock });
    const a = await ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: 1 } });
    clock.advance(-60_000);
    const b = await ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: 2 } });
    assert.ok(b.block.header.time >= a.block.header.time);
    await ledger.close();
  });
});

describe('embedded ledger: rows added to the live file outside the ledger', () => {
  it('an identity row the state tree does not hold is never used: lookups say absent, the admin list refuses', async () => {
    const { ledger, dataDir } = freshLedger();
    await ledger.submit({ type: 'KeyRegistered', body: registration('real@example.org') });
    const db = new Database(dataPaths(dataDir).db);
    db.prepare('INSERT INTO state(key, value) VALUES (?, ?)').run(
      'identity:ghost@example.org',
      JSON.stringify({ id: 'ghost@example.org', status: 'active' }),
    );
    db.close();
    assert.equal((await ledger.getKeyRecord('ghost@example.org')).record, null);
    await assert.rejects(
      ledger.listIdentities({ query: 'ghost' }),
      (err: unknown) => isKlError(err, 'KL_LEDGER_CORRUPT') && /added outside the ledger/.test(String(err)),
    );
    assert.equal((await ledger.listIdentities({ query: 'real' })).records.length, 1);
    await ledger.close();
    assert.match(verifyLedgerData({ dataDir }).problem?.reason ?? '', /not explained by any transaction/);
  });
});
