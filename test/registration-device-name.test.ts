/**
 * The first device's name at registration (docs/ledger.md "Devices"): the home's device name
 * (`keyledger init --device NAME`) travels in the registration statement the key signs, the server
 * writes it into KeyRegistered, and the client accepts only a receipt that carries exactly that name.
 * Without a name nothing changes. A name changed on the way breaks the signature; a receipt naming
 * another device is refused; names the ledger would refuse are refused before anything is sent (the
 * client) and at the door (the server). A revoked identity registered again takes the new name.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listDevices } from '../src/client/devices.js';
import type { ClientHome } from '../src/client/home.js';
import { openClientKey } from '../src/client/identity.js';
import { buildRegistrationRequest, register } from '../src/client/register.js';
import { connect } from '../src/client/session.js';
import { activeDevices } from '../src/ledger/devices.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { parseInvitation } from '../src/protocol/invitation.js';
import { statementBytes } from '../src/protocol/statements.js';
import { rejection, tempDir } from './helpers.js';
import { type CliResult, runCliAsync } from './support/cli.js';
import { CLIENT_PASSPHRASE, invite, newClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
before(async () => {
  const open = { burst: 1_000, perSecond: 100 };
  server = await testServer({
    rateLimits: { registerPerIp: open, loginPerIp: open, loginPerIdentity: open },
  });
});
after(async () => {
  await server.close();
});

/** A fresh home for `id` whose identity.json names the device `device`. */
async function homeNamed(id: string, device: string): Promise<ClientHome> {
  const home = await newClient(id);
  await home.writeIdentity({ ...(await home.readIdentity()), device });
  return home;
}

const registerHome = (home: ClientHome, id: string) =>
  register({
    home,
    server: server.url,
    proof: { method: 'invite', code: invite(server, id) },
    passphrase: CLIENT_PASSPHRASE,
  });

/** register/begin, then a register/complete body for `home` as its client builds it (the home's name). */
async function requestFor(home: ClientHome, id: string) {
  const begun = (await (
    await fetch(`${server.url}/v1/register/begin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
    })
  ).json()) as { nonce: string; chain: string; server: { fingerprint: string; publicKey: string } };
  const { identity, key } = await openClientKey(home, CLIENT_PASSPHRASE);
  const request = await buildRegistrationRequest({
    identity,
    key,
    chain: begun.chain,
    nonce: begun.nonce,
    server: begun.server,
    proof: { method: 'invite', code: parseInvitation(invite(server, id)).code },
    time: Date.now(),
  });
  return { request, key };
}

const complete = async (body: unknown) => {
  const r = await fetch(`${server.url}/v1/register/complete`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
};

describe('the first device is named at registration', () => {
  it('the name is in the signed statement, on the ledger (KeyRegistered, the record) and in the result', async () => {
    const id = 'lena@example.org';
    const home = await homeNamed(id, 'laptop');
    const r = await registerHome(home, id);
    assert.equal(r.device, 'laptop');
    const receipt = await server.ledger.getTransaction(r.txid);
    assert.equal((receipt.envelope.tx.body as TxBodies['KeyRegistered']).device, 'laptop');
    const { record } = await server.ledger.getKeyRecord(id);
    assert.equal(record?.device, 'laptop');
    // Read back by the client from the proven record, as keyledger device list does.
    const listed = await listDevices({ home });
    assert.deepEqual(
      listed.devices.map((d) => [d.name, d.current]),
      [['laptop', true]],
    );
  });

  it('without a name, nothing changes: no device field anywhere', async () => {
    const id = 'otto@example.org';
    const home = await newClient(id);
    const { request } = await requestFor(home, id);
    assert.equal('device' in request.statement, false);
    const r = await registerHome(await newClient('olga@example.org'), 'olga@example.org');
    assert.equal('device' in r, false);
    const receipt = await server.ledger.getTransaction(r.txid);
    assert.equal('device' in (receipt.envelope.tx.body as object), false);
    const { record } = await server.ledger.getKeyRecord('olga@example.org');
    assert.equal(activeDevices(record!)[0]?.name, null);
  });

  it('a name changed on the way breaks the signature: refused, nothing registered', async () => {
    const id = 'mira@example.org';
    const home = await homeNamed(id, 'laptop');
    const { request } = await requestFor(home, id);
    assert.equal(request.statement.device, 'laptop');
    const renamed = { ...request, statement: { ...request.statement, device: 'mallory' } };
    const r = await complete(renamed);
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.equal(r.body.error?.code, 'KL_SIGNATURE_INVALID');
    // Dropped, too: the name removed from the signed statement.
    const { device: _device, ...unnamed } = request.statement;
    assert.equal(
      (await complete({ ...request, statement: unnamed })).body.error?.code,
      'KL_SIGNATURE_INVALID',
    );
    assert.equal((await server.ledger.getKeyRecord(id)).record, null);
  });

  it('a receipt that names another device is refused by the client', async () => {
    // The key registered as "laptop"; the same key asked again as "desk" gets the receipt of the
    // first registration (a retry after a lost answer): it names another device, and is refused.
    const id = 'ruth@example.org';
    const home = await homeNamed(id, 'laptop');
    await registerHome(home, id);
    await home.writeIdentity({ ...(await home.readIdentity()), device: 'desk' });
    const err = await rejection(registerHome(home, id));
    assert.equal(err.code, 'KL_RECEIPT_INVALID');
    assert.match(err.message, /registers this key as the device "laptop", not "desk"/);
    // A home that lost its name meets the same refusal (the receipt names one, the home none).
    const { device: _device, ...unnamed } = await home.readIdentity();
    await home.writeIdentity(unnamed);
    assert.match(
      (await rejection(registerHome(home, id))).message,
      /as the device "laptop", not \(no name\)/,
    );
  });

  it('names the ledger would refuse: refused by the client before anything is sent, and by the server', async () => {
    for (const [i, bad] of ['my/phone', '', ' lead', 'a'.repeat(41), 'ab'.repeat(20), 'é'].entries()) {
      const id = `bad${i}@example.org`;
      const home = await homeNamed(id, bad);
      const err = await rejection(registerHome(home, id));
      assert.equal(err.code, 'KL_BAD_INPUT', `${JSON.stringify(bad)}: ${err.message}`);
      assert.match(err.message, /device name .* is not one the ledger takes/);
      await assert.rejects(requestFor(home, id), { code: 'KL_BAD_INPUT' });
      // Sent anyway, signed by the key: the server refuses it at the door with the same code.
      const { request, key } = await requestFor(await newClient(id), id);
      const statement = { ...request.statement, device: bad };
      const signature = await key.signDetached(statementBytes(statement), new Date(statement.time));
      const r = await complete({ ...request, statement, signature });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, 'KL_BAD_INPUT');
      assert.match(r.body.error?.message ?? '', /device/);
      assert.equal((await server.ledger.getKeyRecord(id)).record, null);
    }
  });

  it('a revoked identity registered again takes the new home name; the old one stays in the history', async () => {
    const id = 'vera@example.org';
    const first = await homeNamed(id, 'laptop');
    const r1 = await registerHome(first, id);
    const session = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    await session.revokeKey('compromised');
    await session.close().catch(() => undefined);
    const second = await homeNamed(id, 'desktop');
    const r2 = await registerHome(second, id);
    assert.equal(r2.device, 'desktop');
    const { record } = await server.ledger.getKeyRecord(id);
    assert.equal(record?.device, 'desktop');
    assert.deepEqual(
      record?.history.map((h) => [h.fingerprint, h.device, h.reason]),
      [[r1.fingerprint, 'laptop', 'revoked']],
    );
  });
});

describe('the first device is named at registration, through the CLI', () => {
  const env = { KEYLEDGER_PASSPHRASE: 'pw of the cli person' };
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    return r;
  };
  it('init --device, register (says the name), device list shows it', async () => {
    const id = 'ines@example.org';
    const dir = join(tempDir(), 'ines');
    ok(await runCliAsync(['init', '--id', id, '--device', 'laptop', '--home', dir], { env }));
    const reg = ok(
      await runCliAsync(['register', '--server', server.url, '--invite', invite(server, id), '--home', dir], {
        env,
      }),
    );
    assert.match(reg.stdout, /^device {7}laptop \(its name on the ledger, in the receipt verified\)$/m);
    const listed = JSON.parse(
      ok(await runCliAsync(['device', 'list', '--home', dir, '--json'], { env })).stdout,
    );
    assert.deepEqual(
      listed.devices.map((d: { name: string | null; current: boolean }) => [d.name, d.current]),
      [['laptop', true]],
    );
    // Every server answers device.logins: the listing's own login is left out, so none yet.
    assert.equal(listed.lastLogins.verified, true);
    assert.equal(listed.devices[0].lastLogin, null);
    const text = ok(await runCliAsync(['device', 'list', '--home', dir], { env })).stdout;
    assert.match(text, /^\* laptop +[0-9a-f]{40} +added at block \d+ +\(this device\)$/m);
  });

  it('a name in identity.json the ledger would refuse: register stops before sending, with KL_BAD_INPUT', async () => {
    const id = 'hugo@example.org';
    const home = await newClient(id);
    writeFileSync(
      join(home.dir, 'identity.json'),
      JSON.stringify({ ...(await home.readIdentity()), device: 'my/phone' }),
    );
    const r = await runCliAsync(
      ['register', '--server', server.url, '--invite', invite(server, id), '--home', home.dir],
      {
        env: { KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE },
      },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /KL_BAD_INPUT: the device name "my\/phone" in identity\.json is not one the ledger takes/,
    );
    assert.equal((await server.ledger.getKeyRecord(id)).record, null);
  });
});
