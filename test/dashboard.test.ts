/**
 * The admin dashboard in headless Chromium (issue 5): an admin logs in through a one-time link from
 * the CLI, sees a test client's session and terminates it (the client sees the close), revokes a key
 * (the client's next login fails), verifies a transaction's proof in the page (and sees a tampered
 * one refused), sees a hijack alert appear live, and is told how many older alerts a small alert
 * memory dropped. Polish: the chart's caption keeps its proportions at any width, the last-hour chart
 * comes from the audit trail (a restart does not reset it), the page has an icon and no console
 * errors, and every view says it is loading until its data arrives (or says why it failed).
 * Screenshots go to test-output/dashboard/.
 * Real server on 127.0.0.1, real Chromium (Debian's /usr/bin/chromium), real keys.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Browser, chromium, type Page } from 'playwright-core';
import { answerChallenge } from '../src/client/handshake.js';
import type { ClientHome } from '../src/client/home.js';
import { openClientKey, pinnedServerKey } from '../src/client/identity.js';
import { login } from '../src/client/login.js';
import { connect } from '../src/client/session.js';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import { generateEphemeral } from '../src/protocol/x25519.js';
import { isAdmin } from '../src/server/admin-actions.js';
import { type RunningServer, startServer } from '../src/server/app.js';
import { PASSPHRASE } from './helpers.js';
import { rawSocket } from './support/raw-socket.js';
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

/** The figures under the login chart: successful and failed logins in the last hour. */
async function chartCounts(p: Page): Promise<{ ok: number; failed: number }> {
  // Wherever the page writes them (the test does not depend on how the chart is built).
  await p.waitForFunction(() => /\d+ ok · \d+ failed/.test(document.body.textContent ?? ''));
  const m = /(\d+) ok · (\d+) failed/.exec((await p.locator('#view-overview').textContent()) ?? '');
  assert.ok(m, 'the chart shows its totals');
  return { ok: Number(m[1]), failed: Number(m[2]) };
}

/** A login whose answer to the challenge is wrong (a forged RS): the server records `login_failed`. */
async function failedLogin(srv: RunningServer, home: ClientHome): Promise<void> {
  const { identity, key } = await openClientKey(home, CLIENT_PASSPHRASE);
  const pinned = home.readServer();
  const sock = await rawSocket(srv.wsUrl);
  const ephemeral = generateEphemeral();
  const hello = { type: 'hello' as const, v: 1 as const, id: identity.id, ephemeral: ephemeral.publicKey };
  sock.send(hello);
  const answer = await answerChallenge({
    challenge: await sock.next(),
    hello,
    ephemeral,
    key,
    serverKey: await pinnedServerKey(pinned.server.publicKey),
    serverFingerprint: pinned.server.fingerprint,
    chain: pinned.chain,
    now: Date.now(),
  });
  sock.send({ ...answer.response, rs: Buffer.alloc(32, 7).toString('base64url') });
  assert.equal((await sock.next()).code, 'KL_AUTH_FAILED');
  await sock.closed;
}

/** Audit events of `event` in the chart's window (the last 60 minutes, from the start of a minute). */
async function auditCount(srv: RunningServer, event: string): Promise<number> {
  const since = Math.floor(Date.now() / 60_000) * 60_000 - 59 * 60_000;
  return (await readAuditTrail(srv.ledger, { event, since, limit: 10_000 })).length;
}

describe('dashboard polish in Chromium', () => {
  /** A new browser context logged in to `srv` as the admin of `home`, on the overview. */
  async function adminPage(home: string, width = 1366): Promise<Page> {
    const p = await (await browser.newContext({ viewport: { width, height: 900 } })).newPage();
    await p.goto(await dashboardLink(home));
    await p.waitForSelector('body[data-ready="true"]');
    return p;
  }

  it("draws the chart's caption with the glyphs' own proportions, at any width", async () => {
    for (const width of [1366, 480]) {
      const p = await adminPage(adminHome.dir, width);
      await chartCounts(p);
      // (No named functions inside: the test's compiler would wrap them in a helper the page lacks.)
      const m = await p.evaluate(() => {
        const re = /\d+ ok · \d+ failed/;
        // The innermost element that shows the caption, wherever the page draws it (HTML or SVG).
        const shown = [...document.querySelectorAll('#view-overview *')].find(
          (e) => re.test(e.textContent ?? '') && ![...e.children].some((c) => re.test(c.textContent ?? '')),
        )!;
        const css = getComputedStyle(shown);
        // The same text, same font, in a plain unscaled element.
        const probe = document.createElement('span');
        probe.textContent = shown.textContent;
        Object.assign(probe.style, {
          position: 'absolute',
          whiteSpace: 'nowrap',
          fontFamily: css.fontFamily,
          fontSize: css.fontSize,
          fontWeight: css.fontWeight,
        });
        document.body.append(probe);
        // The glyph boxes: an SVG element's own box, else the box of the text inside the element.
        const [a, b] = [shown, probe].map((node) => {
          if (node instanceof SVGElement) return node.getBoundingClientRect();
          const r = document.createRange();
          r.selectNodeContents(node);
          return r.getBoundingClientRect();
        });
        probe.remove();
        const stretched = [...document.querySelectorAll('#ov-chart svg')].filter(
          (svg) => svg.getAttribute('preserveAspectRatio') === 'none' && svg.querySelector('text'),
        ).length;
        return { tag: shown.tagName, w: a!.width / b!.width, h: a!.height / b!.height, stretched };
      });
      assert.ok(Math.abs(m.w - 1) < 0.05, `caption (${m.tag}) width ×${m.w.toFixed(2)} at ${width}px`);
      assert.ok(Math.abs(m.h - 1) < 0.05, `caption (${m.tag}) height ×${m.h.toFixed(2)} at ${width}px`);
      assert.equal(m.stretched, 0, 'no text inside a non-uniformly scaled SVG');
      await p.screenshot({ path: `${SHOTS}08-chart-${width}.png`, fullPage: true });
      await p.context().close();
    }
  });

  it('logins made before a restart still show in the last-hour chart after it (from the audit trail)', async () => {
    const srv = await testServer({ admins: ['chart@example.org'] });
    let again: RunningServer | undefined;
    try {
      const ops = await registeredClient(srv, 'chart@example.org');
      await until(() => isAdmin(srv.ledger, 'chart@example.org'), 'the admin role');
      const walt = await registeredClient(srv, 'walt@example.org');
      for (let i = 0; i < 3; i++) (await connect({ home: walt, passphrase: CLIENT_PASSPHRASE })).close();
      await failedLogin(srv, walt);
      await until(
        async () =>
          (await auditCount(srv, 'session_start')) >= 3 && (await auditCount(srv, 'login_failed')) === 1,
        'the login events on the ledger',
      );
      const p = await adminPage(ops.dir);
      const before = await chartCounts(p);
      assert.ok(before.ok >= 3, `${before.ok} successful logins before the restart`);
      assert.equal(before.failed, 1);

      // The same data directory, the same port (the admin's client keeps the server's address).
      await srv.close();
      again = await startServer({
        dataDir: srv.dataDir,
        passphrase: PASSPHRASE,
        host: '127.0.0.1',
        port: Number(new URL(srv.url).port),
        evm: { pollMs: 20 },
      });
      await p.goto(await dashboardLink(ops.dir));
      await p.waitForSelector('body[data-ready="true"]');
      const after = await chartCounts(p);
      assert.ok(after.ok >= before.ok, `after the restart ${after.ok} ok, before ${before.ok}`);
      assert.equal(after.failed, 1, 'the failed login before the restart is still counted');
      await p.screenshot({ path: `${SHOTS}09-chart-after-restart.png`, fullPage: true });

      // Later reads add only what is new: the page says exactly what the audit trail holds.
      for (let i = 0; i < 2; i++) (await connect({ home: walt, passphrase: CLIENT_PASSPHRASE })).close();
      await failedLogin(again, walt);
      const expected = after.ok + 2;
      await until(async () => (await auditCount(again!, 'session_start')) >= expected, 'the new logins');
      await until(async () => (await auditCount(again!, 'login_failed')) === 2, 'the new failed login');
      await p.reload();
      await p.waitForSelector('body[data-ready="true"]');
      assert.deepEqual(await chartCounts(p), {
        ok: await auditCount(again, 'session_start'),
        failed: 2,
      });
      await p.context().close();
    } finally {
      await (again ?? srv).close();
    }
  });

  it('has an icon: /favicon.ico answers with the one the page names inline, and no console error', async () => {
    const res = await fetch(`${server.url}/favicon.ico`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/svg+xml');
    const icon = await res.text();
    const p = await (await browser.newContext()).newPage();
    const problems: string[] = [];
    p.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    p.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    p.on('requestfailed', (r) => problems.push(`failed ${r.url()}`));
    await p.goto(await dashboardLink(adminHome.dir));
    await p.waitForSelector('body[data-ready="true"]');
    const href = await p.locator('link[rel="icon"]').getAttribute('href');
    assert.ok(href?.startsWith('data:image/svg+xml,'), href ?? 'no icon link');
    assert.equal(decodeURIComponent(href!.slice('data:image/svg+xml,'.length)), icon.trim());
    for (const view of ['identities', 'sessions', 'ledger', 'audit', 'alerts', 'overview']) {
      await p.goto(`${server.url}/admin/#${view}`);
      await p.waitForSelector(`#view-${view}:not([hidden]):not([aria-busy])`);
    }
    assert.deepEqual(problems, []);
    p.removeAllListeners();
    assert.equal((await p.goto(`${server.url}/favicon.ico`))?.status(), 200);
    await p.context().close();
  });

  it('each view says "Loading…" (aria-busy) until its data arrives, and why when it fails', async () => {
    const p = await (await browser.newContext()).newPage();
    const link = await dashboardLink(adminHome.dir);
    // The page itself, before the server's first answer.
    let releaseMe!: () => void;
    const meHeld = new Promise<void>((r) => {
      releaseMe = r;
    });
    await p.route('**/admin/api/me', async (route) => {
      await meHeld;
      await route.continue();
    });
    let releaseOverview!: () => void;
    const overviewHeld = new Promise<void>((r) => {
      releaseOverview = r;
    });
    await p.route('**/admin/api/overview', async (route) => {
      await overviewHeld;
      await route.continue();
    });
    await p.goto(link, { waitUntil: 'domcontentloaded' });
    const pageLoading = p.getByRole('status').filter({ hasText: 'Loading…' });
    await pageLoading.waitFor();
    assert.equal(await p.locator('main').getAttribute('aria-busy'), 'true');
    releaseMe();
    // The overview, before its data: its own "Loading…", the section busy, the figures not shown.
    const view = p.locator('#view-overview');
    await p.locator('#view-overview[aria-busy="true"] .loading').waitFor();
    assert.equal(await view.getByRole('status').textContent(), 'Loading…');
    assert.equal(await p.locator('#ov-height').textContent(), '–');
    assert.equal(await p.locator('#page-loading').isVisible(), false);
    await p.screenshot({ path: `${SHOTS}10-loading.png`, fullPage: true });
    releaseOverview();
    await p.waitForSelector('#view-overview:not([aria-busy])');
    assert.match((await p.locator('#ov-height').textContent()) ?? '', /^\d+$/);
    assert.equal(await view.locator('.loading').isVisible(), false);
    await p.unroute('**/admin/api/overview');

    // A view whose request fails: an alert that says why, and Retry loads it once the server answers.
    await p.route('**/admin/api/sessions', (route) =>
      route.fulfill({
        status: 503,
        json: { error: { code: 'KL_LEDGER_UNAVAILABLE', message: 'the ledger cannot be read right now' } },
      }),
    );
    await p.goto(`${server.url}/admin/#sessions`);
    const failure = p.locator('#view-sessions').getByRole('alert');
    await failure.waitFor();
    assert.match(
      (await failure.textContent()) ?? '',
      /Could not load this page: the ledger cannot be read right now \(KL_LEDGER_UNAVAILABLE\)/,
    );
    assert.equal(await p.locator('#view-sessions').getAttribute('aria-busy'), null);
    await p.screenshot({ path: `${SHOTS}11-load-failed.png`, fullPage: true });
    await p.unroute('**/admin/api/sessions');
    await failure.getByRole('button', { name: 'Retry' }).click();
    // Retry replaces the alert with "Loading…" at once: the rows are there once the view is not busy.
    await p.waitForSelector('#view-sessions:not([aria-busy]) .load-status[hidden]', { state: 'attached' });
    assert.equal(await failure.count(), 0);
    assert.ok((await p.locator('#session-rows tr').count()) >= 1);

    // The page cannot start at all (the server answers 500 to the first call): said, not blank.
    await p.route('**/admin/api/me', (route) =>
      route.fulfill({ status: 500, json: { error: { code: 'KL_INTERNAL', message: 'internal error' } } }),
    );
    await p.reload();
    const pageError = p.locator('#page-error');
    await pageError.waitFor();
    assert.match((await pageError.textContent()) ?? '', /Could not load the dashboard: internal error/);
    assert.equal(await p.locator('#page-loading').isVisible(), false);
    await p.context().close();
  });
});
