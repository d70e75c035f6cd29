/**
 * Each device's last login (issue 18; docs/protocol.md "Devices"): `session_start` audit events name
 * the device key that logged in; a session asks `device.logins` (src/server/device-logins.ts) and the
 * client (readDeviceLogins) verifies every event it is given against the pinned genesis: a login of
 * another device, of another identity, an event that is not a login, a changed event or a malformed
 * answer is refused. Only the identity's own logins are answered, the asking session's own left out,
 * and the search never goes below the block that added the identity's oldest device.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readDeviceLogins } from '../src/client/devices.js';
import type { ClientHome } from '../src/client/home.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import type { TransactionReceipt } from '../src/ledger/proofs.js';
import { sha256Hex } from '../src/protocol/hash.js';
import type { DeviceLoginsAnswer } from '../src/server/device-logins.js';
import { until } from './helpers.js';
import { approvedDevice } from './support/devices.js';
import { CLIENT_PASSPHRASE, newClient, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
const ID = 'lou@example.org';
let server: Srv;
let laptop: ClientHome;
let phone: ClientHome;
let laptopFpr: string;
let phoneFpr: string;

/** The `session_start` events of `id` on the ledger, newest first. */
const starts = async (id: string) =>
  readAuditTrail(server.ledger, { subject: sha256Hex(id), event: 'session_start', limit: 100 });

/** Logs in from `home` and out again, once the login is on the ledger's audit trail. */
async function loginOnce(home: ClientHome, id = ID): Promise<string> {
  const before = (await starts(id)).length;
  const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
  const sessionHash = sha256Hex(s.sessionId).slice(0, 32);
  await s.close();
  await until(async () => (await starts(id)).length > before);
  return sessionHash;
}

/** A session of `home` left open by the test (closed in `after`). */
const open: ClientSession[] = [];
async function sessionOf(home: ClientHome): Promise<ClientSession> {
  const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
  open.push(s);
  return s;
}

before(async () => {
  const wide = { burst: 1_000, perSecond: 100 };
  server = await testServer({ rateLimits: { loginPerIp: wide, loginPerIdentity: wide } });
  laptop = await registeredClient(server, ID);
  phone = await newClient(ID);
  const s = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
  await approvedDevice({ server, session: s, home: phone, id: ID, name: 'phone', pinsFrom: laptop });
  await s.close();
  laptopFpr = (await laptop.readIdentity()).fingerprint;
  phoneFpr = (await phone.readIdentity()).fingerprint;
});
after(async () => {
  for (const s of open) await s.close().catch(() => undefined);
  await server.close();
});

describe('last login per device', () => {
  it("session_start names the device key that logged in, beside the session's hash", async () => {
    const session = await loginOnce(phone);
    const [newest] = await starts(ID);
    assert.deepEqual(newest?.detail, { session, fingerprint: phoneFpr });
  });

  it('a login from each device: both last logins, verified, in the order they happened; the asking session left out', async () => {
    await loginOnce(laptop);
    const phoneSession = await loginOnce(phone);
    const fromLaptop = await sessionOf(laptop);
    const ownStart = sha256Hex(fromLaptop.sessionId).slice(0, 32);
    await until(async () => (await starts(ID)).some((e) => e.detail?.session === ownStart));
    const logins = await readDeviceLogins({
      session: fromLaptop,
      server: await laptop.readServer(),
      id: ID,
      devices: [laptopFpr, phoneFpr],
    });
    const trail = await starts(ID);
    const laptopLogin = logins.byDevice.get(laptopFpr);
    const phoneLogin = logins.byDevice.get(phoneFpr);
    assert.ok(laptopLogin && phoneLogin);
    // The phone's is its session's event; the laptop's is the one before this very session.
    assert.equal(trail.find((e) => e.txid === phoneLogin.txid)?.detail?.session, phoneSession);
    const laptopEvents = trail.filter((e) => e.detail?.fingerprint === laptopFpr);
    assert.equal(laptopEvents[0]?.detail?.session, ownStart);
    assert.equal(laptopLogin.txid, laptopEvents[1]?.txid);
    assert.ok(phoneLogin.at > laptopLogin.at, 'the phone logged in last');
    assert.ok(phoneLogin.height >= laptopLogin.height);
    // Searched from the block that added the laptop (the oldest device) up to the top.
    const { record } = await server.ledger.getKeyRecord(ID);
    assert.equal(logins.searched.fromHeight, record!.registered.height);
    assert.ok(logins.searched.toHeight >= phoneLogin.height);

    // The laptop logs in again: now it is the newer, as the phone's own session sees it.
    await loginOnce(laptop);
    const fromPhone = await sessionOf(phone);
    const again = await readDeviceLogins({
      session: fromPhone,
      server: await phone.readServer(),
      id: ID,
      devices: [laptopFpr, phoneFpr],
    });
    assert.ok(again.byDevice.get(laptopFpr)!.at > again.byDevice.get(phoneFpr)!.at);
    assert.equal(again.byDevice.get(phoneFpr)!.txid, phoneLogin.txid);
  });

  it("another identity's session is answered with its own logins only", async () => {
    const other = await registeredClient(server, 'max@example.org');
    await loginOnce(other, 'max@example.org');
    const s = await sessionOf(other);
    const answer = await s.request<DeviceLoginsAnswer>({ op: 'device.logins' });
    assert.equal(answer.logins.length, 1);
    const fpr = (await other.readIdentity()).fingerprint;
    assert.equal(answer.logins[0]?.fingerprint, fpr);
    assert.equal(
      (answer.logins[0]!.receipt.envelope.tx.body as { subject: string }).subject,
      sha256Hex('max@example.org'),
    );
  });

  it('forged answers are refused: another device, another identity, not a login, changed, twice, malformed', async () => {
    const s = await sessionOf(laptop);
    const genuine = await s.request<DeviceLoginsAnswer>({ op: 'device.logins' });
    const server_ = await laptop.readServer();
    const forged = (answer: unknown) =>
      readDeviceLogins({
        session: { request: async <T>() => structuredClone(answer) as T },
        server: server_,
        id: ID,
        devices: [laptopFpr, phoneFpr],
      });
    // The genuine answer verifies through the same fake session.
    assert.equal((await forged(genuine)).byDevice.size, 2);
    const of = (fpr: string) => genuine.logins.find((l) => l.fingerprint === fpr)!;
    const refused = { code: 'KL_PROOF_INVALID' };
    // The phone's login given as the laptop's.
    await assert.rejects(
      forged({ ...genuine, logins: [{ fingerprint: laptopFpr, receipt: of(phoneFpr).receipt }] }),
      refused,
    );
    // The same login twice.
    await assert.rejects(forged({ ...genuine, logins: [of(phoneFpr), of(phoneFpr)] }), refused);
    // A device that is not one of those listed.
    const maxFpr = (await (await newClient('nobody@example.org')).readIdentity()).fingerprint;
    await assert.rejects(
      forged({ ...genuine, logins: [{ fingerprint: maxFpr, receipt: of(phoneFpr).receipt }] }),
      refused,
    );
    // Another identity's login: verified on the ledger, but not this identity's.
    const maxStart = (await starts('max@example.org'))[0]!;
    const maxReceipt = await server.ledger.getTransaction(maxStart.txid);
    await assert.rejects(
      readDeviceLogins({
        session: {
          request: async <T>() =>
            ({
              ...genuine,
              logins: [{ fingerprint: maxStart.detail!.fingerprint, receipt: maxReceipt }],
            }) as T,
        },
        server: server_,
        id: ID,
        devices: [String(maxStart.detail!.fingerprint)],
      }),
      refused,
    );
    // An event of the device that is not a login (its session's end).
    const end = (
      await readAuditTrail(server.ledger, { subject: sha256Hex(ID), event: 'session_end', limit: 1 })
    )[0]!;
    await assert.rejects(
      forged({
        ...genuine,
        logins: [{ fingerprint: laptopFpr, receipt: await server.ledger.getTransaction(end.txid) }],
      }),
      refused,
    );
    // A login moved later in time: the transaction no longer matches its proof.
    const later = structuredClone(of(phoneFpr).receipt) as TransactionReceipt;
    (later.envelope.tx.body as { at: number }).at += 86_400_000;
    await assert.rejects(
      forged({ ...genuine, logins: [{ fingerprint: phoneFpr, receipt: later }] }),
      refused,
    );
    // Malformed.
    for (const junk of [null, [], { logins: 'x' }, { ...genuine, extra: 1 }])
      await assert.rejects(forged(junk), refused);
  });
});
