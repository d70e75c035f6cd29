/**
 * Session frame wire format v2 (src/protocol/frame-wire.ts, docs/protocol.md "Session frame wire
 * format v2"): the codec's round trip and its strict decoding, the channel's checks on the header,
 * and, against a real server on 127.0.0.1, malformed binary frames and text (plaintext) messages
 * injected mid-session on both sides through a WebSocket proxy on loopback.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { login } from '../src/client/login.js';
import { connect } from '../src/client/session.js';
import { Channel, type ChannelMessage } from '../src/protocol/channel.js';
import { encodeFrame, MAX_FRAME_PLAINTEXT, sealFrame } from '../src/protocol/frame.js';
import {
  dataPlaintext,
  jsonPlaintext,
  MAX_WIRE_FRAME,
  openWire,
  PlainType,
  readPlaintext,
  readWireHeader,
  sealWire,
  sessionHandle,
  WIRE_HEADER_LENGTH,
  WIRE_TAG_LENGTH,
  WIRE_VERSION,
} from '../src/protocol/frame-wire.js';
import type { SessionKeys } from '../src/protocol/key-schedule.js';
import type { MessageContext } from '../src/server/session-service.js';
import { handDrivenChannel } from './helpers.js';
import { type MitmProxy, mitmProxy, registeredBehind } from './support/mitm-proxy.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

const key = randomBytes(32);
const iv = randomBytes(12);
const sid = randomBytes(16).toString('base64url');
const handle = sessionHandle(sid);
const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function keys(): SessionKeys {
  return {
    c2sKey: Buffer.alloc(32, 1),
    c2sIv: Buffer.alloc(12, 2),
    s2cKey: Buffer.alloc(32, 3),
    s2cIv: Buffer.alloc(12, 4),
    resumeKey: Buffer.alloc(32, 5),
  };
}
function pair() {
  const s = randomBytes(16).toString('base64url');
  const chain = Buffer.alloc(32, 9);
  return {
    client: new Channel({ role: 'client', sid: s, keys: keys(), chain, now: Date.now }),
    server: new Channel({ role: 'server', sid: s, keys: keys(), chain, now: Date.now }),
  };
}

describe('frame wire codec', () => {
  it('round trip: the header carries version, direction, handle, epoch and seq; the header is the AAD', () => {
    for (let i = 0; i < 200; i++) {
      const epoch = i === 0 ? 1_000_000 : randomInt(0, 1_000_001);
      const seq = i === 0 ? Number.MAX_SAFE_INTEGER : randomInt(0, 2 ** 47);
      const dir = i % 2 ? 'c2s' : 's2c';
      const plaintext = randomBytes(randomInt(0, 4096));
      const wire = Buffer.from(sealWire({ key, iv, handle, epoch, seq, dir, plaintext }));
      assert.equal(wire.length, WIRE_HEADER_LENGTH + plaintext.length + WIRE_TAG_LENGTH);
      assert.deepEqual([wire[0], wire[1]], [WIRE_VERSION, dir === 'c2s' ? 1 : 2]);
      assert.deepEqual(wire.subarray(2, 18), Buffer.from(sid, 'base64url'));
      assert.equal(wire.readUInt32BE(18), epoch);
      assert.equal(Number(wire.readBigUInt64BE(22)), seq);
      const h = readWireHeader(wire);
      assert.deepEqual(
        [h.dir, Buffer.from(h.handle), h.epoch, h.seq],
        [dir, Buffer.from(handle), epoch, seq],
      );
      assert.deepEqual(Buffer.from(openWire(key, iv, wire, h.seq)), plaintext);
    }
  });

  it('every bit of the header and the body is authenticated', () => {
    const wire = Buffer.from(
      sealWire({ key, iv, handle, epoch: 3, seq: 9, dir: 'c2s', plaintext: randomBytes(40) }),
    );
    for (let byte = 0; byte < wire.length; byte++) {
      const bad = Buffer.from(wire);
      bad[byte]! ^= 1 << (byte % 8);
      assert.throws(() => {
        const h = readWireHeader(bad);
        openWire(key, iv, bad, h.seq);
      }, /could not be authenticated|unknown frame|out of range/);
    }
  });

  it('strict decoding: short, unknown version, unknown direction, oversized, out-of-range epoch or seq are refused before any crypto', () => {
    const wire = Buffer.from(
      sealWire({ key, iv, handle, epoch: 1, seq: 1, dir: 's2c', plaintext: randomBytes(8) }),
    );
    for (let n = 0; n < WIRE_HEADER_LENGTH + WIRE_TAG_LENGTH; n++)
      assert.throws(() => readWireHeader(wire.subarray(0, n)), code('KL_FRAME_REJECTED'), `${n} bytes`);
    const change = (f: (b: Buffer) => void) => {
      const b = Buffer.from(wire);
      f(b);
      return b;
    };
    for (const v of [0, 1, 3, 0x7b, 0xff])
      assert.throws(
        () => readWireHeader(change((b) => (b[0] = v))),
        code('KL_FRAME_REJECTED'),
        `version ${v}`,
      );
    for (const d of [0, 3, 0x80, 0xff])
      assert.throws(
        () => readWireHeader(change((b) => (b[1] = d))),
        code('KL_FRAME_REJECTED'),
        `direction ${d}`,
      );
    assert.throws(
      () => readWireHeader(change((b) => b.writeUInt32BE(1_000_001, 18))),
      code('KL_FRAME_REJECTED'),
    );
    assert.throws(() => readWireHeader(change((b) => (b[22] = 0x00 | 0x20))), code('KL_FRAME_REJECTED'));
    const huge = Buffer.alloc(MAX_WIRE_FRAME + 1);
    wire.copy(huge, 0, 0, WIRE_HEADER_LENGTH);
    assert.throws(() => readWireHeader(huge), code('KL_FRAME_REJECTED'));
    // The largest allowed plaintext seals and opens; one byte more is refused when sealing.
    const max = sealWire({
      key,
      iv,
      handle,
      epoch: 0,
      seq: 0,
      dir: 'c2s',
      plaintext: Buffer.alloc(MAX_FRAME_PLAINTEXT),
    });
    assert.equal(max.length, MAX_WIRE_FRAME);
    assert.equal(readWireHeader(max).seq, 0);
    assert.throws(
      () =>
        sealWire({
          key,
          iv,
          handle,
          epoch: 0,
          seq: 0,
          dir: 'c2s',
          plaintext: Buffer.alloc(MAX_FRAME_PLAINTEXT + 1),
        }),
      code('KL_TOO_LARGE'),
    );
    assert.throws(() => readWireHeader('not bytes' as unknown as Uint8Array), code('KL_FRAME_REJECTED'));
  });

  it('the session handle is the 16 raw bytes of the session id, one handle per id', () => {
    for (let i = 0; i < 50; i++) {
      const raw = randomBytes(16);
      assert.deepEqual(Buffer.from(sessionHandle(raw.toString('base64url'))), raw);
    }
    // 22 characters with non-zero spare bits would alias another id's handle: refused.
    assert.throws(() => sessionHandle(`${'A'.repeat(21)}B`), code('KL_PROTOCOL'));
    for (const bad of ['', 'A'.repeat(21), 'A'.repeat(23), `${'A'.repeat(21)}=`, `${'A'.repeat(20)}+A`])
      assert.throws(() => sessionHandle(bad), code('KL_PROTOCOL'), bad);
  });

  it('the sealed plaintext: a type byte, then JSON, bytes or UTF-8 text; unknown types are refused', () => {
    assert.deepEqual(readPlaintext(jsonPlaintext('{"t":"close-ack"}')), {
      type: PlainType.json,
      json: '{"t":"close-ack"}',
    });
    for (const text of [
      '',
      'ascii only',
      'héllo wörld',
      '日本語',
      '😀 emoji',
      'x'.repeat(70_000),
      '\ud800 lone',
    ])
      assert.deepEqual(readPlaintext(dataPlaintext(text)), {
        type: PlainType.text,
        body: Buffer.from(text).toString(),
      });
    const bytes = randomBytes(300);
    const p = readPlaintext(dataPlaintext(bytes));
    assert.equal(p.type, PlainType.bytes);
    assert.deepEqual(Buffer.from(p.body as Uint8Array), bytes);
    assert.throws(() => readPlaintext(new Uint8Array(0)), code('KL_PROTOCOL'));
    assert.throws(() => readPlaintext(Uint8Array.of(3, 1, 2)), code('KL_PROTOCOL'));
  });
});

describe('channel on the v2 wire', () => {
  it('application data as text or bytes, requests and control as JSON, all in order', () => {
    const { client, server } = pair();
    const sent: ChannelMessage[] = [
      { t: 'data', body: 'plain text' },
      { t: 'data', body: new Uint8Array([0, 1, 2, 255]) },
      { t: 'data', id: 7, body: 'a request' },
      { t: 'data', body: { an: 'object' } },
      { t: 'close', reason: 'logout' },
    ];
    const frames = sent.map((m) => client.seal(m));
    assert.deepEqual(
      frames.map((f) => readWireHeader(f).seq),
      [0, 1, 2, 3, 4],
    );
    const got = frames.map((f) => server.open(f));
    assert.deepEqual(got[0], { t: 'data', body: 'plain text' });
    assert.deepEqual(Buffer.from((got[1] as { body: Uint8Array }).body), Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(got.slice(2), sent.slice(2));
  });

  it('a frame for the other direction, another session, or malformed is refused without using a sequence number', () => {
    const { client, server } = pair();
    const other = pair();
    const good = client.seal({ t: 'data', body: 'genuine' });
    const reflected = server.seal({ t: 'data', body: 'reflected' }); // s2c, sent back to the server
    assert.throws(() => server.open(reflected), /wrong direction/);
    assert.throws(() => server.open(other.client.seal({ t: 'data', body: 'x' })), /another session/);
    assert.throws(() => server.open(good.subarray(0, 40)), code('KL_FRAME_REJECTED'));
    const v1 = Buffer.from(good);
    v1[0] = 1;
    assert.throws(() => server.open(v1), code('KL_FRAME_REJECTED'));
    assert.deepEqual(server.open(good), { t: 'data', body: 'genuine' });
    assert.throws(() => server.open(good), /replayed/);
  });
});

describe('malformed frames and injected plaintext against a real server', () => {
  type Srv = Awaited<ReturnType<typeof testServer>>;
  let server: Srv;
  let proxy: MitmProxy;
  const seen: MessageContext[] = [];
  before(async () => {
    server = await testServer({ hijackPolicy: { maxAnomalies: 3 } });
    server.onMessage((ctx) => {
      seen.push(ctx);
      return undefined; // the demo service answers: a string is echoed
    });
    proxy = await mitmProxy(server.url);
  });
  after(async () => {
    await proxy.close();
    await server.close();
  });

  /** The server's live channel state for a session (test-only access to its internals). */
  function serverSide(sessionId: string) {
    const live = server.sessions.get(sessionId);
    assert.ok(live);
    const ch = live.channel as unknown as {
      keys: SessionKeys;
      sendSeq: number;
      recvSeq: number;
      epoch: number;
    };
    return { live, ch };
  }

  it('each malformed binary frame counts as a rejected frame, uses no sequence number, and three end the session', async () => {
    const home = await registeredClient(server, 'wire-edges@example.org');
    const l = await login({ home, passphrase: CLIENT_PASSPHRASE });
    const channel = handDrivenChannel(l);
    const inbox: Uint8Array[] = [];
    l.socket.removeAllListeners('message');
    l.socket.on('message', (d, binary) => binary && inbox.push(new Uint8Array(d as Uint8Array)));
    const closed = new Promise<number>((r) => l.socket.on('close', (c) => r(c)));
    const genuine = Buffer.from(channel.seal({ t: 'data', id: 1, body: 'ping' }));
    const { live } = serverSide(l.sessionId);
    const anomalies = () => live.anomalies.length;

    // A short header and a wrong version byte: refused, counted, the genuine frame still opens.
    l.socket.send(genuine.subarray(0, WIRE_HEADER_LENGTH - 1));
    const v3 = Buffer.from(genuine);
    v3[0] = 3;
    l.socket.send(v3);
    await sleep(200);
    assert.equal(anomalies(), 2);
    l.socket.send(genuine);
    await sleep(200);
    assert.deepEqual(channel.open(inbox.at(-1)!), {
      t: 'reply',
      re: 1,
      body: { echo: 'ping', id: 'wire-edges@example.org' },
    });
    assert.equal(seen.filter((c) => c.body === 'ping').length, 1);

    // A frame declaring the server→client direction, and one larger than any frame may be: the third
    // strike ends the session as hijacked (a fourth is never looked at).
    const reflected = Buffer.from(channel.seal({ t: 'data', body: 'reflected' }));
    reflected[1] = 2;
    l.socket.send(reflected);
    const huge = Buffer.alloc(MAX_WIRE_FRAME + 1);
    genuine.copy(huge, 0, 0, WIRE_HEADER_LENGTH);
    l.socket.send(huge);
    assert.equal(await closed, 4000);
    assert.equal(seen.filter((c) => c.body === 'reflected').length, 0);
    assert.equal(server.sessions.get(l.sessionId), undefined);
  });

  it('server side: a text message injected mid-session (even a genuinely sealed v1 frame) is a rejected frame, never a message', async () => {
    const home = await registeredBehind(proxy, server, 'inject-c2s@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const pong = { echo: 'ping', id: 'inject-c2s@example.org' };
    assert.deepEqual(await s.request('ping'), pong);
    const { live, ch } = serverSide(s.sessionId);
    // The v1 JSON form of the client's next frame, sealed with the real c2s key and sequence number.
    const v1 = sealFrame({
      key: ch.keys.c2sKey,
      iv: ch.keys.c2sIv,
      sid: s.sessionId,
      epoch: ch.epoch,
      seq: ch.recvSeq,
      dir: 'c2s',
      plaintext: Buffer.from(JSON.stringify({ t: 'data', body: 'smuggled as text' })),
    });
    proxy.last().upstream.send(encodeFrame(v1));
    proxy.last().upstream.send('{"type":"error","code":"KL_KEY_REVOKED","message":"x"}');
    await sleep(200);
    assert.equal(live.anomalies.length, 2);
    assert.equal(seen.filter((c) => c.body === 'smuggled as text').length, 0);
    // The session goes on: the sequence number the text frame named was not used.
    assert.deepEqual(await s.request('ping'), pong);
    await s.close();
  });

  it('client side: a text message injected mid-session (even a genuinely sealed v1 frame) is unverified: the client drops the connection and resumes', async () => {
    const home = await registeredBehind(proxy, server, 'inject-s2c@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const pong = { echo: 'ping', id: 'inject-s2c@example.org' };
    assert.deepEqual(await s.request('ping'), pong);
    const messages: unknown[] = [];
    s.on('message', (m: unknown) => messages.push(m));
    const { ch } = serverSide(s.sessionId);
    const v1 = sealFrame({
      key: ch.keys.s2cKey,
      iv: ch.keys.s2cIv,
      sid: s.sessionId,
      epoch: ch.epoch,
      seq: ch.sendSeq,
      dir: 's2c',
      plaintext: Buffer.from(JSON.stringify({ t: 'data', body: 'smuggled as text' })),
    });
    const closed = new Promise<{ reason: string; resumable: boolean }>((r) => s.once('close', r));
    const resumed = new Promise<number>((r) => s.once('resumed', r));
    proxy.inject(encodeFrame(v1));
    const c = await closed;
    assert.deepEqual([c.reason, c.resumable], ['unauthenticated data on the connection', true]);
    await resumed;
    assert.deepEqual(messages, []);
    assert.deepEqual(await s.request('ping'), pong);
    await s.close();
  });
});
