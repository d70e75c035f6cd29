/**
 * The admin side without a browser (issue 5): who may get a dashboard link, links that are reused or
 * expired, state changes without the CSRF token, unauthenticated and forged calls, a revoked admin
 * role; /openapi.json validated as OpenAPI 3; /metrics parsed as Prometheus text; health and
 * readiness. Real server on 127.0.0.1, injected clock for expiry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { connect } from '../src/client/session.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { isAdmin, setAdminRole } from '../src/server/admin-actions.js';
import { csvCell } from '../src/server/admin-api.js';
import { cookieParts, liveClock } from './helpers.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
const clock = liveClock();
let adminHome: Awaited<ReturnType<typeof registeredClient>>;

before(async () => {
  server = await testServer({ now: clock });
  adminHome = await registeredClient(server, 'ada@example.org');
  await setAdminRole(server.ledger, 'ada@example.org', true);
});
after(async () => {
  await server.close();
});

/** A one-time link asked for inside an authenticated session of `home`. */
async function linkFor(home: typeof adminHome): Promise<string> {
  const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
  try {
    return (await s.request<{ url: string }>({ op: 'admin.dashboard-link' })).url;
  } finally {
    await s.close();
  }
}

/** Redeems a link; returns the cookie and the CSRF token of the new dashboard session. */
async function dashboardSession(home = adminHome): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(await linkFor(home), { redirect: 'manual' });
  assert.equal(res.status, 303);
  const setCookie = res.headers.get('set-cookie') ?? '';
  assert.match(cookieParts(setCookie).pair, /^kl_admin=[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(cookieParts(setCookie).attributes, ['HttpOnly', 'Path=/admin', 'SameSite=Strict']);
  const cookie = setCookie.split(';')[0]!;
  const me = (await (await fetch(`${server.url}/admin/api/me`, { headers: { cookie } })).json()) as {
    csrf: string;
  };
  return { cookie, csrf: me.csrf };
}

const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe('admin access', () => {
  it('a non-admin identity cannot get a dashboard link', async () => {
    const home = await registeredClient(server, 'nobody@example.org');
    await assert.rejects(linkFor(home), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KL_NOT_ADMIN');
      return true;
    });
  });

  it('a link works once; a reused, expired or made-up link is refused', async () => {
    const link = await linkFor(adminHome);
    assert.equal((await fetch(link, { redirect: 'manual' })).status, 303);
    const reused = await fetch(link, { redirect: 'manual' });
    assert.equal(reused.status, 401);
    assert.equal(await codeOf(reused), 'KL_ADMIN_LINK_INVALID');
    assert.equal(reused.headers.get('set-cookie'), null);

    const late = await linkFor(adminHome);
    clock.advance(59_999);
    const stillGood = await linkFor(adminHome);
    clock.advance(1);
    // `late` is now exactly 60 s old: expired. (`stillGood` is 1 ms old.)
    const expired = await fetch(late, { redirect: 'manual' });
    assert.equal(expired.status, 401);
    assert.equal(await codeOf(expired), 'KL_ADMIN_LINK_INVALID');
    assert.equal((await fetch(stillGood, { redirect: 'manual' })).status, 303);

    const madeUp = await fetch(`${server.url}/admin/login?token=${'A'.repeat(43)}`, { redirect: 'manual' });
    assert.equal(madeUp.status, 401);
    clock.reset();
  });

  it('the admin API refuses calls without a session, with a forged cookie, or after logout', async () => {
    for (const path of [
      'overview',
      'sessions',
      'identities',
      'alerts',
      'audit',
      'blocks',
      'genesis',
      'events',
    ]) {
      const none = await fetch(`${server.url}/admin/api/${path}`);
      assert.equal(none.status, 401, path);
      assert.equal(await codeOf(none), 'KL_AUTH_FAILED');
      const forged = await fetch(`${server.url}/admin/api/${path}`, {
        headers: { cookie: `kl_admin=${'B'.repeat(43)}` },
      });
      assert.equal(forged.status, 401, path);
    }
    const { cookie, csrf } = await dashboardSession();
    assert.equal((await fetch(`${server.url}/admin/api/overview`, { headers: { cookie } })).status, 200);
    const out = await fetch(`${server.url}/admin/api/logout`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(out.status, 200);
    assert.equal((await fetch(`${server.url}/admin/api/overview`, { headers: { cookie } })).status, 401);
  });

  it('a state change without the CSRF token (or with a wrong one) is refused and changes nothing', async () => {
    const { cookie, csrf } = await dashboardSession();
    const home = await registeredClient(server, 'carl@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
    const attempts: Array<Record<string, string>> = [
      { cookie },
      { cookie, 'x-csrf-token': `${csrf}x` },
      { cookie, 'x-csrf-token': '' },
    ];
    for (const headers of attempts) {
      const r = await fetch(`${server.url}/admin/api/sessions/${s.sessionId}/terminate`, {
        method: 'POST',
        headers,
      });
      assert.equal(r.status, 403);
      assert.equal(await codeOf(r), 'KL_CSRF');
      const k = await fetch(`${server.url}/admin/api/identities/carl@example.org/revoke`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(k.status, 403);
    }
    assert.ok(server.sessions.get(s.sessionId), 'the session is still live');
    assert.equal((await server.ledger.getKeyRecord('carl@example.org')).record?.status, 'active');
    // With the token: done.
    const ok = await fetch(`${server.url}/admin/api/sessions/${s.sessionId}/terminate`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(ok.status, 200);
    assert.equal(server.sessions.get(s.sessionId), undefined);
  });

  it('an admin whose role is revoked on the ledger is out at once, dashboard session included', async () => {
    const home = await registeredClient(server, 'eve.admin@example.org');
    await setAdminRole(server.ledger, 'eve.admin@example.org', true);
    const { cookie } = await dashboardSession(home);
    assert.equal((await fetch(`${server.url}/admin/api/overview`, { headers: { cookie } })).status, 200);
    await setAdminRole(server.ledger, 'eve.admin@example.org', false);
    assert.equal(await isAdmin(server.ledger, 'eve.admin@example.org'), false);
    const r = await fetch(`${server.url}/admin/api/overview`, { headers: { cookie } });
    assert.equal(r.status, 401);
    await assert.rejects(linkFor(home), (e: Error & { code?: string }) => e.code === 'KL_NOT_ADMIN');
  });

  it('an idle dashboard session expires (the exact boundary is in dashboard-auth.test.ts)', async () => {
    const { cookie } = await dashboardSession();
    assert.equal((await fetch(`${server.url}/admin/api/me`, { headers: { cookie } })).status, 200);
    clock.advance(15 * 60_000);
    assert.equal((await fetch(`${server.url}/admin/api/me`, { headers: { cookie } })).status, 401);
    clock.reset();
  });

  it('CSV cells are quoted and cannot start a spreadsheet formula', () => {
    assert.equal(csvCell('=HYPERLINK("http://evil")'), `"'=HYPERLINK(""http://evil"")"`);
    assert.equal(csvCell('+1'), `"'+1"`);
    assert.equal(csvCell('@SUM(A1)'), `"'@SUM(A1)"`);
    assert.equal(csvCell('plain'), '"plain"');
    assert.equal(csvCell({ reason: 'x' }), '"{""reason"":""x""}"');
    assert.equal(csvCell(undefined), '""');
  });

  it('the audit export is CSV with a header row and quoted cells', async () => {
    const { cookie } = await dashboardSession();
    const csv = await (
      await fetch(`${server.url}/admin/api/audit?format=csv`, { headers: { cookie } })
    ).text();
    const lines = csv.trim().split('\r\n');
    assert.equal(lines[0], 'at,event,subject,height,txid,detail');
    assert.ok(lines.length > 1);
    assert.ok(
      lines.slice(1).every((l) => /^"[^"]*","[a-z_]+",/.test(l)),
      lines[1],
    );
  });
});

describe('operations endpoints', () => {
  it('/openapi.json is a valid OpenAPI 3 description of every HTTP route', async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    const result = await new Validator().validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    assert.match(doc.openapi, /^3\./);
    for (const path of [
      '/v1/info',
      '/v1/register/begin',
      '/v1/register/complete',
      '/v1/ledger/keys/{id}',
      '/v1/ledger/consistency',
      '/v1/devices/requests',
      '/v1/devices/requests/{poll}',
      '/v1/recover',
      '/metrics',
      '/healthz',
      '/readyz',
      '/admin/login',
      '/admin/api/sessions/{sid}/terminate',
      '/admin/api/identities/{id}/revoke',
      '/admin/api/audit',
    ])
      assert.ok(doc.paths[path], `${path} is described`);
    const docs = await fetch(`${server.url}/docs/`);
    assert.equal(docs.status, 200);
    assert.doesNotMatch(
      await docs.text(),
      /https?:\/\/(?!127\.0\.0\.1)[a-z0-9.-]+\.[a-z]{2,}\/[^"']*\.(js|css)/i,
    );
  });

  it('/metrics parses as Prometheus text and counts logins, failures, sessions and the ledger', async () => {
    const home = await registeredClient(server, 'metric@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: clock });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const families = parsePrometheusTextFormat(text) as Array<{
      name: string;
      type: string;
      metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string> }>;
    }>;
    const family = (name: string) => families.find((f) => f.name === name);
    assert.ok(Number(family('keyledger_logins_total')?.metrics[0]?.value) >= 1);
    assert.ok(Number(family('keyledger_sessions_active')?.metrics[0]?.value) >= 1);
    assert.ok(Number(family('keyledger_ledger_height')?.metrics[0]?.value) >= 1);
    assert.equal(family('keyledger_ledger_commit_seconds')?.type, 'HISTOGRAM');
    assert.ok(family('keyledger_registrations_total'));
    assert.ok(family('keyledger_hijack_alarms_total'));
    assert.ok(family('keyledger_session_renewals_total'));
    await s.close();
  });

  it('/healthz answers; /readyz says ready with the ledger height', async () => {
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { ok: true });
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
  });
});

describe('rate-limit trips are operator alerts', () => {
  // Last in this file: it exhausts this IP's registration budget.
  it('a flood of registration attempts from one address raises one alert, pushed to the dashboard', async () => {
    const { cookie } = await dashboardSession();
    let status = 200;
    for (let i = 0; i < 80 && status !== 429; i++) {
      const r = await fetch(`${server.url}/v1/register/begin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: `flood${i}@example.org` }),
      });
      status = r.status;
    }
    assert.equal(status, 429);
    for (let i = 0; i < 5; i++)
      await fetch(`${server.url}/v1/register/begin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'again@example.org' }),
      });
    const alerts = (await (
      await fetch(`${server.url}/admin/api/alerts`, { headers: { cookie } })
    ).json()) as Array<{
      kind: string;
      id: string;
      detail: string;
    }>;
    const trips = alerts.filter((a) => a.kind === 'rate_limit');
    assert.equal(trips.length, 1, 'one alert per limit and address per minute');
    assert.equal(trips[0]!.id, '127.0.0.1');
    assert.match(trips[0]!.detail, /registration per IP rate limit reached/);
  });
});

describe('graceful shutdown', () => {
  it('ends sessions with a reason, commits every transaction already submitted, then closes the port', async () => {
    const srv = await testServer();
    const home = await registeredClient(srv, 'late@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const closed = new Promise<{ alert: { code: string } | null }>((r) => s.once('close', r));
    // In flight when the shutdown starts: not yet committed.
    const inFlight = Array.from({ length: 20 }, (_, i) =>
      srv.ledger.submit({
        type: 'HashAnchored',
        body: { hash: `${i}`.padStart(64, 'a'), algorithm: 'sha256' },
      }),
    );
    await srv.close();
    assert.equal((await closed).alert?.code, 'KL_SERVER_SHUTDOWN');
    const receipts = await Promise.all(inFlight);
    assert.equal(receipts.length, 20);
    const reopened = EmbeddedLedger.open({ dataDir: srv.dataDir });
    for (const r of receipts) assert.equal((await reopened.getTransaction(r.txid)).txid, r.txid);
    await reopened.close();
    await assert.rejects(fetch(`${srv.url}/readyz`), 'the port is closed');
  });
});
