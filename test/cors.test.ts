/**
 * Browser apps on another origin (docs/configuration.md `corsOrigins`): the listed origins may call
 * the public routes — preflight included — and read the answers; other origins may not; the admin
 * API, which a cookie authenticates, answers no other origin at all. Checked on the HTTP exchange
 * and in headless Chromium, a page at one origin calling the server at another.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import type { RunningServer } from '../src/server/app.js';
import { testServer } from './support/server.js';

const CHROMIUM = process.env.KEYLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const APP = 'http://app.example.test';
const STRANGER = 'http://evil.example.test';

let server: RunningServer;
let closed: RunningServer;
let browser: Browser;

before(async () => {
  server = await testServer({ corsOrigins: [APP] });
  closed = await testServer();
});

after(async () => {
  await browser?.close();
  await server?.close();
  await closed?.close();
});

/** A preflight for `method path` from `origin`, as a browser sends it before a JSON POST. */
function preflight(base: string, path: string, origin: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  });
}

describe('CORS for browser apps on other origins', () => {
  it('a listed origin may call the public routes (preflight, then the answer is readable)', async () => {
    const pre = await preflight(server.url, '/v1/register/begin', APP);
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), APP);
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.equal(pre.headers.get('access-control-allow-credentials'), null, 'no credentials');
    const info = await fetch(`${server.url}/v1/info`, { headers: { origin: APP } });
    assert.equal(info.status, 200);
    assert.equal(info.headers.get('access-control-allow-origin'), APP);
  });

  it('another origin, the admin API, and a server without the setting allow none', async () => {
    const stranger = await fetch(`${server.url}/v1/info`, { headers: { origin: STRANGER } });
    assert.equal(stranger.headers.get('access-control-allow-origin'), null);
    for (const path of ['/admin/api/me', '/admin/login', '/admin/']) {
      const pre = await preflight(server.url, path, APP);
      assert.equal(pre.headers.get('access-control-allow-origin'), null, path);
      const get = await fetch(`${server.url}${path}`, { headers: { origin: APP }, redirect: 'manual' });
      assert.equal(get.headers.get('access-control-allow-origin'), null, path);
    }
    const none = await fetch(`${closed.url}/v1/info`, { headers: { origin: APP } });
    assert.equal(none.headers.get('access-control-allow-origin'), null);
  });

  it('in Chromium: a page of the listed origin registers a step across origins; a stranger page cannot read', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // The pages are served by page.route (no address of their own): Chromium's Local Network
      // Access checks would count them as public and block every request to 127.0.0.1.
      args: ['--no-sandbox', '--disable-gpu', '--disable-features=LocalNetworkAccessChecks'],
    });
    const page = await (await browser.newContext()).newPage();
    for (const origin of [APP, STRANGER])
      await page.route(`${origin}/`, (route) =>
        route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>app</title>' }),
      );
    const call = (origin: string) =>
      page.goto(`${origin}/`).then(() =>
        page.evaluate(async (url) => {
          try {
            const res = await fetch(`${url}/v1/register/begin`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ id: 'web@example.org' }),
            });
            return { status: res.status, body: (await res.json()) as Record<string, unknown> };
          } catch (err) {
            return { failed: String(err) };
          }
        }, server.url),
      );
    const allowed = (await call(APP)) as { status: number; body: { nonce?: string } };
    assert.equal(allowed.status, 200, JSON.stringify(allowed));
    assert.equal(typeof allowed.body.nonce, 'string', 'the page read the answer');
    const refused = (await call(STRANGER)) as { failed?: string };
    assert.match(refused.failed ?? '', /TypeError|Failed to fetch/, JSON.stringify(refused));
  });
});
