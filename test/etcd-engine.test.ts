/**
 * The etcd engine's sequencer (src/ledger/etcd-sequencer.ts) against a real 3-member etcd cluster on
 * loopback: two ledgers of one deployment (the second a copy of the first's data directory before it
 * wrote) follow one etcd order and derive byte-identical blocks; the etcd leader killed with -9
 * during a stream of writes loses no acknowledged write; a cluster without quorum refuses writes
 * with KL_LEDGER_UNAVAILABLE and takes them again once back; a cluster that went back below what a
 * ledger read (entries deleted, as after a restore from an older snapshot) is a fault that refuses
 * writes until the entry is back.
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initEmbeddedLedger } from '../src/ledger/embedded-init.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { isKlError } from '../src/protocol/errors.js';
import { etcdSequencerFor, writeEtcdSettings } from '../src/server/etcd-node.js';
import { manualClock, PASSPHRASE, registration, tempDir, until } from './helpers.js';
import { type EtcdCluster, startEtcdCluster } from './support/etcd.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster(3);
});
after(async () => {
  await cluster?.stop();
});

type Node = { ledger: EmbeddedLedger; sequencer: ReturnType<typeof etcdSequencerFor>; dataDir: string };

/** Two ledgers of one deployment: B is a copy of A's data directory made before A wrote. */
async function pair(prefix: string, clockOfA?: () => number): Promise<[Node, Node]> {
  const dirA = join(tempDir('kl-etcd-a-'), 'data');
  initEmbeddedLedger({ dataDir: dirA, passphrase: PASSPHRASE });
  const dirB = join(tempDir('kl-etcd-b-'), 'data');
  cpSync(dirA, dirB, { recursive: true });
  const open = async (dataDir: string, now?: () => number): Promise<Node> => {
    // The endpoints are a node setting (DATA/etcd.json), the prefix the ledger's.
    writeEtcdSettings(dataDir, { endpoints: cluster.endpoints });
    const sequencer = etcdSequencerFor({ dataDir, prefix, pollMs: 50, ...(now ? { now } : {}) });
    const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE, sequencer });
    await sequencer.bind(ledger.chainId);
    await sequencer.follow((batch) => ledger.ingest(batch), ledger.sequencerCursor());
    return { ledger, sequencer, dataDir };
  };
  return [await open(dirA, clockOfA), await open(dirB)];
}

async function close(...nodes: Node[]): Promise<void> {
  for (const n of nodes) {
    await n.sequencer.stop();
    await n.ledger.close();
  }
}

/** Waits until both ledgers hold the same head (the same signed header). */
async function converged(a: Node, b: Node, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const [ha, hb] = [await a.ledger.checkpoint(), await b.ledger.checkpoint()];
    if (ha && JSON.stringify(ha) === JSON.stringify(hb) && a.sequencer.status().lag === 0) return;
    if (Date.now() > end) throw new Error(`not converged: ${ha?.header.height} vs ${hb?.header.height}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('etcd engine', () => {
  it('two ledgers of one deployment follow one etcd order: writes on either, identical blocks on both', async () => {
    const [a, b] = await pair(`/keyledger/t1-${process.pid}`);
    try {
      const receipts = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 ? b : a).ledger.submit({ type: 'KeyRegistered', body: registration(`u${i}@example.org`) }),
        ),
      );
      await converged(a, b);
      for (const r of receipts) {
        assert.equal((await a.ledger.getTransaction(r.txid)).txid, r.txid);
        assert.equal((await b.ledger.getTransaction(r.txid)).txid, r.txid);
      }
      // The same identity registered on A and at once on B: one wins, on both ledgers alike.
      const race = await Promise.allSettled([
        a.ledger.submit({ type: 'KeyRegistered', body: registration('race@example.org') }),
        b.ledger.submit({ type: 'KeyRegistered', body: registration('race@example.org') }),
      ]);
      assert.equal(race.filter((r) => r.status === 'fulfilled').length, 1);
      await converged(a, b);
    } finally {
      await close(a, b);
    }
    for (const n of [a, b]) assert.equal(verifyLedgerData({ dataDir: n.dataDir }).ok, true);
  });

  it('an entry an hour ahead of a server is a fault there (never a block time an hour ahead for good); its writer, whose clock stepped back, goes on', async () => {
    const clock = manualClock(Date.now());
    const [a, b] = await pair(`/keyledger/t-clock-${process.pid}`, clock);
    try {
      clock.advance(60 * 60_000); // A's clock an hour ahead while it writes
      const r = await a.ledger.submit({ type: 'KeyRegistered', body: registration('ahead@example.org') });
      clock.set(Date.now()); // then stepped back
      await a.ledger.submit({ type: 'KeyRegistered', body: registration('after@example.org') });
      assert.equal(a.sequencer.status().fault, null, 'A reads what it wrote');
      assert.equal((await a.ledger.getTransaction(r.txid)).txid, r.txid);
      // B, with a true clock, does not read an entry an hour ahead of it (a fault, not a block time
      // an hour ahead for ever).
      await until(() => b.sequencer.status().fault !== null, 10_000);
      assert.match(b.sequencer.status().fault!, /beyond this server's clock and the allowed skew/);
    } finally {
      await close(a, b);
    }
  });

  it('a prefix orders one ledger: another ledger on the same prefix is refused', async () => {
    const prefix = `/keyledger/t0-${process.pid}`;
    const [a, b] = await pair(prefix);
    await close(a, b);
    const other = join(tempDir('kl-etcd-o-'), 'data');
    initEmbeddedLedger({ dataDir: other, passphrase: PASSPHRASE, name: 'another ledger' });
    const ledger = EmbeddedLedger.open({ dataDir: other, passphrase: PASSPHRASE });
    try {
      const sequencer = etcdSequencerFor({ dataDir: other, prefix, endpoints: cluster.endpoints });
      await assert.rejects(sequencer.bind(ledger.chainId), (err) => isKlError(err, 'KL_LEDGER_CORRUPT'));
    } finally {
      await ledger.close();
    }
  });

  it('kill -9 of the etcd leader during a stream of writes: every acknowledged write is on both ledgers', async () => {
    const [a, b] = await pair(`/keyledger/t2-${process.pid}`);
    const acked: string[] = [];
    let failed = 0;
    try {
      let stop = false;
      const writer = async (node: Node, name: string) => {
        for (let i = 0; !stop; i++) {
          try {
            const r = await node.ledger.submit({
              type: 'KeyRegistered',
              body: registration(`${name}${i}@example.org`),
            });
            acked.push(r.txid);
          } catch (err) {
            assert.ok(isKlError(err, 'KL_LEDGER_UNAVAILABLE'), String(err));
            failed++;
          }
        }
      };
      const writers = [writer(a, 'a'), writer(b, 'b'), writer(a, 'c'), writer(b, 'd')];
      await new Promise((r) => setTimeout(r, 1000));
      const leader = await cluster.waitForLeader();
      const before = acked.length;
      await cluster.kill9(leader);
      await new Promise((r) => setTimeout(r, 3000));
      stop = true;
      await Promise.all(writers);
      assert.ok(acked.length > before, 'writes go on after the leader died');
      await converged(a, b);
      for (const txid of acked) {
        await a.ledger.getTransaction(txid);
        await b.ledger.getTransaction(txid);
      }
      cluster.restart(leader);
      await cluster.waitForLeader();
    } finally {
      await close(a, b);
    }
    for (const n of [a, b]) assert.equal(verifyLedgerData({ dataDir: n.dataDir }).ok, true);
    console.log(`# ${acked.length} acknowledged, ${failed} refused during the election`);
  });

  it('a ledger closed while the other writes catches up from its stored position when reopened', async () => {
    const prefix = `/keyledger/t5-${process.pid}`;
    const [a, b] = await pair(prefix);
    let again: Node | undefined;
    try {
      await a.ledger.submit({ type: 'KeyRegistered', body: registration('first@example.org') });
      await converged(a, b);
      await close(a);
      const later = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          b.ledger.submit({ type: 'KeyRegistered', body: registration(`later${i}@example.org`) }),
        ),
      );
      const sequencer = etcdSequencerFor({ dataDir: a.dataDir, prefix, pollMs: 50 });
      const ledger = EmbeddedLedger.open({ dataDir: a.dataDir, passphrase: PASSPHRASE, sequencer });
      again = { ledger, sequencer, dataDir: a.dataDir };
      await sequencer.follow((batch) => ledger.ingest(batch), ledger.sequencerCursor());
      await converged(again, b);
      for (const r of later) await ledger.getTransaction(r.txid);
    } finally {
      await close(b, ...(again ? [again] : []));
    }
    assert.equal(verifyLedgerData({ dataDir: a.dataDir }).ok, true);
  });

  it('without a quorum, writes fail with KL_LEDGER_UNAVAILABLE; with it back, they go on', async () => {
    const [a, b] = await pair(`/keyledger/t3-${process.pid}`);
    const [m0, m1] = cluster.members;
    try {
      await cluster.waitForLeader();
      await cluster.kill9(m0!);
      await cluster.kill9(m1!);
      await assert.rejects(
        a.ledger.submit({ type: 'KeyRegistered', body: registration('lost@example.org') }),
        (err) => isKlError(err, 'KL_LEDGER_UNAVAILABLE'),
      );
      cluster.restart(m0!);
      cluster.restart(m1!);
      await cluster.waitForLeader();
      const r = await a.ledger.submit({ type: 'KeyRegistered', body: registration('back@example.org') });
      await converged(a, b);
      await b.ledger.getTransaction(r.txid);
    } finally {
      cluster.restart(m0!);
      cluster.restart(m1!);
      await close(a, b);
    }
  });

  it('a cluster that went back below what a ledger read is a fault: writes refused until the entry is back', async () => {
    const prefix = `/keyledger/t4-${process.pid}`;
    const [a, b] = await pair(prefix);
    try {
      await a.ledger.submit({ type: 'KeyRegistered', body: registration('one@example.org') });
      await converged(a, b);
      const endpoint = cluster.endpoints[0]!;
      const kv = async (path: string, body: unknown) =>
        (await (
          await fetch(`${endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) })
        ).json()) as { kvs?: Array<{ value: string }> };
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const entryKey = b64(`${prefix}/tx/${'0'.repeat(16)}`);
      const saved = (await kv('/v3/kv/range', { key: entryKey })).kvs![0]!.value;
      // As after a restore from a snapshot older than what the ledgers read: the entry and head gone.
      await kv('/v3/kv/deleterange', { key: b64(`${prefix}/`), range_end: b64(`${prefix}0`) });
      const end = Date.now() + 5000;
      while (!a.sequencer.status().fault && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      assert.match(a.sequencer.status().fault ?? '', /went back/);
      assert.equal(a.ledger.staleness(), Number.POSITIVE_INFINITY);
      await assert.rejects(
        a.ledger.submit({ type: 'KeyRegistered', body: registration('two@example.org') }),
        (err) => isKlError(err, 'KL_LEDGER_UNAVAILABLE'),
      );
      // The same entry back (and the head after it): the fault clears, writes go on.
      await kv('/v3/kv/put', { key: entryKey, value: saved });
      await kv('/v3/kv/put', { key: b64(`${prefix}/head`), value: b64('1') });
      const end2 = Date.now() + 5000;
      while (a.sequencer.status().fault && Date.now() < end2) await new Promise((r) => setTimeout(r, 50));
      assert.equal(a.sequencer.status().fault, null);
      await a.ledger.submit({ type: 'KeyRegistered', body: registration('three@example.org') });
      await converged(a, b);
    } finally {
      await close(a, b);
    }
  });
});
