/**
 * Slow and hostile clients (issue 7): handshakes that never answer, floods of hellos for unknown
 * identities, slowloris-style partial HTTP requests and partial WebSocket frames. The server must
 * keep serving everyone else, and its pending-challenge table must stay bounded.
 */
import assert from 'node:assert/strict';
import { type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { connect } from '../src/client/session.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
const sockets: Array<Socket | WebSocket> = [];
before(async () => {
  server = await testServer({ maxPendingChallenges: 20, handshakeTimeoutMs: 1_500 });
});
after(async () => {
  for (const s of sockets) s instanceof WebSocket ? s.terminate() : s.destroy();
  await server.close();
});

function openWs(): Promise<WebSocket> {
  const ws = new WebSocket(server.wsUrl);
  sockets.push(ws);
  ws.on('error', () => {});
  return new Promise((resolve) => ws.once('open', () => resolve(ws)));
}
const nextMessage = (ws: WebSocket) =>
  new Promise<{ type?: string; code?: string }>((r) =>
    ws.once('message', (d) => r(JSON.parse(d.toString()))),
  );

/** A normal user logging in and making a request, timed. */
async function normalUserWorks(home: Awaited<ReturnType<typeof registeredClient>>): Promise<number> {
  const t = performance.now();
  const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
  assert.deepEqual(await s.request({ op: 'echo', text: 'still here' }), {
    echo: 'still here',
    id: home.readIdentity().id,
  });
  await s.close();
  return performance.now() - t;
}

describe('hostile clients', () => {
  it('handshakes that never answer: the challenge table is bounded, the connections are cut, others still log in', async () => {
    await registeredClient(server, 'silent@example.org');
    const user = await registeredClient(server, 'busy-user@example.org');
    const hello = { type: 'hello', v: 1, id: 'silent@example.org', ephemeral: 'A'.repeat(43) };
    // 30 connections each ask for a challenge and never answer it.
    const silent = await Promise.all(Array.from({ length: 30 }, () => openWs()));
    const answers = await Promise.all(
      silent.map((ws) => {
        const m = nextMessage(ws);
        ws.send(JSON.stringify(hello));
        return m;
      }),
    );
    assert.equal(answers.filter((a) => a.type === 'challenge').length, 20, 'at most maxPendingChallenges');
    assert.ok(
      answers.filter((a) => a.code === 'KL_RATE_LIMITED').length === 10,
      'the rest are told the server is busy',
    );
    assert.ok(server.pendingChallenges() <= 20);
    // The handshake timeout cuts them and frees the table; then the normal user gets in.
    await Promise.all(
      silent.map((ws) => new Promise((r) => (ws.readyState === ws.CLOSED ? r(null) : ws.once('close', r)))),
    );
    assert.equal(server.pendingChallenges(), 0);
    await normalUserWorks(user);
  });

  it('a flood of hellos for unknown identities is refused without filling anything', async () => {
    const user = await registeredClient(server, 'flood-user@example.org');
    const ws = await Promise.all(Array.from({ length: 100 }, () => openWs()));
    const answers = await Promise.all(
      ws.map((w, i) => {
        const m = nextMessage(w);
        w.send(
          JSON.stringify({ type: 'hello', v: 1, id: `nobody${i}@example.org`, ephemeral: 'A'.repeat(43) }),
        );
        return m;
      }),
    );
    assert.ok(
      answers.every((a) => a.type === 'error'),
      'every unknown identity is refused',
    );
    assert.equal(server.pendingChallenges(), 0);
    await normalUserWorks(user);
  });

  it('slowloris: half-sent HTTP requests and half-sent WebSocket frames do not stop anyone else', async () => {
    const user = await registeredClient(server, 'slow-user@example.org');
    const { port } = new URL(server.url);
    // 50 connections that send part of a request line and headers, then nothing more.
    for (let i = 0; i < 50; i++) {
      const s = tcpConnect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
      s.write(
        `POST /v1/register/begin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n`,
      );
    }
    // 20 WebSocket connections that send the first bytes of a frame and stop.
    for (let i = 0; i < 20; i++) {
      const ws = await openWs();
      (ws as unknown as { _socket: Socket })._socket.write(Buffer.from([0x81, 0xfe, 0x01]));
    }
    const ms = await normalUserWorks(user);
    assert.ok(ms < 10_000, `a normal login took ${ms} ms`);
    const r = await fetch(`${server.url}/healthz`);
    assert.equal(r.status, 200);
  });
});
