/**
 * keyledger as a Fastify plugin in a host app (src/server/plugin.ts): mounted under /auth next to the
 * host's own routes and WebSocket routes, over real sockets on 127.0.0.1. A client registers with an
 * invitation, logs in and talks through the session at `http://127.0.0.1:PORT/auth`; the host's
 * routes and sockets keep answering, and keyledger takes no upgrade of another path.
 */
import assert from 'node:assert/strict';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { WebSocket, WebSocketServer } from 'ws';
import { register } from '../src/client/register.js';
import { connect } from '../src/client/session.js';
import { formatInvitation } from '../src/protocol/invitation.js';
import { openNode } from '../src/server/open-node.js';
import { type Keyledger, keyledger } from '../src/server/plugin.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { CLIENT_PASSPHRASE, newClient } from './support/server.js';

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A host app with keyledger under /auth; `setup` adds the host's own routes first. */
async function hostWith(setup: (app: FastifyInstance) => Promise<void>) {
  const dataDir = join(tempDir('kl-plugin-'), 'data');
  // As the README shows it: defaults for everything but the directory and its passphrase.
  const node = await openNode({ dataDir, passphrase: PASSPHRASE });
  const { proofs } = node;
  const app = Fastify();
  await setup(app);
  let k: Keyledger | undefined;
  await app.register(keyledger, {
    prefix: '/auth',
    ledger: node.ledger,
    serverKey: node.serverKey,
    proofs,
    expose: (x) => {
      k = x;
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  k!.setPublicUrl(`${base}/auth`);
  cleanup.push(async () => {
    await app.close();
    await node.close();
  });
  return { app, base, ws: base.replace(/^http/, 'ws'), k: k!, node, proofs };
}

/** Registers `id` through `${base}/auth` with an invitation, logs in, and asks the session who it is. */
async function registerAndTalk(h: Awaited<ReturnType<typeof hostWith>>, id: string): Promise<void> {
  h.k.onMessage(({ id: who, body }) =>
    (body as { op?: string })?.op === 'whoami' ? { you: who } : undefined,
  );
  const home = await newClient(id);
  const now = Date.now();
  const code = formatInvitation(h.proofs.issueInvite(id, now, now + 86_400_000), h.node.ledger.chainId);
  await register({
    home,
    server: `${h.base}/auth`,
    proof: { method: 'invite', code },
    passphrase: CLIENT_PASSPHRASE,
  });
  const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
  assert.ok(h.k.sessions.get(s.sessionId), 'the plugin holds the session');
  assert.deepEqual(await s.request({ op: 'whoami' }), { you: id });
  await s.close();
}

/** Opens a WebSocket; resolves with the first message, or rejects with how it failed. */
function firstMessage(url: string, send: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => ws.send(send));
    ws.on('message', (m) => {
      resolve(m.toString());
      ws.close();
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('close', (code) => reject(new Error(`closed ${code}`)));
  });
}

describe('keyledger mounted in a host Fastify app under /auth', () => {
  it('with the host on @fastify/websocket: register, log in, talk; host routes and sockets still answer', async () => {
    const h = await hostWith(async (app) => {
      await app.register(websocket);
      app.get('/hello', async () => ({ host: true }));
      app.get('/host-ws', { websocket: true }, (ws) => {
        ws.on('message', (m: Buffer) => ws.send(`host:${m}`));
      });
    });
    await registerAndTalk(h, 'pia@example.org');
    assert.deepEqual(await (await fetch(`${h.base}/hello`)).json(), { host: true });
    assert.equal(await firstMessage(`${h.ws}/host-ws`, 'ping'), 'host:ping');
    // keyledger answers under its prefix only.
    assert.equal((await fetch(`${h.base}/auth/v1/info`)).status, 200);
    assert.equal((await fetch(`${h.base}/v1/info`)).status, 404);
    // Under its prefix, keyledger's own error answers: a plain GET of the socket path, an unknown route.
    for (const path of ['/auth/v1/login', '/auth/v1/nope']) {
      const res = await fetch(`${h.base}${path}`);
      assert.equal(res.status, 404);
      assert.deepEqual(((await res.json()) as { error: { code: string } }).error.code, 'KL_NOT_FOUND');
    }
    // Upgrades of other paths are not keyledger's login socket: no challenge ever comes back.
    const hello = JSON.stringify({ type: 'hello', v: 1, id: 'pia@example.org', ephemeral: 'A'.repeat(43) });
    await assert.rejects(firstMessage(`${h.ws}/elsewhere`, hello), /HTTP 404/);
    await assert.rejects(firstMessage(`${h.ws}/auth/v1/info`, hello), /closed/);
    const challenge = JSON.parse(await firstMessage(`${h.ws}/auth/v1/login`, hello)) as { type: string };
    assert.equal(challenge.type, 'challenge');
  });

  it('with the host on plain ws for its own path: keyledger takes only /auth/v1/login', async () => {
    const h = await hostWith(async (app) => {
      const wss = new WebSocketServer({ noServer: true });
      app.server.on('upgrade', (req, socket, head) => {
        if (req.url !== '/raw') return;
        wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m: Buffer) => ws.send(`raw:${m}`)));
      });
      app.addHook('onClose', async () => {
        for (const c of wss.clients) c.terminate();
        wss.close();
      });
    });
    assert.equal(await firstMessage(`${h.ws}/raw`, 'ping'), 'raw:ping');
    await registerAndTalk(h, 'quin@example.org');
    assert.equal(await firstMessage(`${h.ws}/raw`, 'again'), 'raw:again');
  });

  it('is what keyledger/server exports (src/server/index.ts), as a named and a default export, with the pure pairs', async () => {
    const entry = await import('../src/server/index.js');
    assert.equal(typeof entry.keyledger, 'function');
    assert.equal(entry.default, entry.keyledger);
    assert.equal(typeof entry.startServer, 'function');
    assert.equal(typeof entry.openNode, 'function');
    assert.equal(typeof entry.createRegistration, 'function');
    assert.equal(typeof entry.verifyRegistration, 'function');
  });
});

/** Sends a raw upgrade request for `target`; resolves with what came back before the socket closed. */
function rawUpgrade(
  base: string,
  target: string,
  waitMs = 3_000,
): Promise<{ closed: boolean; answer: string }> {
  const { port } = new URL(base);
  return new Promise((resolve) => {
    const socket = connectTcp(Number(port), '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ closed: false, answer });
    }, waitMs);
    socket.on('data', (d) => {
      answer += d.toString('latin1');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, answer });
    });
    socket.on('error', () => {});
    socket.write(
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
  });
}

/** How a WebSocket that sends `size` bytes at once ends: its close code. */
function closeCodeAfterSending(url: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => ws.send('x'.repeat(size)));
    ws.on('close', (code) => resolve(code));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

describe('a host app does not weaken keyledger (attacks at the host door)', () => {
  it('is ready once the app is (no started() call): /readyz answers 200', async () => {
    const h = await hostWith(async () => {});
    assert.equal((await fetch(`${h.base}/auth/readyz`)).status, 200);
  });

  it('an upgrade whose raw target only normalises to the login path is closed, not left open', async () => {
    // The host answers every other path: a socket routed there would get an HTTP answer and then
    // stay open for good (an upgraded socket has no timeout).
    const h = await hostWith(async (app) => {
      app.get('/*', async () => ({ host: 'catch-all' }));
    });
    for (const target of ['//evil/auth/v1/login', '/x/../auth/v1/login', '/elsewhere']) {
      const r = await rawUpgrade(h.base, target);
      assert.equal(r.closed, true, `${target} left open: ${r.answer}`);
      assert.doesNotMatch(r.answer, /101 Switching/, target);
    }
    const ok = await rawUpgrade(h.base, '/auth/v1/login?x=1', 1_000);
    assert.match(ok.answer, /^HTTP\/1\.1 101 /, 'the login path itself (a query allowed) upgrades');
  });

  it('two keyledger instances on one app: each takes its own login path, strangers are closed', async () => {
    const h = await hostWith(async (app) => {
      const other = await openNode({
        dataDir: join(tempDir('kl-plugin-b-'), 'data'),
        passphrase: PASSPHRASE,
      });
      await app.register(keyledger, {
        prefix: '/b',
        ledger: other.ledger,
        serverKey: other.serverKey,
        proofs: other.proofs,
      });
      cleanup.push(() => other.close());
    });
    const hello = JSON.stringify({
      type: 'hello',
      v: 1,
      id: 'nobody@example.org',
      ephemeral: 'A'.repeat(43),
    });
    for (const prefix of ['/auth', '/b']) {
      const answer = JSON.parse(await firstMessage(`${h.ws}${prefix}/v1/login`, hello)) as { type: string };
      assert.equal(answer.type, 'error', `${prefix}: an unknown identity is refused by that instance`);
    }
    const stranger = await rawUpgrade(h.base, '/other');
    assert.equal(stranger.closed, true, 'an upgrade nobody serves is destroyed');
  });

  it("with the host's @fastify/websocket (100 MiB messages by default), the login socket still refuses past its limit", async () => {
    const h = await hostWith(async (app) => {
      await app.register(websocket);
    });
    // 1009: refused by the WebSocket layer as too big, before keyledger ever buffers it whole.
    assert.equal(await closeCodeAfterSending(`${h.ws}/auth/v1/login`, 2 * 1024 * 1024), 1009);
  });

  it('in a default Fastify() host, bodies are taken as sent or refused: no coercion, no stripping, bounded', async () => {
    const h = await hostWith(async () => {});
    const post = (body: string) =>
      fetch(`${h.base}/auth/v1/register/begin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    for (const body of [
      JSON.stringify({ id: 'rex@example.org', extra: 1 }),
      JSON.stringify({ id: ['rex@example.org'] }),
      JSON.stringify({ id: 12345678 }),
    ]) {
      const res = await post(body);
      assert.equal(res.status, 400, body);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KL_BAD_INPUT', body);
    }
    const big = await post(JSON.stringify({ id: 'rex@example.org', pad: 'x'.repeat(500 * 1024) }));
    assert.equal(big.status, 413);
  });

  it('a public URL given after registration (setPublicUrl) turns on HSTS (the cookie Secure flag reads the same setting)', async () => {
    const h = await hostWith(async () => {});
    const before = await fetch(`${h.base}/auth/admin/`);
    assert.equal(before.headers.get('strict-transport-security'), null, 'plain http: no HSTS');
    // The dashboard under the prefix: the page names its files relative to itself, and they are there.
    const page = await before.text();
    for (const file of ['app.js', 'style.css']) {
      assert.match(page, new RegExp(`"${file.replace('.', '\\.')}"`), `the page loads ${file} relatively`);
      assert.equal((await fetch(`${h.base}/auth/admin/${file}`)).status, 200, file);
    }
    assert.equal((await fetch(`${h.base}/auth/admin/verifier.js`)).status, 200);
    h.k.setPublicUrl('https://example.org/auth');
    const after = await fetch(`${h.base}/auth/admin/`);
    assert.match(after.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
  });
});
