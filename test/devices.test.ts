/**
 * Devices through the client SDK (issue 18; docs/protocol.md "Devices"): a new device asks with its
 * own key (requestDevice), an enrolled device approves it by its code, the new device's receipt is
 * verified and its home pinned, both devices hold sessions at once, one device is revoked while the
 * other goes on, and the list the ledger proves follows. Refusals by their stable codes: a code used
 * twice, another identity's code, an expired code, a request whose signature is not by its key, a
 * name already taken. Real server on 127.0.0.1, real OpenPGP keys.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OpenPgpClientKey } from '../src/client/client-key.js';
import { requestDevice } from '../src/client/device-request.js';
import { listDevices } from '../src/client/devices.js';
import { ClientHome } from '../src/client/home.js';
import { createIdentity } from '../src/client/identity.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { verifyTransactionReceipt } from '../src/ledger/proofs.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { generateKeyPair } from '../src/pgp/key-pair.js';
import { unlockPrivateKey } from '../src/pgp/messages.js';
import { type DeviceAdditionStatement, statementBytes } from '../src/protocol/statements.js';
import { liveClock, tempDir } from './helpers.js';
import { mitmProxy } from './support/mitm-proxy.js';
import { CLIENT_PASSPHRASE, newClient, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
/** The refusal `promise` must end in: a typed error with this stable code. */
const code = (c: string) => ({ name: 'KlError', code: c });
/** The `close` event of a session, once it comes. */
const closeOf = (s: ClientSession) =>
  new Promise<{ alert: { code: string } | null; resumable: boolean }>((resolve) => s.once('close', resolve));

/** One machine plays every device: device requests are limited per source address. */
const open = { burst: 1_000, perSecond: 100 };
let server: Srv;
before(async () => {
  server = await testServer({ rateLimits: { deviceRequestPerIp: open, wrongDeviceCodePerIdentity: open } });
});
const gpgHomes: string[] = [];
after(async () => {
  await server.close();
  for (const h of gpgHomes) spawnSync('gpgconf', ['--homedir', h, '--kill', 'gpg-agent']);
});

/** A new device's home for `id`: a fresh key, named `device`. */
async function newDevice(id: string, device: string): Promise<ClientHome> {
  const home = await newClient(id);
  home.writeIdentity({ ...home.readIdentity(), device });
  return home;
}

/** Asks `srv` to add the device in `home`, pinned by the chain id (as `--chain` does). */
function ask(srv: Srv, home: ClientHome, o: { pollMs?: number } = {}) {
  return requestDevice({
    home,
    server: srv.url,
    passphrase: CLIENT_PASSPHRASE,
    expectChain: srv.ledger.chainId,
    pollMs: o.pollMs ?? 50,
  });
}

/** An enrolled device (registered) and a second one added through a request and its approval. */
async function twoDevices(id: string): Promise<{ first: ClientHome; second: ClientHome }> {
  const first = await registeredClient(server, id);
  const second = await newDevice(id, 'phone');
  const req = await ask(server, second);
  const waiting = req.wait();
  const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
  await s.approveDevice(req.code, await s.pendingDevice(req.code));
  await s.close();
  await waiting;
  return { first, second };
}

describe('adding a device', () => {
  it('request on a new home, approval from the first device: the receipt verified, the new device logs in, both hold sessions at once', async () => {
    const id = 'dora@example.org';
    const first = await registeredClient(server, id);
    const second = await newDevice(id, 'phone');
    const secondFpr = second.readIdentity().fingerprint;

    const req = await ask(server, second);
    assert.match(req.code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    assert.equal(req.fingerprint, secondFpr);
    assert.equal(req.name, 'phone');
    assert.equal(req.chain, server.ledger.chainId);
    assert.equal(req.trust, 'pinned');
    assert.ok(req.expiresAt > Date.now() + 9 * 60_000 && req.expiresAt <= Date.now() + 10 * 60_000);
    const polls: number[] = [];
    const waiting = req.wait({ onPoll: (p) => polls.push(p.expiresAt) });
    // Not on the ledger before the approval: the new device cannot log in, and has no server.json.
    assert.equal(second.hasServer(), false);

    const s1 = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const pending = await s1.pendingDevice(req.code);
    assert.equal(pending.name, 'phone');
    assert.equal(pending.fingerprint, secondFpr);
    const approved = await s1.approveDevice(req.code, pending);
    assert.equal(approved.verified, true);

    const added = await waiting;
    assert.ok(polls.length >= 1, 'the waiting device was told it was pending');
    assert.equal(added.verified, true);
    assert.equal(added.txid, approved.txid);
    assert.equal(added.height, approved.height);
    assert.deepEqual([added.id, added.name, added.fingerprint], [id, 'phone', secondFpr]);

    // The new home is pinned as at registration: genesis, server key, and the DeviceAdded receipt.
    const pinned = second.readServer();
    assert.equal(pinned.chain, server.ledger.chainId);
    assert.deepEqual(pinned.genesis, first.readServer().genesis);
    assert.equal(pinned.server.fingerprint, first.readServer().server.fingerprint);
    const check = verifyTransactionReceipt({ genesis: pinned.genesis, receipt: pinned.registration.receipt });
    assert.ok(check.verified);
    assert.equal(check.envelope.tx.type, 'DeviceAdded');
    const body = check.envelope.tx.body as TxBodies['DeviceAdded'];
    assert.deepEqual([body.id, body.name, body.fingerprint], [id, 'phone', secondFpr]);
    assert.ok('device' in body.approvedBy && body.approvedBy.device === first.readIdentity().fingerprint);

    // Both devices hold a session at once, each with its own key.
    const s2 = await connect({ home: second, passphrase: CLIENT_PASSPHRASE });
    assert.deepEqual(await s2.request({ op: 'echo', text: 'from the phone' }), {
      echo: 'from the phone',
      id,
    });
    assert.deepEqual(await s1.request({ op: 'echo', text: 'from the first' }), {
      echo: 'from the first',
      id,
    });
    assert.equal(s1.isClosed, false);
    await s2.close();
    await s1.close();
  });

  it('device list proves both devices, each home marking its own', async () => {
    const { first, second } = await twoDevices('ezra@example.org');
    const fromFirst = await listDevices({ home: first });
    assert.equal(fromFirst.verified, true);
    assert.deepEqual(
      fromFirst.devices.map((d) => [d.fingerprint, d.name, d.current]),
      [
        [first.readIdentity().fingerprint, null, true],
        [second.readIdentity().fingerprint, 'phone', false],
      ],
    );
    const fromSecond = await listDevices({ home: second });
    assert.deepEqual(
      fromSecond.devices.map((d) => d.current),
      [false, true],
    );
    assert.deepEqual(fromSecond.history, []);
  });

  it('a refusal reaches the waiting device typed: a name already taken (KL_DEVICE_NAME_TAKEN)', async () => {
    const id = 'fay@example.org';
    const { first } = await twoDevices(id);
    const third = await newDevice(id, 'PHONE');
    const req = await ask(server, third);
    const waiting = req.wait();
    const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    await assert.rejects(
      s.approveDevice(req.code, await s.pendingDevice(req.code)),
      code('KL_DEVICE_NAME_TAKEN'),
    );
    await assert.rejects(waiting, code('KL_DEVICE_NAME_TAKEN'));
    assert.equal(third.hasServer(), false, 'nothing pinned for a refused request');
    await s.close();
  });
});

describe('a device whose key stays in GnuPG', () => {
  it('asks, is approved, and logs in with gpg doing every private-key operation', async () => {
    const id = 'olga@example.org';
    const first = await registeredClient(server, id);
    const { gpgHome, fingerprint } = gpgHeldKey(id);
    const second = new ClientHome(join(tempDir('kl-home-'), 'home'));
    await createIdentity({ home: second, id, name: 'Olga', source: 'gpg', fingerprint, gpgHome });
    second.writeIdentity({ ...second.readIdentity(), device: 'smartcard' });
    const req = await requestDevice({
      home: second,
      server: server.url,
      expectChain: server.ledger.chainId,
      pollMs: 50,
    });
    assert.equal(req.fingerprint, fingerprint);
    const waiting = req.wait();
    const s1 = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const pending = await s1.pendingDevice(req.code);
    assert.equal(pending.fingerprint, fingerprint);
    await s1.approveDevice(req.code, pending);
    assert.equal((await waiting).fingerprint, fingerprint);
    const s2 = await connect({ home: second });
    assert.deepEqual(await s2.request({ op: 'echo', text: 'gpg' }), { echo: 'gpg', id });
    await s2.close();
    await s1.close();
  });
});

describe('revoking a device', () => {
  it("ends that device's sessions; the other device's go on; the list shows one device and the revoked key", async () => {
    const id = 'gus@example.org';
    const { first, second } = await twoDevices(id);
    const secondFpr = second.readIdentity().fingerprint;
    const s1 = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const s2 = await connect({ home: second, passphrase: CLIENT_PASSPHRASE });
    const s2closed = closeOf(s2);

    const r = await s1.revokeDevice(secondFpr, 'retired');
    assert.equal(r.verified, true);
    const closed = await s2closed;
    assert.equal(closed.alert?.code, 'KL_KEY_REVOKED', 'ended by a sealed alert');
    assert.equal(closed.resumable, false);
    assert.equal(s2.isClosed, true);
    assert.deepEqual(await s1.request({ op: 'echo', text: 'still here' }), { echo: 'still here', id });
    await assert.rejects(connect({ home: second, passphrase: CLIENT_PASSPHRASE }));

    const list = await listDevices({ home: first });
    assert.deepEqual(
      list.devices.map((d) => d.fingerprint),
      [first.readIdentity().fingerprint],
    );
    assert.deepEqual(
      list.history.map((h) => [h.fingerprint, h.reason, h.device]),
      [[secondFpr, 'revoked', 'phone']],
    );
    await s1.close();
  });

  it('a device revoking itself ends its own session; the first device goes on', async () => {
    const id = 'hope@example.org';
    const { first, second } = await twoDevices(id);
    const s1 = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const s2 = await connect({ home: second, passphrase: CLIENT_PASSPHRASE });
    const s2closed = closeOf(s2);
    await s2.revokeDevice(second.readIdentity().fingerprint, 'compromised');
    assert.equal((await s2closed).alert?.code, 'KL_KEY_REVOKED');
    assert.deepEqual(await s1.request({ op: 'echo', text: 'on' }), { echo: 'on', id });
    const list = await listDevices({ home: first });
    assert.equal(list.devices.length, 1);
    await s1.close();
  });
});

describe('device codes and requests refused', () => {
  it('a code used twice: KL_DEVICE_CODE_INVALID, and nothing more is added', async () => {
    const id = 'ida@example.org';
    const first = await registeredClient(server, id);
    const second = await newDevice(id, 'tablet');
    const req = await ask(server, second);
    const waiting = req.wait();
    const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const pending = await s.pendingDevice(req.code);
    await s.approveDevice(req.code, pending);
    await waiting;
    await assert.rejects(s.pendingDevice(req.code), code('KL_DEVICE_CODE_INVALID'));
    await assert.rejects(s.approveDevice(req.code, pending), code('KL_DEVICE_CODE_INVALID'));
    assert.equal((await listDevices({ home: first })).devices.length, 2);
    await s.close();
  });

  it("another identity's code, shown to or approved by a foreign identity's session: KL_DEVICE_CODE_INVALID; the request still waits for its own identity", async () => {
    const id = 'jan@example.org';
    const first = await registeredClient(server, id);
    const eve = await registeredClient(server, 'eve@example.org');
    const second = await newDevice(id, 'laptop');
    const req = await ask(server, second);
    const waiting = req.wait();
    const own = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const pending = await own.pendingDevice(req.code);
    const foreign = await connect({ home: eve, passphrase: CLIENT_PASSPHRASE });
    await assert.rejects(foreign.pendingDevice(req.code), code('KL_DEVICE_CODE_INVALID'));
    await assert.rejects(foreign.approveDevice(req.code, pending), code('KL_DEVICE_CODE_INVALID'));
    assert.equal((await listDevices({ home: eve })).devices.length, 1, "nothing added to eve's identity");
    // Still pending: its own identity approves it.
    await own.approveDevice(req.code, pending);
    assert.equal((await waiting).name, 'laptop');
    await foreign.close();
    await own.close();
  });

  it('a request whose signature is not by the key it names: KL_SIGNATURE_INVALID, no code given', async () => {
    const claimed = await freshKey('kim@example.org');
    const signer = await freshKey('kim@example.org');
    const statement: DeviceAdditionStatement = {
      type: 'keyledger/add-device',
      v: 1,
      chain: server.ledger.chainId,
      id: 'kim@example.org',
      name: 'laptop',
      fingerprint: claimed.fingerprint,
      time: Date.now(),
    };
    const post = async (signature: string) => {
      const res = await fetch(`${server.url}/v1/devices/requests`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          statement: JSON.stringify(statement),
          publicKey: claimed.publicKey,
          signature,
        }),
      });
      return { status: res.status, body: (await res.json()) as { code?: string; error?: { code: string } } };
    };
    const bytes = statementBytes(statement);
    const forged = await post(await signer.signDetached(bytes, new Date(statement.time)));
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error?.code, 'KL_SIGNATURE_INVALID');
    assert.equal(forged.body.code, undefined);
    // The same request signed by the key it names is taken (the check above is the signature's).
    const genuine = await post(await claimed.signDetached(bytes, new Date(statement.time)));
    assert.equal(genuine.status, 201);
    assert.match(genuine.body.code ?? '', /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  });

  it('an expired code (the server clock 10 minutes on): KL_DEVICE_CODE_INVALID to the approver and to the waiting device', async () => {
    // Its own server and clock: moving this clock must not disturb the other tests.
    const clock = liveClock();
    const timed = await testServer({ now: clock, rateLimits: { deviceRequestPerIp: open } });
    try {
      const id = 'lou@example.org';
      const first = await registeredClient(timed, id);
      const second = await newDevice(id, 'phone');
      const req = await ask(timed, second);
      const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
      const pending = await s.pendingDevice(req.code);
      clock.advance(10 * 60_000 + 1_000);
      await assert.rejects(s.pendingDevice(req.code), code('KL_DEVICE_CODE_INVALID'));
      await assert.rejects(s.approveDevice(req.code, pending), code('KL_DEVICE_CODE_INVALID'));
      await assert.rejects(req.wait(), code('KL_DEVICE_CODE_INVALID'));
      assert.equal(second.hasServer(), false);
      await s.close();
    } finally {
      await timed.close();
    }
  });
});

describe('the waiting device checks what it is told', () => {
  it("a receipt of another device's addition, or one that does not verify: KL_RECEIPT_INVALID, nothing pinned", async () => {
    const id = 'max@example.org';
    const { second } = await twoDevices(id);
    const other = second.readServer().registration.receipt;
    const proxy = await mitmProxy(server.url);
    try {
      const third = await newDevice(id, 'watch');
      const req = await ask({ ...server, url: proxy.url } as Srv, third);
      // The man in the middle answers the new device's polls: added, with `receipt`.
      const pollsAnswered = (receipt: unknown) =>
        proxy.forgeHttp((method, path) =>
          method === 'GET' && path.startsWith('/v1/devices/requests/')
            ? { status: 200, body: { status: 'added', receipt } }
            : null,
        );
      // The genuine receipt of the phone's addition: verified, but it adds another device.
      pollsAnswered(other);
      await assert.rejects(req.wait(), { ...code('KL_RECEIPT_INVALID'), message: /another device addition/ });
      // That receipt with its transaction made to name this device: it no longer verifies.
      const envelope = other.envelope as { tx: { body: TxBodies['DeviceAdded'] } };
      pollsAnswered({
        ...other,
        envelope: {
          ...envelope,
          tx: {
            ...envelope.tx,
            body: { ...envelope.tx.body, fingerprint: third.readIdentity().fingerprint, name: 'watch' },
          },
        },
      });
      await assert.rejects(req.wait(), { ...code('KL_RECEIPT_INVALID'), message: /does not verify/ });
      assert.equal(third.hasServer(), false, 'nothing pinned from a receipt that proves nothing');
    } finally {
      await proxy.close();
    }
  });
});

/** A new GnuPG home holding a new Ed25519/Cv25519 key for `id` (no passphrase), and its fingerprint. */
function gpgHeldKey(id: string): { gpgHome: string; fingerprint: string } {
  const gpgHome = join(tempDir('kl-gpg-'), 'gnupg');
  mkdirSync(gpgHome, { mode: 0o700 });
  gpgHomes.push(gpgHome);
  const gpg = (...args: string[]) =>
    execFileSync('gpg', ['--homedir', gpgHome, '--batch', '--no-tty', ...args], { stdio: 'pipe' }).toString();
  gpg('--passphrase', '', '--quick-gen-key', `Olga <${id}>`, 'future-default', 'default', 'never');
  const fpr = gpg('--with-colons', '--list-keys', id)
    .split('\n')
    .find((l) => l.startsWith('fpr:'));
  return { gpgHome, fingerprint: fpr!.split(':')[9]!.toLowerCase() };
}

/** A fresh, unlocked key that is not registered anywhere. */
async function freshKey(id: string): Promise<OpenPgpClientKey> {
  const pair = await generateKeyPair({ id, name: 'New', passphrase: 'x', type: 'ecc' });
  return new OpenPgpClientKey(await unlockPrivateKey(pair.privateKey, 'x'));
}
