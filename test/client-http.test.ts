/**
 * The client's HTTP calls (src/client/http.ts, global fetch) against a hostile server on loopback:
 * an answer past 1 MiB, a body that is not JSON, a server that never answers, a redirect, and a
 * typed error body; each ends in a typed error, none in a hang or a crash. And the server URL's
 * path prefix: every call (HTTP and the login WebSocket) goes under it, checked through a real
 * proxy on loopback that serves a real server only under `/auth/`.
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { callJson, endpoint, wsEndpoint } from '../src/client/http.js';
import { register } from '../src/client/register.js';
import { connect } from '../src/client/session.js';
import { verifyMessageSigner } from '../src/client/signed-message.js';
import { CLIENT_PASSPHRASE, invite, newClient, testServer } from './support/server.js';

let server: Server;
let base = '';
before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/huge') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const more = () => {
        while (sent < 4 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (sent < 4 * 1024 * 1024) res.once('drain', more);
        else res.end();
      };
      res.on('error', () => {});
      more();
    } else if (req.url === '/html') res.writeHead(200).end('<html>');
    else if (req.url === '/silent') {
      // never answers
    } else if (req.url === '/redirect') res.writeHead(302, { location: 'http://example.org/' }).end();
    else if (req.url === '/refused')
      res.writeHead(409).end(JSON.stringify({ error: { code: 'KL_IDENTITY_TAKEN', message: 'taken' } }));
    else res.writeHead(200).end(JSON.stringify({ ok: true, echo: req.method }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const code = (c: string, message?: RegExp) => (e: Error & { code?: string }) =>
  e.code === c && (!message || message.test(e.message));

describe('client HTTP calls', () => {
  it('answers JSON, with and without a body', async () => {
    assert.deepEqual(await callJson('GET', `${base}/`), { ok: true, echo: 'GET' });
    assert.deepEqual(await callJson('POST', `${base}/`, { a: 1 }), { ok: true, echo: 'POST' });
  });

  it('refuses an answer past 1 MiB, one that is not JSON, a redirect, and a server that never answers', async () => {
    await assert.rejects(callJson('GET', `${base}/huge`), code('KL_NETWORK', /too large/));
    await assert.rejects(callJson('GET', `${base}/html`), code('KL_NETWORK', /not JSON/));
    await assert.rejects(callJson('GET', `${base}/redirect`), code('KL_NETWORK', /cannot reach/));
    await assert.rejects(callJson('GET', `${base}/silent`, undefined, 300), code('KL_NETWORK', /timed out/));
  });

  it("turns the server's typed error into a KlError with its code; a closed port is KL_NETWORK", async () => {
    await assert.rejects(callJson('GET', `${base}/refused`), code('KL_IDENTITY_TAKEN'));
    await assert.rejects(
      callJson('GET', 'http://127.0.0.1:9/'),
      code('KL_NETWORK', /cannot reach http:\/\/127\.0\.0\.1:9/),
    );
  });
});

describe('endpoints under the server URL', () => {
  it('keep the path prefix of the server URL, with or without a trailing slash', () => {
    for (const base of ['http://h:1/auth', 'http://h:1/auth/', 'http://h:1/auth?x=1#f']) {
      assert.equal(endpoint(base, 'v1/info'), 'http://h:1/auth/v1/info');
      assert.equal(
        endpoint(base, '/v1/ledger/consistency?from=3'),
        'http://h:1/auth/v1/ledger/consistency?from=3',
      );
      assert.equal(wsEndpoint(base, 'v1/login'), 'ws://h:1/auth/v1/login');
    }
    assert.equal(endpoint('http://h:1', 'v1/info'), 'http://h:1/v1/info');
    assert.equal(endpoint('https://h/a/b/', 'v1/info'), 'https://h/a/b/v1/info');
    assert.equal(wsEndpoint('https://h/a', '/v1/login'), 'wss://h/a/v1/login');
  });

  it('register, login, a session with a signed message, the ledger checks: all under /auth/ of a proxy', async () => {
    const server = await testServer();
    const hits: string[] = [];
    // A real reverse proxy on loopback: /auth/… goes to the server without the prefix; anything
    // else is a 404, so a call that drops the prefix fails.
    const proxy = createServer((req, res) => {
      hits.push(req.url ?? '');
      if (!req.url?.startsWith('/auth/')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'KL_NOT_FOUND', message: `no ${req.url} here` } }));
        return;
      }
      const up = new URL(server.url);
      const fwd = request(
        {
          host: up.hostname,
          port: up.port,
          method: req.method,
          path: req.url.slice(5),
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      req.pipe(fwd);
    });
    proxy.on('upgrade', (req, socket, head) => {
      hits.push(`ws ${req.url}`);
      if (!req.url?.startsWith('/auth/')) {
        socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      const up = new URL(server.url);
      const upstream = tcpConnect(Number(up.port), up.hostname, () => {
        const lines = [`${req.method} ${req.url!.slice(5)} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        upstream.write(head);
        upstream.pipe(socket).pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const prefixed = `http://127.0.0.1:${(proxy.address() as { port: number }).port}/auth`;
    try {
      const home = await newClient('prefix@example.org');
      await register({
        home,
        server: prefixed,
        proof: { method: 'invite', code: invite(server, 'prefix@example.org') },
        passphrase: CLIENT_PASSPHRASE,
      });
      assert.equal((await home.readServer()).url, prefixed);
      const session = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      const sent = await session.sendSigned('under a prefix');
      session.dropConnection();
      await session.resume();
      await session.close();
      const check = await verifyMessageSigner({
        server: await home.readServer(),
        receipt: sent.receipt,
        id: 'prefix@example.org',
        message: 'under a prefix',
        signature: sent.signature,
      });
      assert.equal(check.verified, true, JSON.stringify(check));
      assert.ok(hits.length > 0);
      assert.deepEqual(
        hits.filter((h) => !h.startsWith('/auth/') && !h.startsWith('ws /auth/')),
        [],
        'every call went under the prefix',
      );
      assert.ok(
        hits.filter((h) => h === 'ws /auth/v1/login').length >= 2,
        'login and resume under the prefix',
      );
    } finally {
      proxy.closeAllConnections();
      proxy.close();
      await server.close();
    }
  });
});
