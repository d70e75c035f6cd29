import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { login } from '../src/client/login.js';
import { connect } from '../src/client/session.js';
import type { Channel } from '../src/protocol/channel.js';
import { WIRE_HEADER_LENGTH } from '../src/protocol/frame-wire.js';
import { callAdmin } from '../src/server/admin-socket.js';
import type { MessageContext } from '../src/server/session-service.js';
import { handDrivenChannel, liveClock } from './helpers.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
const seen: MessageContext[] = [];
before(async () => {
  server = await testServer({ hijackPolicy: { maxAnomalies: 3, maxFramesPerWindow: 40 } });
  server.onMessage((ctx) => {
    seen.push(ctx);
    return undefined;
  });
});
after(async () => {
  await server.close();
});

/** A logged-in connection driven by hand: the test seals frames itself. */
async function rawSession(id: string) {
  const home = await registeredClient(server, id);
  const l = await login({ home, passphrase: CLIENT_PASSPHRASE });
  const channel = handDrivenChannel(l);
  // Sealed frames arrive as binary messages (docs/protocol.md "Session frame wire format v2").
  const inbox: Uint8Array[] = [];
  const texts: string[] = [];
  l.socket.removeAllListeners('message');
  l.socket.on('message', (d, binary) =>
    binary ? inbox.push(new Uint8Array(d as Uint8Array)) : texts.push(d.toString()),
  );
  const closed = new Promise<number>((resolve) => l.socket.on('close', (c) => resolve(c)));
  const send = (f: Uint8Array | string) => l.socket.send(f);
  const settle = () => new Promise((r) => setTimeout(r, 150));
  const replies = () => inbox.map((f) => channel.open(f));
  return { home, l, channel, send, settle, inbox, texts, replies, closed };
}

/** A copy of the frame with one bit of byte `index` flipped (negative: from the end). */
const flip = (frame: Uint8Array, index: number) => {
  const raw = Buffer.from(frame);
  raw[index < 0 ? raw.length + index : index]! ^= 0x01;
  return raw;
};

describe('frame attacks', () => {
  it('a replayed frame is refused and never reaches the application', async () => {
    const r = await rawSession('replay-frame@example.org');
    const f = r.channel.seal({ t: 'data', id: 1, body: 'pay 10 EUR once' });
    r.send(f);
    r.send(f);
    await r.settle();
    assert.equal(seen.filter((c) => c.body === 'pay 10 EUR once').length, 1);
    assert.equal(r.replies().length, 1);
    // The session goes on with the next genuine frame.
    r.send(r.channel.seal({ t: 'data', id: 2, body: 'next' }));
    await r.settle();
    assert.equal(seen.filter((c) => c.body === 'next').length, 1);
  });

  it('flipped bits in ciphertext, tag or header are refused; three strikes end the session as hijacked', async () => {
    const r = await rawSession('flip@example.org');
    const f = r.channel.seal({ t: 'data', id: 1, body: 'tampered' });
    r.send(flip(f, WIRE_HEADER_LENGTH)); // ciphertext
    r.send(flip(f, -1)); // tag
    r.send(flip(f, 2)); // header: the session handle
    assert.equal(await r.closed, 4000);
    assert.equal(seen.filter((c) => c.body === 'tampered').length, 0);
    const alerts = await callAdmin<Array<{ id: string; kind: string }>>(server.dataDir, 'GET', '/alerts');
    assert.ok(alerts.some((a) => a.id === 'flip@example.org' && a.kind === 'hijack'));
    const last = r.inbox.at(-1)!;
    assert.deepEqual(
      { t: 'alert', code: 'KL_HIJACK_SUSPECTED' },
      (({ t, code }) => ({ t, code }))(r.channel.open(last) as { t: string; code: string }),
    );
  });

  it('two frames reordered: the early one is refused, nothing is delivered out of order', async () => {
    const r = await rawSession('reorder@example.org');
    const f1 = r.channel.seal({ t: 'data', body: 'first' });
    const f2 = r.channel.seal({ t: 'data', body: 'second' });
    r.send(f2);
    r.send(f1);
    await r.settle();
    const order = seen.filter((c) => c.id === 'reorder@example.org').map((c) => c.body);
    assert.deepEqual(order, ['first']);
  });

  it("a frame from another session is refused on this one's connection", async () => {
    const a = await rawSession('victim-a@example.org');
    const b = await rawSession('attacker-b@example.org');
    const fa = a.channel.seal({ t: 'data', body: 'from A' });
    b.send(fa);
    await b.settle();
    assert.equal(seen.filter((c) => c.body === 'from A').length, 0);
  });

  it('downgrading to an old epoch or skipping a renewal is refused', async () => {
    const home = await registeredClient(server, 'epoch@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.renew();
    // Frames sealed for epoch 0 or epoch 2 are not accepted at epoch 1.
    const r = await rawSession('epoch2@example.org');
    const old = r.channel.seal({ t: 'data', body: 'epoch 0 frame' });
    r.send(old);
    const renewal = r.channel.startRekey();
    r.send(r.channel.seal(renewal));
    await r.settle();
    const ack = r.inbox[0]!;
    const m = r.channel.open(ack) as { t: string; ephemeral: string };
    r.channel.completeRekey(m.ephemeral);
    r.send(r.channel.seal({ t: 'data', body: 'epoch 1 frame' })); // the server drops epoch 0 now
    r.send(old); // replayed epoch-0 frame after the switch
    const skip = Buffer.from(r.channel.seal({ t: 'data', body: 'skip' }));
    skip.writeUInt32BE(2, 18); // the header's epoch
    r.send(skip);
    await r.settle();
    assert.equal(seen.filter((c) => c.body === 'epoch 0 frame').length, 1, 'once, before the switch');
    assert.equal(seen.filter((c) => c.body === 'epoch 1 frame').length, 1);
    assert.equal(seen.filter((c) => c.body === 'skip').length, 0);
    await s.close();
  });

  it('abnormal activity (a burst far above normal) ends the session', async () => {
    const r = await rawSession('burst@example.org');
    for (let i = 0; i < 60; i++) r.send(r.channel.seal({ t: 'data', body: i }));
    assert.equal(await r.closed, 4000);
  });
});

describe("abnormal activity against the identity's own baseline (injected clock)", () => {
  let srv: Srv;
  const clock = liveClock();
  const WINDOW = 10_000;
  before(async () => {
    srv = await testServer({
      now: clock,
      hijackPolicy: { baselineFactor: 5, baselineMinFrames: 20, baselineMinHistory: 3 },
    });
  });
  after(async () => {
    await srv.close();
  });
  /** Moves the clock 1 s into the next rate window (so a window's frames stay inside it). */
  const nextWindow = () => clock.advance((Math.floor(clock() / WINDOW) + 1) * WINDOW + 1_000 - clock());

  it('a burst far above what this identity usually sends ends the session at the exact threshold', async () => {
    const home = await registeredClient(srv, 'steady@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
    // Three active windows of 4 frames: the baseline is 4, the threshold max(20, 5 × 4) = 20.
    for (let w = 0; w < 3; w++) {
      nextWindow();
      for (let i = 0; i < 4; i++) await s.request({ op: 'echo', text: `w${w}.${i}` });
    }
    nextWindow();
    for (let i = 0; i < 20; i++) await s.request({ op: 'echo', text: `burst ${i}` });
    assert.equal(s.isClosed, false, '20 frames: at the threshold, still normal');
    const closed = new Promise<{ alert: { code: string } | null }>((r) => s.once('close', r));
    await assert.rejects(s.request({ op: 'echo', text: 'one too many' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KL_HIJACK_SUSPECTED');
      return true;
    });
    assert.equal((await closed).alert?.code, 'KL_HIJACK_SUSPECTED');
    const alerts = await callAdmin<Array<{ id: string; detail: string }>>(srv.dataDir, 'GET', '/alerts');
    const alert = alerts.find((a) => a.id === 'steady@example.org');
    assert.match(alert?.detail ?? '', /21 frames in 10 s, against a usual 4/);
  });

  it('the same burst from an identity without a history yet is not judged by a baseline', async () => {
    const home = await registeredClient(srv, 'newcomer@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
    nextWindow();
    for (let i = 0; i < 30; i++) await s.request({ op: 'echo', text: `n${i}` });
    assert.equal(s.isClosed, false);
    await s.close();
  });
});

describe('resumption attacks', () => {
  async function resumeRaw(
    sid: string,
    proof: (serverNonce: string, epoch: number) => string,
    localAddress?: string,
  ) {
    const ws = new WebSocket(server.wsUrl, localAddress ? { localAddress } : {});
    await new Promise((r) => ws.once('open', r));
    const next = () =>
      new Promise<Record<string, unknown>>((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
    ws.send(JSON.stringify({ type: 'resume', sid, nonce: 'A'.repeat(22) }));
    const ch = await next();
    if (ch.type !== 'resume-challenge') return ch;
    ws.send(JSON.stringify({ type: 'resume-proof', proof: proof(String(ch.nonce), Number(ch.epoch)) }));
    return next();
  }

  it('a wrong resume key is refused', async () => {
    const home = await registeredClient(server, 'resume-wrong@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    s.dropConnection();
    const r = await resumeRaw(s.sessionId, () => Buffer.alloc(32, 1).toString('base64url'));
    assert.deepEqual([r.type, r.code], ['error', 'KL_AUTH_FAILED']);
    await s.resume(); // the real owner still can
  });

  it('resuming from another address, or while the session is connected elsewhere, ends it as a hijack', async () => {
    const { resumeProof } = await import('../src/protocol/resume.js');
    const home = await registeredClient(server, 'resume-ip@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const key = () => (s as unknown as { channel: Channel }).channel.resumeKey;
    s.dropConnection();
    await new Promise((r) => setTimeout(r, 50));
    const r = await resumeRaw(
      s.sessionId,
      (serverNonce, epoch) =>
        resumeProof(key(), { sid: s.sessionId, epoch, clientNonce: 'A'.repeat(22), serverNonce }),
      '127.0.0.2',
    );
    assert.deepEqual([r.type, r.code], ['error', 'KL_HIJACK_SUSPECTED']);
    assert.equal(server.sessions.get(s.sessionId), undefined);

    const home2 = await registeredClient(server, 'resume-twice@example.org');
    const s2 = await connect({ home: home2, passphrase: CLIENT_PASSPHRASE });
    const key2 = Buffer.from((s2 as unknown as { channel: Channel }).channel.resumeKey);
    const closed = new Promise<{ alert: { code: string } }>((res) => s2.once('close', res));
    const r2 = await resumeRaw(s2.sessionId, (serverNonce, epoch) =>
      resumeProof(key2, { sid: s2.sessionId, epoch, clientNonce: 'A'.repeat(22), serverNonce }),
    );
    assert.deepEqual([r2.type, r2.code], ['error', 'KL_HIJACK_SUSPECTED']);
    assert.equal((await closed).alert?.code, 'KL_HIJACK_SUSPECTED');
  });

  it('nothing is accepted after logout or revocation, on the old connection or a new one', async () => {
    const r = await rawSession('after-logout@example.org');
    const f = r.channel.seal({ t: 'close', reason: 'logout' });
    r.send(f);
    assert.equal(await r.closed, 1000);
    const ws = new WebSocket(server.wsUrl);
    await new Promise((res) => ws.once('open', res));
    const answer = new Promise<Record<string, unknown>>((res) =>
      ws.once('message', (d) => res(JSON.parse(d.toString()))),
    );
    ws.send(r.channel.seal({ t: 'data', body: 'after logout' }));
    assert.equal((await answer).code, 'KL_PROTOCOL');
    const resumed = await resumeRaw(r.l.sessionId, () => 'x'.repeat(43));
    assert.equal(resumed.code, 'KL_SESSION_UNKNOWN');
    assert.equal(seen.filter((c) => c.body === 'after logout').length, 0);
  });
});
