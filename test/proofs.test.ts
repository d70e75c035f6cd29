import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { signHeader } from '../src/ledger/block.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { chainIdOf } from '../src/ledger/genesis.js';
import {
  verifyCheckpointConsistency,
  verifyKeyRecordProof,
  verifyTransactionReceipt,
} from '../src/ledger/proofs.js';
import { SigningKey } from '../src/ledger/signing-keys.js';
import { freshLedger, PASSPHRASE, registration, tempDir } from './helpers.js';

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

describe('receipts (transaction inclusion)', () => {
  it('verify for every position of a block; tampered receipts do not', async () => {
    const { ledger } = freshLedger();
    const receipts = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: i } }),
      ),
    );
    const { genesis } = ledger;
    for (const r of receipts) assert.ok(verifyTransactionReceipt({ genesis, receipt: r }).verified);
    const r = receipts[3]!;

    const changedTx = clone(r);
    (changedTx.envelope.tx.body as { at: number }).at = 99;
    assert.deepEqual(verifyTransactionReceipt({ genesis, receipt: changedTx }), {
      verified: false,
      code: 'KL_PROOF_INVALID',
      reason: 'receipt transaction does not match its id',
    });

    const wrongIndex = { ...clone(r), index: 4 };
    assert.equal(verifyTransactionReceipt({ genesis, receipt: wrongIndex }).verified, false);

    const truncated = { ...clone(r), proof: r.proof.slice(1) };
    assert.equal(verifyTransactionReceipt({ genesis, receipt: truncated }).verified, false);

    // A block header re-signed by a key that is not a validator of this genesis.
    const impostor = SigningKey.generate();
    const forgedBlock = { ...clone(r), block: signHeader(clone(r.block.header), impostor) };
    const res = verifyTransactionReceipt({ genesis, receipt: forgedBlock });
    assert.equal(res.verified, false);
    assert.equal(!res.verified && res.code, 'KL_CHECKPOINT_INVALID');

    // The same receipt checked against another ledger's genesis.
    const other = freshLedger();
    assert.equal(verifyTransactionReceipt({ genesis: other.ledger.genesis, receipt: r }).verified, false);
    assert.notEqual(chainIdOf(other.ledger.genesis), ledger.chainId);
    await other.ledger.close();

    for (const junk of [
      null,
      {},
      { block: 5 },
      { ...clone(r), proof: ['zz'] },
      { ...clone(r), proof: 'x' },
    ]) {
      assert.equal(verifyTransactionReceipt({ genesis, receipt: junk as never }).verified, false);
    }
    await ledger.close();
  });
});

describe('key record proofs', () => {
  it('a record edited after the fact (status flipped back to active) fails', async () => {
    const { ledger } = freshLedger();
    const reg = registration('ivan@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: reg });
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: reg.id,
        fingerprint: reg.fingerprint,
        reason: 'compromised',
        by: 'admin',
        admin: 'root@example.org',
      },
    });
    const proof = await ledger.getKeyRecord(reg.id);
    assert.ok(verifyKeyRecordProof({ genesis: ledger.genesis, proof }).verified);
    const lie = clone(proof);
    lie.record!.status = 'active';
    delete lie.record!.revocation;
    assert.equal(verifyKeyRecordProof({ genesis: ledger.genesis, proof: lie }).verified, false);
    const hidden = { ...clone(proof), record: null };
    assert.equal(
      verifyKeyRecordProof({ genesis: ledger.genesis, proof: hidden }).verified,
      false,
      'a registered identity claimed absent',
    );
    const swapped = { ...clone(proof), id: 'judy@example.org' };
    assert.equal(verifyKeyRecordProof({ genesis: ledger.genesis, proof: swapped }).verified, false);
    await ledger.close();
  });
});

describe('checkpoint consistency (append-only history)', () => {
  it('verifies between any two heights', async () => {
    const { ledger } = freshLedger();
    for (let i = 0; i < 12; i++) await ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: i } });
    for (let a = 1; a <= 12; a++) {
      for (let b = a; b <= 12; b++) {
        const proof = await ledger.consistency(a, b);
        assert.ok(verifyCheckpointConsistency({ genesis: ledger.genesis, proof }).verified, `${a} -> ${b}`);
      }
    }
    await assert.rejects(ledger.consistency(5, 3));
    await assert.rejects(ledger.consistency(1, 13));
    await ledger.close();
  });

  it('detects a forked history: a client keeping an old checkpoint refuses the rewritten ledger', async () => {
    const { ledger, dataDir } = freshLedger();
    for (let i = 0; i < 3; i++) await ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: i } });
    await ledger.close();
    // The operator copies the directory at height 3 and the two copies diverge (the validator key is
    // the same, so every header is validly signed: only the history proofs can tell).
    const forkDir = join(tempDir(), 'fork');
    cpSync(dataDir, forkDir, { recursive: true });
    const honest = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE });
    const fork = EmbeddedLedger.open({ dataDir: forkDir, passphrase: PASSPHRASE });
    await honest.submit({ type: 'KeyRegistered', body: registration('kim@example.org') });
    await fork.submit({ type: 'AuditEvent', body: { event: 'something_else', at: 1 } });
    for (let i = 0; i < 3; i++) {
      await honest.submit({ type: 'AuditEvent', body: { event: 'login', at: 10 + i } });
      await fork.submit({ type: 'AuditEvent', body: { event: 'login', at: 10 + i } });
    }
    const clientKept = (await honest.checkpoint())!; // height 7 on the honest ledger
    assert.equal(clientKept.header.height, 7);
    await fork.submit({ type: 'AuditEvent', body: { event: 'login', at: 99 } });
    const forged = await fork.consistency(4, 8);
    // The fork's own proof is internally fine, but not from the checkpoint the client holds.
    assert.ok(verifyCheckpointConsistency({ genesis: honest.genesis, proof: forged }).verified);
    const attempt = { ...forged, older: (await honest.getBlock(4)).block };
    assert.equal(verifyCheckpointConsistency({ genesis: honest.genesis, proof: attempt }).verified, false);
    const fromKept = { ...(await fork.consistency(7, 8)), older: clientKept };
    assert.equal(verifyCheckpointConsistency({ genesis: honest.genesis, proof: fromKept }).verified, false);
    // Same height, different blocks: refused outright.
    const same = { older: clientKept, newer: (await fork.getBlock(7)).block, consistency: [], inclusion: [] };
    const res = verifyCheckpointConsistency({ genesis: honest.genesis, proof: same });
    assert.equal(!res.verified && res.reason, 'two different blocks at the same height');
    await honest.close();
    await fork.close();
  });
});
