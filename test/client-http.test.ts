/**
 * The client's HTTP calls (src/client/http.ts, global fetch) against a hostile server on loopback:
 * an answer past 1 MiB, a body that is not JSON, a server that never answers, a redirect, and a
 * typed error body; each ends in a typed error, none in a hang or a crash.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { callJson } from '../src/client/http.js';

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
