/**
 * Resumption on a hostile path (docs/protocol.md "Resumption"): `resume-challenge` and `resumed` are
 * plaintext, and a lost `resumed` or renewal answer looks like a refusal. A real server, a real
 * WebSocket proxy on 127.0.0.1 between it and the SDK that drops connections, answers resumptions
 * itself with forged messages, or relays a resumption and then swallows the server's answer. In
 * every case the session must stay recoverable: the next resumption on an honest path succeeds,
 * requests work, and the server never records `resume_failed` for it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { ClientHome } from '../src/client/home.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import type { Channel } from '../src/protocol/channel.js';
import { isKlError } from '../src/protocol/errors.js';
import {
  readWireHeader,
  sessionHandle,
  WIRE_HEADER_LENGTH,
  WIRE_VERSION,
} from '../src/protocol/frame-wire.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { resumeProof } from '../src/protocol/resume.js';
import { type MitmProxy, mitmProxy, registeredBehind, type S2cRule } from './support/mitm-proxy.js';
import { CLIENT_PASSPHRASE, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nonce = () => randomBytes(16).toString('base64url');

let server: Srv;
let proxy: MitmProxy;
before(async () => {
  server = await testServer();
  proxy = await mitmProxy(server.url);
});
beforeEach(() => {
  proxy.takeOver(null);
  proxy.rule(null);
});
after(async () => {
  await proxy.close();
  await server.close();
});

/** A client registered directly, whose server.json then points at the proxy. */
const clientBehindProxy = (id: string): Promise<ClientHome> => registeredBehind(proxy, server, id);

/** Logs in through the proxy and drops the connection (a network failure). */
async function droppedSession(id: string): Promise<ClientSession> {
  const s = await connect({ home: await clientBehindProxy(id), passphrase: CLIENT_PASSPHRASE });
  const closed = new Promise((r) => s.once('close', r));
  s.dropConnection();
  await closed;
  // The server has seen the old connection go: an honest resumption is not "two connections".
  const live = server.sessions.get(s.sessionId);
  for (let i = 0; i < 100 && live?.socket; i++) await sleep(20);
  assert.equal(live?.socket ?? null, null, 'the server saw the old connection close');
  return s;
}

/** Audit events `event` recorded for `id`, once at least `settle` session_resume events are written. */
async function auditOf(id: string, event: string, settle: number): Promise<number> {
  const subject = sha256Hex(id);
  for (let i = 0; i < 200; i++) {
    const resumes = await readAuditTrail(server.ledger, { subject, event: 'session_resume' });
    if (resumes.length >= settle) break;
    await sleep(50);
  }
  const resumes = await readAuditTrail(server.ledger, { subject, event: 'session_resume' });
  assert.ok(resumes.length >= settle, `${resumes.length} session_resume events written, want ${settle}`);
  return (await readAuditTrail(server.ledger, { subject, event })).length;
}

/** An honest resumption through the proxy, then a request, then logout. */
async function recoversHonestly(s: ClientSession, id: string): Promise<void> {
  proxy.takeOver(null);
  proxy.rule(null);
  await s.resume({ timeoutMs: 10_000 });
  assert.equal(s.isClosed, false);
  assert.deepEqual(await s.request('back'), { echo: 'back', id });
  assert.equal(s.epoch, server.sessions.get(s.sessionId)?.channel.epoch, 'both sides on one epoch');
}

describe('a resumption answered by the man in the middle leaves the session recoverable', () => {
  /** After a forged challenge and a forged `resumed`, what the forger does next. */
  const forgeries: Array<[string, (client: WebSocket, sid: string) => void]> = [
    ['closes the connection after the renewal frame', (c) => c.close()],
    ['stays silent (the attempt times out)', () => {}],
    [
      'answers with a plaintext error',
      (c) => c.send('{"type":"error","code":"KL_AUTH_FAILED","message":"x"}'),
    ],
    [
      'answers with a frame of the new epoch under a made-up key',
      (c, sid) => {
        // A well-formed v2 header (server → client, this session, epoch 1, seq 0), random ct ‖ tag.
        const frame = Buffer.concat([Buffer.alloc(WIRE_HEADER_LENGTH), randomBytes(60)]);
        frame[0] = WIRE_VERSION;
        frame[1] = 0x02;
        frame.set(sessionHandle(sid), 2);
        frame.writeUInt32BE(1, 18);
        c.send(frame);
      },
    ],
    [
      'answers with a v1 JSON frame (text) of the new epoch',
      (c, sid) =>
        c.send(
          JSON.stringify({ type: 'frame', sid, epoch: 1, seq: 0, ct: randomBytes(60).toString('base64url') }),
        ),
    ],
  ];

  for (const [name, afterRenewal] of forgeries) {
    it(`a forged resume-challenge and resumed; the forger ${name}`, async () => {
      const id = `forged-${forgeries.findIndex(([n]) => n === name)}@example.org`;
      const s = await droppedSession(id);
      const epochBefore = s.epoch;
      let sawRenewal = false;
      proxy.takeOver((client) => {
        client.on('message', (data, binary) => {
          if (binary) {
            // The client's renewal: a sealed v2 frame (docs/protocol.md "Session frame wire format v2").
            const h = readWireHeader(data as Buffer);
            sawRenewal =
              h.epoch === 1 && h.dir === 'c2s' && Buffer.from(h.handle).equals(sessionHandle(s.sessionId));
            afterRenewal(client, s.sessionId);
            return;
          }
          const m = JSON.parse(data.toString()) as { type: string };
          if (m.type === 'resume')
            client.send(JSON.stringify({ type: 'resume-challenge', nonce: nonce(), epoch: 0 }));
          else if (m.type === 'resume-proof') client.send(JSON.stringify({ type: 'resumed', epoch: 1 }));
        });
      });
      await assert.rejects(s.resume({ timeoutMs: 1_500 }), (e: unknown) => {
        assert.ok(isKlError(e), String(e));
        assert.match(e.code, /^KL_(NETWORK|PROTOCOL|AUTH_FAILED)$/, e.message);
        return true;
      });
      assert.ok(sawRenewal, 'the client sent its renewal, sealed in the new epoch');
      assert.equal(s.isClosed, false);
      assert.equal(s.epoch, epochBefore, 'the unconfirmed epoch was not taken');

      await recoversHonestly(s, id);
      assert.equal(await auditOf(id, 'resume_failed', 1), 0, 'no resume_failed recorded');
      await s.close();
    });
  }
});

describe('a resumption the server accepted but whose answer was lost leaves the session recoverable', () => {
  const losses: Array<[string, S2cRule]> = [
    // On a resume connection the server sends resume-challenge (0), resumed (1), then the renewal's
    // answer sealed in the new epoch (2).
    ['the plaintext resumed', (_t, i) => (i === 1 ? 'swallow-and-cut' : 'relay')],
    ['the sealed answer to the renewal', (_t, i) => (i === 2 ? 'swallow-and-cut' : 'relay')],
  ];
  for (const [name, rule] of losses) {
    it(`the server moved on; the path swallowed ${name}`, async () => {
      const id = `lost-${losses.findIndex(([n]) => n === name)}@example.org`;
      const s = await droppedSession(id);
      const epochBefore = s.epoch;
      const oldResumeKey = Buffer.from((s as unknown as { channel: Channel }).channel.resumeKey);
      proxy.rule(rule);
      await assert.rejects(s.resume({ timeoutMs: 5_000 }), (e: unknown) => isKlError(e, 'KL_NETWORK'));
      assert.equal(s.epoch, epochBefore, 'the client kept the epoch it can prove');
      const live = server.sessions.get(s.sessionId);
      assert.ok(live && live.channel.epoch > epochBefore, 'the server did accept the resumption');
      for (let i = 0; i < 100 && live.socket; i++) await sleep(20);

      await recoversHonestly(s, id);
      assert.equal(await auditOf(id, 'resume_failed', 2), 0, 'no resume_failed recorded');

      // Once the client's frames of the new epochs arrive, the state it left is forgotten: a proof
      // made with the old resume key is refused now.
      s.dropConnection();
      for (let i = 0; i < 100 && live.socket; i++) await sleep(20);
      const ws = new WebSocket(server.wsUrl);
      await new Promise((r) => ws.once('open', r));
      const next = () =>
        new Promise<Record<string, unknown>>((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
      const clientNonce = nonce();
      ws.send(JSON.stringify({ type: 'resume', sid: s.sessionId, nonce: clientNonce }));
      const ch = await next();
      const proof = resumeProof(oldResumeKey, {
        sid: s.sessionId,
        epoch: epochBefore,
        clientNonce,
        serverNonce: String(ch.nonce),
      });
      ws.send(JSON.stringify({ type: 'resume-proof', proof }));
      assert.equal((await next()).code, 'KL_AUTH_FAILED');
      ws.terminate();
      await s.resume({ timeoutMs: 10_000 });
      assert.deepEqual(await s.request('again'), { echo: 'again', id });
      await s.close();
    });
  }
});

describe('a renewal whose answer was lost leaves the session recoverable', () => {
  it('the server moved to the next epoch; the path swallowed its rekey-ack; the client resumes from the old one', async () => {
    const id = 'lost-renewal@example.org';
    let armed = false;
    proxy.rule(() => {
      if (!armed) return 'relay';
      armed = false;
      return 'swallow-and-cut';
    });
    const s = await connect({ home: await clientBehindProxy(id), passphrase: CLIENT_PASSPHRASE });
    assert.deepEqual(await s.request('before'), { echo: 'before', id });
    const epochBefore = s.epoch;
    armed = true; // the server's next message is the sealed rekey-ack
    await assert.rejects(s.renew());
    const live = server.sessions.get(s.sessionId);
    assert.ok(live && live.channel.epoch > epochBefore, 'the server did take the renewal');
    for (let i = 0; i < 100 && live.socket; i++) await sleep(20);
    await recoversHonestly(s, id);
    assert.equal(await auditOf(id, 'resume_failed', 1), 0, 'no resume_failed recorded');
    await s.close();
  });
});
