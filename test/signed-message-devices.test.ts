/**
 * Checking the signer of an anchored message for identities with several device keys (docs/protocol.md
 * "Signed messages"): the key the signature names must have been an active device key of the identity
 * at the anchor, dated by the ledger's own transactions. Against a real server: two devices, a
 * device's rotation and revocation, a recovery.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import type { ClientKey } from '../src/client/client-key.js';
import { ClientHome } from '../src/client/home.js';
import { createIdentity, openClientKey } from '../src/client/identity.js';
import { recoverIdentity } from '../src/client/recovery.js';
import { rotateKey } from '../src/client/rotate.js';
import { type ClientSession, connect, type SignedMessageReceipt } from '../src/client/session.js';
import { type SignerCheck, verifyMessageSigner } from '../src/client/signed-message.js';
import { generateRecoveryKey } from '../src/pgp/recovery-key.js';
import { tempDir } from './helpers.js';
import { approvedDevice } from './support/devices.js';
import { CLIENT_PASSPHRASE, newClient, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
before(async () => {
  server = await testServer();
});
after(() => server.close());

const ID = 'dana@example.org';
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A message and what anchored it. */
interface Sent {
  text: string;
  sent: SignedMessageReceipt;
}

async function send(session: ClientSession, text: string): Promise<Sent> {
  return { text, sent: await session.sendSigned(text) };
}

/** The signer check of `m` as `home` makes it, with `signature` in place of the anchored one if given. */
async function signer(home: ClientHome, id: string, m: Sent, signature?: string): Promise<SignerCheck> {
  return verifyMessageSigner({
    server: await home.readServer(),
    receipt: m.sent.receipt,
    id,
    message: m.text,
    signature: signature ?? m.sent.signature,
  });
}

/** The same text signed now by `key`: a signature the ledger may not tie to the anchor. */
const resigned = (key: ClientKey, m: Sent) => key.signDetached(utf8(m.text), new Date());

function verifiedAs(check: SignerCheck, fingerprint: string, current: boolean): void {
  assert.equal(check.verified, true, JSON.stringify(check));
  assert.equal(check.verified && check.fingerprint, fingerprint);
  assert.equal(check.verified && check.current, current);
}

function refused(check: SignerCheck, reason: RegExp): void {
  assert.equal(check.verified, false, JSON.stringify(check));
  assert.match(check.verified ? '' : check.reason, reason);
}

describe('signed messages of an identity with several devices', () => {
  let laptop: ClientHome;
  let phone: ClientHome;
  let laptopSession: ClientSession;
  let phoneSession: ClientSession;
  let laptopKey: ClientKey;
  let phoneKey: ClientKey;
  let newPhoneKey: ClientKey;
  let beforePhone: Sent;
  let fromLaptop: Sent;
  let fromPhone: Sent;
  let fromNewPhoneKey: Sent;

  before(async () => {
    laptop = await registeredClient(server, ID);
    laptopKey = (await openClientKey(laptop, CLIENT_PASSPHRASE)).key;
    laptopSession = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
    beforePhone = await send(laptopSession, 'anchored before the phone was added');
    phone = await newClient(ID);
    await approvedDevice({
      server,
      session: laptopSession,
      home: phone,
      id: ID,
      name: 'phone',
      pinsFrom: laptop,
    });
    phoneKey = (await openClientKey(phone, CLIENT_PASSPHRASE)).key;
    phoneSession = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
  });
  after(async () => {
    await laptopSession.close();
  });

  it('two devices each sign and anchor a message: each verifies, naming its own key', async () => {
    fromLaptop = await send(laptopSession, 'from the laptop');
    fromPhone = await send(phoneSession, 'from the phone');
    verifiedAs(await signer(phone, ID, fromLaptop), laptopKey.fingerprint, true);
    verifiedAs(await signer(laptop, ID, fromPhone), phoneKey.fingerprint, true);
    // The first device's message from before the second came still verifies.
    verifiedAs(await signer(laptop, ID, beforePhone), laptopKey.fingerprint, true);
  });

  it('a signature by a device key over a message anchored before that device was added is refused', async () => {
    refused(
      await signer(laptop, ID, beforePhone, await resigned(phoneKey, beforePhone)),
      new RegExp(
        `the key ${phoneKey.fingerprint} was not a device key of ${ID} at block \\d+: it came onto the ledger after the anchor`,
      ),
    );
  });

  it('a key that is no key of the identity is refused by name', async () => {
    const stranger = (await openClientKey(await newClient('stranger@example.org'), CLIENT_PASSPHRASE)).key;
    refused(
      await signer(laptop, ID, fromPhone, await resigned(stranger, fromPhone)),
      new RegExp(
        `issuer ${stranger.fingerprint} is not a device key the ledger's record of ${ID} holds or held`,
      ),
    );
    refused(
      await signer(laptop, ID, fromPhone, 'not a signature'),
      /cannot be read as one armored OpenPGP signature/,
    );
  });

  it("after a device's rotation, its old key verifies for its anchors and the new key for later ones", async () => {
    await phoneSession.close();
    const rotated = await rotateKey({
      home: phone,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'generate', passphrase: CLIENT_PASSPHRASE },
    });
    assert.equal(rotated.oldFingerprint, phoneKey.fingerprint);
    newPhoneKey = (await openClientKey(phone, CLIENT_PASSPHRASE)).key;
    assert.notEqual(newPhoneKey.fingerprint, phoneKey.fingerprint);
    phoneSession = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
    fromNewPhoneKey = await send(phoneSession, 'from the phone, new key');
    verifiedAs(await signer(laptop, ID, fromPhone), phoneKey.fingerprint, false);
    verifiedAs(await signer(laptop, ID, fromNewPhoneKey), newPhoneKey.fingerprint, true);
    refused(
      await signer(laptop, ID, fromNewPhoneKey, await resigned(phoneKey, fromNewPhoneKey)),
      new RegExp(`the key ${phoneKey.fingerprint} was no longer a device key of ${ID} at block \\d+`),
    );
    refused(
      await signer(laptop, ID, fromPhone, await resigned(newPhoneKey, fromPhone)),
      new RegExp(`the key ${newPhoneKey.fingerprint} was not a device key of ${ID} at block \\d+`),
    );
  });

  it('after a device is revoked, its key is refused for later anchors and still verifies for earlier ones', async () => {
    const closed = new Promise((resolve) => phoneSession.once('close', resolve));
    const revoked = await laptopSession.revokeDevice(newPhoneKey.fingerprint);
    assert.equal(revoked.verified, true);
    await closed;
    const afterRevocation = await send(laptopSession, 'after the phone was revoked');
    refused(
      await signer(laptop, ID, afterRevocation, await resigned(newPhoneKey, afterRevocation)),
      new RegExp(`the key ${newPhoneKey.fingerprint} was no longer a device key of ${ID} at block \\d+`),
    );
    // Dated by its rotation and its revocation, both on the ledger.
    verifiedAs(await signer(laptop, ID, fromNewPhoneKey), newPhoneKey.fingerprint, false);
    verifiedAs(await signer(laptop, ID, fromLaptop), laptopKey.fingerprint, true);
    // The phone's first key came with its DeviceAdded, which left the record with the device: not
    // dated, so refused rather than guessed.
    refused(
      await signer(laptop, ID, fromPhone),
      new RegExp(`does not say when the key ${phoneKey.fingerprint} became one of its device keys`),
    );
  });
});

describe('signed messages of a recovered identity', () => {
  it("the recovered identity's new device verifies; the keys it replaced cannot be dated", async () => {
    const id = 'rory@example.org';
    const first = await registeredClient(server, id);
    const firstKey = (await openClientKey(first, CLIENT_PASSPHRASE)).key;
    const recovery = await generateRecoveryKey(id, Date.now());
    const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    assert.equal((await s.setRecoveryKey(recovery)).verified, true);
    const beforeRecovery = await send(s, 'before the recovery');
    await s.close();

    const next = await newClient(id);
    next.writeIdentity({ ...next.readIdentity(), device: 'spare' });
    const recovered = await recoverIdentity({
      home: next,
      server: server.url,
      passphrase: CLIENT_PASSPHRASE,
      expectChain: server.ledger.chainId,
      recovery,
      nextRecovery: await generateRecoveryKey(id, Date.now()),
    });
    assert.ok(recovered);
    const nextKey = (await openClientKey(next, CLIENT_PASSPHRASE)).key;
    const n = await connect({ home: next, passphrase: CLIENT_PASSPHRASE });
    const afterRecovery = await send(n, 'after the recovery');
    await n.close();

    verifiedAs(await signer(next, id, afterRecovery), nextKey.fingerprint, true);
    refused(
      await signer(next, id, beforeRecovery, await resigned(nextKey, beforeRecovery)),
      new RegExp(`the key ${nextKey.fingerprint} was not a device key of ${id} at block \\d+`),
    );
    // The recovery ended the first key, but the record cannot say whether an earlier revocation did.
    refused(
      await signer(next, id, beforeRecovery),
      new RegExp(
        `the key ${firstKey.fingerprint} was revoked by block \\d+ and the record of ${id} does not say when`,
      ),
    );
    refused(
      await signer(next, id, afterRecovery, await resigned(firstKey, afterRecovery)),
      new RegExp(`the key ${firstKey.fingerprint} was no longer a device key of ${id} at block \\d+`),
    );
  });
});

describe('signed messages of a device whose key signs with a subkey', () => {
  it('the issuing subkey leads to its device key, active and after its rotation', async () => {
    const id = 'sid@example.org';
    const laptop = await registeredClient(server, id);
    const s = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
    const tablet = new ClientHome(join(tempDir('kl-home-'), 'home'));
    await createIdentity({
      home: tablet,
      id,
      name: 'Sid',
      source: 'import',
      // Sequoia's keys certify with the primary key and sign with a subkey.
      armoredSecretKey: execFileSync('sqop', ['generate-key', `Sid <${id}>`]).toString(),
      passphrase: CLIENT_PASSPHRASE,
    });
    await approvedDevice({ server, session: s, home: tablet, id, name: 'tablet', pinsFrom: laptop });
    await s.close();
    const tabletKey = (await openClientKey(tablet, CLIENT_PASSPHRASE)).key;
    const t = await connect({ home: tablet, passphrase: CLIENT_PASSPHRASE });
    const fromTablet = await send(t, 'from the tablet');
    await t.close();
    const issuer = (
      await openpgp.readSignature({ armoredSignature: fromTablet.sent.signature })
    ).packets[0]!.issuerKeyID.toHex();
    assert.notEqual(issuer, tabletKey.fingerprint.slice(-16), 'signed by a subkey');
    verifiedAs(await signer(laptop, id, fromTablet), tabletKey.fingerprint, true);
    // Retired, its armored key comes from the verified DeviceAdded.
    await rotateKey({
      home: tablet,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'generate', passphrase: CLIENT_PASSPHRASE },
    });
    verifiedAs(await signer(laptop, id, fromTablet), tabletKey.fingerprint, false);
  });
});
