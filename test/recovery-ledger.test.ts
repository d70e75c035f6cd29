/**
 * The ledger's recovery rules (docs/ledger.md "Recovery"): RecoveryKeySet by an active device,
 * Recovered by the recovery key on the ledger (every device leaves, the new one is the only device,
 * the next recovery key replaces the one used), the last device revocable once a recovery key
 * exists, and the offline audit of it all. Signatures inside bodies are the server's to check
 * (test/recovery.test.ts); here only the state rules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { activeDevices } from '../src/ledger/devices.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { isKlError } from '../src/protocol/errors.js';
import { check } from '../src/protocol/schemas/check.js';
import { KeyRecordSchema } from '../src/protocol/schemas/ledger.js';
import { fakeKey, fakeSignature, freshLedger, registration } from './helpers.js';

const code = (c: string) => (err: unknown) => isKlError(err) && err.code === c;
const ID = 'rosa@example.org';

function recoveryKeySet(device: string, key = fakeKey(), replaces?: string) {
  return {
    type: 'RecoveryKeySet' as const,
    body: {
      id: ID,
      ...key,
      algorithm: 'ed25519-legacy',
      time: Date.now(),
      setBy: { device, signature: fakeSignature() },
      keySignature: fakeSignature(),
      ...(replaces ? { replaces: { fingerprint: replaces, signature: fakeSignature() } } : {}),
    } satisfies TxBodies['RecoveryKeySet'],
  };
}

function recovered(recovery: string, name = 'new-phone', device = fakeKey(), next = fakeKey()) {
  const part = (key: { fingerprint: string; publicKey: string }) => ({
    ...key,
    algorithm: 'ed25519-legacy',
    signature: fakeSignature(),
  });
  return {
    type: 'Recovered' as const,
    body: {
      id: ID,
      recovery,
      signature: fakeSignature(),
      time: Date.now(),
      device: { ...part(device), name },
      nextRecovery: part(next),
    } satisfies TxBodies['Recovered'],
  };
}

async function setup() {
  const { ledger, dataDir } = freshLedger();
  const first = { ...registration(ID), device: 'laptop' };
  await ledger.submit({ type: 'KeyRegistered', body: first });
  const record = async () => (await ledger.getKeyRecord(ID)).record!;
  return { ledger, dataDir, first, record };
}

describe('recovery on the ledger', () => {
  it('a device sets the recovery key; a recovery revokes every device, enrols the new one and replaces the recovery key', async () => {
    const { ledger, dataDir, first, record } = await setup();
    const phone = fakeKey();
    await ledger.submit({
      type: 'DeviceAdded',
      body: {
        id: ID,
        name: 'phone',
        ...phone,
        algorithm: 'ed25519-legacy',
        time: Date.now(),
        approvedBy: { device: first.fingerprint, signature: fakeSignature() },
        newKeySignature: fakeSignature(),
      },
    });
    const set = recoveryKeySet(phone.fingerprint);
    const setReceipt = await ledger.submit(set);
    let rec = await record();
    assert.deepEqual(rec.recovery, {
      fingerprint: set.body.fingerprint,
      publicKey: set.body.publicKey,
      algorithm: 'ed25519-legacy',
      added: { height: setReceipt.block.header.height, txid: setReceipt.txid, time: set.body.time },
      setBy: { device: phone.fingerprint },
    });
    // A recovery key is never a device: it cannot log in.
    assert.deepEqual(
      activeDevices(rec).map((d) => d.fingerprint),
      [first.fingerprint, phone.fingerprint],
    );
    // Replacing it takes the current recovery key: a device alone (a stolen one) cannot.
    await assert.rejects(ledger.submit(recoveryKeySet(first.fingerprint)), code('KL_RECOVERY_INVALID'));
    await assert.rejects(
      ledger.submit(recoveryKeySet(first.fingerprint, fakeKey(), fakeKey().fingerprint)),
      code('KL_RECOVERY_INVALID'),
    );
    const second = recoveryKeySet(first.fingerprint, fakeKey(), set.body.fingerprint);
    await ledger.submit(second);
    await assert.rejects(ledger.submit(recovered(set.body.fingerprint)), code('KL_RECOVERY_INVALID'));

    const recovery = recovered(second.body.fingerprint);
    const receipt = await ledger.submit(recovery);
    rec = await record();
    check(KeyRecordSchema, rec, 'KL_BAD_INPUT', 'record'); // what clients accept from a server
    assert.equal(rec.status, 'active');
    assert.deepEqual(
      activeDevices(rec).map((d) => [d.name, d.fingerprint, d.approvedBy]),
      [['new-phone', recovery.body.device.fingerprint, { recovery: second.body.fingerprint }]],
    );
    assert.equal(rec.deviceAdded?.added.txid, receipt.txid);
    assert.equal(rec.recovery?.fingerprint, recovery.body.nextRecovery.fingerprint);
    assert.deepEqual(rec.recovery?.setBy, { recovery: second.body.fingerprint });
    assert.deepEqual(
      rec.history.slice(-2).map((h) => [h.fingerprint, h.reason, h.device]),
      [
        [first.fingerprint, 'revoked', 'laptop'],
        [phone.fingerprint, 'revoked', 'phone'],
      ],
    );
    assert.equal(rec.registered.height, 1, 'the identity keeps its registration');
    // The recovery key used is spent: the same recovery cannot be played again.
    await assert.rejects(ledger.submit(recovered(second.body.fingerprint)), code('KL_RECOVERY_INVALID'));
    await ledger.close();
    const audit = verifyLedgerData({ dataDir });
    assert.equal(audit.ok, true, audit.problem?.reason);
  });

  it('refused: a foreign, revoked or unknown device setting it; a key in use; a recovery without a recovery key or with keys in use', async () => {
    const { ledger, first, record } = await setup();
    const other = registration('eve@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: other });
    await assert.rejects(ledger.submit(recoveryKeySet(other.fingerprint)), code('KL_DEVICE_UNKNOWN'));
    await assert.rejects(ledger.submit(recoveryKeySet(fakeKey().fingerprint)), code('KL_DEVICE_UNKNOWN'));
    await assert.rejects(
      ledger.submit(
        recoveryKeySet(first.fingerprint, { fingerprint: other.fingerprint, publicKey: other.publicKey }),
      ),
      code('KL_KEY_IN_USE'),
    );
    // No recovery key yet: nothing can recover the identity, nor be replaced.
    await assert.rejects(ledger.submit(recovered(fakeKey().fingerprint)), code('KL_RECOVERY_INVALID'));
    await assert.rejects(
      ledger.submit(recoveryKeySet(first.fingerprint, fakeKey(), fakeKey().fingerprint)),
      code('KL_RECOVERY_INVALID'),
    );
    const set = recoveryKeySet(first.fingerprint);
    await ledger.submit(set);
    // The recovery key is a key of this identity for good: no device, registration or second
    // recovery key may use it.
    await assert.rejects(
      ledger.submit({
        type: 'KeyRegistered',
        body: { ...registration('mallory@example.org'), fingerprint: set.body.fingerprint },
      }),
      code('KL_KEY_IN_USE'),
    );
    await assert.rejects(
      ledger.submit(
        recoveryKeySet(
          first.fingerprint,
          { fingerprint: set.body.fingerprint, publicKey: set.body.publicKey },
          set.body.fingerprint,
        ),
      ),
      code('KL_KEY_IN_USE'),
    );
    const inUse = { fingerprint: other.fingerprint, publicKey: other.publicKey };
    await assert.rejects(ledger.submit(recovered(set.body.fingerprint, 'x', inUse)), code('KL_KEY_IN_USE'));
    await assert.rejects(
      ledger.submit(recovered(set.body.fingerprint, 'x', fakeKey(), inUse)),
      code('KL_KEY_IN_USE'),
    );
    const same = fakeKey();
    await assert.rejects(
      ledger.submit(recovered(set.body.fingerprint, 'x', same, same)),
      code('KL_TX_MALFORMED'),
    );
    // A refused recovery changed nothing.
    assert.equal((await record()).fingerprint, first.fingerprint);
    assert.equal((await record()).recovery?.fingerprint, set.body.fingerprint);
    await ledger.close();
  });

  it('the last device: revocable by itself only with a recovery key; then only a recovery brings the identity back', async () => {
    const { ledger, first, record } = await setup();
    const bySelf = {
      type: 'DeviceRevoked' as const,
      body: {
        id: ID,
        fingerprint: first.fingerprint,
        reason: 'compromised' as const,
        revokedBy: { device: first.fingerprint, signature: fakeSignature(), time: Date.now() },
      },
    };
    await assert.rejects(ledger.submit(bySelf), code('KL_LAST_DEVICE'));
    const set = recoveryKeySet(first.fingerprint);
    await ledger.submit(set);
    await ledger.submit(bySelf);
    let rec = await record();
    assert.equal(rec.status, 'revoked');
    assert.equal(rec.revocation?.by, 'owner');
    assert.deepEqual(activeDevices(rec), []);
    // Nothing else moves a revoked identity: a recovery key cannot be set without an active device.
    await assert.rejects(
      ledger.submit(recoveryKeySet(first.fingerprint, fakeKey(), set.body.fingerprint)),
      code('KL_KEY_REVOKED'),
    );
    await ledger.submit(recovered(set.body.fingerprint));
    rec = await record();
    assert.equal(rec.status, 'active');
    assert.equal(rec.revocation, undefined);
    assert.equal(activeDevices(rec).length, 1);
    await ledger.close();
  });

  it('a recovery key goes with the device that set it when another device or an operator revokes that device (a thief’s cannot outlive the owner’s answer); rotation keeps the tie', async () => {
    const { ledger, first, record } = await setup();
    const addDevice = async (name: string) => {
      const key = fakeKey();
      await ledger.submit({
        type: 'DeviceAdded',
        body: {
          id: ID,
          name,
          ...key,
          algorithm: 'ed25519-legacy',
          time: Date.now(),
          approvedBy: { device: first.fingerprint, signature: fakeSignature() },
          newKeySignature: fakeSignature(),
        },
      });
      return key;
    };
    const stolen = await addDevice('stolen');
    // The thief sets a recovery key of its own, then rotates the stolen device's key.
    const planted = recoveryKeySet(stolen.fingerprint);
    await ledger.submit(planted);
    const rotated = fakeKey();
    await ledger.submit({
      type: 'KeyRotated',
      body: {
        id: ID,
        oldFingerprint: stolen.fingerprint,
        ...rotated,
        algorithm: 'ed25519-legacy',
        oldKeySignature: fakeSignature(),
        newKeySignature: fakeSignature(),
      },
    });
    assert.deepEqual((await record()).recovery?.setBy, { device: rotated.fingerprint });
    // The owner revokes the stolen device from the first: the planted recovery key is gone.
    await ledger.submit({
      type: 'DeviceRevoked',
      body: {
        id: ID,
        fingerprint: rotated.fingerprint,
        reason: 'compromised',
        revokedBy: { device: first.fingerprint, signature: fakeSignature(), time: Date.now() },
      },
    });
    assert.equal((await record()).recovery, undefined);
    await assert.rejects(ledger.submit(recovered(planted.body.fingerprint)), code('KL_RECOVERY_INVALID'));
    // The owner sets its own (no replacement needed); a device revoking itself keeps it.
    const own = recoveryKeySet(first.fingerprint);
    await ledger.submit(own);
    const spare = await addDevice('spare');
    await ledger.submit({
      type: 'DeviceRevoked',
      body: {
        id: ID,
        fingerprint: spare.fingerprint,
        reason: 'retired',
        revokedBy: { device: spare.fingerprint, signature: fakeSignature(), time: Date.now() },
      },
    });
    assert.equal((await record()).recovery?.fingerprint, own.body.fingerprint);
    // An operator revoking the device that set it voids it too.
    const third = await addDevice('third');
    await ledger.submit(recoveryKeySet(third.fingerprint, fakeKey(), own.body.fingerprint));
    await ledger.submit({
      type: 'DeviceRevoked',
      body: {
        id: ID,
        fingerprint: third.fingerprint,
        reason: 'compromised',
        revokedBy: { admin: 'ops@example.org' },
      },
    });
    assert.equal((await record()).recovery, undefined);
    await ledger.close();
  });

  it('an identity its owner revoked (revoke-key) can be recovered; one an operator revoked cannot', async () => {
    for (const by of ['owner', 'admin'] as const) {
      const { ledger, first, record } = await setup();
      const set = recoveryKeySet(first.fingerprint);
      await ledger.submit(set);
      await ledger.submit({
        type: 'KeyRevoked',
        body: {
          id: ID,
          fingerprint: first.fingerprint,
          reason: 'compromised',
          by,
          ...(by === 'admin' ? { admin: 'ops@example.org' } : { ownerSignature: fakeSignature() }),
        },
      });
      if (by === 'owner') {
        await ledger.submit(recovered(set.body.fingerprint));
        assert.equal((await record()).status, 'active');
      } else {
        await assert.rejects(ledger.submit(recovered(set.body.fingerprint)), code('KL_KEY_REVOKED'));
        assert.equal((await record()).status, 'revoked');
      }
      await ledger.close();
    }
  });
});
