/**
 * Two keyledger servers of one deployment on the etcd engine under failure (docs/deploy-etcd.md
 * "Failures"), on a real 3-member etcd cluster on loopback, with real clients over HTTP and
 * WebSocket:
 *   - kill -9 of the etcd leader during registrations and revocations through A: every acknowledged
 *     write is on A's and B's ledgers, writes refused during the election carry the retryable
 *     KL_LEDGER_UNAVAILABLE (503), logins go on on both servers;
 *   - kill -9 of a keyledger server (`keyledger serve`, the real binary) during registrations: every
 *     acknowledged registration is there after its restart, unacknowledged ones retry cleanly, and it
 *     catches up with what B wrote meanwhile, to the same head hash;
 *   - a revocation through A ends a live session on B within 2 s;
 *   - a lagging follower (B stopped while A writes 200 transactions, then cut from the cluster while
 *     up) catches up, serves the identities registered meanwhile, and answers KL_LEDGER_BEHIND while
 *     behind a client's checkpoint;
 *   - the whole cluster killed and restarted on its data: the servers resume by themselves;
 *     restarted without its data (an empty cluster at the same addresses): both servers fail closed
 *     (/readyz 503, logins and writes refused with KL_LEDGER_UNAVAILABLE, one alert and one log
 *     line), a server restarted on it too; writes in flight then are not written to the empty
 *     cluster (the write's compare-and-swap checks the head is not below what was read).
 * The sequencer alone under the same faults: test/etcd-engine.test.ts.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { register } from '../src/client/register.js';
import { connect } from '../src/client/session.js';
import { ERROR_CODES } from '../src/protocol/errors.js';
import { callAdmin } from '../src/server/admin-socket.js';
import type { RunningServer } from '../src/server/app.js';
import { initEtcdNode, joinEtcdNode } from '../src/server/etcd-node.js';
import { PASSPHRASE, registration, rejection, tempDir, until } from './helpers.js';
import { chainAlerts, readyz } from './support/chain-probes.js';
import { type EtcdCluster, startEtcdCluster, type TestServer, twoEtcdServers } from './support/etcd.js';
import {
  freePort,
  invitedUsers,
  killServer,
  registerUser,
  serveCli,
  writeServeConfig,
} from './support/serve-cli.js';
import {
  CLIENT_PASSPHRASE,
  etcdTestServer,
  invite,
  newClient,
  registeredClient,
  startOn,
  testEtcdPrefix,
} from './support/server.js';
import { tcpRelay } from './support/tcp-relay.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster(3);
});
after(async () => {
  await cluster?.stop();
});

type Coded = Error & { code?: string };

/** Whether `err` is a refusal a client may retry (a 503 with a stable code), never a 500. */
function retryable(err: unknown): boolean {
  const code = (err as Coded).code;
  return code === 'KL_LEDGER_UNAVAILABLE' && ERROR_CODES[code] === 503;
}

/** A server's signed head (height and block hash), read over HTTP. */
async function head(url: string): Promise<{ height: number; hash: string }> {
  const r = (await (await fetch(`${url}/v1/ledger/checkpoint`)).json()) as {
    checkpoint: { header: { height: number }; hash: string } | null;
  };
  return { height: r.checkpoint?.header.height ?? 0, hash: r.checkpoint?.hash ?? '' };
}

/** An identity's status on a server's ledger (its key record, read over HTTP), or null. */
async function statusOn(url: string, id: string): Promise<string | null> {
  const r = (await (await fetch(`${url}/v1/ledger/keys/${encodeURIComponent(id)}`)).json()) as {
    record: { status: string } | null;
  };
  return r.record?.status ?? null;
}

/** Waits until both servers hold the same head: same height, same block hash. */
async function converged(a: string, b: string, ms = 20_000): Promise<{ height: number; hash: string }> {
  let last = { height: 0, hash: '' };
  await until(async () => {
    const [x, y] = await Promise.all([head(a), head(b)]);
    last = x;
    return x.height > 0 && x.height === y.height && x.hash === y.hash;
  }, ms);
  return last;
}

/** The keys the cluster holds under `prefix` (read through its JSON gateway). */
async function etcdKeys(cluster: EtcdCluster, prefix: string): Promise<string[]> {
  const b64 = (x: string) => Buffer.from(x).toString('base64');
  const r = (await (
    await fetch(`${cluster.endpoints[0]}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: b64(`${prefix}/`), range_end: b64(`${prefix}0`), keys_only: true }),
    })
  ).json()) as { kvs?: Array<{ key: string }> };
  return (r.kvs ?? []).map((kv) => Buffer.from(kv.key, 'base64').toString());
}

/** A client with a fresh key and an invitation of a server, not registered yet. */
interface Invited {
  id: string;
  home: ClientHome;
  code: string;
}

/** A fresh client with an invitation of `server` (registered later). */
async function invitedOn(server: RunningServer, id: string): Promise<Invited> {
  return { id, home: await newClient(id), code: invite(server, id) };
}

function registerOn(server: RunningServer, u: { home: ClientHome; code: string }) {
  return register({
    home: u.home,
    server: server.url,
    proof: { method: 'invite', code: u.code },
    passphrase: CLIENT_PASSPHRASE,
  });
}

describe('two servers of one deployment on the etcd engine, under failure', () => {
  it('kill -9 of the etcd leader during registrations and revocations: no acknowledged write lost, refusals retryable, logins go on', async () => {
    const pair = await twoEtcdServers({ cluster });
    const { a, b } = pair;
    try {
      const toRevoke: Array<{ id: string; home: ClientHome }> = [];
      for (let i = 0; i < 4; i++)
        toRevoke.push({ id: `old${i}@example.org`, home: await registeredClient(a, `old${i}@example.org`) });
      const fresh: Invited[] = [];
      for (let i = 0; i < 16; i++) fresh.push(await invitedOn(a, `new${i}@example.org`));

      const ackedRegistrations: string[] = [];
      const ackedRevocations: string[] = [];
      const refused: Coded[] = [];
      let acks = 0;
      let leaderKilled: Promise<unknown> | null = null;
      const killLeaderAfter = 3;
      let deadLeader = false;
      /** Writes started once the leader was dead, and acknowledged. */
      let ackedAfterKill = 0;
      const acked = (startedDead: boolean) => {
        if (startedDead) ackedAfterKill++;
        if (++acks === killLeaderAfter)
          leaderKilled = cluster.waitForLeader().then(async (leader) => {
            await cluster.kill9(leader);
            deadLeader = true;
            return leader;
          });
      };
      let next = 0;
      const registrar = async () => {
        while (next < fresh.length) {
          const u = fresh[next++]!;
          const startedDead = deadLeader;
          try {
            await registerOn(a, u);
            ackedRegistrations.push(u.id);
            acked(startedDead);
          } catch (err) {
            refused.push(err as Coded);
          }
        }
      };
      const revoker = async () => {
        for (const u of toRevoke) {
          // One revocation after the next acknowledgment each, so that some fall in the election.
          const before = acks;
          await until(() => acks > before || next >= fresh.length, 20_000, 10);
          const startedDead = deadLeader;
          try {
            await callAdmin(a.dataDir, 'POST', `/keys/${encodeURIComponent(u.id)}/revoke`, {
              reason: 'compromised',
            });
            ackedRevocations.push(u.id);
            acked(startedDead);
          } catch (err) {
            refused.push(err as Coded);
          }
        }
      };
      await Promise.all([registrar(), registrar(), revoker()]);
      assert.ok(leaderKilled, 'the leader was killed during the stream');
      const killed = (await leaderKilled) as Awaited<ReturnType<EtcdCluster['waitForLeader']>>;
      for (const err of refused)
        assert.ok(retryable(err), `refused with a retryable 503: ${err.code} ${err.message}`);
      assert.ok(
        ackedRegistrations.length > killLeaderAfter,
        'registrations acknowledged after the leader died',
      );

      const top = await converged(a.url, b.url);
      for (const id of ackedRegistrations)
        for (const srv of [a, b]) assert.equal(await statusOn(srv.url, id), 'active', `${id} on ${srv.url}`);
      for (const id of ackedRevocations)
        for (const srv of [a, b]) assert.equal(await statusOn(srv.url, id), 'revoked', `${id} on ${srv.url}`);
      // Logins go on, on both servers, with the old leader still dead.
      const last = fresh.find((u) => u.id === ackedRegistrations.at(-1))!;
      for (const srv of [a, b])
        assert.equal(
          (await login({ home: last.home, passphrase: CLIENT_PASSPHRASE, server: srv.url })).verified,
          true,
        );
      const stillActive = toRevoke.find((u) => !ackedRevocations.includes(u.id));
      if (stillActive)
        assert.equal(
          (await login({ home: stillActive.home, passphrase: CLIENT_PASSPHRASE, server: b.url })).verified,
          true,
        );
      cluster.restart(killed);
      await cluster.waitForLeader();
      assert.ok((await head(a.url)).height >= top.height);
      console.log(
        `# ${ackedRegistrations.length} registrations and ${ackedRevocations.length} revocations acknowledged (${ackedAfterKill} sent after the leader died), ${refused.length} refused during the election`,
      );
    } finally {
      await pair.close();
    }
  });

  it('kill -9 of a keyledger server during registrations: acknowledged ones kept, the rest retry cleanly, it catches up with B to the same head', async () => {
    const root = tempDir('kl-etcd-kill-');
    const aData = join(root, 'a');
    await initEtcdNode({
      dataDir: aData,
      passphrase: PASSPHRASE,
      endpoints: cluster.endpoints,
      prefix: testEtcdPrefix(),
    });
    const config = writeServeConfig(join(root, 'config.json'), await freePort());
    let served = await serveCli(aData, ['--config', config]);
    const aUrl = served.url;
    const bData = join(root, 'b');
    const { request } = await joinEtcdNode({
      dataDir: bData,
      passphrase: PASSPHRASE,
      endpoints: cluster.endpoints,
      genesis: await (await fetch(`${aUrl}/v1/ledger/genesis`)).json(),
      name: 'kl2',
    });
    let b: TestServer | undefined;
    try {
      b = await startOn(bData, {});
      await callAdmin(aData, 'POST', '/registrars', { request });
      await until(() => b!.ledger.registrars().some((r) => r.keyId === request.keyId && r.active));

      const users = await invitedUsers(aData, 'crash', 12);
      const ack = new Map<string, boolean>();
      let acks = 0;
      let fire: () => void = () => {};
      const killTime = new Promise<void>((r) => {
        fire = r;
      });
      let next = 0;
      let dead = false;
      const worker = async () => {
        while (next < users.length && !dead) {
          const u = users[next++]!;
          const ok = await registerUser(aUrl, u).then(
            () => true,
            () => false,
          );
          ack.set(u.id, ok);
          if (ok && ++acks === 4) fire();
        }
      };
      const workers = [worker(), worker(), worker()];
      await killTime;
      await killServer(served);
      dead = true;
      await Promise.all(workers);
      const acked = users.filter((u) => ack.get(u.id));
      const lost = users.filter((u) => ack.get(u.id) === false);
      const never = users.filter((u) => !ack.has(u.id));
      assert.ok(acked.length >= 4);

      // While A is down, B writes: registrations of its own.
      const meanwhile: Invited[] = [];
      for (let i = 0; i < 3; i++) {
        const u = await invitedOn(b, `onb${i}@example.org`);
        await registerOn(b, u);
        meanwhile.push(u);
      }

      served = await serveCli(aData, ['--config', config]);
      const top = await converged(aUrl, b.url);
      assert.ok(top.height > 0);
      for (const u of acked) {
        assert.equal(await statusOn(aUrl, u.id), 'active', `acknowledged registration of ${u.id} lost on A`);
        assert.equal(
          await statusOn(b.url, u.id),
          'active',
          `acknowledged registration of ${u.id} missing on B`,
        );
      }
      // Registrations whose answer was lost (or never sent) go through again on the restarted A.
      for (const u of [...lost, ...never]) await registerUser(aUrl, u);
      // The restarted server serves what B wrote while it was dead, and both end on one head.
      for (const u of meanwhile)
        assert.equal(
          (await login({ home: u.home, passphrase: CLIENT_PASSPHRASE, server: aUrl })).verified,
          true,
        );
      await converged(aUrl, b.url);
      console.log(
        `# ${acked.length} acknowledged before the kill, ${lost.length} lost in flight, ${never.length} not sent`,
      );
    } finally {
      await killServer(served);
      await b?.close();
    }
  });

  it('a revocation through A ends a live session on B within 2 s', async () => {
    const pair = await twoEtcdServers({ cluster });
    try {
      const home = await registeredClient(pair.a, 'live@example.org');
      const session = await connect({ home, passphrase: CLIENT_PASSPHRASE, server: pair.b.url });
      assert.equal(session.serverUrl, pair.b.url);
      const onB = () => pair.b.sessions.list().some((s) => s.id === 'live@example.org');
      assert.ok(onB());
      const started = Date.now();
      await callAdmin(pair.a.dataDir, 'POST', `/keys/${encodeURIComponent('live@example.org')}/revoke`, {
        reason: 'compromised',
      });
      await until(() => !onB(), 2_000, 10);
      const took = Date.now() - started;
      assert.ok(took < 2_000, `ended on B ${took} ms after the revocation on A`);
      await assert.rejects(session.request('hello'));
      console.log(`# session on B ended ${took} ms after the revocation through A`);
    } finally {
      await pair.close();
    }
  });

  it('a lagging follower catches up, serves identities registered in its absence, and answers KL_LEDGER_BEHIND while behind', async () => {
    const pair = await twoEtcdServers({ cluster });
    const { a } = pair;
    let b: TestServer = pair.b;
    // B reaches the cluster through a relay the test can cut: B stays up, and falls behind.
    const relay = await tcpRelay(cluster.endpoints[0]!);
    try {
      const port = Number(new URL(b.url).port);
      await b.close();
      const audit = Array.from({ length: 197 }, (_, i) =>
        a.ledger.submit({ type: 'AuditEvent', body: { event: 'etcd_lag_test', at: i } }),
      );
      const absent: Array<{ id: string; home: ClientHome }> = [];
      for (let i = 0; i < 3; i++)
        absent.push({ id: `away${i}@example.org`, home: await registeredClient(a, `away${i}@example.org`) });
      await Promise.all(audit);
      // Restarted 200 transactions behind: it catches up, and serves who registered meanwhile.
      b = await startOn(b.dataDir, { port, etcd: { endpoints: [relay.url] }, ledgerBehindWaitMs: 300 });
      await converged(a.url, b.url, 10_000);
      for (const u of absent)
        assert.equal(
          (await login({ home: u.home, passphrase: CLIENT_PASSPHRASE, server: b.url })).verified,
          true,
        );

      // Cut from the cluster, B falls behind a registration on A: a read at its height on B waits
      // (300 ms here), then is the retryable 503 KL_LEDGER_BEHIND, not a wrong or stale answer.
      relay.cut();
      const late = await invitedOn(a, 'late@example.org');
      const { height } = await registerOn(a, late);
      assert.ok((await head(b.url)).height < height);
      const t0 = Date.now();
      const res = await fetch(`${b.url}/v1/ledger/consistency?from=${height}`);
      assert.equal(res.status, 503);
      assert.ok(Date.now() - t0 < 3_000, 'answered within its wait, not held');
      assert.equal(res.headers.get('retry-after'), '1');
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'KL_LEDGER_BEHIND');
      // Back in touch, B catches up and serves that client itself.
      relay.restore();
      await until(async () => (await head(b.url)).height >= height, 10_000);
      const s = await connect({ home: late.home, passphrase: CLIENT_PASSPHRASE, server: b.url });
      assert.equal(s.serverUrl, b.url);
      await s.close();
    } finally {
      await Promise.all([a.close().catch(() => {}), b.close().catch(() => {})]);
      await relay.close();
    }
  });

  // Last: they end with the cluster's data gone.
  it('the cluster restarted on its data: servers resume; restarted without it: servers fail closed, and one restarted on it too', async () => {
    const lines: string[] = [];
    const pair = await twoEtcdServers({ cluster, a: { log: (l) => lines.push(l) } });
    const { a } = pair;
    let b: TestServer = pair.b;
    try {
      const before = await registeredClient(a, 'kept@example.org');
      await converged(a.url, b.url);
      // Every member killed at once, then restarted on its data directory.
      await Promise.all(cluster.members.map((m) => cluster.kill9(m)));
      const down = await rejection(registeredClient(a, 'down@example.org'));
      assert.ok(retryable(down), `${down.code}`);
      for (const m of cluster.members) cluster.restart(m);
      await cluster.waitForLeader();
      await until(async () => (await readyz(a.url)).status === 200 && (await readyz(b.url)).status === 200);
      await registeredClient(a, 'after@example.org');
      assert.equal(
        (await login({ home: before, passphrase: CLIENT_PASSPHRASE, server: b.url })).verified,
        true,
      );
      await converged(a.url, b.url);
      assert.deepEqual(chainAlerts(a), []);

      // Every member killed and restarted WITHOUT its data: an empty cluster at the same addresses.
      await Promise.all(cluster.members.map((m) => cluster.kill9(m)));
      for (const m of cluster.members) rmSync(m.dataDir, { recursive: true, force: true });
      for (const m of cluster.members) cluster.restart(m);
      await cluster.waitForLeader();
      const back = Date.now();
      for (const srv of [a, b]) await until(() => srv.ledger.chainStatus()?.fault != null, 5_000);
      assert.ok(Date.now() - back < 5_000, 'seen at the next polls, not after the staleness limit');
      for (const srv of [a, b]) {
        const r = await readyz(srv.url);
        assert.equal(r.status, 503);
        assert.equal(r.body.ready, false);
        assert.ok(r.body.chain.fault, 'the fault is on /readyz');
        const refused = await rejection(
          login({ home: before, passphrase: CLIENT_PASSPHRASE, server: srv.url }),
        );
        assert.equal(refused.code, 'KL_LEDGER_UNAVAILABLE');
      }
      const write = await rejection(registeredClient(a, 'never@example.org'));
      assert.equal(write.code, 'KL_LEDGER_UNAVAILABLE');
      // One alert and one log line for each change of fault (the cluster gone back, its prefix no
      // longer naming the ledger), not one per read.
      const alerts = chainAlerts(a).length;
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(alerts >= 1);
      assert.deepEqual(
        chainAlerts(a).map((d) => d.split(':')[0]),
        Array(alerts).fill('chain fault'),
      );
      assert.equal(lines.filter((l) => /FAULT/.test(l)).length, alerts, 'one log line for each change');

      // B restarted on the empty cluster: it comes up failed closed, it does not start a ledger over.
      const port = Number(new URL(b.url).port);
      await b.close();
      b = await startOn(b.dataDir, { port });
      await until(() => b.ledger.chainStatus()?.fault != null, 5_000);
      assert.equal((await readyz(b.url)).status, 503);
      const again = await rejection(login({ home: before, passphrase: CLIENT_PASSPHRASE, server: b.url }));
      assert.equal(again.code, 'KL_LEDGER_UNAVAILABLE');
    } finally {
      await Promise.all([a.close().catch(() => {}), b.close().catch(() => {})]);
    }
  });

  it('writes in flight when the cluster comes back empty are refused, not written to it as a new ledger', async () => {
    const a = await etcdTestServer(cluster);
    try {
      const engine = a.ledger.genesis.engine;
      const prefix = engine?.type === 'etcd' ? engine.prefix : '';
      for (let i = 0; i < 3; i++)
        await a.ledger.submit({ type: 'AuditEvent', body: { event: 'etcd_before_wipe', at: i } });
      // Writes keep going while every member is killed and restarted without its data.
      let writing = true;
      const stream = (async () => {
        for (let i = 0; writing; i++)
          await a.ledger
            .submit({ type: 'KeyRegistered', body: registration(`wipe${i}@example.org`) })
            .catch(() => new Promise((r) => setTimeout(r, 5)));
      })();
      await Promise.all(cluster.members.map((m) => cluster.kill9(m)));
      for (const m of cluster.members) rmSync(m.dataDir, { recursive: true, force: true });
      for (const m of cluster.members) cluster.restart(m);
      await cluster.waitForLeader();
      await until(() => a.ledger.chainStatus()?.fault != null, 5_000);
      await new Promise((r) => setTimeout(r, 300));
      writing = false;
      // A write the empty cluster took would never be seen back: the stream would wait for it.
      await Promise.race([stream, new Promise((r) => setTimeout(r, 2_000))]);
      assert.ok(a.ledger.chainStatus()?.fault);
      assert.deepEqual(
        await etcdKeys(cluster, prefix),
        [],
        'nothing written under the prefix of the empty cluster',
      );
    } finally {
      await a.close();
    }
  });
});
