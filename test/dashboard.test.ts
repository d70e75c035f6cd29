/**
 * The admin dashboard in headless Chromium (issue 5): an admin logs in through a one-time link from
 * the CLI, sees a test client's session and terminates it (the client sees the close), revokes a key
 * (the client's next login fails), verifies a transaction's proof in the page (and sees a tampered
 * one refused), sees a hijack alert appear live, and is told how many older alerts a small alert
 * memory dropped. Screenshots go to test-output/dashboard/.
 * Real server on 127.0.0.1, real Chromium (Debian's /usr/bin/chromium), real keys.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Browser, chromium, type Page } from 'playwright-core';
import { login } from '../src/client/login.js';
import { connect } from '../src/client/session.js';
import { isAdmin } from '../src/server/admin-actions.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

const CHROMIUM = process.env.KEYLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = new URL('../test-output/dashboard/', import.meta.url).pathname;
const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
let browser: Browser;
let page: Page;
let adminHome: Awaited<ReturnType<typeof registeredClient>>;

async function until(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `keyledger admin dashboard --json` for the admin's home: the one-time link. (Asynchronously: the
 * server runs in this process.)
 */
async function dashboardLink(home: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [bin, 'admin', 'dashboard', '--home', home, '--json', '--no-open'],
    { env: { ...process.env, KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE }, encoding: 'utf8' },
  );
  return (JSON.parse(stdout) as { url: string }).url;
}

const shot = (name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  mkdirSync(SHOTS, { recursive: true });
  server = await testServer({ admins: ['root@example.org'], hijackPolicy: { maxAnomalies: 3 } });
  adminHome = await registeredClient(server, 'root@example.org');
  // Named with --admin at start: the role is granted once the identity is registered.
  await until(() => isAdmin(server.ledger, 'root@example.org'), 'the admin role');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

describe('admin dashboard in Chromium', () => {
  it('logs in through a one-time link from the CLI; the link then no longer works', async () => {
    const link = await dashboardLink(adminHome.dir);
    assert.match(link, new RegExp(`^${server.url}/admin/login\\?token=[A-Za-z0-9_-]{43}$`));
    await page.goto(link);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(new URL(page.url()).pathname, '/admin/');
    assert.match((await page.textContent('#whoami')) ?? '', /logged in as root@example.org/);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'kl_admin');
    assert.ok(cookie?.httpOnly, 'HttpOnly cookie');
    assert.equal(cookie?.sameSite, 'Strict');
    await shot('01-overview');
    // The same link a second time: refused.
    const again = await fetch(link, { redirect: 'manual' });
    assert.equal(again.status, 401);
    assert.equal(((await again.json()) as { error: { code: string } }).error.code, 'KL_ADMIN_LINK_INVALID');
  });

  it("shows a test client's live session and terminates it; the client sees the close", async () => {
    const home = await registeredClient(server, 'tina@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const closed = new Promise<{ alert: { code: string } | null }>((r) => s.once('close', r));
    await page.goto(`${server.url}/admin/#sessions`);
    const row = page.locator(`tr[data-session="${s.sessionId}"]`);
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /tina@example\.org.*127\.0\.0\.1/);
    await shot('02-sessions');
    await row.getByRole('button', { name: /Terminate the session of tina@example.org/ }).click();
    await page.getByRole('button', { name: 'Terminate', exact: true }).click();
    assert.equal((await closed).alert?.code, 'KL_SESSION_REVOKED');
    await row.waitFor({ state: 'detached' });
    assert.equal(server.sessions.get(s.sessionId), undefined);
  });

  it("revokes a key after confirmation; the client's next login fails", async () => {
    const home = await registeredClient(server, 'ursula@example.org');
    (await connect({ home, passphrase: CLIENT_PASSPHRASE })).close();
    await page.goto(`${server.url}/admin/#identities`);
    await page.getByLabel('Search identities').fill('ursula');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('button', { name: 'ursula@example.org' }).click();
    await page.getByText('State proof verified in this browser').waitFor();
    await shot('03-identity');
    await page.getByRole('button', { name: 'Revoke the key of ursula@example.org' }).click();
    // Cancel first: nothing happens.
    await page.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await server.ledger.getKeyRecord('ursula@example.org')).record?.status, 'active');
    await page.getByRole('button', { name: 'Revoke the key of ursula@example.org' }).click();
    await page.getByRole('button', { name: 'Revoke key', exact: true }).click();
    await page.locator('#id-detail .status-revoked').waitFor();
    const record = (await server.ledger.getKeyRecord('ursula@example.org')).record!;
    assert.equal(record.status, 'revoked');
    assert.deepEqual([record.revocation?.by, record.revocation?.admin], ['admin', 'root@example.org']);
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KL_KEY_REVOKED');
      return true;
    });
  });

  it("verifies a transaction's inclusion proof in the page; a tampered proof is refused there", async () => {
    await page.goto(`${server.url}/admin/#ledger`);
    const chainShown = await page.locator('#ledger-chain').textContent();
    assert.equal(chainShown, server.ledger.chainId, 'the page computes the chain id from the genesis itself');
    const first = page.locator('#block-rows button[data-txid]').first();
    await first.click();
    await page.getByRole('button', { name: 'Verify the inclusion proof in this browser' }).click();
    assert.match((await page.locator('#verify-result').textContent()) ?? '', /^Verified in this browser/);
    await shot('04-proof-verified');
    // The server (or a proxy) lies about the transaction: the browser's own check catches it.
    const txid = await first.getAttribute('data-txid');
    await page.route(`**/admin/api/tx/${txid}`, async (route) => {
      const res = await route.fetch();
      const receipt = (await res.json()) as { envelope: { tx: { time: number } } };
      receipt.envelope.tx.time += 1;
      await route.fulfill({ response: res, json: receipt });
    });
    await first.click();
    await page.getByRole('button', { name: 'Verify the inclusion proof in this browser' }).click();
    assert.match((await page.locator('#verify-result').textContent()) ?? '', /^NOT verified/);
    await page.unroute(`**/admin/api/tx/${txid}`);
  });

  it('a hijack alarm appears live on the alerts page', async () => {
    await page.goto(`${server.url}/admin/#alerts`);
    await page.waitForSelector('body[data-ready="true"]');
    const home = await registeredClient(server, 'victor@example.org');
    const l = await login({ home, passphrase: CLIENT_PASSPHRASE });
    // Three forged frames on the session: the server ends it as hijacked.
    for (let seq = 1; seq <= 3; seq++)
      l.socket.send(JSON.stringify({ type: 'frame', sid: l.sessionId, epoch: 0, seq, ct: 'A'.repeat(40) }));
    const row = page.locator('#alert-rows tr', { hasText: 'victor@example.org' });
    await row.waitFor({ timeout: 10_000 });
    assert.match((await row.textContent()) ?? '', /hijack/);
    await shot('05-alert-live');
    await row.getByRole('button', { name: /Acknowledge/ }).click();
    await page.locator('#alert-rows tr', { hasText: 'acknowledged' }).first().waitFor();
  });

  it('the audit page filters by identity and event and exports CSV', async () => {
    await page.goto(`${server.url}/admin/#audit`);
    await page.getByLabel('Identity', { exact: true }).fill('tina@example.org');
    await page.getByLabel('Event', { exact: true }).selectOption('session_start');
    await page.getByRole('button', { name: 'Filter' }).click();
    // Wait for the filtered table (the unfiltered one, shown first, has session_start rows too).
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('#audit-rows tr td:nth-child(2)')];
      return cells.length > 0 && cells.every((td) => td.textContent === 'session_start');
    });
    const events = await page.locator('#audit-rows tr td:nth-child(2)').allTextContents();
    assert.ok(events.length >= 1 && events.every((e) => e === 'session_start'), events.join(','));
    await shot('06-audit');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByText('Export CSV').click(),
    ]);
    const csv = await (await import('node:fs/promises')).readFile((await download.path())!, 'utf8');
    assert.match(csv.split('\r\n')[0]!, /^at,event,subject,height,txid,detail$/);
    assert.ok(csv.includes('"session_start"'));
  });

  it('says how many older alerts were dropped from memory, on the overview and the alerts page', async () => {
    // A second server keeping 2 alerts per kind, and 5 rate-limit trips from 5 addresses (each of
    // their third requests; the admin's own registration takes the two 127.0.0.1 has).
    const small = await testServer({
      admins: ['ops@example.org'],
      maxAlerts: 2,
      rateLimits: { registerPerIp: { burst: 2, perSecond: 1 / 600 } },
    });
    try {
      const ops = await registeredClient(small, 'ops@example.org');
      await until(() => isAdmin(small.ledger, 'ops@example.org'), 'the admin role');
      for (let i = 2; i <= 6; i++)
        for (let n = 0; n < 3; n++)
          await new Promise<void>((resolve, reject) => {
            const req = request(
              `${small.url}/v1/register/begin`,
              {
                method: 'POST',
                localAddress: `127.0.0.${i}`,
                headers: { 'content-type': 'application/json' },
              },
              (res) => res.resume().on('end', () => resolve()),
            );
            req.on('error', reject);
            req.end(JSON.stringify({ id: 'x@example.org' }));
          });
      const other = await (await browser.newContext()).newPage();
      await other.goto(await dashboardLink(ops.dir));
      await other.waitForSelector('body[data-ready="true"]');
      const note = other.locator('#ov-alerts-dropped');
      await note.waitFor();
      assert.match(
        (await note.textContent()) ?? '',
        /^3 older alert\(s\) dropped from memory \(rate_limit 3\)/,
      );
      await other.goto(`${small.url}/admin/#alerts`);
      const status = other.getByRole('status').filter({ hasText: 'dropped' });
      await status.waitFor();
      assert.match((await status.textContent()) ?? '', /3 older alert\(s\) dropped/);
      assert.equal(await other.locator('#alert-rows tr').count(), 2);
      await other.screenshot({ path: `${SHOTS}07-alerts-dropped.png`, fullPage: true });
      await other.context().close();
    } finally {
      await small.close();
    }
  });

  it('logging out ends the dashboard session', async () => {
    await page.goto(`${server.url}/admin/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('keyledger admin dashboard', { exact: true }).waitFor();
    await page.reload();
    await page.locator('#login-needed').waitFor();
  });
});
