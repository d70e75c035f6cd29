/**
 * Devices on a real server (docs/protocol.md "Devices"), driven at the wire: a new device's signed
 * request over HTTP, its approval and revocation inside an enrolled device's session, logins from
 * each device, and what an attacker tries — forged or replayed requests, codes guessed, reused,
 * expired or approved from another identity, a revoked device logging in again. The client commands
 * are tested in test/devices.test.ts and test/cli-devices.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { requestDevice } from '../src/client/device-request.js';
import type { ClientHome } from '../src/client/home.js';
import { connect } from '../src/client/session.js';
import { activeDevices } from '../src/ledger/devices.js';
import { type TransactionReceipt, verifyTransactionReceipt } from '../src/ledger/proofs.js';
import { readPublicKey } from '../src/pgp/messages.js';
import { sealTo } from '../src/pgp/sealed.js';
import { canonicalBytes } from '../src/protocol/canonical-json.js';
import { deviceCheckNumber, sameCheckNumber } from '../src/protocol/device-check.js';
import { isKlError } from '../src/protocol/errors.js';
import { formatInvitation, parseInvitation } from '../src/protocol/invitation.js';
import type { DeviceAdditionStatement } from '../src/protocol/statements.js';
import { revokeDeviceAsAdmin } from '../src/server/admin-actions.js';
import { callAdmin } from '../src/server/admin-socket.js';
import type { RunningServer } from '../src/server/app.js';
import { ParsedKeyCache } from '../src/server/handshake.js';
import { liveClock } from './helpers.js';
import { approvedDevice, deviceRequest, pinLike, postJson } from './support/devices.js';
import { mitmProxy } from './support/mitm-proxy.js';
import { CLIENT_PASSPHRASE, invite, newClient, registeredClient, testServer } from './support/server.js';

const code = (c: string) => (err: unknown) => {
  assert.ok(isKlError(err), String(err));
  assert.equal(err.code, c, err.message);
  return true;
};

/** What the device routes answer, as far as these tests read it. */
interface Answer {
  code: string;
  poll: string;
  status: string;
  receipt: TransactionReceipt;
  error?: { code: string };
}

const post = (server: RunningServer, path: string, body: unknown) => postJson<Answer>(server, path, body);

async function get(server: RunningServer, path: string) {
  const r = await fetch(`${server.url}${path}`);
  return { status: r.status, body: (await r.json()) as Answer };
}

const signedRequest = deviceRequest;

/** `id` registered from a laptop, with a phone added from the laptop's session (left open). */
async function twoDevices(srv: RunningServer, id: string) {
  const laptop = await registeredClient(srv, id);
  const phone = await newClient(id);
  const session = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
  await approvedDevice({ server: srv, session, home: phone, id, name: 'phone', pinsFrom: laptop });
  return { laptop, phone, session };
}

const servers: RunningServer[] = [];
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of closers) await c();
  for (const s of servers) await s.close();
});

async function server(o: Parameters<typeof testServer>[0] = {}) {
  const s = await testServer(o);
  servers.push(s);
  return s;
}

describe('devices on a server', () => {
  it('a request approved from an enrolled device: DeviceAdded, the requester reads its receipt, both devices log in', async () => {
    const srv = await server();
    const laptop = await registeredClient(srv, 'ana@example.org');
    const phone = await newClient('ana@example.org');
    const asked = await post(
      srv,
      '/v1/devices/requests',
      await signedRequest(srv, phone, 'ana@example.org', 'phone'),
    );
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    assert.match(asked.body.code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    assert.deepEqual((await get(srv, `/v1/devices/requests/${asked.body.poll}`)).body.status, 'pending');

    const s = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
    // Typed as a person may: lower case, no dash.
    const shown = await s.pendingDevice(asked.body.code.toLowerCase().replace('-', ''));
    const phoneId = (await phone.readIdentity()).fingerprint;
    assert.equal(shown.name, 'phone');
    assert.equal(shown.fingerprint, phoneId);
    const approved = await s.approveDevice(asked.body.code, shown);
    assert.equal(approved.verified, true);

    const status = await get(srv, `/v1/devices/requests/${asked.body.poll}`);
    assert.equal(status.body.status, 'added');
    const { genesis } = JSON.parse(JSON.stringify(await laptop.readServer()));
    const check = verifyTransactionReceipt({ genesis, receipt: status.body.receipt });
    assert.equal(check.verified, true);
    assert.equal(check.verified && check.envelope.tx.type, 'DeviceAdded');

    const { record } = await srv.ledger.getKeyRecord('ana@example.org');
    assert.deepEqual(
      activeDevices(record!).map((d) => d.name),
      [null, 'phone'],
    );
    // The code is spent: a second approval, or showing it again, finds nothing.
    await assert.rejects(s.pendingDevice(asked.body.code), code('KL_DEVICE_CODE_INVALID'));
    await assert.rejects(s.approveDevice(asked.body.code, shown), code('KL_DEVICE_CODE_INVALID'));

    pinLike(laptop, phone);
    const fromPhone = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
    assert.equal(srv.sessions.get(fromPhone.sessionId)?.fingerprint, phoneId);
    assert.deepEqual(await fromPhone.request({ op: 'echo', text: 'hi' }), {
      echo: 'hi',
      id: 'ana@example.org',
    });
    await fromPhone.close();
    await s.close();
  });

  it('a request is refused unless the new key signed this statement for this ledger now; an unknown identity gets a code like any', async () => {
    const srv = await server();
    const home = await newClient('bo@example.org');
    const other = await newClient('x@example.org');
    const good = await signedRequest(srv, home, 'bo@example.org', 'tablet');
    const refused = async (body: unknown, want: string) => {
      const r = await post(srv, '/v1/devices/requests', body);
      assert.equal(r.body.error?.code, want, JSON.stringify(r.body));
    };
    // Another key's signature, another ledger, a stale time, a fingerprint that is not the key's.
    const foreign = await signedRequest(srv, other, 'bo@example.org', 'tablet');
    await refused({ ...good, signature: foreign.signature }, 'KL_SIGNATURE_INVALID');
    await refused(
      await signedRequest(srv, home, 'bo@example.org', 'tablet', { chain: 'a'.repeat(64) }),
      'KL_STATEMENT_INVALID',
    );
    await refused(
      await signedRequest(srv, home, 'bo@example.org', 'tablet', { time: Date.now() + 3_600_000 }),
      'KL_STATEMENT_INVALID',
    );
    await refused({ ...foreign, publicKey: good.publicKey }, 'KL_STATEMENT_INVALID');
    await refused(await signedRequest(srv, home, 'Bo@Example.org', 'tablet'), 'KL_STATEMENT_INVALID');
    await refused({ ...good, statement: '{"type":' }, 'KL_STATEMENT_INVALID');
    await refused(await signedRequest(srv, home, 'bo@example.org', '../../x'), 'KL_STATEMENT_INVALID');
    await refused({ ...good, extra: 1 }, 'KL_BAD_INPUT');
    // bo is not registered at all: the same answer as for a registered identity.
    const r = await post(srv, '/v1/devices/requests', good);
    assert.equal(r.status, 201);
    // The same request sent again (anyone who saw it can) does not replace it: its code still waits.
    const replayed = await post(srv, '/v1/devices/requests', good);
    assert.equal(replayed.body.error?.code, 'KL_STATEMENT_INVALID');
    assert.equal((await get(srv, `/v1/devices/requests/${r.body.poll}`)).body.status, 'pending');
    assert.equal(
      (await get(srv, `/v1/devices/requests/${'A'.repeat(43)}`)).body.error?.code,
      'KL_DEVICE_CODE_INVALID',
    );
  });

  it('codes of another identity, guessed, expired or raced: refused, and wrong guesses are limited per identity', async () => {
    const clock = liveClock();
    const srv = await server({ now: clock });
    const ana = await registeredClient(srv, 'cy@example.org');
    const eve = await registeredClient(srv, 'eve@example.org');
    const phone = await newClient('cy@example.org');
    const asked = (
      await post(srv, '/v1/devices/requests', await signedRequest(srv, phone, 'cy@example.org', 'phone'))
    ).body;
    // eve is logged in as herself: cy's code is nothing to her, and approving it writes nothing.
    const e = await connect({ home: eve, passphrase: CLIENT_PASSPHRASE, now: clock });
    await assert.rejects(e.pendingDevice(asked.code), code('KL_DEVICE_CODE_INVALID'));
    await assert.rejects(
      e.approveDevice(asked.code, {
        name: 'phone',
        fingerprint: 'f'.repeat(40),
        publicKey: '',
        check: '000 000',
        statement: JSON.parse((await signedRequest(srv, phone, 'cy@example.org', 'phone')).statement),
      }),
      code('KL_DEVICE_CODE_INVALID'),
    );
    // Guessing from her own session: ten misses, then refused before any lookup.
    for (let i = 0; i < 8; i++)
      await assert.rejects(e.pendingDevice(`ZZZZ-ZZ${i}Z`), code('KL_DEVICE_CODE_INVALID'));
    await assert.rejects(e.pendingDevice(asked.code), code('KL_RATE_LIMITED'));
    await e.close();
    // cy's own device is not charged by eve's misses.
    const s = await connect({ home: ana, passphrase: CLIENT_PASSPHRASE, now: clock });
    const shown = await s.pendingDevice(asked.code);
    // Ten minutes later the code is gone, for its owner too.
    clock.advance(10 * 60_000 + 1);
    await assert.rejects(s.approveDevice(asked.code, shown), code('KL_DEVICE_CODE_INVALID'));
    assert.equal((await get(srv, `/v1/devices/requests/${asked.poll}`)).status, 404);
    // Two approvals of one code at once: one device is added, once.
    clock.advance(-10 * 60_000 - 1);
    const again = (
      await post(srv, '/v1/devices/requests', await signedRequest(srv, phone, 'cy@example.org', 'phone'))
    ).body;
    const pending = await s.pendingDevice(again.code);
    const both = await Promise.allSettled([
      s.approveDevice(again.code, pending),
      s.approveDevice(again.code, pending),
    ]);
    assert.deepEqual(both.map((b) => b.status).sort(), ['fulfilled', 'rejected']);
    const { record } = await srv.ledger.getKeyRecord('cy@example.org');
    assert.equal(activeDevices(record!).length, 2);
    await s.close();
  });

  it('revoking a device ends its sessions at once; the other device goes on; the revoked key cannot log in; the last device is refused', async () => {
    const srv = await server();
    const { laptop, phone, session: fromLaptop } = await twoDevices(srv, 'di@example.org');
    const fromPhone = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
    const ended = new Promise((resolve) => fromPhone.once('close', resolve));
    const phoneFpr = (await phone.readIdentity()).fingerprint;
    await fromLaptop.revokeDevice(phoneFpr, 'compromised');
    await ended;
    assert.equal(srv.sessions.ofIdentity('di@example.org').length, 1, 'the laptop session goes on');
    assert.deepEqual(await fromLaptop.request({ op: 'echo', text: 'still' }), {
      echo: 'still',
      id: 'di@example.org',
    });
    await assert.rejects(connect({ home: phone, passphrase: CLIENT_PASSPHRASE }), code('KL_AUTH_FAILED'));
    // Revoked already, and the laptop is now the only device.
    await assert.rejects(fromLaptop.revokeDevice(phoneFpr), code('KL_DEVICE_UNKNOWN'));
    const laptopFpr = (await laptop.readIdentity()).fingerprint;
    await assert.rejects(fromLaptop.revokeDevice(laptopFpr), code('KL_LAST_DEVICE'));
    await fromLaptop.close();
  });

  it('an operator revokes a device by name through the admin socket: its sessions end; the last device revoked so revokes the identity', async () => {
    const srv = await server();
    const { laptop, phone, session: fromLaptop } = await twoDevices(srv, 'ed@example.org');
    const fromPhone = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
    const listed = await callAdmin<Array<{ sessionId: string; fingerprint: string }>>(
      srv.dataDir,
      'GET',
      '/sessions',
    );
    const phoneFpr = (await phone.readIdentity()).fingerprint;
    assert.equal(listed.find((x) => x.sessionId === fromPhone.sessionId)?.fingerprint, phoneFpr);
    const ended = new Promise((resolve) => fromPhone.once('close', resolve));
    await assert.rejects(
      callAdmin(srv.dataDir, 'POST', '/keys/ed%40example.org/devices/tablet/revoke', {}),
      code('KL_DEVICE_UNKNOWN'),
    );
    const r = await callAdmin<{ fingerprint: string; name: string }>(
      srv.dataDir,
      'POST',
      '/keys/ed%40example.org/devices/PHONE/revoke',
      { reason: 'compromised', admin: 'ops@example.org' },
    );
    assert.deepEqual([r.fingerprint, r.name], [phoneFpr, 'phone']);
    await ended;
    assert.deepEqual(await fromLaptop.request({ op: 'echo', text: 'on' }), {
      echo: 'on',
      id: 'ed@example.org',
    });
    const laptopFpr = (await laptop.readIdentity()).fingerprint;
    const closed = new Promise((resolve) => fromLaptop.once('close', resolve));
    await callAdmin(srv.dataDir, 'POST', `/keys/ed%40example.org/devices/${laptopFpr}/revoke`, {});
    await closed;
    const { record } = await srv.ledger.getKeyRecord('ed@example.org');
    assert.equal(record?.status, 'revoked');
    assert.equal(record?.revocation?.admin, 'admin@localhost');
  });

  it('an operator invitation adds a device without an approval; it is single use (also when raced), sealed and bound to its request, for that identity only', async () => {
    const srv = await server();
    await registeredClient(srv, 'fay@example.org');
    const now = Date.now();
    const deviceInvite = formatInvitation(
      srv.proofs.issueInvite('fay@example.org', now, now + 3_600_000, { issuer: 'ops@example.org' }),
      srv.ledger.chainId,
    );
    const serverKey = await readPublicKey(
      ((await get(srv, '/v1/info')).body as unknown as { server: { publicKey: string } }).server.publicKey,
    );
    /** A request carrying `code` sealed to the server for that very request, as the client makes it. */
    const invited = async (home: ClientHome, id: string, name: string, code: string) => {
      const request = await signedRequest(srv, home, id, name);
      const statement = JSON.parse(request.statement) as DeviceAdditionStatement;
      const payload = {
        type: 'keyledger/device-invite',
        v: 1,
        chain: statement.chain,
        id,
        fingerprint: statement.fingerprint,
        time: statement.time,
        code,
      };
      return { ...request, invite: await sealTo(canonicalBytes(payload), serverKey) };
    };
    const tablet = await newClient('fay@example.org');
    // In clear text, as a registration invitation, or another identity's: refused.
    const plain = await post(srv, '/v1/devices/requests', {
      ...(await signedRequest(srv, tablet, 'fay@example.org', 'tablet')),
      invite: deviceInvite,
    });
    assert.equal(plain.body.error?.code, 'KL_IDENTITY_PROOF_INVALID');
    const registration = parseInvitation(invite(srv, 'fay@example.org')).code;
    const wrong = await post(
      srv,
      '/v1/devices/requests',
      await invited(tablet, 'fay@example.org', 'tablet', registration),
    );
    assert.equal(wrong.body.error?.code, 'KL_IDENTITY_PROOF_INVALID');
    const inviteCode = parseInvitation(deviceInvite).code;
    const other = await newClient('gus@example.org');
    const foreign = await post(
      srv,
      '/v1/devices/requests',
      await invited(other, 'gus@example.org', 'tablet', inviteCode),
    );
    assert.equal(foreign.body.error?.code, 'KL_IDENTITY_PROOF_INVALID');
    // A sealed invitation read off the wire and put on the reader's own request: bound to another key.
    const seen = await invited(tablet, 'fay@example.org', 'tablet', inviteCode);
    const thief = await newClient('fay@example.org');
    const stolen = await post(srv, '/v1/devices/requests', {
      ...(await signedRequest(srv, thief, 'fay@example.org', 'tablet')),
      invite: seen.invite,
    });
    assert.equal(stolen.body.error?.code, 'KL_IDENTITY_PROOF_INVALID');
    // Two requests racing with one invitation: one device.
    const watch = await newClient('fay@example.org');
    const raced = await Promise.all([
      post(srv, '/v1/devices/requests', await invited(watch, 'fay@example.org', 'watch', inviteCode)),
      post(srv, '/v1/devices/requests', seen),
    ]);
    assert.deepEqual(raced.map((r) => r.status).sort(), [201, 401]);
    const { record } = await srv.ledger.getKeyRecord('fay@example.org');
    assert.equal(activeDevices(record!).length, 2);
    const added = activeDevices(record!).find((d) => d.primary === false);
    assert.deepEqual(added?.approvedBy, { admin: 'ops@example.org' });
    // Through the client, with a new invitation: its pin authenticates the server; no approval.
    const second = formatInvitation(
      srv.proofs.issueInvite('fay@example.org', now, now + 3_600_000, { issuer: 'ops@example.org' }),
      srv.ledger.chainId,
    );
    const pad = await newClient('fay@example.org');
    const asked = await requestDevice({
      home: pad,
      server: srv.url,
      passphrase: CLIENT_PASSPHRASE,
      name: 'pad',
      invite: second,
    });
    assert.equal(asked.trust, 'pinned');
    assert.equal((await asked.wait()).verified, true);
    (await connect({ home: pad, passphrase: CLIENT_PASSPHRASE })).close();
  });

  it('an invitation given back when the ledger refuses the device (a name taken) works for the next request', async () => {
    const srv = await server();
    await registeredClient(srv, 'hal@example.org');
    const issue = () => {
      const now = Date.now();
      return formatInvitation(
        srv.proofs.issueInvite('hal@example.org', now, now + 3_600_000, { issuer: 'ops@example.org' }),
        srv.ledger.chainId,
      );
    };
    const ask = async (name: string, invitation: string) =>
      requestDevice({
        home: await newClient('hal@example.org'),
        server: srv.url,
        passphrase: CLIENT_PASSPHRASE,
        name,
        invite: invitation,
      });
    await (await ask('phone', issue())).wait();
    const again = issue();
    await assert.rejects(ask('Phone', again), code('KL_DEVICE_NAME_TAKEN'));
    const added = await (await ask('tablet', again)).wait();
    assert.equal(added.name, 'tablet');
    await assert.rejects(ask('watch', again), code('KL_IDENTITY_PROOF_INVALID'));
  });

  it('the check number: the new device and the approving one agree; a request swapped on the way (a man in the middle) shows another', async () => {
    const srv = await server();
    const laptop = await registeredClient(srv, 'ida@example.org');
    const phone = await newClient('ida@example.org');
    const chain = srv.ledger.chainId;
    const asked = await requestDevice({
      home: phone,
      server: srv.url,
      passphrase: CLIENT_PASSPHRASE,
      name: 'phone',
      expectChain: chain,
    });
    const s = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
    assert.equal((await s.pendingDevice(asked.code.toLowerCase())).check, asked.check);
    // The man in the middle keeps the victim's request from the server, sends its own (its key, the
    // same identity and name) and hands the victim the code of its own request.
    const mallory = await newClient('ida@example.org');
    const swapped = (
      await post(srv, '/v1/devices/requests', await signedRequest(srv, mallory, 'ida@example.org', 'phone'))
    ).body;
    const shown = await s.pendingDevice(swapped.code);
    const victimSees = deviceCheckNumber(
      {
        type: 'keyledger/add-device',
        v: 1,
        chain,
        id: 'ida@example.org',
        name: 'phone',
        fingerprint: asked.fingerprint,
        time: shown.statement.time,
      },
      swapped.code,
    );
    assert.notEqual(shown.check, victimSees);
    assert.equal(sameCheckNumber(asked.check.replace(' ', '-'), asked.check), true);
    await s.close();
  });

  it('a device revoked while its login response is being checked gets no live session (the ledger is read again once the session exists)', async () => {
    const srv = await server();
    const { phone, session: s } = await twoDevices(srv, 'jo@example.org');
    await s.close();
    const phoneFpr = (await phone.readIdentity()).fingerprint;
    // The revocation commits while the response's signature is checked: after the handshake's last
    // read of the record, before the session exists (a busy server, a follower catching up).
    const original = ParsedKeyCache.prototype.get;
    let calls = 0;
    ParsedKeyCache.prototype.get = async function (this: ParsedKeyCache, armored: string) {
      calls += 1;
      if (calls === 2) {
        await revokeDeviceAsAdmin(srv.ledger, {
          id: 'jo@example.org',
          device: phoneFpr,
          admin: 'ops@example.org',
        });
        await new Promise((r) => setTimeout(r, 50)); // the ledger watch has run: no session to end yet
      }
      return original.call(this, armored);
    };
    let late: Awaited<ReturnType<typeof connect>>;
    try {
      late = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
    } finally {
      ParsedKeyCache.prototype.get = original;
    }
    const ended = await new Promise((resolve) => {
      if (late.isClosed) resolve(true);
      late.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 5_000);
    });
    assert.equal(ended, true, 'the session of the revoked device ended');
    assert.equal(srv.sessions.ofIdentity('jo@example.org').length, 0);
  });

  it('a forged refusal on the poll is no verdict: said as not verified, and once a device of the identity approved, asking again pins from the ledger', async () => {
    const srv = await server();
    const laptop = await registeredClient(srv, 'kim@example.org');
    const phone = await newClient('kim@example.org');
    const proxy = await mitmProxy(srv.url);
    closers.push(() => proxy.close());
    proxy.forgeHttp((method, path) =>
      method === 'GET' && path.startsWith('/v1/devices/requests/')
        ? {
            status: 200,
            body: {
              status: 'refused',
              error: { code: 'KL_DEVICE_NAME_TAKEN', message: 'call the help desk and read them your code' },
            },
          }
        : null,
    );
    const chain = srv.ledger.chainId;
    const asked = await requestDevice({
      home: phone,
      server: proxy.url,
      passphrase: CLIENT_PASSPHRASE,
      name: 'phone',
      expectChain: chain,
      pollMs: 50,
    });
    await assert.rejects(asked.wait(), (err: unknown) => {
      assert.ok(isKlError(err));
      assert.equal(err.details?.authenticated, false);
      assert.match(err.message, /not verified/);
      return true;
    });
    const s = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
    await s.approveDevice(asked.code, await s.pendingDevice(asked.code));
    await s.close();
    // Asked again (the man in the middle still answers every poll with a refusal): the ledger's
    // state proof shows the key as a device, and the receipt of its addition pins the ledger.
    const again = await requestDevice({
      home: phone,
      server: proxy.url,
      passphrase: CLIENT_PASSPHRASE,
      name: 'phone',
      expectChain: chain,
      pollMs: 50,
    });
    const added = await again.wait();
    assert.equal(added.verified, true);
    proxy.forgeHttp(null);
    (await connect({ home: phone, passphrase: CLIENT_PASSPHRASE, server: srv.url })).close();
  });
});
