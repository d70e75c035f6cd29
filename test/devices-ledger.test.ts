/**
 * The ledger's device rules (docs/ledger.md "Devices"): DeviceAdded and DeviceRevoked, rotation and
 * revocation per device, the top-level key handed on, re-registration, and the offline audit of it
 * all. Signatures inside bodies are the server's to check (test/devices.test.ts); here only the
 * state rules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { activeDevices, findDevice, MAX_DEVICES } from '../src/ledger/devices.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { isKlError } from '../src/protocol/errors.js';
import { check } from '../src/protocol/schemas/check.js';
import { KeyRecordSchema } from '../src/protocol/schemas/ledger.js';
import { fakeKey, fakeSignature, freshLedger, registration } from './helpers.js';

const code = (c: string) => (err: unknown) => isKlError(err) && err.code === c;
const ID = 'dana@example.org';

function added(
  name: string,
  approver: string,
  key = fakeKey(),
): { type: 'DeviceAdded'; body: TxBodies['DeviceAdded'] } {
  return {
    type: 'DeviceAdded',
    body: {
      id: ID,
      name,
      ...key,
      algorithm: 'ed25519-legacy',
      time: Date.now(),
      approvedBy: { device: approver, signature: fakeSignature() },
      newKeySignature: fakeSignature(),
    },
  };
}

function revoked(fingerprint: string, by: TxBodies['DeviceRevoked']['revokedBy']) {
  return {
    type: 'DeviceRevoked' as const,
    body: { id: ID, fingerprint, reason: 'retired' as const, revokedBy: by },
  };
}

const byDevice = (device: string) => ({ device, signature: fakeSignature(), time: Date.now() });

async function setup() {
  const { ledger, dataDir } = freshLedger();
  const first = { ...registration(ID), device: 'laptop' };
  await ledger.submit({ type: 'KeyRegistered', body: first });
  const record = async () => (await ledger.getKeyRecord(ID)).record!;
  return { ledger, dataDir, first, record };
}

describe('devices on the ledger', () => {
  it('a device approved by an active device joins the set; the record proves the whole set', async () => {
    const { ledger, first, record } = await setup();
    const phone = added('phone', first.fingerprint);
    const receipt = await ledger.submit(phone);
    const rec = await record();
    assert.deepEqual(
      activeDevices(rec).map((d) => [d.name, d.fingerprint, d.primary]),
      [
        ['laptop', first.fingerprint, true],
        ['phone', phone.body.fingerprint, false],
      ],
    );
    assert.deepEqual(rec.devices![0]!.approvedBy, { device: first.fingerprint });
    assert.equal(rec.devices![0]!.added.txid, receipt.txid);
    check(KeyRecordSchema, rec, 'KL_BAD_INPUT', 'record'); // what clients accept from a server
    assert.equal(findDevice(rec, 'PHONE')?.fingerprint, phone.body.fingerprint);
    assert.equal(findDevice(rec, phone.body.fingerprint)?.name, 'phone');
    // The key belongs to the identity for good, like a registered key.
    await assert.rejects(
      ledger.submit({
        type: 'KeyRegistered',
        body: { ...registration('eve@example.org'), ...{ fingerprint: phone.body.fingerprint } },
      }),
      code('KL_KEY_IN_USE'),
    );
    await ledger.close();
  });

  it('refused: an unknown, foreign or revoked approver; a key in use; a name taken; a full set; a revoked identity', async () => {
    const { ledger, first, record } = await setup();
    const other = registration('eve@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: other });
    await assert.rejects(ledger.submit(added('phone', fakeKey().fingerprint)), code('KL_DEVICE_UNKNOWN'));
    await assert.rejects(ledger.submit(added('phone', other.fingerprint)), code('KL_DEVICE_UNKNOWN'));
    await assert.rejects(
      ledger.submit(
        added('phone', first.fingerprint, { fingerprint: other.fingerprint, publicKey: other.publicKey }),
      ),
      code('KL_KEY_IN_USE'),
    );
    await assert.rejects(ledger.submit(added('Laptop', first.fingerprint)), code('KL_DEVICE_NAME_TAKEN'));
    const phone = added('phone', first.fingerprint);
    await ledger.submit(phone);
    await ledger.submit(revoked(phone.body.fingerprint, byDevice(first.fingerprint)));
    await assert.rejects(ledger.submit(added('tablet', phone.body.fingerprint)), code('KL_DEVICE_UNKNOWN'));
    // The name of a revoked device is free again.
    await ledger.submit(added('phone', first.fingerprint));
    for (let i = activeDevices(await record()).length; i < MAX_DEVICES; i++)
      await ledger.submit(added(`d${i}`, first.fingerprint));
    await assert.rejects(ledger.submit(added('one-too-many', first.fingerprint)), code('KL_DEVICE_LIMIT'));
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: ID,
        fingerprint: first.fingerprint,
        reason: 'compromised',
        by: 'admin',
        admin: 'ops@example.org',
      },
    });
    await assert.rejects(ledger.submit(added('later', first.fingerprint)), code('KL_KEY_REVOKED'));
    assert.deepEqual(activeDevices(await record()), []);
    await assert.rejects(
      ledger.submit({
        type: 'DeviceAdded',
        body: { ...added('x', first.fingerprint).body, id: 'nobody@example.org' },
      }),
      code('KL_IDENTITY_UNKNOWN'),
    );
    await ledger.close();
  });

  it('revoking one device leaves the others; the first device revoked hands the top level on; the last only by an operator', async () => {
    const { ledger, dataDir, first, record } = await setup();
    const phone = added('phone', first.fingerprint);
    const tablet = added('tablet', first.fingerprint);
    await ledger.submit(phone);
    await ledger.submit(tablet);
    await assert.rejects(
      ledger.submit(revoked(fakeKey().fingerprint, byDevice(first.fingerprint))),
      code('KL_DEVICE_UNKNOWN'),
    );
    await assert.rejects(
      ledger.submit(revoked(phone.body.fingerprint, byDevice(fakeKey().fingerprint))),
      code('KL_DEVICE_UNKNOWN'),
    );
    // A device revoked by another: the others stay, the record's top level unchanged.
    await ledger.submit(revoked(phone.body.fingerprint, byDevice(tablet.body.fingerprint)));
    let rec = await record();
    assert.equal(rec.fingerprint, first.fingerprint);
    assert.deepEqual(
      activeDevices(rec).map((d) => d.name),
      ['laptop', 'tablet'],
    );
    assert.deepEqual(rec.history.at(-1), {
      fingerprint: phone.body.fingerprint,
      algorithm: 'ed25519-legacy',
      replaced: rec.updated,
      reason: 'revoked',
      device: 'phone',
      further: true,
    });
    // The first device revokes itself: the tablet is the top-level key now, with when and how it was added.
    await ledger.submit(revoked(first.fingerprint, byDevice(first.fingerprint)));
    rec = await record();
    assert.equal(rec.status, 'active');
    assert.equal(rec.fingerprint, tablet.body.fingerprint);
    assert.equal(rec.publicKey, tablet.body.publicKey);
    assert.equal(rec.device, 'tablet');
    assert.equal(rec.devices, undefined);
    assert.deepEqual(rec.deviceAdded?.approvedBy, { device: first.fingerprint });
    check(KeyRecordSchema, rec, 'KL_BAD_INPUT', 'record');
    // The only device left: its owner cannot revoke it as a device; an operator can, and that revokes the identity.
    await assert.rejects(
      ledger.submit(revoked(tablet.body.fingerprint, byDevice(tablet.body.fingerprint))),
      code('KL_LAST_DEVICE'),
    );
    await ledger.submit(revoked(tablet.body.fingerprint, { admin: 'ops@example.org' }));
    rec = await record();
    assert.equal(rec.status, 'revoked');
    assert.deepEqual(rec.revocation?.by, 'admin');
    await ledger.close();
    const audit = verifyLedgerData({ dataDir });
    assert.equal(audit.ok, true, audit.problem?.reason);
  });

  it('rotation per device: the device keeps its name and place; a revoked identity registers again with every old key in its history', async () => {
    const { ledger, dataDir, first, record } = await setup();
    const phone = added('phone', first.fingerprint);
    await ledger.submit(phone);
    const next = fakeKey();
    await ledger.submit({
      type: 'KeyRotated',
      body: {
        id: ID,
        oldFingerprint: phone.body.fingerprint,
        ...next,
        algorithm: 'ed25519-legacy',
        oldKeySignature: fakeSignature(),
        newKeySignature: fakeSignature(),
      },
    });
    let rec = await record();
    assert.equal(rec.fingerprint, first.fingerprint, 'the first device is untouched');
    assert.deepEqual(
      activeDevices(rec).map((d) => [d.name, d.fingerprint]),
      [
        ['laptop', first.fingerprint],
        ['phone', next.fingerprint],
      ],
    );
    assert.equal(rec.devices![0]!.added.txid, phone.body && rec.devices![0]!.added.txid);
    assert.deepEqual(rec.history.at(-1)?.device, 'phone');
    // Revoking the identity names any of its active keys; a retired one is a mismatch.
    await assert.rejects(
      ledger.submit({
        type: 'KeyRevoked',
        body: {
          id: ID,
          fingerprint: phone.body.fingerprint,
          reason: 'retired',
          by: 'admin',
          admin: 'ops@example.org',
        },
      }),
      code('KL_KEY_MISMATCH'),
    );
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: ID,
        fingerprint: next.fingerprint,
        reason: 'retired',
        by: 'admin',
        admin: 'ops@example.org',
      },
    });
    const again = registration(ID);
    await ledger.submit({ type: 'KeyRegistered', body: again });
    rec = await record();
    assert.equal(rec.devices, undefined);
    assert.equal(rec.device, undefined);
    assert.deepEqual(
      rec.history.map((h) => [h.fingerprint, h.reason, h.device]),
      [
        [phone.body.fingerprint, 'rotated', 'phone'],
        [first.fingerprint, 'revoked', 'laptop'],
        [next.fingerprint, 'revoked', 'phone'],
      ],
    );
    await ledger.close();
    const audit = verifyLedgerData({ dataDir });
    assert.equal(audit.ok, true, audit.problem?.reason);
  });

  it('a record written before devices existed is one unnamed device', async () => {
    const { ledger } = freshLedger();
    const reg = registration('old@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: reg });
    const rec = (await ledger.getKeyRecord('old@example.org')).record!;
    assert.deepEqual(Object.keys(rec).includes('devices'), false);
    assert.deepEqual(
      activeDevices(rec).map((d) => [d.name, d.fingerprint, d.primary, d.added]),
      [[null, reg.fingerprint, true, rec.registered]],
    );
    await ledger.close();
  });
});
