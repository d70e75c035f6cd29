import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { dataPaths } from '../src/ledger/data-dir.js';
import { GOVERNANCE_DOMAIN } from '../src/ledger/domains.js';
import { WRITE_PERMISSIONS } from '../src/ledger/permissions.js';
import { verifyKeyRecordProof } from '../src/ledger/proofs.js';
import { openKeyFile } from '../src/ledger/sealed-key-file.js';
import { SigningKey } from '../src/ledger/signing-keys.js';
import { governanceMessage } from '../src/ledger/state-machine.js';
import { signTransaction, TX_TYPES, type TxIntent } from '../src/ledger/transactions.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { isKlError } from '../src/protocol/errors.js';
import { fakeSignature, freshLedger, PASSPHRASE, registration } from './helpers.js';

const code = (c: string) => (err: unknown) => isKlError(err) && err.code === c;
const nonce = () => randomBytes(16).toString('hex');

function setup() {
  const { ledger, dataDir } = freshLedger();
  const validator = openKeyFile(dataPaths(dataDir).validatorKey, PASSPHRASE, 'validator');
  const sign = (intent: TxIntent, signer: SigningKey, chain = ledger.chainId) =>
    signTransaction({ chain, intent, signer, now: Date.now(), nonce: nonce() });
  const approve = (type: 'RegistrarAdded' | 'RegistrarRemoved', body: object, by: SigningKey) => ({
    validator: by.keyId,
    sig: by.sign(GOVERNANCE_DOMAIN, governanceMessage(ledger.chainId, type, body)),
  });
  return { ledger, dataDir, validator, sign, approve };
}

describe('permissioned writes', () => {
  it('the permission table covers every transaction type', () => {
    assert.deepEqual(Object.keys(WRITE_PERMISSIONS).sort(), [...TX_TYPES].sort());
  });

  it('refuses a transaction signed by a key that is not a registrar, with a clear code', async () => {
    const { ledger, sign } = setup();
    const outsider = SigningKey.generate();
    const err = await ledger
      .submitSigned(sign({ type: 'KeyRegistered', body: registration('mallory@example.org') }, outsider))
      .catch((e) => e);
    assert.ok(code('KL_NOT_PERMITTED')(err));
    assert.match(err.message, /not allowed to write KeyRegistered/);
    assert.equal(await ledger.checkpoint(), null, 'nothing was written');
    await ledger.close();
  });

  it('refuses a forged signature and a transaction for another chain', async () => {
    const { ledger, dataDir, sign } = setup();
    const registrar = openKeyFile(dataPaths(dataDir).registrarKey, PASSPHRASE, 'registrar');
    const env = sign(
      { type: 'HashAnchored', body: { hash: 'd'.repeat(64), algorithm: 'sha256' } },
      registrar,
    );
    const forged = { ...env, tx: { ...env.tx, body: { ...env.tx.body, hash: 'e'.repeat(64) } } };
    await assert.rejects(ledger.submitSigned(forged), code('KL_TX_BAD_SIGNATURE'));
    const otherSigner = SigningKey.generate();
    const stolen = { ...env, sig: otherSigner.sign('keyledger/tx/v1\n', Buffer.from('x')) };
    await assert.rejects(ledger.submitSigned(stolen), code('KL_TX_BAD_SIGNATURE'));
    await assert.rejects(
      ledger.submitSigned(
        sign({ type: 'AuditEvent', body: { event: 'login', at: 1 } }, registrar, 'f'.repeat(64)),
      ),
      code('KL_TX_WRONG_CHAIN'),
    );
    // The genuine one still goes through, once.
    await ledger.submitSigned(env);
    await assert.rejects(ledger.submitSigned(env), code('KL_TX_DUPLICATE'));
    await ledger.close();
  });

  it('a validator may not write ordinary transactions (only governance)', async () => {
    const { ledger, validator, sign } = setup();
    await assert.rejects(
      ledger.submitSigned(sign({ type: 'AuditEvent', body: { event: 'login', at: 1 } }, validator)),
      code('KL_NOT_PERMITTED'),
    );
    await ledger.close();
  });

  it('adds a registrar only with a validator quorum; the new registrar can then write; replays are refused', async () => {
    const { ledger, dataDir, validator, sign, approve } = setup();
    const newcomer = SigningKey.generate();
    const body = { keyId: newcomer.keyId, publicKey: newcomer.publicKey, name: 'second org', govSeq: 0 };

    // No valid approval: approvals signed by a non-validator, or over a different body.
    const stranger = SigningKey.generate();
    await assert.rejects(
      ledger.submitSigned(
        sign(
          {
            type: 'RegistrarAdded',
            body: { ...body, approvals: [approve('RegistrarAdded', body, stranger)] },
          },
          validator,
        ),
      ),
      code('KL_QUORUM_NOT_MET'),
    );
    const otherBody = { ...body, name: 'someone else' };
    await assert.rejects(
      ledger.submitSigned(
        sign(
          {
            type: 'RegistrarAdded',
            body: { ...body, approvals: [approve('RegistrarAdded', otherBody, validator)] },
          },
          validator,
        ),
      ),
      code('KL_QUORUM_NOT_MET'),
    );
    // The newcomer cannot write yet.
    await assert.rejects(
      ledger.submitSigned(sign({ type: 'AuditEvent', body: { event: 'login', at: 1 } }, newcomer)),
      code('KL_NOT_PERMITTED'),
    );

    const added = sign(
      { type: 'RegistrarAdded', body: { ...body, approvals: [approve('RegistrarAdded', body, validator)] } },
      validator,
    );
    await ledger.submitSigned(added);
    await ledger.submitSigned(
      sign({ type: 'KeyRegistered', body: registration('from-org2@example.org') }, newcomer),
    );

    // Replaying the same approved change in a new envelope fails: the governance sequence moved on.
    await assert.rejects(
      ledger.submitSigned(
        sign(
          {
            type: 'RegistrarAdded',
            body: { ...body, approvals: [approve('RegistrarAdded', body, validator)] },
          },
          validator,
        ),
      ),
      code('KL_GOVERNANCE_STALE'),
    );

    // Removal, by quorum as well; afterwards the newcomer is refused again.
    const rm = { keyId: newcomer.keyId, govSeq: 1 };
    await ledger.submitSigned(
      sign(
        {
          type: 'RegistrarRemoved',
          body: { ...rm, approvals: [approve('RegistrarRemoved', rm, validator)] },
        },
        validator,
      ),
    );
    await assert.rejects(
      ledger.submitSigned(sign({ type: 'AuditEvent', body: { event: 'login', at: 2 } }, newcomer)),
      code('KL_NOT_PERMITTED'),
    );
    await ledger.close();
    const audit = verifyLedgerData({ dataDir });
    assert.ok(audit.ok, audit.problem?.reason);
  });
});

describe('identity roles (RoleGranted / RoleRevoked)', () => {
  it('grants and revokes the admin role by validator quorum, kept in the proven key record', async () => {
    const { ledger, dataDir } = setup();
    await ledger.submit({ type: 'KeyRegistered', body: registration('ada@example.org') });
    const granted = await ledger.governance({
      type: 'RoleGranted',
      body: { id: 'Ada@Example.org', role: 'admin' },
    });
    assert.equal(granted.envelope.tx.type, 'RoleGranted');
    const proof = await ledger.getKeyRecord('ada@example.org');
    assert.deepEqual(proof.record?.roles, ['admin']);
    assert.equal(verifyKeyRecordProof({ genesis: ledger.genesis, proof }).verified, true);
    await assert.rejects(
      ledger.governance({ type: 'RoleGranted', body: { id: 'ada@example.org', role: 'admin' } }),
      code('KL_ROLE_EXISTS'),
    );
    await ledger.governance({ type: 'RoleRevoked', body: { id: 'ada@example.org', role: 'admin' } });
    assert.equal((await ledger.getKeyRecord('ada@example.org')).record?.roles, undefined);
    await assert.rejects(
      ledger.governance({ type: 'RoleRevoked', body: { id: 'ada@example.org', role: 'admin' } }),
      code('KL_ROLE_UNKNOWN'),
    );
    await assert.rejects(
      ledger.governance({ type: 'RoleGranted', body: { id: 'nobody@example.org', role: 'admin' } }),
      code('KL_IDENTITY_UNKNOWN'),
    );
    await ledger.close();
    assert.equal(verifyLedgerData({ dataDir }).ok, true);
  });

  it('a registrar alone, an outsider approval or a replayed approval cannot grant a role', async () => {
    const { ledger, dataDir, sign } = setup();
    const registrar = openKeyFile(dataPaths(dataDir).registrarKey, PASSPHRASE, 'registrar');
    await ledger.submit({ type: 'KeyRegistered', body: registration('mal@example.org') });
    const body = { id: 'mal@example.org', role: 'admin' as const, govSeq: 0 };
    const outsider = SigningKey.generate();
    const byOutsider = {
      validator: outsider.keyId,
      sig: outsider.sign(GOVERNANCE_DOMAIN, governanceMessage(ledger.chainId, 'RoleGranted', body)),
    };
    await assert.rejects(
      ledger.submitSigned(
        sign({ type: 'RoleGranted', body: { ...body, approvals: [byOutsider] } }, registrar),
      ),
      code('KL_QUORUM_NOT_MET'),
    );
    // An approval for RoleRevoked does not grant.
    const validator = openKeyFile(dataPaths(dataDir).validatorKey, PASSPHRASE, 'validator');
    const forRevoke = {
      validator: validator.keyId,
      sig: validator.sign(GOVERNANCE_DOMAIN, governanceMessage(ledger.chainId, 'RoleRevoked', body)),
    };
    await assert.rejects(
      ledger.submitSigned(
        sign({ type: 'RoleGranted', body: { ...body, approvals: [forRevoke] } }, registrar),
      ),
      code('KL_QUORUM_NOT_MET'),
    );
    assert.equal((await ledger.getKeyRecord('mal@example.org')).record?.roles, undefined);
    await ledger.close();
  });

  it('a rotated key keeps its roles; a revoked and re-registered identity starts without any', async () => {
    const { ledger } = setup();
    const first = registration('rex@example.org');
    await ledger.submit({ type: 'KeyRegistered', body: first });
    await ledger.governance({ type: 'RoleGranted', body: { id: 'rex@example.org', role: 'admin' } });
    const next = registration('rex@example.org');
    await ledger.submit({
      type: 'KeyRotated',
      body: {
        id: 'rex@example.org',
        oldFingerprint: first.fingerprint,
        fingerprint: next.fingerprint,
        publicKey: next.publicKey,
        algorithm: next.algorithm,
        oldKeySignature: fakeSignature(),
        newKeySignature: fakeSignature(),
      },
    });
    assert.deepEqual((await ledger.getKeyRecord('rex@example.org')).record?.roles, ['admin']);
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: 'rex@example.org',
        fingerprint: next.fingerprint,
        reason: 'compromised',
        by: 'admin',
        admin: 'root@example.org',
      },
    });
    await ledger.submit({ type: 'KeyRegistered', body: registration('rex@example.org') });
    const again = (await ledger.getKeyRecord('rex@example.org')).record!;
    assert.equal(again.status, 'active');
    assert.equal(again.roles, undefined);
    await ledger.close();
  });
});

describe('transaction signatures', () => {
  it('a signature re-encoded with other unused bits is refused: no second txid for one transaction', async () => {
    const { ledger, dataDir, sign } = setup();
    const registrar = openKeyFile(dataPaths(dataDir).registrarKey, PASSPHRASE, 'registrar');
    const env = sign(
      { type: 'HashAnchored', body: { hash: 'f'.repeat(64), algorithm: 'sha256' } },
      registrar,
    );
    // The last of 86 base64url characters holds 2 bits of the signature and 4 unused bits.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(env.sig.at(-1)!);
    const twin = `${env.sig.slice(0, -1)}${alphabet[last ^ 1]}`;
    assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(env.sig, 'base64url'), 'same bytes');
    await ledger.submitSigned(env);
    await assert.rejects(ledger.submitSigned({ ...env, sig: twin }), code('KL_TX_BAD_SIGNATURE'));
    await ledger.close();
  });
});
