/**
 * Recovery through the client SDK (issue 18; docs/protocol.md "Recovery"): a device sets the
 * identity's recovery key; on a new device the recovery key takes the identity over — every device
 * revoked and its sessions ended at once, the new device enrolled and logging in, the next recovery
 * key in place, the operator alerted and the audit trail on the ledger. Refusals: a recovery key
 * that is not the ledger's (replaced, used, foreign), a forged signature, a statement of another
 * ledger, a lost or forged answer (no verdict: the ledger decides), replacing the recovery key
 * without the current one. Real server on 127.0.0.1, real OpenPGP keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClientHome } from '../src/client/home.js';
import { openClientKey } from '../src/client/identity.js';
import { recoverIdentity } from '../src/client/recovery.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { isUnverifiedAnswer } from '../src/client/unverified-answer.js';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import { activeDevices } from '../src/ledger/devices.js';
import { signDetached } from '../src/pgp/messages.js';
import { generateRecoveryKey, type RecoveryKeyPair } from '../src/pgp/recovery-key.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { type RecoveryStatement, statementBytes } from '../src/protocol/statements.js';
import { until } from './helpers.js';
import { approvedDevice, postJson } from './support/devices.js';
import { mitmProxy } from './support/mitm-proxy.js';
import { CLIENT_PASSPHRASE, newClient, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
const code = (c: string) => ({ name: 'KlError', code: c });
const closeOf = (s: ClientSession) =>
  new Promise<{ alert: { code: string } | null; resumable: boolean }>((resolve) => s.once('close', resolve));

let server: Srv;
before(async () => {
  server = await testServer({ rateLimits: { recoveryPerIp: { burst: 1_000, perSecond: 100 } } });
});
after(() => server.close());

/** A registered identity with a recovery key set from its session. */
async function withRecoveryKey(id: string): Promise<{ first: ClientHome; recovery: RecoveryKeyPair }> {
  const first = await registeredClient(server, id);
  const recovery = await generateRecoveryKey(id, Date.now());
  const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
  const set = await s.setRecoveryKey(recovery);
  assert.equal(set.verified, true);
  await s.close();
  return { first, recovery };
}

/** A new device's home for `id`, named `device`. */
async function newDevice(id: string, device: string): Promise<ClientHome> {
  const home = await newClient(id);
  home.writeIdentity({ ...home.readIdentity(), device });
  return home;
}

function recover(
  home: ClientHome,
  recovery: RecoveryKeyPair,
  nextRecovery: RecoveryKeyPair,
  url = server.url,
) {
  return recoverIdentity({
    home,
    server: url,
    passphrase: CLIENT_PASSPHRASE,
    expectChain: server.ledger.chainId,
    recovery,
    nextRecovery,
  });
}

/** The body of POST /v1/recover as the client makes it, with `change` applied to the statement. */
async function recoveryBody(
  home: ClientHome,
  recovery: RecoveryKeyPair,
  next: RecoveryKeyPair,
  change: Partial<RecoveryStatement> = {},
) {
  const { identity, key } = await openClientKey(home, CLIENT_PASSPHRASE);
  const statement: RecoveryStatement = {
    type: 'keyledger/recover',
    v: 1,
    chain: server.ledger.chainId,
    id: identity.id,
    recovery: recovery.fingerprint,
    name: identity.device ?? 'new',
    fingerprint: identity.fingerprint,
    nextRecovery: next.fingerprint,
    time: Date.now(),
    ...change,
  };
  const data = statementBytes(statement);
  const date = new Date(statement.time);
  return {
    statement: JSON.stringify(statement),
    signature: await signDetached(data, recovery.key, date),
    device: { publicKey: identity.publicKey, signature: await key.signDetached(data, date) },
    nextRecovery: { publicKey: next.publicKey, signature: await signDetached(data, next.key, date) },
  };
}

describe('recovery', () => {
  it('the recovery key takes the identity to a new device: old sessions end, old devices are out, the new one logs in, the operator is alerted', async () => {
    const id = 'rita@example.org';
    const { first, recovery } = await withRecoveryKey(id);
    const live = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const ended = closeOf(live);
    // The recovery key is never a device: it cannot log in.
    const { record: before } = await server.ledger.getKeyRecord(id);
    assert.equal(before?.recovery?.fingerprint, recovery.fingerprint);
    assert.deepEqual(
      activeDevices(before!).map((d) => d.fingerprint),
      [first.readIdentity().fingerprint],
    );

    const phone = await newDevice(id, 'new-phone');
    const next = await generateRecoveryKey(id, Date.now());
    const done = await recover(phone, recovery, next);
    assert.equal(done.verified, true);
    assert.deepEqual(
      [done.id, done.name, done.fingerprint],
      [id, 'new-phone', phone.readIdentity().fingerprint],
    );
    assert.equal(done.recoveryKey, next.fingerprint);

    // The live session of the old device ended at once, with an alert naming the revocation.
    const closed = await ended;
    assert.equal(closed.alert?.code, 'KL_KEY_REVOKED');
    assert.equal(closed.resumable, false);
    // Its key is no device of the identity now: the hello naming it is refused (in plaintext).
    await assert.rejects(connect({ home: first, passphrase: CLIENT_PASSPHRASE }), code('KL_AUTH_FAILED'));
    // The new device is pinned as at registration and logs in.
    assert.equal(phone.readServer().chain, server.ledger.chainId);
    const s = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
    assert.deepEqual(await s.request({ op: 'echo', text: 'back' }), { echo: 'back', id });
    await s.close();

    const { record } = await server.ledger.getKeyRecord(id);
    assert.equal(record?.recovery?.fingerprint, next.fingerprint);
    assert.deepEqual(
      activeDevices(record!).map((d) => d.name),
      ['new-phone'],
    );
    // The operator is told, and the audit trail on the ledger records it.
    const alert = server.alerts.list().find((a) => a.kind === 'recovery' && a.id === id);
    assert.ok(alert, 'an operator alert for the recovery');
    assert.match(alert.detail, /new-phone/);
    // Audit events are written in the background: on a chain, once their block is mined.
    const recoveredEvents = () =>
      readAuditTrail(server.ledger, { subject: sha256Hex(id), event: 'recovered' });
    await until(async () => (await recoveredEvents()).length > 0);
    const audit = await recoveredEvents();
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.detail?.device, done.fingerprint);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^keyledger_recoveries_total 1$/m);

    // The recovery key used is spent: replaying the recovery, or using it again, is refused.
    const again = await newDevice(id, 'thief');
    await assert.rejects(
      recover(again, recovery, await generateRecoveryKey(id, Date.now())),
      code('KL_RECOVERY_INVALID'),
    );
    const replay = await postJson<{ error?: { code: string } }>(
      server,
      '/v1/recover',
      await recoveryBody(again, recovery, await generateRecoveryKey(id, Date.now())),
    );
    assert.equal(replay.status, 403);
    assert.equal(replay.body.error?.code, 'KL_RECOVERY_INVALID');
    // The next recovery key works in turn.
    const laptop = await newDevice(id, 'laptop');
    const third = await recover(laptop, next, await generateRecoveryKey(id, Date.now()));
    assert.equal(third.verified, true);
  });

  it('refused: a recovery key that is not the ledger’s, forged signatures, another ledger; nothing changes', async () => {
    const id = 'remy@example.org';
    const { first, recovery } = await withRecoveryKey(id);
    const device = await newDevice(id, 'tablet');
    const next = await generateRecoveryKey(id, Date.now());
    const stranger = await generateRecoveryKey(id, Date.now());
    // The client checks the ledger's recovery key first: nothing is sent for a key it does not hold.
    await assert.rejects(recover(device, stranger, next), code('KL_RECOVERY_INVALID'));
    const post = async (body: unknown) => postJson<{ error?: { code: string } }>(server, '/v1/recover', body);
    // At the wire: one answer whatever part of the recovery proof failed.
    let r = await post(await recoveryBody(device, stranger, next, { recovery: recovery.fingerprint }));
    assert.deepEqual([r.status, r.body.error?.code], [403, 'KL_RECOVERY_INVALID']);
    r = await post(await recoveryBody(device, stranger, next));
    assert.deepEqual([r.status, r.body.error?.code], [403, 'KL_RECOVERY_INVALID']);
    r = await post(await recoveryBody(device, recovery, next, { chain: 'a'.repeat(64) }));
    assert.deepEqual([r.status, r.body.error?.code], [400, 'KL_STATEMENT_INVALID']);
    r = await post(await recoveryBody(device, recovery, next, { time: Date.now() + 10 * 60_000 }));
    assert.deepEqual([r.status, r.body.error?.code], [400, 'KL_STATEMENT_INVALID']);
    // The new device's signature made by another key: possession not proven.
    const forged = await recoveryBody(device, recovery, next);
    const other = await recoveryBody(await newDevice(id, 'other'), recovery, next);
    r = await post({ ...forged, device: { ...forged.device, signature: other.device.signature } });
    assert.equal(r.body.error?.code, 'KL_SIGNATURE_INVALID');
    // The next recovery key must sign too.
    r = await post({ ...forged, nextRecovery: { ...forged.nextRecovery, signature: forged.signature } });
    assert.equal(r.body.error?.code, 'KL_SIGNATURE_INVALID');
    // The recovery key's own key as the next one, or as the device: refused.
    r = await post(await recoveryBody(device, recovery, recovery));
    assert.equal(r.status >= 400 && r.status < 500, true);
    const { record } = await server.ledger.getKeyRecord(id);
    assert.equal(record?.fingerprint, first.readIdentity().fingerprint);
    assert.equal(record?.recovery?.fingerprint, recovery.fingerprint);
    const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    await s.close();
  });

  it('replacing the recovery key takes the current one; the last device can then revoke itself and recovery brings the identity back', async () => {
    const id = 'ruth@example.org';
    const { first, recovery } = await withRecoveryKey(id);
    const s = await connect({ home: first, passphrase: CLIENT_PASSPHRASE });
    const replacement = await generateRecoveryKey(id, Date.now());
    // A device alone (a stolen one) cannot take the recovery key away.
    await assert.rejects(s.setRecoveryKey(replacement), code('KL_RECOVERY_INVALID'));
    await assert.rejects(
      s.setRecoveryKey(replacement, { replaces: await generateRecoveryKey(id, Date.now()) }),
      code('KL_SIGNATURE_INVALID'),
    );
    assert.equal((await s.setRecoveryKey(replacement, { replaces: recovery })).verified, true);
    // The only device revokes itself: allowed now that a recovery key exists.
    const ended = closeOf(s);
    await s.revokeDevice(first.readIdentity().fingerprint, 'compromised');
    await ended;
    assert.equal((await server.ledger.getKeyRecord(id)).record?.status, 'revoked');
    await assert.rejects(connect({ home: first, passphrase: CLIENT_PASSPHRASE }), code('KL_KEY_REVOKED'));
    // The replaced recovery key no longer counts; the replacement brings the identity back.
    const phone = await newDevice(id, 'phone');
    await assert.rejects(
      recover(phone, recovery, await generateRecoveryKey(id, Date.now())),
      code('KL_RECOVERY_INVALID'),
    );
    const done = await recover(phone, replacement, await generateRecoveryKey(id, Date.now()));
    assert.equal(done.verified, true);
    const back = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
    await back.close();
  });

  it('a stolen device’s recovery key goes with it: the owner revokes the device from another, the thief cannot recover', async () => {
    const id = 'rhea@example.org';
    const laptop = await registeredClient(server, id);
    const stolen = await newDevice(id, 'stolen');
    const owner = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
    await approvedDevice({ server, session: owner, home: stolen, id, name: 'stolen', pinsFrom: laptop });
    const thief = await connect({ home: stolen, passphrase: CLIENT_PASSPHRASE });
    const planted = await generateRecoveryKey(id, Date.now());
    await thief.setRecoveryKey(planted);
    await owner.revokeDevice(stolen.readIdentity().fingerprint, 'compromised');
    assert.equal((await server.ledger.getKeyRecord(id)).record?.recovery, undefined);
    const thiefsNew = await newDevice(id, 'thief');
    await assert.rejects(
      recover(thiefsNew, planted, await generateRecoveryKey(id, Date.now())),
      code('KL_RECOVERY_INVALID'),
    );
    // The owner sets a recovery key of its own without the planted one.
    assert.equal((await owner.setRecoveryKey(await generateRecoveryKey(id, Date.now()))).verified, true);
    await owner.close();
  });

  it('a refused or lost answer is no verdict: the ledger decides, and a second try finds the recovery done', async () => {
    const id = 'rudy@example.org';
    const { recovery } = await withRecoveryKey(id);
    const proxy = await mitmProxy(server.url);
    try {
      const phone = await newDevice(id, 'phone');
      const next = await generateRecoveryKey(id, Date.now());
      // A forged refusal that never reached the server: marked unverified, and nothing happened.
      proxy.forgeHttp((method, path) =>
        method === 'POST' && path === '/v1/recover'
          ? { status: 403, body: { error: { code: 'KL_RECOVERY_INVALID', message: 'forged' } } }
          : null,
      );
      const refused = await recover(phone, recovery, next, proxy.url).catch((e: unknown) => e);
      assert.equal(isUnverifiedAnswer(refused), true);
      assert.equal(
        (await server.ledger.getKeyRecord(id)).record?.recovery?.fingerprint,
        recovery.fingerprint,
      );
      // The recovery reaches the server but its answer is lost: the next try finds it on the ledger.
      proxy.forgeHttp(null);
      const body = await recoveryBody(phone, recovery, next);
      assert.equal((await postJson(server, '/v1/recover', body)).status, 201);
      const found = await recover(phone, recovery, await generateRecoveryKey(id, Date.now()), proxy.url);
      assert.equal(found.verified, true);
      assert.equal(found.recoveryKey, next.fingerprint, 'the recovery key of the try that landed');
      const s = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
      await s.close();
    } finally {
      await proxy.close();
    }
  });
});
