/**
 * Key rotation (issue 4, "keyledger rotate-key writes KeyRotated, signed by both old and new key"):
 * the SDK call on a session, the home-directory flow with its crash recovery, and attacks on the
 * rotation request. Real server on 127.0.0.1, real OpenPGP keys.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ClientKey, OpenPgpClientKey } from '../src/client/client-key.js';
import { clientKeyFor, prepareKey } from '../src/client/identity.js';
import { rotateKey } from '../src/client/rotate.js';
import { connect } from '../src/client/session.js';
import { verifyKeyRecordProof } from '../src/ledger/proofs.js';
import { generateKeyPair } from '../src/pgp/key-pair.js';
import { unlockPrivateKey } from '../src/pgp/messages.js';
import { isKlError } from '../src/protocol/errors.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
const code = (c: string) => (e: unknown) => {
  assert.ok(isKlError(e), `not a KlError: ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

let server: Srv;
before(async () => {
  server = await testServer();
});
after(async () => {
  await server.close();
});

/** A fresh, unlocked key that is not registered anywhere. */
async function freshKey(id: string): Promise<OpenPgpClientKey> {
  const pair = await generateKeyPair({ id, name: 'New', passphrase: 'x', type: 'ecc' });
  return new OpenPgpClientKey(await unlockPrivateKey(pair.privateKey, 'x'));
}

async function ledgerRecord(id: string) {
  const proof = await server.ledger.getKeyRecord(id);
  const check = verifyKeyRecordProof({ genesis: server.ledger.genesis, proof });
  assert.equal(check.verified, true);
  return proof.record!;
}

describe('key rotation', () => {
  it('rotateKey: KeyRotated on the ledger, old sessions end, the new key logs in, the old key no longer does', async () => {
    const home = await registeredClient(server, 'rita@example.org');
    const before = home.readIdentity();
    const oldKey = await clientKeyFor(before, CLIENT_PASSPHRASE, () => home.readPrivateKey());
    const other = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const otherClosed = new Promise<{ alert: { code: string } | null }>((r) => other.once('close', r));

    const r = await rotateKey({
      home,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'generate', passphrase: 'new passphrase' },
    });
    assert.equal(r.verified, true);
    assert.equal(r.oldFingerprint, before.fingerprint);
    assert.notEqual(r.identity.fingerprint, before.fingerprint);
    assert.ok(r.rotation, 'a receipt for KeyRotated');

    // The ledger: new key active, the old one in the history as rotated.
    const record = await ledgerRecord('rita@example.org');
    assert.equal(record.status, 'active');
    assert.equal(record.fingerprint, r.identity.fingerprint);
    assert.deepEqual(
      record.history.map((h) => [h.fingerprint, h.reason]),
      [[before.fingerprint, 'rotated']],
    );

    // The home: new identity and key installed, old key retired (0600), no rotation left pending.
    assert.equal(home.readIdentity().fingerprint, r.identity.fingerprint);
    const retired = join(home.dir, 'retired', `${before.fingerprint}.asc`);
    assert.equal(statSync(retired).mode & 0o777, 0o600);
    assert.equal(home.readPendingRotation(), null);

    // The session opened with the old key was ended by the server, with a reason.
    const closed = await otherClosed;
    assert.equal(closed.alert?.code, 'KL_KEY_REVOKED');
    assert.equal(other.isClosed, true);

    // The new key logs in (with its own passphrase); the old key cannot answer the challenge.
    const s = await connect({ home, passphrase: 'new passphrase' });
    assert.deepEqual(await s.request({ op: 'echo', text: 'new key' }), {
      echo: 'new key',
      id: 'rita@example.org',
    });
    await s.close();
    await assert.rejects(connect({ home, key: oldKey }));
    assert.ok(readFileSync(retired, 'utf8').includes('BEGIN PGP PRIVATE KEY BLOCK'));
  });

  it('refuses a new key whose signature is not by that key; nothing changes and the session goes on', async () => {
    const home = await registeredClient(server, 'sam@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const claimed = await freshKey('sam@example.org');
    const signer = await freshKey('sam@example.org');
    // Claims `claimed`'s public key, signs with another key: proves nothing about `claimed`.
    const impostor: ClientKey = {
      fingerprint: claimed.fingerprint,
      publicKey: claimed.publicKey,
      signDetached: (data, date) => signer.signDetached(data, date),
      decryptVerified: () => Promise.reject(new Error('unused')),
    };
    await assert.rejects(s.rotateKey(impostor), code('KL_SIGNATURE_INVALID'));
    const before = await ledgerRecord('sam@example.org');
    assert.equal(before.fingerprint, home.readIdentity().fingerprint);
    assert.equal(before.history.length, 0);
    assert.deepEqual(await s.request({ op: 'echo', text: 'still here' }), {
      echo: 'still here',
      id: 'sam@example.org',
    });
    await s.close();
  });

  it('refuses a key already registered to another identity, and a private key sent as the new key', async () => {
    const home = await registeredClient(server, 'tess@example.org');
    const otherHome = await registeredClient(server, 'ugo@example.org');
    const ugoKey = await clientKeyFor(otherHome.readIdentity(), CLIENT_PASSPHRASE, () =>
      otherHome.readPrivateKey(),
    );
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await assert.rejects(s.rotateKey(ugoKey), code('KL_KEY_IN_USE'));

    const pair = await generateKeyPair({ id: 'tess@example.org', name: 'T', passphrase: 'x', type: 'ecc' });
    const unlocked = await unlockPrivateKey(pair.privateKey, 'x');
    const leaky: ClientKey = {
      fingerprint: unlocked.getFingerprint(),
      publicKey: unlocked.armor(),
      signDetached: (data, date) => new OpenPgpClientKey(unlocked).signDetached(data, date),
      decryptVerified: () => Promise.reject(new Error('unused')),
    };
    await assert.rejects(s.rotateKey(leaky), code('KL_KEY_IS_PRIVATE'));
    // Rotating to the key already in place is no rotation.
    const own = await clientKeyFor(home.readIdentity(), CLIENT_PASSPHRASE, () => home.readPrivateKey());
    await assert.rejects(s.rotateKey(own), code('KL_KEY_IN_USE'));
    assert.equal((await ledgerRecord('tess@example.org')).history.length, 0);
    await s.close();
  });

  it('a refused rotation leaves the home as it was, with no rotation pending', async () => {
    const home = await registeredClient(server, 'vera@example.org');
    const otherHome = await registeredClient(server, 'walt@example.org');
    const before = home.readIdentity();
    await assert.rejects(
      rotateKey({
        home,
        passphrase: CLIENT_PASSPHRASE,
        // Walt's key, imported: already registered to Walt.
        next: {
          source: 'import',
          armoredSecretKey: otherHome.readPrivateKey(),
          passphrase: 'vera new',
          currentPassphrase: CLIENT_PASSPHRASE,
        },
      }),
      code('KL_KEY_IN_USE'),
    );
    assert.deepEqual(home.readIdentity(), before);
    assert.equal(home.readPendingRotation(), null);
    assert.equal(existsSync(join(home.dir, 'retired')), false);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
  });

  it('a rotation interrupted after the ledger switched keys is finished by running it again', async () => {
    const home = await registeredClient(server, 'xena@example.org');
    const current = home.readIdentity();
    // What rotateKey does up to the ledger write, then "crashes" before installing the new key.
    const prepared = await prepareKey({
      source: 'generate',
      passphrase: 'xena new',
      id: current.id,
      name: current.name,
    });
    const identity = { ...current, ...prepared.key };
    home.writePendingRotation({ v: 1, identity, privateKey: prepared.privateKey!, startedAt: Date.now() });
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const nextKey = await clientKeyFor(identity, 'xena new', () => prepared.privateKey!);
    await s.rotateKey(nextKey);
    assert.equal(home.readIdentity().fingerprint, current.fingerprint, 'not installed yet');

    // The user runs the command again: it sees the pending rotation, logs in with it, installs it.
    const r = await rotateKey({
      home,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'generate', passphrase: 'xena new' },
    });
    assert.equal(r.rotation, undefined, 'no second rotation was written');
    assert.equal(r.identity.fingerprint, prepared.key.fingerprint);
    assert.equal(home.readIdentity().fingerprint, prepared.key.fingerprint);
    assert.equal(home.readPendingRotation(), null);
    assert.equal((await ledgerRecord('xena@example.org')).history.length, 1);
  });

  it('a pending rotation the ledger never saw is discarded and a new rotation is made', async () => {
    const home = await registeredClient(server, 'yuri@example.org');
    const current = home.readIdentity();
    const stale = await prepareKey({
      source: 'generate',
      passphrase: 'p',
      id: current.id,
      name: current.name,
    });
    home.writePendingRotation({
      v: 1,
      identity: { ...current, ...stale.key },
      privateKey: stale.privateKey!,
      startedAt: Date.now(),
    });
    const r = await rotateKey({
      home,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'generate', passphrase: 'p' },
    });
    assert.ok(r.rotation);
    assert.notEqual(r.identity.fingerprint, stale.key.fingerprint);
    assert.equal((await ledgerRecord('yuri@example.org')).fingerprint, r.identity.fingerprint);
    // The revoked history: exactly one rotation.
    assert.equal((await ledgerRecord('yuri@example.org')).history.length, 1);
  });
});
