/**
 * The client SDK in a browser, for real: a page bundled with esbuild (test/browser/page.ts, the
 * package.json `browser` map applied, nothing from Node inside) runs in headless Chromium at the
 * origin of a real server on 127.0.0.1. In the page it creates a key with OpenPGP.js, registers with
 * an invitation and keeps the identity in IndexedDB; after a new page load it reads the key back
 * with the passphrase, logs in, opens a session, renews it, sends a signed message, resumes, and
 * verifies the receipt with the verify code, and rotates the key. A wrong passphrase fails clearly;
 * a tampered receipt and another message do not verify; IndexedDB holds keys only encrypted.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { packageBrowserMap } from '../scripts/browser-map.mjs';
import type { RunningServer } from '../src/server/app.js';
import { bundlePage } from './browser/bundle.js';
import { invite, testServer } from './support/server.js';

const CHROMIUM = process.env.KEYLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const ID = 'browser@example.org';
const PASSPHRASE = 'a browser passphrase';
const MESSAGE = 'signed in a browser: pay 10 to bob';

let server: RunningServer;
let browser: Browser;
let page: Page;
let bundle: { code: string; inputs: string[] };

type Outcome<T> = { ok: T } | { error: { code: string; message: string } };
function ok<T>(o: Outcome<T>): T {
  if ('error' in o) assert.fail(`the page failed: ${o.error.code}: ${o.error.message}`);
  return o.ok;
}

/** Calls one step of the page (window.klTest) and returns what it answered. */
function step<T>(name: string, arg?: unknown): Promise<Outcome<T>> {
  return page.evaluate(
    ([n, a]) =>
      (globalThis as unknown as Record<string, Record<string, (x: unknown) => Promise<unknown>>>).klTest![n]!(
        a,
      ),
    [name, arg] as const,
  ) as Promise<Outcome<T>>;
}

async function load(): Promise<void> {
  await page.goto(`${server.url}/test-page.html`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  const map = packageBrowserMap();
  for (const swapped of ['client/websocket', 'client/gpg-key', 'client/home', 'protocol/crypto/node'])
    assert.ok(`./dist/${swapped}.js` in map, `package.json "browser" has no entry for ./dist/${swapped}.js`);
  bundle = await bundlePage(join(import.meta.dirname, 'browser/page.ts'));
  server = await testServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // A document fulfilled by page.route has no network address of its own, so Chromium's Local
    // Network Access checks count it as public and block its WebSocket to 127.0.0.1; a page the
    // server itself serves is loopback to loopback and is not blocked.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets',
    ],
  });
  page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  // The page and its script at the server's own origin: the SDK's calls are same-origin, no CORS.
  await page.route(`${server.url}/test-page.html`, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: '<!doctype html><html><body><script type="module" src="/test-page.js"></script></body></html>',
    }),
  );
  await page.route(`${server.url}/test-page.js`, (route) =>
    route.fulfill({ contentType: 'text/javascript', body: bundle.code }),
  );
});
after(async () => {
  await browser?.close();
  await server?.close();
});

describe('the client SDK in Chromium', () => {
  it('is bundled through the package.json browser map, with nothing from Node', () => {
    const fromNode = bundle.inputs.filter((i) => i.startsWith('node:') || i.includes(':node:'));
    assert.deepEqual(fromNode, [], 'no node: module went into the bundle');
    assert.doesNotMatch(bundle.code, /(?:from|import|require)\s*\(?\s*["']node:/, 'no node: import left');
    for (const nodeOnly of [
      'src/client/websocket.ts',
      'src/client/gpg-key.ts',
      'src/client/home.ts',
      'src/protocol/crypto/node.ts',
      'node_modules/ws/',
    ]) {
      assert.ok(!bundle.inputs.some((i) => i.includes(nodeOnly)), `${nodeOnly} is not in the bundle`);
    }
    assert.ok(bundle.inputs.some((i) => i.endsWith('src/client/websocket-browser.ts')));
    assert.ok(bundle.inputs.some((i) => i.endsWith('src/client/browser-store.ts')));
  });

  it('creates a key in the page and registers it with an invitation; IndexedDB keeps it encrypted', async () => {
    await load();
    const reg = ok(
      await step<{ id: string; fingerprint: string; height: number; trust: string }>('registerNew', {
        server: server.url,
        invitation: invite(server, ID),
        id: ID,
        passphrase: PASSPHRASE,
      }),
    );
    assert.equal(reg.id, ID);
    assert.match(reg.fingerprint, /^[0-9a-f]{40}$/);
    // The ledger has the key the page made.
    const onLedger = await (await fetch(`${server.url}/v1/ledger/keys/${encodeURIComponent(ID)}`)).json();
    assert.equal((onLedger as { record: { fingerprint: string } }).record.fingerprint, reg.fingerprint);

    // A new page load: everything comes back from IndexedDB.
    await load();
    const kept = ok(
      await step<{
        id: string;
        fingerprint: string;
        serverUrl: string;
        storeName: string;
        armored: boolean;
        keyDecrypted: boolean;
        keyFingerprint: string;
        refusedClearKey: string;
        stillSameKey: boolean;
      }>('inspectStore'),
    );
    assert.deepEqual(kept, {
      id: ID,
      fingerprint: reg.fingerprint,
      serverUrl: server.url,
      storeName: 'indexeddb:kl-browser-test',
      armored: true,
      keyDecrypted: false,
      keyFingerprint: reg.fingerprint,
      refusedClearKey: 'KL_PASSPHRASE_REQUIRED',
      stillSameKey: true,
    });
  });

  it('refuses a wrong passphrase with a clear error', async () => {
    await load();
    const r = await step('wrongPassphrase');
    assert.ok('error' in r, 'a wrong passphrase does not log in');
    assert.equal(r.error.code, 'KL_PASSPHRASE_WRONG');
    assert.match(r.error.message, /passphrase/);
  });

  it('logs in, opens a session, sends a signed message and verifies its receipt; a tampered one does not verify', async () => {
    await load();
    const r = ok(
      await step<{
        epoch0: number;
        afterResume: number;
        sent: { verified: boolean; txid: string; height: number; hash: string };
        receiptCheck: { verified: boolean; txid?: string; type?: string; reason?: string };
        signer: { verified: boolean; reason?: string; id?: string };
        tampered: { verified: boolean; reason?: string };
        otherBody: { verified: boolean; reason?: string };
        otherMessage: { verified: boolean; reason?: string };
        closed: boolean;
      }>('session', { passphrase: PASSPHRASE, message: MESSAGE }),
    );
    assert.equal(r.epoch0, 0);
    // One renewal (epoch 1), then a resumption (epoch 2) renewed at once (epoch 3).
    assert.equal(r.afterResume, 3);
    assert.equal(r.sent.verified, true);
    assert.equal(r.sent.hash, createHashHex(MESSAGE));
    assert.deepEqual(r.receiptCheck, { verified: true, txid: r.sent.txid, type: 'HashAnchored' });
    assert.equal(r.signer.verified, true, JSON.stringify(r.signer));
    assert.equal(r.tampered.verified, false);
    assert.equal(r.otherBody.verified, false);
    assert.equal(r.otherMessage.verified, false);
    assert.equal(r.closed, true);
    // The server saw it too: the anchored transaction is on its ledger.
    const tx = await (await fetch(`${server.url}/v1/ledger/tx/${r.sent.txid}`)).json();
    assert.equal((tx as { txid: string }).txid, r.sent.txid);
  });

  it('rotates the key through IndexedDB; the old key is kept retired and encrypted; the new key logs in', async () => {
    await load();
    const r = ok(
      await step<{
        before: string;
        oldFingerprint: string;
        after: string;
        pending: unknown;
        retiredFingerprint: string;
        retiredDecrypted: boolean;
        oldPassphrase: string;
        signedAfter: boolean;
      }>('rotate', { passphrase: PASSPHRASE, nextPassphrase: `${PASSPHRASE} 2` }),
    );
    assert.equal(r.oldFingerprint, r.before);
    assert.notEqual(r.after, r.before);
    assert.equal(r.pending, null);
    assert.equal(r.retiredFingerprint, r.before);
    assert.equal(r.retiredDecrypted, false);
    assert.equal(r.oldPassphrase, 'KL_PASSPHRASE_WRONG');
    assert.equal(r.signedAfter, true);
    const onLedger = await (await fetch(`${server.url}/v1/ledger/keys/${encodeURIComponent(ID)}`)).json();
    assert.equal((onLedger as { record: { fingerprint: string } }).record.fingerprint, r.after);
  });
});

function createHashHex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
