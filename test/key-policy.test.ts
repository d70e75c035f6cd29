import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { acceptPublicKey, MAX_USER_IDS } from '../src/pgp/key-policy.js';
import {
  readArmoredMessage,
  readPublicKey,
  signDetached,
  unlockPrivateKey,
  verifyDetached,
} from '../src/pgp/messages.js';
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

  it('stores only what self-signatures bind: an unsigned user ID and a third-party certification go (fixture made by gpg)', async () => {
    const armored = readFileSync(
      new URL('./fixtures/keys/gpg-third-party-and-unsigned-uid.pub.asc', import.meta.url),
      'utf8',
    );
    const sent = await openpgp.readKey({ armoredKey: armored });
    assert.deepEqual(sent.getUserIDs(), ['Dana <dana@example.org>', 'Root Admin <root@example.org>']);
    assert.equal(
      sent.users[0]!.otherCertifications.length,
      1,
      'the fixture carries a third-party certification',
    );
    const a = await acceptPublicKey(armored, now());
    assert.equal(a.fingerprint, sent.getFingerprint());
    assert.deepEqual(a.emails, ['dana@example.org']);
    // What is returned for storing is the reduced key, read back from its own armor.
    for (const key of [a.key, await openpgp.readKey({ armoredKey: a.armored })]) {
      assert.equal(key.getFingerprint(), sent.getFingerprint());
      assert.deepEqual(key.getUserIDs(), ['Dana <dana@example.org>']);
      assert.equal(key.users[0]!.otherCertifications.length, 0);
      assert.equal(key.users[0]!.selfCertifications.length, 1);
      assert.equal(key.getSubkeys().length, 1);
    }
    assert.doesNotMatch(a.armored, /Root Admin/);
  });

  it('drops subkeys without a valid binding by this primary key, and keeps the fingerprint', async () => {
    const own = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'o@example.org' }],
      format: 'object',
    });
    const other = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'x@example.org' }],
      format: 'object',
    });
    const packets = own.publicKey.toPacketList() as openpgp.PacketList<openpgp.AnyPacket>;
    const foreign = other.publicKey.subkeys[0]!;
    packets.push(foreign.keyPacket); // no binding signature at all
    packets.push(other.publicKey.subkeys[0]!.keyPacket, ...foreign.bindingSignatures); // bound by another key
    packets.push(openpgp.UserIDPacket.fromObject({ name: 'Root Admin', email: 'root@example.org' }));
    const stuffed = new openpgp.PublicKey(packets).armor();
    assert.equal((await openpgp.readKey({ armoredKey: stuffed })).getSubkeys().length, 3);
    const a = await acceptPublicKey(stuffed, now());
    assert.equal(a.fingerprint, own.publicKey.getFingerprint());
    assert.deepEqual(
      a.key.getSubkeys().map((k) => k.getFingerprint()),
      own.publicKey.getSubkeys().map((k) => k.getFingerprint()),
    );
    assert.deepEqual(a.key.getUserIDs(), ['<o@example.org>']);
  });

  it('refuses a key stuffed with 5,000 user IDs, or with more than 16 subkeys, before checking signatures', async () => {
    const k = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'u@example.org' }],
      format: 'object',
    });
    const packets = k.publicKey.toPacketList() as openpgp.PacketList<openpgp.AnyPacket>;
    for (let i = 0; i < 5_000; i++) packets.push(openpgp.UserIDPacket.fromObject({ name: 'a' }));
    const stuffed = new openpgp.PublicKey(packets).armor();
    assert.ok(stuffed.length < 32 * 1024, 'small enough to pass the size bound');
    await assert.rejects(
      acceptPublicKey(stuffed, now()),
      refused('KL_KEY_POLICY', new RegExp(`5001 user IDs; at most ${MAX_USER_IDS}`)),
    );
    const subs = k.publicKey.toPacketList() as openpgp.PacketList<openpgp.AnyPacket>;
    const sub = k.publicKey.subkeys[0]!;
    for (let i = 0; i < 16; i++) subs.push(sub.keyPacket, ...sub.bindingSignatures);
    await assert.rejects(
      acceptPublicKey(new openpgp.PublicKey(subs).armor(), now()),
      refused('KL_KEY_POLICY', /17 subkeys; at most 16/),
    );
  });

  it("keeps a self-signed user ID that names someone else (the key holder's claim, never evidence)", async () => {
    const k = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'me@example.org' }, { name: 'Root Admin', email: 'root@example.org' }],
      format: 'armored',
    });
    const a = await acceptPublicKey(k.publicKey, now());
    assert.deepEqual(a.emails, ['me@example.org', 'root@example.org']);
  });

  it('refuses armor whose BEGIN and END lines differ, for keys, signatures and messages', async () => {
    const k = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'e@example.org' }],
      format: 'object',
    });
    const pub = k.publicKey.armor();
    const swapEnd = (text: string, from: string, to: string) =>
      text.replace(`-----END PGP ${from}-----`, `-----END PGP ${to}-----`);
    // OpenPGP.js alone reads the key whatever the END line says.
    await openpgp.readKey({ armoredKey: swapEnd(pub, 'PUBLIC KEY BLOCK', 'SIGNATURE') });
    for (const to of ['SIGNATURE', 'MESSAGE', 'PRIVATE KEY BLOCK']) {
      const bad = swapEnd(pub, 'PUBLIC KEY BLOCK', to);
      await assert.rejects(
        acceptPublicKey(bad, now()),
        refused('KL_KEY_MALFORMED', /matching BEGIN and END/),
      );
      await assert.rejects(readPublicKey(bad), refused('KL_KEY_MALFORMED'));
    }
    await assert.rejects(
      acceptPublicKey(`${pub}\n-----END PGP PUBLIC KEY BLOCK-----\n`, now()),
      refused('KL_KEY_MALFORMED'),
    );
    const data = new TextEncoder().encode('statement');
    const sig = await signDetached(data, k.privateKey, new Date());
    await verifyDetached({ data, armoredSignature: sig, key: k.publicKey, now: new Date() });
    await assert.rejects(
      verifyDetached({
        data,
        armoredSignature: swapEnd(sig, 'SIGNATURE', 'MESSAGE'),
        key: k.publicKey,
        now: new Date(),
      }),
      refused('KL_MESSAGE_MALFORMED', /matching BEGIN and END/),
    );
    const msg = (await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: data }),
      encryptionKeys: k.publicKey,
      format: 'armored',
    })) as string;
    await readArmoredMessage(msg);
    await assert.rejects(
      readArmoredMessage(swapEnd(msg, 'MESSAGE', 'SIGNATURE')),
      refused('KL_MESSAGE_MALFORMED', /matching BEGIN and END/),
    );
    const priv = k.privateKey.armor();
    await unlockPrivateKey(priv, undefined);
    await assert.rejects(
      unlockPrivateKey(swapEnd(priv, 'PRIVATE KEY BLOCK', 'PUBLIC KEY BLOCK'), undefined),
      refused('KL_KEY_MALFORMED', /matching BEGIN and END/),
    );
  });
});
