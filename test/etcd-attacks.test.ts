/**
 * Anyone who can write to the etcd cluster attacks the etcd engine's follower with plain puts
 * through the JSON gateway (docs/deploy-etcd.md "What a cluster writer cannot do"), on a real
 * one-member cluster started here with a request limit large enough to store an oversized entry:
 * a key that looks like an entry key is skipped (two servers end on the same head, no fault); a
 * head that is no number, an entry missing, written over or put where the next write goes, an entry
 * timed far in the future or too large to read are faults (logins and writes refused, /readyz 503,
 * one alert, one log line), cleared when the cluster holds what the servers wrote again; an entry
 * with more transactions than a server writes is left out; a prefix nested in another deployment's
 * is refused; a server that finds its prefix bound to another ledger once the cluster answers fails
 * closed with an alert.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdSequencer } from '../src/ledger/etcd-sequencer.js';
import { isKlError } from '../src/protocol/errors.js';
import type { RunningServer } from '../src/server/app.js';
import { initEtcdNode, joinEtcdNode } from '../src/server/etcd-node.js';
import { PASSPHRASE, registration, rejection, tempDir, until } from './helpers.js';
import { readyz } from './support/chain-probes.js';
import { freePort } from './support/free-port.js';
import { startOn, testEtcdPrefix } from './support/server.js';

type Server = RunningServer & { dataDir: string };

/** A one-member etcd on loopback that takes requests up to 8 MiB (the default is 1.5 MiB). */
class Member {
  child: ChildProcess | null = null;
  readonly dataDir = join(tempDir('kl-etcd-attack-'), 'member');
  constructor(
    readonly url: string,
    private readonly peer: string,
  ) {}

  async start(): Promise<void> {
    this.child = spawn(
      'etcd',
      [
        ...['--name', 'm0', '--data-dir', this.dataDir],
        ...['--listen-client-urls', this.url, '--advertise-client-urls', this.url],
        ...['--listen-peer-urls', this.peer, '--initial-advertise-peer-urls', this.peer],
        ...['--initial-cluster', `m0=${this.peer}`, '--initial-cluster-state', 'new'],
        ...['--max-request-bytes', String(8 * 1024 * 1024), '--log-level', 'error', '--logger', 'zap'],
      ],
      { stdio: 'ignore' },
    );
    await until(async () => (await kv('/v3/kv/range', { key: b64('/') }).catch(() => null)) !== null);
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

let member: Member;
before(async () => {
  member = new Member(`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`);
  await member.start();
});
after(async () => {
  await member?.kill();
});

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

/** One POST to the gateway, as any cluster writer can send it. */
async function kv(path: string, body: unknown): Promise<{ kvs?: Array<{ value?: string }> }> {
  const r = await fetch(`${member.url}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as { kvs?: Array<{ value?: string }> };
}
const put = (key: string, value: string) => kv('/v3/kv/put', { key: b64(key), value: b64(value) });
const del = (key: string) => kv('/v3/kv/deleterange', { key: b64(key) });
const get = async (key: string) => unb64((await kv('/v3/kv/range', { key: b64(key) })).kvs?.[0]?.value);
const entryKey = (prefix: string, seq: number) => `${prefix}/tx/${String(seq).padStart(16, '0')}`;

/** A server on a prefix of its own, with its log lines. */
async function server(): Promise<{ srv: Server; prefix: string; lines: string[] }> {
  const dataDir = join(tempDir('kl-etcd-attack-srv-'), 'data');
  const prefix = testEtcdPrefix();
  await initEtcdNode({ dataDir, passphrase: PASSPHRASE, endpoints: [member.url], prefix });
  const lines: string[] = [];
  const srv = await startOn(dataDir, { log: (l) => lines.push(l) });
  return { srv, prefix, lines };
}

const chainAlerts = (srv: Server) =>
  srv.alerts
    .list()
    .filter((a) => a.kind === 'chain')
    .map((a) => a.detail.split(':')[0]);
const faultLines = (lines: string[]) => lines.filter((l) => /FAULT/.test(l));
const audit = (srv: Server, at: number) =>
  srv.ledger.submit({ type: 'AuditEvent', body: { event: 'attack', at } });
/** The last entry the server read (its chain position). */
const readTo = (srv: Server) => srv.ledger.chainStatus()?.read ?? -1;
const faultOf = (srv: Server) => srv.ledger.chainStatus()?.fault ?? null;

/** Asserts the server failed closed on `fault`: /readyz 503 naming it, writes refused, one alert and one log line. */
async function failedClosed(srv: Server, lines: string[], fault: RegExp): Promise<void> {
  await until(() => faultOf(srv) !== null, 5_000);
  assert.match(faultOf(srv)!, fault);
  const r = await readyz(srv);
  assert.equal(r.status, 503);
  assert.match(r.body.chain.fault ?? '', fault);
  const refused = await rejection(
    srv.ledger.submit({ type: 'KeyRegistered', body: registration('no@example.org') }),
  );
  assert.equal((refused as { code?: string }).code, 'KL_LEDGER_UNAVAILABLE');
  assert.deepEqual(chainAlerts(srv), ['chain fault']);
  assert.equal(faultLines(lines).length, 1, faultLines(lines).join('\n'));
}

/** Asserts the fault cleared and the server writes again. */
async function recovered(srv: Server): Promise<void> {
  await until(() => faultOf(srv) === null, 5_000);
  // Repairing by hand can pass through another fault on the way (a key deleted, then put back): a
  // fault alert per change, then one cleared.
  const alerts = chainAlerts(srv);
  assert.equal(alerts.at(-1), 'chain fault cleared');
  assert.deepEqual(new Set(alerts.slice(0, -1)), new Set(['chain fault']));
  await srv.ledger.submit({ type: 'KeyRegistered', body: registration(`ok-${Date.now()}@example.org`) });
  assert.equal((await readyz(srv)).status, 200);
}

describe('a cluster writer against the etcd follower', () => {
  it('keys that look like entry keys are skipped: two servers read the real entries to the same head, no fault', async () => {
    const { srv: a, prefix, lines: linesA } = await server();
    let b: Server | undefined;
    try {
      await audit(a, 0);
      await audit(a, 1);
      const head = Number(await get(`${prefix}/head`));
      await until(() => readTo(a) === head - 1, 5_000);
      // 17 digits: sorts right after entry 0 and reads as 1 to a parser of numbers.
      const lookalike = `${prefix}/tx/${'0'.repeat(16)}1`;
      await put(lookalike, JSON.stringify({ time: Date.now(), texts: [] }));
      // Under the slot of A's next entry, where A reads next.
      const nested = `${entryKey(prefix, head)}/tx/${'0'.repeat(16)}`;
      await put(nested, JSON.stringify({ time: Date.now(), texts: [] }));
      await put(`${prefix}/tx/x`, 'not an entry');
      await audit(a, 2);
      await audit(a, 3);
      // B joins now and reads from entry 0, past the lookalike.
      const dataDir = join(tempDir('kl-etcd-attack-b-'), 'data');
      await joinEtcdNode({
        dataDir,
        passphrase: PASSPHRASE,
        endpoints: [member.url],
        genesis: a.ledger.genesis,
        name: 'kl2',
      });
      const linesB: string[] = [];
      b = await startOn(dataDir, { log: (l) => linesB.push(l) });
      const bb = b;
      await until(async () => {
        const [ca, cb] = [await a.ledger.checkpoint(), await bb.ledger.checkpoint()];
        return (
          readTo(bb) === readTo(a) && !!ca && ca.hash === cb?.hash && ca.header.height === cb.header.height
        );
      }, 10_000);
      for (const srv of [a, b]) {
        assert.equal(faultOf(srv), null);
        assert.equal((await readyz(srv)).status, 200);
        assert.deepEqual(chainAlerts(srv), []);
      }
      const ignored = (ls: string[], key: string) =>
        ls.filter((l) => l.includes('ignored') && l.includes(key));
      assert.equal(ignored(linesB, lookalike).length, 1, 'B logs the lookalike once');
      assert.equal(ignored(linesA, nested).length, 1, 'A logs the key under its next entry once');
      assert.equal(ignored(linesA, lookalike).length, 0, 'A had read past it');
    } finally {
      await a.close();
      await b?.close();
    }
  });

  it('a head that holds no sequence number is a fault, cleared when the head is back', async () => {
    const { srv, prefix, lines } = await server();
    try {
      await audit(srv, 0);
      const head = await get(`${prefix}/head`);
      await put(`${prefix}/head`, 'abc');
      await failedClosed(srv, lines, /head key holds no sequence number \("abc"\)/);
      await put(`${prefix}/head`, head);
      await recovered(srv);
    } finally {
      await srv.close();
    }
  });

  it('an entry put where the next write goes (the head left alone) is never written over: a fault until it is deleted', async () => {
    const { srv, prefix, lines } = await server();
    try {
      await audit(srv, 0);
      const slot = entryKey(prefix, Number(await get(`${prefix}/head`)));
      const planted = JSON.stringify({ time: Date.now(), texts: ['planted'] });
      await put(slot, planted);
      const refused = await rejection(
        srv.ledger.submit({ type: 'KeyRegistered', body: registration('x@example.org') }),
      );
      assert.equal((refused as { code?: string }).code, 'KL_LEDGER_UNAVAILABLE');
      assert.match(refused.message, /exists already beyond the etcd head/);
      assert.equal(await get(slot), planted, 'the planted value is not written over');
      await failedClosed(srv, lines, /exists beyond the etcd head/);
      await del(slot);
      await recovered(srv);
    } finally {
      await srv.close();
    }
  });

  it('an entry written over is a fault: the last one read (replaced), and one not read yet (version 2)', async () => {
    const { srv, prefix, lines } = await server();
    try {
      await audit(srv, 0);
      const last = entryKey(prefix, readTo(srv));
      const value = await get(last);
      await put(last, JSON.stringify({ time: Date.now(), texts: [] }));
      await failedClosed(srv, lines, /is not the entry this server read: the cluster's data was replaced/);
      // Deleted and put back as it was (version 1 again), as a restore would: cleared.
      await del(last);
      await put(last, value);
      await recovered(srv);

      // The next entry written twice before the head moves to it: a fault, nothing read from it.
      const head = Number(await get(`${prefix}/head`));
      const height = (await srv.ledger.checkpoint())?.header.height;
      await put(entryKey(prefix, head), JSON.stringify({ time: Date.now(), texts: [] }));
      await put(entryKey(prefix, head), JSON.stringify({ time: Date.now(), texts: ['other'] }));
      await put(`${prefix}/head`, String(head + 1));
      await until(() => /written over \(version 2\)/.test(faultOf(srv) ?? ''), 5_000);
      assert.equal((await srv.ledger.checkpoint())?.header.height, height, 'nothing read from it');
      assert.equal(readTo(srv), head - 1);
    } finally {
      await srv.close();
    }
  });

  it('an entry missing below the head is a fault, cleared when it is back', async () => {
    const { srv, prefix, lines } = await server();
    try {
      await audit(srv, 0);
      const head = Number(await get(`${prefix}/head`));
      // A gap: the head moved past an entry nobody wrote, then one entry after it.
      await put(entryKey(prefix, head + 1), JSON.stringify({ time: Date.now(), texts: [] }));
      await put(`${prefix}/head`, String(head + 2));
      await failedClosed(
        srv,
        lines,
        new RegExp(`entry ${head} is missing from the etcd cluster below its head`),
      );
      await put(entryKey(prefix, head), JSON.stringify({ time: Date.now(), texts: [] }));
      await recovered(srv);
      assert.ok(readTo(srv) >= head + 1, 'both entries read');
    } finally {
      await srv.close();
    }
  });

  it('an entry timed far in the future is not read until the clock reaches it: a fault, and block times stay as written', async () => {
    const { srv, prefix, lines } = await server();
    try {
      await audit(srv, 0);
      const head = Number(await get(`${prefix}/head`));
      const future = Date.UTC(3000, 0, 1);
      await put(entryKey(prefix, head), JSON.stringify({ time: future, texts: [] }));
      await put(`${prefix}/head`, String(head + 1));
      await failedClosed(srv, lines, /timed 3000-01-01T00:00:00.000Z, beyond this server's clock/);
      assert.equal(readTo(srv), head - 1, 'not read');
      // A follower whose clock reached that time reads it with the time written, like every other.
      const times: number[] = [];
      const later = new EtcdSequencer({
        endpoints: [member.url],
        prefix,
        watch: false,
        now: () => future + 1,
      });
      await later.follow((batch) => times.push(batch.time), null);
      await later.stop();
      assert.equal(times.length, head + 1);
      assert.equal(times.at(-1), future);
      // Deleted and written again with a present time: read, and later blocks are timed now.
      await del(entryKey(prefix, head));
      await put(entryKey(prefix, head), JSON.stringify({ time: Date.now(), texts: [] }));
      await recovered(srv);
      const block = await srv.ledger.checkpoint();
      assert.ok(block && block.header.time < Date.now() + 60_000, `block time ${block?.header.time}`);
    } finally {
      await srv.close();
    }
  });

  it('an entry too large to read is a fault read in bounded answers; one with too many transactions is left out', async () => {
    const { srv, prefix, lines } = await server();
    try {
      await audit(srv, 0);
      let head = Number(await get(`${prefix}/head`));
      // 257 transactions (a server writes 256 at most): an empty block, logged.
      await put(entryKey(prefix, head), JSON.stringify({ time: Date.now(), texts: Array(257).fill('t') }));
      await put(`${prefix}/head`, String(++head));
      await until(() => readTo(srv) === head - 1, 5_000);
      assert.ok(
        lines.some((l) => /left out: the entry holds 257 transactions; a server writes 256 at most/.test(l)),
      );
      assert.equal(faultOf(srv), null);
      // Four entries of 1.4 MiB (7.5 MiB of answer in base64 with a big one after them): the range
      // is read in smaller answers; then an entry of 4 MiB: a fault, never held in memory whole.
      const big = 'x'.repeat(1.4 * 1024 * 1024);
      for (let i = 0; i < 4; i++)
        await put(entryKey(prefix, head + i), JSON.stringify({ time: Date.now(), texts: [big] }));
      await put(
        entryKey(prefix, head + 4),
        JSON.stringify({ time: Date.now(), texts: ['x'.repeat(4 * 1024 * 1024)] }),
      );
      await put(`${prefix}/head`, String(head + 5));
      await failedClosed(
        srv,
        lines,
        new RegExp(`entry ${head + 4} in the etcd cluster is over 2097152 bytes`),
      );
      assert.equal(readTo(srv), head + 3, 'the entries before it read');
      await del(entryKey(prefix, head + 4));
      await put(entryKey(prefix, head + 4), JSON.stringify({ time: Date.now(), texts: [] }));
      await recovered(srv);
    } finally {
      await srv.close();
    }
  });

  it('a prefix nested in another deployment’s, or holding another’s, is refused before anything is made', async () => {
    const { srv, prefix } = await server();
    try {
      for (const nested of [
        `${prefix}/tx/0000000000000001`,
        `${prefix}/head`,
        prefix.split('/').slice(0, 2).join('/'),
      ]) {
        const dataDir = join(tempDir('kl-etcd-nested-'), 'data');
        const err = await rejection(
          initEtcdNode({ dataDir, passphrase: PASSPHRASE, endpoints: [member.url], prefix: nested }),
        );
        assert.ok(isKlError(err, 'KL_CONFIG_INVALID'), `${nested}: ${err.message}`);
        assert.match(err.message, /nested in|holds keys/);
        assert.equal(existsSync(dataDir), false, 'nothing made');
      }
      assert.equal(faultOf(srv), null);
    } finally {
      await srv.close();
    }
  });

  // Last: it kills the member.
  it('a prefix found bound to another ledger once the cluster answers (after a start without it) fails closed with an alert', async () => {
    const { srv: first, prefix } = await server();
    const dataDir = first.dataDir;
    await first.close();
    await put(`${prefix}/chain`, 'f'.repeat(64));
    await member.kill();
    const lines: string[] = [];
    const srv = await startOn(dataDir, { log: (l) => lines.push(l) });
    try {
      assert.ok(lines.some((l) => /cannot check which ledger the etcd prefix .* orders yet/.test(l)));
      await member.start();
      await until(() => faultOf(srv) !== null, 10_000);
      assert.match(faultOf(srv)!, /NOT following the etcd cluster: .*orders another ledger \(ffffffff/);
      const r = await readyz(srv);
      assert.equal(r.status, 503);
      assert.match(r.body.chain.fault ?? '', /NOT following/);
      assert.deepEqual(chainAlerts(srv), ['chain fault']);
      assert.equal(faultLines(lines).length, 1);
    } finally {
      await srv.close();
    }
  });
});
