/**
 * `keyledger/verify` in a browser: src/verify/index.ts bundled by esbuild for the browser with the
 * package.json `browser` map applied (scripts/browser-map.mjs: the web crypto backend in place of
 * node:crypto) holds no Node built-in and no `Buffer`, and in headless Chromium it verifies a real key
 * record proof, a real absence proof and a real transaction receipt fetched from a real server on
 * 127.0.0.1 — and refuses tampered ones, exactly as the same code does in Node.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { build, type Metafile } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { browserMapPlugin } from '../scripts/browser-map.mjs';
import type { Genesis } from '../src/ledger/genesis.js';
import type { KeyRecordProof, TransactionReceipt } from '../src/ledger/proofs.js';
import { verifyKeyRecordProof, verifyTransactionReceipt } from '../src/verify/index.js';
import { registeredClient, testServer } from './support/server.js';

const CHROMIUM = process.env.KEYLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const ENTRY = new URL('../src/verify/index.ts', import.meta.url).pathname;

/** Bundles keyledger/verify for the browser, as an IIFE exposing its exports as `KeyledgerVerify`. */
async function bundle(withBrowserMap: boolean): Promise<{ code: string; inputs: string[] }> {
  const out = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    metafile: true,
    format: 'iife',
    globalName: 'KeyledgerVerify',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    plugins: withBrowserMap ? [browserMapPlugin()] : [],
    // Without the map node:crypto cannot be bundled for a browser: keep it as an import to see it.
    external: withBrowserMap ? [] : ['node:*'],
    logLevel: 'silent',
  });
  return {
    code: out.outputFiles[0]!.text,
    inputs: Object.keys((out.metafile as Metafile).inputs),
  };
}

const NODE_IMPORT = /(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']node:/;
const BUFFER = /\bBuffer\b/;

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
let browser: Browser;
let page: Page;
let genesis: Genesis;
let proof: KeyRecordProof;
let absent: KeyRecordProof;
let receipt: TransactionReceipt;
let code: string;

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));
const get = async <T>(path: string): Promise<T> => {
  const res = await fetch(new URL(path, server.url));
  assert.equal(res.status, 200, path);
  return (await res.json()) as T;
};

/** Runs the bundled verifiers in the page on JSON data; returns what they return. */
function inPage(fn: 'verifyKeyRecordProof' | 'verifyTransactionReceipt', arg: unknown): Promise<unknown> {
  return page.evaluate(
    ([name, a]) =>
      (globalThis as unknown as Record<string, Record<string, (x: unknown) => unknown>>).KeyledgerVerify![
        name
      ]!(a),
    [fn, arg] as const,
  );
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  server = await testServer();
  await registeredClient(server, 'alice@example.org');
  genesis = await get<Genesis>('/v1/ledger/genesis');
  proof = await get<KeyRecordProof>('/v1/ledger/keys/alice@example.org');
  absent = await get<KeyRecordProof>('/v1/ledger/keys/nobody@example.org');
  const txid = (proof.record as unknown as { registered: { txid: string } }).registered.txid;
  receipt = await get<TransactionReceipt>(`/v1/ledger/tx/${txid}`);
  ({ code } = await bundle(true));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  page = await (await browser.newContext()).newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('about:blank');
  await page.addScriptTag({ content: code });
  assert.deepEqual(errors, []);
});
after(async () => {
  await browser?.close();
  await server?.close();
});

describe('keyledger/verify in a browser', () => {
  it('the browser bundle has no Node built-in and no Buffer; the web backend replaces the Node one', async () => {
    const { inputs } = await bundle(true);
    assert.doesNotMatch(code, NODE_IMPORT);
    assert.doesNotMatch(code, BUFFER);
    assert.ok(inputs.includes('src/protocol/crypto/web.ts'), 'the web backend is bundled');
    assert.ok(!inputs.includes('src/protocol/crypto/node.ts'), 'the Node backend is not');
    // The control: without the map the bundle imports node:crypto (so the checks above can fail).
    const plain = await bundle(false);
    assert.match(plain.code, NODE_IMPORT);
    assert.ok(plain.inputs.includes('src/protocol/crypto/node.ts'));
  });

  it('package.json carries the browser map; esbuild applies it to the built package (dist/)', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    assert.equal(pkg.browser['./dist/protocol/crypto/node.js'], './dist/protocol/crypto/web.js');
    // What a browser app bundling `keyledger/verify` gets: esbuild reads the map itself, no plugin.
    const entry = new URL('../dist/verify/index.js', import.meta.url).pathname;
    assert.ok(
      existsSync(new URL('../dist/protocol/crypto/web.js', import.meta.url)),
      'dist/ is not built: npx tsc -p tsconfig.build.json',
    );
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
    });
    assert.doesNotMatch(out.outputFiles[0]!.text, NODE_IMPORT);
    assert.doesNotMatch(out.outputFiles[0]!.text, BUFFER);
    const inputs = Object.keys(out.metafile.inputs);
    assert.ok(inputs.includes('dist/protocol/crypto/web.js'));
    assert.ok(!inputs.includes('dist/protocol/crypto/node.js'));
  });

  it('verifies a real key record proof, absence proof and receipt in Chromium, as Node does', async () => {
    const want = verifyKeyRecordProof({ genesis, proof });
    assert.equal(want.verified, true);
    assert.deepEqual(await inPage('verifyKeyRecordProof', { genesis, proof }), want);
    const none = verifyKeyRecordProof({ genesis, proof: absent });
    assert.ok(none.verified && none.record === null);
    assert.deepEqual(await inPage('verifyKeyRecordProof', { genesis, proof: absent }), none);
    const got = verifyTransactionReceipt({ genesis, receipt });
    assert.equal(got.verified, true);
    assert.deepEqual(await inPage('verifyTransactionReceipt', { genesis, receipt }), got);
  });

  it('refuses tampered proofs and receipts in Chromium (verified: false), as Node does', async () => {
    const cases: Array<['verifyKeyRecordProof' | 'verifyTransactionReceipt', unknown]> = [];
    // A key record with another public key name, a record claimed absent, a flipped sibling hash.
    const renamed = clone(proof);
    (renamed.record as { name: string }).name = 'Mallory';
    cases.push(['verifyKeyRecordProof', { genesis, proof: renamed }]);
    cases.push(['verifyKeyRecordProof', { genesis, proof: { ...clone(proof), record: null } }]);
    if (proof.proof.siblings.length) {
      const sib = clone(proof);
      const s = sib.proof.siblings[0]!;
      sib.proof.siblings[0] = (s[0] === '0' ? '1' : '0') + s.slice(1);
      cases.push(['verifyKeyRecordProof', { genesis, proof: sib }]);
    }
    // A checkpoint whose validator signature is altered (one base64url character), or another height.
    const badSig = clone(proof);
    const sig = badSig.checkpoint.signatures[0]!;
    sig.sig = (sig.sig[0] === 'A' ? 'B' : 'A') + sig.sig.slice(1);
    cases.push(['verifyKeyRecordProof', { genesis, proof: badSig }]);
    const badHeight = clone(proof);
    badHeight.checkpoint.header.height += 1;
    cases.push(['verifyKeyRecordProof', { genesis, proof: badHeight }]);
    // A receipt whose transaction body changed, with another index, or with a wrong block hash.
    const body = clone(receipt);
    (body.envelope.tx.body as { name: string }).name = 'Mallory';
    cases.push(['verifyTransactionReceipt', { genesis, receipt: body }]);
    cases.push([
      'verifyTransactionReceipt',
      { genesis, receipt: { ...clone(receipt), index: receipt.index + 1 } },
    ]);
    const block = clone(receipt);
    block.block.hash = `${block.block.hash[0] === '0' ? '1' : '0'}${block.block.hash.slice(1)}`;
    cases.push(['verifyTransactionReceipt', { genesis, receipt: block }]);
    // The real receipt against another genesis (another ledger).
    cases.push(['verifyTransactionReceipt', { genesis: { ...clone(genesis), createdAt: 1 }, receipt }]);
    for (const [fn, arg] of cases) {
      const node = (fn === 'verifyKeyRecordProof' ? verifyKeyRecordProof : verifyTransactionReceipt)(
        arg as never,
      );
      assert.equal(node.verified, false, `${fn} in Node refuses ${JSON.stringify(arg).slice(0, 80)}`);
      assert.deepEqual(await inPage(fn, arg), node);
    }
  });
});
