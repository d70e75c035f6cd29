/**
 * The schema checks in a real browser (Chromium, as the dashboard test uses) on a page whose
 * Content-Security-Policy forbids run-time code generation (script-src 'self', as the dashboard's):
 * Ajv cannot compile there, so the same schemas are checked by TypeBox's interpreter, with the same
 * verdicts and messages as in Node. The page's code is src/protocol/schemas bundled for the browser.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { check } from '../src/protocol/schemas/check.js';
import { Hello } from '../src/protocol/schemas/login.js';
import { ServerChannelMessage } from '../src/protocol/schemas/session.js';

const CHROMIUM = process.env.KEYLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const vectors = JSON.parse(
  await import('node:fs').then((fs) =>
    fs.readFileSync(new URL('./vectors/keyledger-v1.json', import.meta.url), 'utf8'),
  ),
);
const hello = vectors.handshake.hello;
/** The cases the page checks, and how Node checks them here. */
const CASES: Array<['Hello' | 'ServerChannelMessage', unknown]> = [
  ['Hello', hello],
  ['Hello', { ...hello, admin: true }],
  ['Hello', { ...hello, id: 'x'.repeat(300) }],
  ['Hello', { ...hello, v: 2 }],
  ['Hello', null],
  ['ServerChannelMessage', { t: 'reply', re: 1, body: 'x' }],
  ['ServerChannelMessage', { t: 'reply', re: '1' }],
  ['ServerChannelMessage', { t: 'alert', code: 'K' }],
];
const schemas = { Hello, ServerChannelMessage };

function verdict(name: keyof typeof schemas, value: unknown): string {
  try {
    check(schemas[name], value, 'KL_PROTOCOL', 'msg');
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  }
}

const PAGE_SCRIPT = `
import { check, VALIDATION_ENGINE } from './src/protocol/schemas/check.ts';
import { Hello } from './src/protocol/schemas/login.ts';
import { ServerChannelMessage } from './src/protocol/schemas/session.ts';
const schemas = { Hello, ServerChannelMessage };
let canEval = true;
try { new Function('return 1')(); } catch { canEval = false; }
const cases = JSON.parse(document.getElementById('cases').textContent);
const verdicts = cases.map(([name, value]) => {
  try { check(schemas[name], value, 'KL_PROTOCOL', 'msg'); return 'ok'; } catch (err) { return String(err.message); }
});
document.body.dataset.result = JSON.stringify({ engine: VALIDATION_ENGINE, canEval, verdicts });
`;

describe('schemas in a browser under a strict Content-Security-Policy', () => {
  let browser: Browser;
  let server: Server;
  let url: string;
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    const bundle = await build({
      stdin: { contents: PAGE_SCRIPT, resolveDir: new URL('..', import.meta.url).pathname, loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.text;
    const html = `<!doctype html><html><body><script type="application/json" id="cases">${JSON.stringify(
      CASES,
    ).replace(/</g, '\\u003c')}</script><script type="module" src="/app.js"></script></body></html>`;
    server = createServer((req, res) => {
      res.setHeader('content-security-policy', "default-src 'none'; script-src 'self'");
      if (req.url === '/app.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(js);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('the page cannot eval; its checks agree with Node, message for message', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const log: string[] = [];
    page.on('console', (m) => log.push(m.text()));
    page.on('requestfailed', (r) => log.push(`request failed: ${r.url()}`));
    await page.goto(url);
    await page.waitForSelector('body[data-result]', { state: 'attached', timeout: 20_000 }).catch(() => {
      throw new Error(`the page did not finish: ${[...errors, ...log].join('; ')}`);
    });
    const result = JSON.parse((await page.getAttribute('body', 'data-result'))!) as {
      engine: string;
      canEval: boolean;
      verdicts: string[];
    };
    assert.equal(result.canEval, false, 'the policy forbids eval');
    assert.equal(result.engine, 'typebox');
    assert.deepEqual(
      result.verdicts,
      CASES.map(([name, value]) => verdict(name, value)),
    );
    assert.equal(result.verdicts[0], 'ok');
    assert.equal(result.verdicts[1], 'msg.admin is not an allowed field');
    assert.deepEqual(errors, []);
  });
});
