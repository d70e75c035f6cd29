/**
 * An identity's devices in the admin dashboard, in headless Chromium (issue 18): an identity with two
 * devices (the second added as a device adds itself: a signed request, approved inside the first
 * device's session) is shown with both, from the key record verified in the page; the sessions list
 * names each session's device key; revoking a device from the page, with its confirmation and a
 * reason, ends that device's session while the other's goes on, and the page then shows one active
 * device and the revoked one; revoking the last one says first that it revokes the identity. Each
 * active device shows its last login from the audit trail, checked in the page against its receipt
 * (an answer changed on the way says NOT verified). What
 * the server says (the identity's display name here) is shown as text. Screenshots go to
 * test-output/dashboard/ (dev-*.png). Real server on 127.0.0.1, real Chromium (Debian's
 * /usr/bin/chromium), real keys.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import type { ClientHome } from '../src/client/home.js';
import { register } from '../src/client/register.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import { activeDevices } from '../src/ledger/devices.js';
import { generateRecoveryKey } from '../src/pgp/recovery-key.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { isAdmin } from '../src/server/admin-actions.js';
import { until } from './helpers.js';
import { approvedDevice } from './support/devices.js';
import { CLIENT_PASSPHRASE, invite, newClient, registeredClient, testServer } from './support/server.js';

const CHROMIUM = process.env.KEYLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = new URL('../test-output/dashboard/', import.meta.url).pathname;
const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const ID = 'dora@example.org';
/** Dora's display name, as she chose it: markup that must stay text in the page. */
const DISPLAY_NAME = 'Dora <img src=x onerror="window.__injected=1">';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
let browser: Browser;
let page: Page;
let laptop: ClientHome;
let phone: ClientHome;
let fromLaptop: ClientSession;
let fromPhone: ClientSession;
let laptopFpr: string;
let phoneFpr: string;

/** `keyledger admin dashboard --json` for the admin's home: the one-time link. */
async function dashboardLink(home: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [bin, 'admin', 'dashboard', '--home', home, '--json', '--no-open'],
    { env: { ...process.env, KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE }, encoding: 'utf8' },
  );
  return (JSON.parse(stdout) as { url: string }).url;
}

const shot = (name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });

/** The devices table of the identity shown, and its row for the key `fingerprint`. */
const devicesTable = () => page.getByRole('table', { name: `Devices of ${ID}` });
const deviceRow = (fingerprint: string): Locator =>
  page.locator(`#id-detail tr[data-fingerprint="${fingerprint}"]`);
const cells = async (row: Locator) => (await row.locator('td').allTextContents()).map((t) => t.trim());

/**
 * Opens the identity's page from the search, in a freshly loaded page (no detail shown before), and
 * waits for its proof to be checked in the page.
 */
async function openIdentity(): Promise<void> {
  await page.goto(`${server.url}/admin/#identities`);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await page.getByLabel('Search identities').fill('dora');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('button', { name: ID, exact: true }).click();
  await page.getByText('State proof verified in this browser').waitFor();
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  mkdirSync(SHOTS, { recursive: true });
  server = await testServer({ admins: ['root@example.org'] });
  const admin = await registeredClient(server, 'root@example.org');
  await until(() => isAdmin(server.ledger, 'root@example.org'));

  // Dora registers her laptop, then adds her phone from it; each device logs in.
  laptop = await newClient(ID, DISPLAY_NAME);
  await register({
    home: laptop,
    server: server.url,
    proof: { method: 'invite', code: invite(server, ID) },
    passphrase: CLIENT_PASSPHRASE,
  });
  phone = await newClient(ID, DISPLAY_NAME);
  fromLaptop = await connect({ home: laptop, passphrase: CLIENT_PASSPHRASE });
  await approvedDevice({ server, session: fromLaptop, home: phone, id: ID, name: 'phone', pinsFrom: laptop });
  fromPhone = await connect({ home: phone, passphrase: CLIENT_PASSPHRASE });
  laptopFpr = (await laptop.readIdentity()).fingerprint;
  phoneFpr = (await phone.readIdentity()).fingerprint;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
  await page.goto(await dashboardLink(admin.dir));
  await page.waitForSelector('body[data-ready="true"]');
});
after(async () => {
  await fromLaptop?.close().catch(() => {});
  await fromPhone?.close().catch(() => {});
  await browser?.close();
  await server?.close();
});

describe('devices in the admin dashboard (Chromium)', () => {
  it("lists an identity's two devices from the record verified in the page: name, fingerprint, when added, by which device", async () => {
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await openIdentity();
    await devicesTable().waitFor();
    assert.equal(
      await page.locator('#id-detail h4', { hasText: 'Devices:' }).textContent(),
      'Devices: 2 active',
    );
    const { record } = await server.ledger.getKeyRecord(ID);
    const [first, second] = activeDevices(record!);
    assert.deepEqual([first?.fingerprint, second?.fingerprint, second?.name], [laptopFpr, phoneFpr, 'phone']);
    const laptopCells = await cells(deviceRow(laptopFpr));
    assert.deepEqual(
      [laptopCells[0], laptopCells[1], laptopCells[4], laptopCells[6], laptopCells[7]],
      ['first key', laptopFpr, 'registered with the identity', 'active', 'Revoke device'],
    );
    assert.match(laptopCells[3]!, new RegExp(`^block ${first!.added.height} \\(`));
    const phoneCells = await cells(deviceRow(phoneFpr));
    assert.deepEqual([phoneCells[0], phoneCells[1], phoneCells[6]], ['phone', phoneFpr, 'active']);
    assert.match(phoneCells[3]!, new RegExp(`^block ${second!.added.height} \\(`));
    assert.equal(phoneCells[4], `device first key (${laptopFpr.slice(0, 16)}…)`);
    // Both sessions, each with its device key named.
    const sessions = page.locator('#id-detail .identity-sessions li');
    assert.equal(await sessions.count(), 2);
    assert.match(
      (await page.locator(`#id-detail li[data-session="${fromPhone.sessionId}"]`).textContent()) ?? '',
      new RegExp(`^device key ${phoneFpr.slice(0, 16)}… phone · 127\\.0\\.0\\.1`),
    );
    assert.match(
      (await page.locator(`#id-detail li[data-session="${fromLaptop.sessionId}"]`).textContent()) ?? '',
      new RegExp(`^device key ${laptopFpr.slice(0, 16)}… first key · `),
    );
    // The display name is text: shown as typed, no element made of it, nothing run.
    assert.equal(await page.locator('#id-detail h3').textContent(), `${ID} — ${DISPLAY_NAME}`);
    assert.equal(await page.locator('#id-detail img, #id-rows img').count(), 0);
    assert.equal(await page.evaluate(() => (window as { __injected?: number }).__injected), undefined);
    assert.equal(await page.locator('#id-detail p.recovery').textContent(), 'Recovery key: none');
    assert.deepEqual(problems, []);
    page.removeAllListeners('pageerror');
    await shot('dev-01-identity-devices');
  });

  it('shows the recovery key the verified record holds, once a device set one', async () => {
    const recovery = await generateRecoveryKey(ID, Date.now());
    await fromLaptop.setRecoveryKey(recovery);
    await openIdentity();
    await devicesTable().waitFor();
    const { record } = await server.ledger.getKeyRecord(ID);
    assert.match(
      (await page.locator('#id-detail p.recovery').textContent()) ?? '',
      new RegExp(`^Recovery key: ${recovery.fingerprint} set .* at block ${record!.recovery!.added.height}$`),
    );
  });

  it("each active device's last login: its newest session start on the audit trail, verified in the page; a changed one is not", async () => {
    // Both sessions' starts are on the ledger (each names its device key).
    const startOf = async (session: ClientSession) => {
      const hash = sha256Hex(session.sessionId).slice(0, 32);
      const rows = await readAuditTrail(server.ledger, {
        subject: sha256Hex(ID),
        event: 'session_start',
        limit: 100,
      });
      return rows.find((e) => e.detail?.session === hash);
    };
    await until(async () => !!(await startOf(fromLaptop)) && !!(await startOf(fromPhone)));
    const laptopStart = (await startOf(fromLaptop))!;
    const phoneStart = (await startOf(fromPhone))!;
    assert.deepEqual(
      [laptopStart.detail?.fingerprint, phoneStart.detail?.fingerprint],
      [laptopFpr, phoneFpr],
    );

    await openIdentity();
    assert.deepEqual(await devicesTable().locator('th').allTextContents(), [
      'Device',
      'Fingerprint',
      'Algorithm',
      'Added',
      'Added by',
      'Last login',
      'Status',
      'Action',
    ]);
    const lastLogin = (fingerprint: string) => deviceRow(fingerprint).locator('td.last-login');
    await lastLogin(laptopFpr).and(page.locator('[data-verified="true"]')).waitFor();
    await lastLogin(phoneFpr).and(page.locator('[data-verified="true"]')).waitFor();
    for (const [fpr, start] of [
      [laptopFpr, laptopStart],
      [phoneFpr, phoneStart],
    ] as const) {
      assert.equal(await lastLogin(fpr).getAttribute('data-at'), String(start.at));
      assert.equal(
        await lastLogin(fpr).textContent(),
        await page.evaluate((ms) => new Date(ms).toLocaleString(), start.at),
      );
      assert.match(
        (await lastLogin(fpr).getAttribute('title')) ?? '',
        /^Verified in this browser: session start in block \d+/,
      );
    }
    // The phone connected after the laptop.
    assert.ok(phoneStart.at >= laptopStart.at);
    await shot('dev-01b-last-logins');

    // The audit trail's answer changed on the way (the laptop's login moved a day later): the page
    // checks the event against its receipt, and says it is not verified.
    await page.route('**/admin/api/audit?*', async (route) => {
      const res = await route.fetch();
      const rows = (await res.json()) as Array<{ at: number; detail?: { fingerprint?: string } }>;
      for (const r of rows) if (r.detail?.fingerprint === laptopFpr) r.at += 86_400_000;
      await route.fulfill({ response: res, json: rows });
    });
    try {
      await openIdentity();
      await lastLogin(laptopFpr).and(page.locator('[data-verified="false"]')).waitFor();
      assert.match((await lastLogin(laptopFpr).textContent()) ?? '', /\(NOT verified\)$/);
      assert.equal(await lastLogin(laptopFpr).getAttribute('title'), 'the event is not this login');
      await lastLogin(phoneFpr).and(page.locator('[data-verified="true"]')).waitFor();
    } finally {
      await page.unroute('**/admin/api/audit?*');
    }
  });

  it("the sessions list shows each session's device key: the short fingerprint, and the device's name once the record is loaded", async () => {
    await page.goto(`${server.url}/admin/#sessions`);
    const phoneRow = page.locator(`tr[data-session="${fromPhone.sessionId}"]`);
    const laptopRow = page.locator(`tr[data-session="${fromLaptop.sessionId}"]`);
    await phoneRow.locator('td.device[data-named="true"]').waitFor();
    await laptopRow.locator('td.device[data-named="true"]').waitFor();
    assert.equal(await phoneRow.locator('td.device').textContent(), `${phoneFpr.slice(0, 16)}… phone`);
    assert.equal(await laptopRow.locator('td.device').textContent(), `${laptopFpr.slice(0, 16)}… first key`);
    // The full fingerprint is there to read too.
    assert.equal(await phoneRow.locator('td.device code').getAttribute('title'), phoneFpr);
    assert.match((await phoneRow.textContent()) ?? '', /dora@example\.org.*127\.0\.0\.1/);
    await shot('dev-02-sessions');
  });

  it("revokes a device after confirmation, with a reason: its session ends, the other device's goes on, and the page shows one active device and the revoked one", async () => {
    await openIdentity();
    const laptopEnded = new Promise<{ alert: { code: string } | null }>((r) => fromLaptop.once('close', r));
    const revokeLaptop = page.getByRole('button', { name: `Revoke the device first key of ${ID}` });
    // Cancel first: nothing is written.
    await revokeLaptop.click();
    const dialog = page.getByRole('dialog');
    assert.match((await dialog.textContent()) ?? '', /the identity's other devices go on/);
    assert.equal(await dialog.getByLabel('Reason').inputValue(), 'compromised');
    await shot('dev-03-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(activeDevices((await server.ledger.getKeyRecord(ID)).record!).length, 2);

    await revokeLaptop.click();
    await dialog.getByLabel('Reason').selectOption('retired');
    await dialog.getByRole('button', { name: 'Revoke device', exact: true }).click();
    // The page shows the record again, verified: the phone active, the laptop's key revoked.
    await deviceRow(laptopFpr).and(page.locator('[data-status="revoked"]')).waitFor();
    await page.getByText('State proof verified in this browser').waitFor();
    assert.equal(
      await page.locator('#id-detail h4', { hasText: 'Devices:' }).textContent(),
      'Devices: 1 active',
    );
    assert.deepEqual(
      await page
        .locator('#id-detail tr[data-status]')
        .evaluateAll((rows) =>
          rows.map((r) => [r.getAttribute('data-fingerprint'), r.getAttribute('data-status')]),
        ),
      [
        [phoneFpr, 'active'],
        [laptopFpr, 'revoked'],
      ],
    );
    const revokedCells = await cells(deviceRow(laptopFpr));
    assert.equal(revokedCells[0], 'first key');
    assert.equal(revokedCells[5], '–', 'no last login shown for a revoked key');
    assert.match(revokedCells[6]!, /^revoked at block \d+ \(/);
    assert.equal(revokedCells[7], '', 'no action on a revoked key');
    // The phone, now the record's first key, still says which device added it (from the history).
    assert.equal((await cells(deviceRow(phoneFpr)))[4], `device first key (${laptopFpr.slice(0, 16)}…)`);
    assert.match(
      (await page.locator('#toast').textContent()) ?? '',
      /Device first key \([0-9a-f]{16}…\) of dora@example\.org revoked: block \d+/,
    );
    await shot('dev-04-revoked');

    // On the ledger: DeviceRevoked by this admin, with the reason chosen.
    const txs = await server.ledger.transactionsFor(ID, { limit: 50 });
    const revoked = txs.find((t) => t.envelope.tx.type === 'DeviceRevoked');
    assert.deepEqual(revoked?.envelope.tx.body, {
      id: ID,
      fingerprint: laptopFpr,
      reason: 'retired',
      revokedBy: { admin: 'root@example.org' },
    });
    // The laptop's session ended; the phone's goes on.
    assert.equal((await laptopEnded).alert?.code, 'KL_KEY_REVOKED');
    assert.deepEqual(
      server.sessions.ofIdentity(ID).map((s) => s.sessionId),
      [fromPhone.sessionId],
    );
    assert.deepEqual(await fromPhone.request({ op: 'echo', text: 'still here' }), {
      echo: 'still here',
      id: ID,
    });
    await assert.rejects(connect({ home: laptop, passphrase: CLIENT_PASSPHRASE }));
    // Shown again, the page lists the phone's session only.
    await openIdentity();
    assert.equal(
      await page.locator('#id-detail h4', { hasText: 'Live sessions' }).textContent(),
      'Live sessions: 1',
    );
    await page.locator(`#id-detail li[data-session="${fromPhone.sessionId}"]`).waitFor();
  });

  it('revoking the only device left says it revokes the identity, and does', async () => {
    await openIdentity();
    const phoneEnded = new Promise<{ alert: { code: string } | null }>((r) => fromPhone.once('close', r));
    await page.getByRole('button', { name: `Revoke the device phone of ${ID}` }).click();
    const dialog = page.getByRole('dialog');
    assert.match(
      (await dialog.textContent()) ?? '',
      /is the only device of dora@example\.org: revoking it revokes the identity/,
    );
    await dialog.getByRole('button', { name: 'Revoke device', exact: true }).click();
    await page.locator('#id-detail .status-revoked').waitFor();
    assert.equal(
      await page.locator('#id-detail h4', { hasText: 'Devices:' }).textContent(),
      'Devices: none active (the identity is revoked)',
    );
    assert.equal(await page.getByRole('button', { name: /^Revoke the device/ }).count(), 0);
    const statuses = await page
      .locator('#id-detail tr[data-status]')
      .evaluateAll((rows) =>
        rows.map((r) => [r.getAttribute('data-fingerprint'), r.getAttribute('data-status')]),
      );
    assert.deepEqual(statuses, [
      [phoneFpr, 'revoked'],
      [laptopFpr, 'revoked'],
    ]);
    assert.match((await cells(deviceRow(phoneFpr)))[6]!, /^revoked with the identity at block \d+/);
    await phoneEnded;
    const { record } = await server.ledger.getKeyRecord(ID);
    assert.equal(record?.status, 'revoked');
    assert.deepEqual(
      [record?.revocation?.by, record?.revocation?.admin, record?.revocation?.reason],
      ['admin', 'root@example.org', 'compromised'],
    );
    await shot('dev-05-identity-revoked');
  });
});
