/**
 * Operator alerts are never dropped unnoticed (src/server/alert-log.ts): a flood of rate-limit alerts
 * from many addresses cannot push a hijack alarm out of memory, and the alerts that were pushed out
 * are counted where the list is shown — admin socket and `keyledger admin alerts`, the dashboard's
 * API, /metrics. Real server on 127.0.0.1, real requests from 10,050 loopback addresses, real hijack
 * alarms (tampered session frames).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { connect } from '../src/client/session.js';
import { Channel } from '../src/protocol/channel.js';
import { setAdminRole } from '../src/server/admin-actions.js';
import { callAdmin } from '../src/server/admin-socket.js';
import type { DroppedAlerts, NumberedAlert } from '../src/server/alert-log.js';
import { type RunningServer, startServer } from '../src/server/app.js';
import { handDrivenChannel, PASSPHRASE } from './helpers.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const FLOOD = 10_050;
const KEPT = 10_000;

type Srv = RunningServer & { dataDir: string };
let server: Srv;
const homes = new Map<string, ClientHome>();
before(async () => {
  // Users registered first (default limits); then the same data directory and port served again with
  // registration refused from the first call of each address: every flooding address trips the
  // limit once.
  const first = await testServer();
  for (const id of ['before-flood@example.org', 'after-flood@example.org', 'ops@example.org'])
    homes.set(id, await registeredClient(first, id));
  await setAdminRole(first.ledger, 'ops@example.org', true);
  const port = Number(new URL(first.url).port);
  await first.close();
  server = Object.assign(
    await startServer({
      dataDir: first.dataDir,
      passphrase: PASSPHRASE,
      host: '127.0.0.1',
      port,
      hijackPolicy: { maxAnomalies: 3 },
      rateLimits: { registerPerIp: { burst: 0, perSecond: 1e-6 } },
    }),
    { dataDir: first.dataDir },
  );
});
after(async () => {
  await server.close();
});

/** A real hijack alarm: a logged-in session of `id` receives three tampered frames. */
async function hijack(id: string): Promise<void> {
  const l = await login({ home: homes.get(id)!, passphrase: CLIENT_PASSPHRASE });
  const channel = handDrivenChannel(l);
  const closed = new Promise<number>((resolve) => l.socket.on('close', (c) => resolve(c)));
  const f = channel.seal({ t: 'data', id: 1, body: 'tampered' });
  for (let i = 0; i < 3; i++) {
    // A flipped bit in the ciphertext, after the 30-byte header (docs/protocol.md "Session frame wire format v2").
    const bad = Buffer.from(f);
    bad[30 + i]! ^= 0x01;
    l.socket.send(bad);
  }
  assert.equal(await closed, 4000, 'the session ends as hijacked');
}

/** Runs the CLI without blocking this process (the server it asks runs here). */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** One registration call from the loopback address `ip`; resolves with the status. */
function callFrom(ip: string): Promise<number> {
  const body = JSON.stringify({ id: 'flood@example.org' });
  const u = new URL(`${server.url}/v1/register/begin`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        localAddress: ip,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `n` rate-limit alerts: one refused call from each of `n` loopback addresses 127.1.x.y. */
async function flood(n: number): Promise<void> {
  const ips = Array.from({ length: n }, (_, i) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`);
  let next = 0;
  const worker = async () => {
    while (next < ips.length) {
      const status = await callFrom(ips[next++]!);
      assert.equal(status, 429);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

describe('operator alerts under a flood', () => {
  it('a flood of >10,000 rate-limit alerts keeps every hijack alarm and reports what it pushed out', async () => {
    await hijack('before-flood@example.org');
    await flood(FLOOD);
    await hijack('after-flood@example.org');

    // The admin socket (keyledger admin alerts): both alarms listed, the newest rate-limit alerts
    // kept, the older ones counted.
    const list = await callAdmin<NumberedAlert[]>(server.dataDir, 'GET', '/alerts');
    const hijacks = list.filter((a) => a.kind === 'hijack').map((a) => a.id);
    assert.deepEqual(hijacks, ['before-flood@example.org', 'after-flood@example.org']);
    const trips = list.filter((a) => a.kind === 'rate_limit');
    assert.equal(trips.length, KEPT);
    assert.equal(trips.at(-1)!.id, `127.1.${Math.floor((FLOOD - 1) / 250)}.${((FLOOD - 1) % 250) + 1}`);
    assert.ok(
      list.every((a, i) => i === 0 || a.n > list[i - 1]!.n),
      'oldest first, by sequence number',
    );
    const dropped = await callAdmin<DroppedAlerts>(server.dataDir, 'GET', '/alerts/dropped');
    assert.deepEqual(dropped, { total: FLOOD - KEPT, byKind: { rate_limit: FLOOD - KEPT } });

    // The CLI says it.
    const cli = await run(['admin', 'alerts', '--data', server.dataDir]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(
      cli.stdout,
      /^50 older alert\(s\) dropped from memory \(rate_limit 50\); the newest are listed$/m,
    );
    assert.match(cli.stdout, /hijack {2}after-flood@example\.org/);
    const json = await run(['admin', 'alerts', '--data', server.dataDir, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as unknown[]).length, KEPT + 2, 'stdout stays the list');
    assert.match(json.stderr, /50 older alert\(s\) dropped/);

    // /metrics.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^keyledger_alerts_dropped_total\{kind="rate_limit"\} 50$/m);

    // The dashboard's API: overview and alert list; an alarm is acknowledged by its number, an
    // alert pushed out cannot be.
    const s = await connect({ home: homes.get('ops@example.org')!, passphrase: CLIENT_PASSPHRASE });
    const link = (await s.request<{ url: string }>({ op: 'admin.dashboard-link' })).url;
    await s.close();
    const redeemed = await fetch(link, { redirect: 'manual' });
    const cookie = (redeemed.headers.get('set-cookie') ?? '').split(';')[0]!;
    const get = async <T>(path: string) =>
      (await (await fetch(`${server.url}/admin/api/${path}`, { headers: { cookie } })).json()) as T;
    const overview = await get<{ alerts: { open: number; dropped: DroppedAlerts } }>('overview');
    assert.equal(overview.alerts.open, KEPT + 2);
    assert.equal(overview.alerts.dropped.total, FLOOD - KEPT);
    assert.deepEqual(await get<DroppedAlerts>('alerts/dropped'), dropped);
    const shown = await get<Array<NumberedAlert & { acknowledged: boolean }>>('alerts');
    assert.equal(shown[0]!.id, 'after-flood@example.org', 'newest first');
    const { csrf } = await get<{ csrf: string }>('me');
    const ack = (n: number) =>
      fetch(`${server.url}/admin/api/alerts/${n}/ack`, {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': csrf },
      });
    const alarm = shown.find((a) => a.id === 'before-flood@example.org')!;
    assert.equal((await ack(alarm.n)).status, 200);
    const pushedOut = list.find((a) => a.kind === 'rate_limit')!.n - 1;
    assert.equal((await ack(pushedOut)).status, 404);
    assert.equal((await get<{ alerts: { open: number } }>('overview')).alerts.open, KEPT + 1);
  });
});
