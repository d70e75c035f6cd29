/**
 * The etcd engine while its cluster is away, and its follower by watch (docs/reliability.md "The
 * chain away", docs/deploy-etcd.md "The follower"), on a real 3-member etcd cluster on loopback:
 * audit events written while the cluster has no quorum (two members killed with -9) are queued
 * durably, survive a server restart that happens while the quorum is still lost, and all land once
 * on the ledger — on both servers — when it is back; registrations keep failing with the retryable
 * error and queue nothing; a queued write the ledger's rules refuse (its server removed meanwhile)
 * is kept with its reason and counted. A write on A is seen by B through the watch well before B's
 * fallback poll, also after the member B watches is killed; a watch answered "compacted", a stream
 * flooding bytes without an answer's end and a stream that stays silent never hold the follower.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../src/client/session.js';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import { ChainOutbox, chainOutboxPath } from '../src/ledger/chain-outbox.js';
import { initEmbeddedLedger } from '../src/ledger/embedded-init.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { EtcdSequencer } from '../src/ledger/etcd-sequencer.js';
import { WATCH_MAX_BUFFER } from '../src/ledger/etcd-watch.js';
import { isKlError, type KlError } from '../src/protocol/errors.js';
import { callAdmin } from '../src/server/admin-socket.js';
import type { RunningServer } from '../src/server/app.js';
import { PASSPHRASE, registration, rejection, tempDir, until } from './helpers.js';
import { metric, readyz } from './support/chain-probes.js';
import { type EtcdCluster, startEtcdCluster, twoEtcdServers } from './support/etcd.js';
import { CLIENT_PASSPHRASE, registeredClient, startOn } from './support/server.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster(3);
});
after(async () => {
  await cluster?.stop();
});

const audit = (at: number) => ({ type: 'AuditEvent' as const, body: { event: 'etcd_outbox_test', at } });

/** Waits until `ledger` holds `txid`; returns how long that took, ms. */
async function seen(ledger: EmbeddedLedger, txid: string, ms = 10_000): Promise<number> {
  const start = Date.now();
  await until(
    () =>
      ledger.getTransaction(txid).then(
        () => true,
        () => false,
      ),
    ms,
    5,
  );
  return Date.now() - start;
}

describe('etcd engine: the outbox while the cluster is away', () => {
  it('audit events queued without quorum survive a restart and land once on both servers; a refused one is kept with its reason', async () => {
    // Logins go on while the cluster is away (a long staleness limit): their audit events must not be lost.
    const opts = { maxLedgerStalenessMs: 600_000 };
    const pair = await twoEtcdServers({ cluster, a: opts, b: opts });
    const { a, b } = pair;
    const servers: RunningServer[] = [];
    const [m0, m1] = cluster.members;
    try {
      const home = await registeredClient(a, 'audited@example.org');
      await a.ledger.drain();
      await until(() => b.ledger.chainStatus()!.lag === 0);
      await cluster.kill9(m0!);
      await cluster.kill9(m1!);
      const away = Date.now();
      const N = 3;
      for (let i = 0; i < N; i++) {
        const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
        await s.close();
      }
      // Each login writes a session start and a session end, queued on A.
      await until(() => a.ledger.chainStatus()!.queued === 2 * N, 60_000);
      // A write somebody waits for is refused with the retryable error, and nothing is queued for it.
      const refused = await rejection(
        a.ledger.submit({ type: 'KeyRegistered', body: registration('no@example.org') }),
      );
      assert.ok(isKlError(refused, 'KL_LEDGER_UNAVAILABLE'));
      assert.notEqual((refused as KlError).details?.queued, true);
      assert.equal(a.ledger.chainStatus()!.queued, 2 * N);
      // B's own audit events are queued too (answered at once as queued).
      for (const at of [1, 2]) {
        const err = await rejection(b.ledger.submit(audit(at)));
        assert.ok(isKlError(err, 'KL_LEDGER_UNAVAILABLE'));
        assert.equal((err as KlError).details?.queued, true);
      }
      assert.equal(b.ledger.chainStatus()!.queued, 2);
      await pair.close();
      // A restarted while the quorum is still lost: it starts, is not ready, keeps its queue.
      const a2 = await startOn(a.dataDir, opts);
      servers.push(a2);
      const r = await readyz(a2);
      assert.equal(r.status, 503);
      assert.equal(r.body.chain?.queued, 2 * N);
      assert.equal(await metric(a2, 'keyledger_chain_queued_writes'), 2 * N);
      // The quorum back: every queued event is on the ledger, once.
      cluster.restart(m0!);
      cluster.restart(m1!);
      await cluster.waitForLeader();
      await until(() => a2.ledger.chainStatus()!.queued === 0 && a2.ledger.chainStatus()!.ok, 60_000);
      const trail = await readAuditTrail(a2.ledger, { since: away });
      const count = (event: string) => trail.filter((e) => e.event === event).length;
      assert.equal(count('session_start'), N);
      assert.equal(count('session_end'), N);
      assert.equal(trail.length, 2 * N, 'nothing else, nothing twice');
      assert.equal(new Set(trail.map((e) => e.txid)).size, trail.length);
      assert.equal((await readyz(a2)).status, 200);
      // B restarted: its own two queued events land once too, and A's are on B.
      const b2 = await startOn(b.dataDir, opts);
      servers.push(b2);
      await until(() => b2.ledger.chainStatus()!.queued === 0 && b2.ledger.chainStatus()!.lag === 0, 60_000);
      const all = await readAuditTrail(a2.ledger, { since: 0 });
      assert.equal(all.filter((e) => e.event === 'etcd_outbox_test').length, 2);
      assert.equal(new Set(all.map((e) => e.txid)).size, all.length, 'nothing twice');
      // The same audit trail on B, read back through its own blocks (signed with its own key).
      const trailOnB = await readAuditTrail(b2.ledger, { since: 0 });
      assert.deepEqual(new Set(trailOnB.map((e) => e.txid)), new Set(all.map((e) => e.txid)));
      // The quorum lost again, B queues an event and stops; B is removed by governance meanwhile:
      // sent when B is back, the ledger's rules refuse it; it is kept with the reason and counted.
      await cluster.kill9(m0!);
      await cluster.kill9(m1!);
      assert.equal((await rejection(b2.ledger.submit(audit(3)))).code, 'KL_LEDGER_UNAVAILABLE');
      assert.equal(b2.ledger.chainStatus()!.queued, 1);
      await b2.close();
      servers.pop();
      cluster.restart(m0!);
      cluster.restart(m1!);
      await cluster.waitForLeader();
      await until(() => a2.ledger.chainStatus()!.ok);
      await callAdmin(a2.dataDir, 'POST', '/registrars/kl2/remove');
      const lines: string[] = [];
      const b3 = await startOn(b.dataDir, { ...opts, log: (l) => lines.push(l) });
      servers.push(b3);
      await until(() => b3.ledger.chainStatus()!.refusedWrites === 1, 30_000);
      assert.equal(b3.ledger.chainStatus()!.queued, 0);
      assert.equal(await metric(b3, 'keyledger_chain_refused_writes'), 1);
      assert.ok(lines.some((l) => /queued write [0-9a-f]{64} refused, kept in the outbox/.test(l)));
      await b3.close();
      servers.pop();
      const outbox = new ChainOutbox(chainOutboxPath(b.dataDir));
      try {
        const kept = outbox.refused();
        assert.equal(kept.length, 1);
        assert.match(kept[0]!.reason, /the ledger's rules refused it: .*not allowed to write AuditEvent/);
      } finally {
        outbox.close();
      }
    } finally {
      cluster.restart(m0!);
      cluster.restart(m1!);
      await pair.close();
      for (const s of servers) await s.close().catch(() => {});
    }
  });
});

describe('etcd engine: the follower by watch', () => {
  it('a write on A is seen by B well before the 5 s fallback poll, also after the member B watches is killed', async () => {
    const slow = { etcd: { pollMs: 5_000 } };
    const pair = await twoEtcdServers({ cluster, a: slow, b: slow });
    try {
      const latencies: number[] = [];
      const write = async (id: string) => {
        const r = await pair.a.ledger.submit({ type: 'KeyRegistered', body: registration(id) });
        latencies.push(await seen(pair.b.ledger, r.txid));
      };
      for (let i = 0; i < 3; i++) await write(`w${i}@example.org`);
      // Each member in turn killed: the watch of B was on one of them, and is re-established.
      for (const m of cluster.members) {
        await cluster.kill9(m);
        await cluster.waitForLeader();
        await write(`k${m.name}@example.org`);
        cluster.restart(m);
        await cluster.waitForLeader();
      }
      console.log(`# B saw A's writes after ${latencies.join(', ')} ms`);
      for (const ms of latencies) assert.ok(ms < 1_000, `seen after ${ms} ms`);
    } finally {
      await pair.close();
    }
  });

  it('a watch answered "compacted", one flooding bytes without an answer, one left silent: the follower goes on', async () => {
    const prefix = `/keyledger/watch-${process.pid}`;
    const dataDir = join(tempDir('kl-etcd-w-'), 'data');
    initEmbeddedLedger({ dataDir, passphrase: PASSPHRASE });
    const member = cluster.members[0]!;
    // A proxy in front of one member: reads pass, each watch is answered as `modes` says, in turn.
    const modes = ['compacted', 'flood', 'silent', 'pass'];
    const watches: string[] = [];
    const proxy: Server = createServer(async (req, res) => {
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      if (req.url === '/v3/watch') {
        const mode = modes.shift() ?? 'pass';
        watches.push(mode);
        if (mode === 'compacted') {
          res.write(`${JSON.stringify({ result: { header: { revision: '9' }, created: true } })}\n`);
          res.write(`${JSON.stringify({ result: { canceled: true, compact_revision: '9' } })}\n`);
          return; // and left open, as etcd does
        }
        if (mode === 'flood') {
          res.write('{"result":{"header":{"revision":"1"},"created":true}}\n');
          res.write('x'.repeat(WATCH_MAX_BUFFER + 1024));
          return;
        }
        if (mode === 'silent') return; // never answers
      }
      try {
        const upstream = await fetch(`${member.clientUrl}${req.url}`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
          signal: gone.signal,
        });
        res.writeHead(upstream.status, { 'content-type': 'application/json' });
        for await (const c of upstream.body!) res.write(c);
        res.end();
      } catch {
        res.destroy();
      }
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const lines: string[] = [];
    const follower = new EtcdSequencer({
      endpoints: [url],
      prefix,
      pollMs: 5_000,
      requestTimeoutMs: 500,
      log: (l) => lines.push(l),
    });
    const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE, sequencer: follower });
    try {
      await follower.bind(ledger.chainId);
      await follower.follow((batch) => ledger.ingest(batch), ledger.sequencerCursor());
      await until(() => watches.includes('pass'), 10_000);
      await until(() => lines.some((l) => /watching the head again/.test(l)), 10_000);
      // The watch answers after the three bad streams: a write is read back at once, not at the next poll.
      const start = Date.now();
      await ledger.submit({ type: 'KeyRegistered', body: registration('watched@example.org') });
      assert.ok(Date.now() - start < 1_000, `read back after ${Date.now() - start} ms`);
      assert.deepEqual(watches.slice(0, 4), ['compacted', 'flood', 'silent', 'pass']);
      assert.ok(lines.some((l) => /compacted past the revision asked for/.test(l)));
      assert.ok(lines.some((l) => new RegExp(`over ${WATCH_MAX_BUFFER} bytes`).test(l)));
      assert.ok(lines.some((l) => /no answer in time/.test(l)));
    } finally {
      await follower.stop();
      await ledger.close();
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });
});
