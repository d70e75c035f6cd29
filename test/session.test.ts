import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../src/client/session.js';
import { verifyTransactionReceipt } from '../src/ledger/proofs.js';
import { isKlError } from '../src/protocol/errors.js';
import { callAdmin } from '../src/server/admin-socket.js';
import type { MessageContext } from '../src/server/session-service.js';
import { liveClock } from './helpers.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
const code = (c: string) => (e: unknown) => {
  assert.ok(isKlError(e), `not a KlError: ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};
const once = <T>(emitter: NodeJS.EventEmitter, event: string) =>
  new Promise<T>((resolve) => emitter.once(event, resolve));

let server: Srv;
const clock = liveClock();
const logLines: string[] = [];
before(async () => {
  server = await testServer({
    now: clock,
    log: (l) => logLines.push(l),
  });
});
after(async () => {
  await server.close();
});

describe('the session channel', () => {
  it('carries requests both ways through the demo service and application hooks', async () => {
    const home = await registeredClient(server, 'hank@example.org');
    const seen: MessageContext[] = [];
    server.onMessage((ctx) => {
      seen.push(ctx);
      if ((ctx.body as { op?: string })?.op === 'whoami') return { you: ctx.id };
      return undefined;
    });
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    assert.deepEqual(await s.request({ op: 'echo', text: 'héllo' }), {
      echo: 'héllo',
      id: 'hank@example.org',
    });
    assert.deepEqual(await s.request({ op: 'whoami' }), { you: 'hank@example.org' });
    await s.request({ op: 'note.put', name: 'todo', text: 'buy milk' });
    assert.deepEqual(await s.request({ op: 'note.get', name: 'todo' }), { name: 'todo', text: 'buy milk' });
    assert.deepEqual(await s.request({ op: 'note.list' }), { names: ['todo'] });
    await assert.rejects(s.request({ op: 'note.get', name: 'nope' }), code('KL_NOT_FOUND'));
    await assert.rejects(s.request({ op: 'unknown-op' }), code('KL_NOT_FOUND'));
    s.send('fire and forget');
    await s.request('sync');
    assert.ok(seen.some((c) => c.body === 'fire and forget' && c.id === 'hank@example.org' && !c.signed));
    // Notes are encrypted at rest: the plaintext is nowhere in the server database.
    const db = readFileSync(join(server.dataDir, 'server.sqlite'));
    assert.equal(db.includes(Buffer.from('buy milk')), false);
    await s.close();
  });

  it('logout: an encrypted close frame, acknowledged; the server forgets the session; nothing more is accepted', async () => {
    const home = await registeredClient(server, 'ivy@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    assert.ok(server.sessions.get(s.sessionId));
    await s.close();
    assert.equal(server.sessions.get(s.sessionId), undefined);
    assert.throws(() => s.send('after logout'), code('KL_SESSION_REVOKED'));
  });

  it('renews keys on request and when the server asks; messages in flight across the switch arrive', async () => {
    const home = await registeredClient(server, 'jo@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const renewal = s.renew();
    // Sent before the acknowledgment: still under the old epoch, and accepted.
    const inFlight = s.request({ op: 'echo', text: 'in flight' });
    await renewal;
    assert.equal(s.epoch, 1);
    assert.deepEqual(await inFlight, { echo: 'in flight', id: 'jo@example.org' });
    assert.deepEqual(await s.request({ op: 'echo', text: 'after' }), { echo: 'after', id: 'jo@example.org' });
    assert.equal(server.sessions.get(s.sessionId)?.channel.epoch, 1);
    await s.close();

    const eager = await testServer({ sessionPolicy: { renewAfterFrames: 5 } });
    try {
      const h2 = await registeredClient(eager, 'kai@example.org');
      const s2 = await connect({ home: h2, passphrase: CLIENT_PASSPHRASE });
      const renewed = once<number>(s2, 'renewed');
      for (let i = 0; i < 6; i++) await s2.request({ op: 'echo', text: String(i) });
      assert.equal(await renewed, 1);
      assert.deepEqual(await s2.request({ op: 'echo', text: 'ok' }), { echo: 'ok', id: 'kai@example.org' });
      await s2.close();
    } finally {
      await eager.close();
    }
  });

  it('signed messages: verified with the ledger key, anchored, receipt verified by the client and offline', async () => {
    const home = await registeredClient(server, 'lee@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const seen: MessageContext[] = [];
    server.onMessage((ctx) => {
      if (ctx.signed) seen.push(ctx);
      return undefined;
    });
    const r = await s.sendSigned('I agree to the contract v3');
    assert.equal(r.verified, true);
    assert.match(r.signature, /BEGIN PGP SIGNATURE/);
    assert.ok(verifyTransactionReceipt({ genesis: home.readServer().genesis, receipt: r.receipt }).verified);
    assert.equal(seen[0]?.body, 'I agree to the contract v3');
    assert.equal(seen[0]?.receipt?.txid, r.txid);
    await s.close();
  });
});

describe('session lifecycle at its exact boundaries (injected clock)', () => {
  // Its own server and clock: moving this clock must not disturb the other tests.
  let server: Srv;
  const clock = liveClock();
  before(async () => {
    server = await testServer({
      now: clock,
      sessionPolicy: { idleTimeoutMs: 60_000, maxLifetimeMs: 3_600_000 },
    });
  });
  after(async () => {
    await server.close();
  });

  it('inactivity: at T-1 ms the session stays, at T it ends and the client is told it expired', async () => {
    const home = await registeredClient(server, 'mo@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
    const live = server.sessions.get(s.sessionId)!;
    const base = live.lastActivity;
    clock.freeze();
    clock.advance(base + 59_999 - clock());
    assert.equal(server.sessions.sweep(), 0);
    assert.ok(server.sessions.get(s.sessionId), 'alive at T-1 ms');
    clock.advance(1);
    const closed = once<{ alert: { code: string } }>(s, 'close');
    assert.equal(server.sessions.sweep(), 1);
    assert.equal((await closed).alert?.code, 'KL_SESSION_EXPIRED');
    assert.throws(() => s.send('late'), code('KL_SESSION_EXPIRED'));
    clock.thaw();
    // And a new login works.
    const again = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
    assert.deepEqual(await again.request('x'), { echo: 'x', id: 'mo@example.org' });
    await again.close();
  });

  it('clock jumps: forward past the timeout ends a session at once; back by D delays its end by exactly D', async () => {
    const ahead = await registeredClient(server, 'jump-ahead@example.org');
    const back = await registeredClient(server, 'jump-back@example.org');
    try {
      // Forward two hours (a suspended host waking up, NTP stepping): idle far past the timeout.
      const a = await connect({ home: ahead, passphrase: CLIENT_PASSPHRASE, now: clock });
      clock.freeze();
      clock.advance(2 * 3_600_000);
      const closedA = once<{ alert: { code: string } }>(a, 'close');
      server.sessions.sweep();
      assert.equal(server.sessions.get(a.sessionId), undefined);
      assert.equal((await closedA).alert?.code, 'KL_SESSION_EXPIRED');
      clock.thaw();

      // Back ten minutes: times are read off the clock, so the session ends when the clock reaches
      // lastActivity + idle timeout again — D later in real time, never "never".
      const b = await connect({ home: back, passphrase: CLIENT_PASSPHRASE, now: clock });
      const last = server.sessions.get(b.sessionId)!.lastActivity;
      clock.freeze();
      clock.advance(-10 * 60_000);
      assert.equal(server.sessions.sweep(), 0);
      assert.ok(server.sessions.get(b.sessionId), 'alive after the step back');
      clock.advance(last + 59_999 - clock());
      assert.ok(server.sessions.get(b.sessionId), 'alive at T-1 ms on the clock');
      clock.advance(1);
      const closedB = once<{ alert: { code: string } }>(b, 'close');
      server.sessions.sweep();
      assert.equal((await closedB).alert?.code, 'KL_SESSION_EXPIRED');
    } finally {
      clock.reset();
    }
  });

  it('absolute lifetime ends even an active session', async () => {
    const home = await registeredClient(server, 'ned@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
    const live = server.sessions.get(s.sessionId)!;
    clock.freeze();
    clock.advance(live.expiresAt - 1 - clock());
    live.lastActivity = clock();
    assert.ok(server.sessions.get(s.sessionId));
    clock.advance(1);
    live.lastActivity = clock();
    const closed = once<{ alert: { code: string } }>(s, 'close');
    server.sessions.sweep();
    assert.equal((await closed).alert?.code, 'KL_SESSION_EXPIRED');
    clock.thaw();
  });
});

describe('revocation', () => {
  it('an admin ends one session; another session of the same identity stays', async () => {
    const home = await registeredClient(server, 'ola@example.org');
    const a = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const b = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const listed = await callAdmin<Array<{ sessionId: string; id: string }>>(
      server.dataDir,
      'GET',
      '/sessions',
    );
    assert.ok(listed.some((x) => x.sessionId === a.sessionId && x.id === 'ola@example.org'));
    const closed = once<{ alert: { code: string } }>(a, 'close');
    await callAdmin(server.dataDir, 'POST', `/sessions/${a.sessionId}/revoke`);
    assert.equal((await closed).alert?.code, 'KL_SESSION_REVOKED');
    assert.deepEqual(await b.request('still here'), { echo: 'still here', id: 'ola@example.org' });
    await assert.rejects(
      callAdmin(server.dataDir, 'POST', `/sessions/${a.sessionId}/revoke`),
      code('KL_SESSION_UNKNOWN'),
    );
    await b.close();
  });

  it('revoking the key on the ledger ends every session of the identity at once; login then fails', async () => {
    const home = await registeredClient(server, 'pat@example.org');
    const sessions = await Promise.all([1, 2, 3].map(() => connect({ home, passphrase: CLIENT_PASSPHRASE })));
    const closes = sessions.map((s) => once<{ alert: { code: string } }>(s, 'close'));
    await callAdmin(server.dataDir, 'POST', '/keys/pat@example.org/revoke', {
      reason: 'compromised',
      admin: 'root@example.org',
    });
    for (const c of closes)
      assert.equal((await c).alert?.code, 'KL_KEY_REVOKED', JSON.stringify((await c).alert));
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), code('KL_KEY_REVOKED'));
  });

  it('the owner revokes its own key from inside a session, signed by that key', async () => {
    const home = await registeredClient(server, 'quin@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const closed = once<{ alert: { code: string } }>(s, 'close');
    const r = await s.revokeKey('retired');
    assert.equal(r.verified, true);
    assert.equal((await closed).alert?.code, 'KL_KEY_REVOKED');
    const rec = (await server.ledger.getKeyRecord('quin@example.org')).record!;
    assert.equal(rec.status, 'revoked');
    assert.equal(rec.revocation?.by, 'owner');
  });
});

describe('resumption', () => {
  it('a dropped connection resumes with the resume key; keys move to a new epoch', async () => {
    const home = await registeredClient(server, 'rae@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const closed = once<{ resumable: boolean }>(s, 'close');
    s.dropConnection();
    assert.equal((await closed).resumable, true);
    await s.resume();
    assert.ok(s.epoch >= 2, 'resumption plus renewal');
    assert.deepEqual(await s.request('back'), { echo: 'back', id: 'rae@example.org' });
    await s.close();
  });
});

describe('session keys live in memory only', () => {
  it('no key bytes in the data directory or the server log after full sessions', async () => {
    const home = await registeredClient(server, 'sid@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const live = server.sessions.get(s.sessionId)!;
    // Capture the key material while it exists (test-only access to the channel internals).
    const keys = (live.channel as unknown as { keys: Record<string, Buffer> }).keys;
    const secrets = Object.values(keys).map((k) => Buffer.from(k));
    await s.request({ op: 'note.put', name: 'n', text: 'secret note' });
    await s.renew();
    await s.sendSigned('signed text');
    await s.close();
    assert.ok(secrets.every((k) => k.length >= 12 && !k.every((b) => b === 0)));
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (!p.endsWith('.sock')) files.push(p);
      }
    };
    walk(server.dataDir);
    walk(home.dir);
    const logs = Buffer.from(logLines.join('\n'));
    for (const k of secrets) {
      for (const form of [
        k,
        Buffer.from(k.toString('hex')),
        Buffer.from(k.toString('base64')),
        Buffer.from(k.toString('base64url')),
      ]) {
        for (const f of files) assert.equal(readFileSync(f).includes(form), false, `key bytes found in ${f}`);
        assert.equal(logs.includes(form), false, 'key bytes found in the log');
      }
    }
    // And the server wiped them when the session ended.
    assert.ok(Object.values(keys).every((k) => k.every((b) => b === 0)));
  });
});
