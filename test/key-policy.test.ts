import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { acceptPublicKey } from '../src/pgp/key-policy.js';
import { isKlError } from '../src/protocol/errors.js';

const now = () => new Date();
const refused = (code: string, message?: RegExp) => (e: unknown) =>
  isKlError(e, code as never) && (!message || message.test(e.message));

describe('key policy', () => {
  it('accepts a v4 Ed25519/Cv25519 key and an RSA-3072 key, and re-armors only what it parsed', async () => {
    const ecc = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'A', email: 'A@Example.org' }],
      format: 'armored',
    });
    const a = await acceptPublicKey(ecc.publicKey, now());
    assert.equal(a.algorithm, 'ed25519-legacy');
    assert.deepEqual(a.emails, ['a@example.org']);
    assert.match(a.fingerprint, /^[0-9a-f]{40}$/);
    const junkAround = `comment before\n${ecc.publicKey}\ntrailing words`;
    assert.equal((await acceptPublicKey(junkAround, now())).fingerprint, a.fingerprint);
    const rsa = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 3072,
      userIDs: [{ email: 'r@example.org' }],
      format: 'armored',
    });
    assert.equal((await acceptPublicKey(rsa.publicKey, now())).algorithm, 'rsa3072');
  });

  it('refuses keys whose self-signatures use SHA-1 (fixture made by gpg)', async () => {
    const key = readFileSync(new URL('./fixtures/keys/gpg-sha1-bindings.pub.asc', import.meta.url), 'utf8');
    await assert.rejects(acceptPublicKey(key, now()), refused('KL_KEY_POLICY', /SHA-1/));
  });

  it('refuses v6 keys and keys with the new Ed25519 algorithm id that GnuPG 2.2 cannot use', async () => {
    const v6 = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'v6@example.org' }],
      format: 'armored',
      config: { v6Keys: true },
    });
    await assert.rejects(acceptPublicKey(v6.publicKey, now()), refused('KL_KEY_POLICY', /version 4/));
    const newIds = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'n@example.org' }],
      format: 'armored',
    });
    await assert.rejects(acceptPublicKey(newIds.publicKey, now()), refused('KL_KEY_POLICY', /not accepted/));
  });

  it('refuses a private key, two keys at once, garbage, and keys made in the future', async () => {
    const k = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'p@example.org' }],
      format: 'armored',
    });
    await assert.rejects(acceptPublicKey(k.privateKey, now()), refused('KL_KEY_IS_PRIVATE'));
    const k2 = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'q@example.org' }],
      format: 'armored',
    });
    await assert.rejects(
      acceptPublicKey(`${k.publicKey}\n${k2.publicKey}`, now()),
      refused('KL_KEY_MALFORMED', /exactly one/),
    );
    await assert.rejects(
      acceptPublicKey(
        '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----',
        now(),
      ),
      refused('KL_KEY_MALFORMED'),
    );
    await assert.rejects(acceptPublicKey(42, now()), refused('KL_KEY_MALFORMED'));
    await assert.rejects(acceptPublicKey('x'.repeat(40_000), now()), refused('KL_KEY_MALFORMED'));
    const future = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'f@example.org' }],
      format: 'armored',
      date: new Date(Date.now() + 3_600_000),
    });
    await assert.rejects(acceptPublicKey(future.publicKey, now()), refused('KL_KEY_POLICY'));
  });

  it('refuses a revoked key', async () => {
    const k = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'rv@example.org' }],
      format: 'object',
    });
    const { publicKey } = await openpgp.revokeKey({ key: k.privateKey, format: 'armored' });
    await assert.rejects(acceptPublicKey(publicKey, now()), refused('KL_KEY_POLICY', /revoked/));
  });
});
