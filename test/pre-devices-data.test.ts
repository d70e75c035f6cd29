/**
 * A data directory written before devices and recovery existed (docs/ledger.md "Devices": a record
 * without `devices` is an identity with one device, so nothing is rewritten). The committed
 * directory test/vectors/pre-devices-data was made by the code of commit 153de1e^ (the last before
 * devices): alice registered, bob registered and revoked by an operator, carol registered and
 * rotated. Today's code opens it as it is: the offline audit passes, every key record reads (and
 * proves) as one device, and the new transactions apply on top of it, still verifying.
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { activeDevices } from '../src/ledger/devices.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { verifyKeyRecordProof } from '../src/ledger/proofs.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { check } from '../src/protocol/schemas/check.js';
import { KeyRecordSchema } from '../src/protocol/schemas/ledger.js';
import { fakeKey, fakeSignature, PASSPHRASE, tempDir } from './helpers.js';

const FIXTURE = new URL('./vectors/pre-devices-data/', import.meta.url);
const ALICE = 'c738286d614b2d2ca717b2c636d6f0abf5158d4b';
const CAROL = 'dc22fa5fa7240257a22684876d4fbf25a002c520';
const CAROL_OLD = '188e3cabd69cd5ffa6b350a25b692ba40fd2e98c';

/** A copy of the committed directory (opening a ledger writes to it). */
function copy(): string {
  const dataDir = join(tempDir('kl-pre-devices-'), 'data');
  cpSync(FIXTURE, dataDir, { recursive: true });
  return dataDir;
}

describe('a data directory from before devices', () => {
  it('verifies offline, and every identity reads and proves as one device', async () => {
    const dataDir = copy();
    const audit = verifyLedgerData({ dataDir });
    assert.equal(audit.ok, true, audit.problem?.reason);
    const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE });
    try {
      const proven = async (id: string) => {
        const proof = await ledger.getKeyRecord(id);
        const r = verifyKeyRecordProof({ genesis: ledger.genesis, proof });
        assert.ok(r.verified, `${id}: ${!r.verified ? r.reason : ''}`);
        check(KeyRecordSchema, r.record, 'KL_BAD_INPUT', 'record');
        return r.record!;
      };
      const alice = await proven('alice@example.org');
      assert.deepEqual(
        activeDevices(alice).map((d) => [d.name, d.fingerprint, d.primary, d.added.height]),
        [[null, ALICE, true, alice.registered.height]],
      );
      assert.equal(alice.recovery, undefined);
      assert.deepEqual(activeDevices(await proven('bob@example.org')), []);
      const carol = await proven('carol@example.org');
      assert.deepEqual(
        activeDevices(carol).map((d) => d.fingerprint),
        [CAROL],
      );
      assert.deepEqual(
        carol.history.map((h) => [h.fingerprint, h.reason]),
        [[CAROL_OLD, 'rotated']],
      );
    } finally {
      await ledger.close();
    }
  });

  it('takes devices and a recovery on top of the old records, and still verifies', async () => {
    const dataDir = copy();
    const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE });
    const id = 'alice@example.org';
    const phone = fakeKey();
    await ledger.submit({
      type: 'DeviceAdded',
      body: {
        id,
        name: 'phone',
        ...phone,
        algorithm: 'ed25519-legacy',
        time: Date.now(),
        approvedBy: { device: ALICE, signature: fakeSignature() },
        newKeySignature: fakeSignature(),
      },
    });
    const recovery = fakeKey();
    await ledger.submit({
      type: 'RecoveryKeySet',
      body: {
        id,
        ...recovery,
        algorithm: 'ed25519-legacy',
        time: Date.now(),
        setBy: { device: phone.fingerprint, signature: fakeSignature() },
        keySignature: fakeSignature(),
      },
    });
    const part = () => ({ ...fakeKey(), algorithm: 'ed25519-legacy', signature: fakeSignature() });
    const laptop = part();
    await ledger.submit({
      type: 'Recovered',
      body: {
        id,
        recovery: recovery.fingerprint,
        signature: fakeSignature(),
        time: Date.now(),
        device: { ...laptop, name: 'laptop' },
        nextRecovery: part(),
      },
    });
    const { record } = await ledger.getKeyRecord(id);
    assert.deepEqual(
      activeDevices(record!).map((d) => d.fingerprint),
      [laptop.fingerprint],
    );
    assert.deepEqual(
      record!.history.map((h) => [h.fingerprint, h.reason]),
      [
        [ALICE, 'revoked'],
        [phone.fingerprint, 'revoked'],
      ],
    );
    await ledger.close();
    const audit = verifyLedgerData({ dataDir });
    assert.equal(audit.ok, true, audit.problem?.reason);
  });
});
