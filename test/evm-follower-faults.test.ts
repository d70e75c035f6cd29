/**
 * The EVM follower against a lying chain node and a tampered position, and the outbox's refusals
 * (docs/deploy-besu.md "The follower"; docs/reliability.md "The chain away"), on anvil behind a
 * JSON-RPC proxy that hides, repeats or reorders the contract's `KeyledgerTx` events in its
 * `eth_getLogs` answers. The contract numbers those events (`seq`): a gap, a repeat or fewer than its
 * `txCount` is a chain fault — logins and writes refused, /readyz 503, one alert and one log line —
 * and nothing past it is applied; the fault clears once the node answers honestly, and what it hid is
 * then read once. The stored position `BLOCK:HASH:SEQ` with a wrong count is a fault; older forms
 * (`BLOCK`, `BLOCK:HASH`) are completed from the logs without re-reading anything. A queued write the
 * chain refuses is kept with the reason, counted (/readyz, /metrics) and never sent again; a send the
 * node still holds is not repeated; an envelope on the chain twice is applied once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Contract, Interface, Wallet } from 'ethers';
import { connect } from '../src/client/session.js';
import { ChainOutbox } from '../src/ledger/chain-outbox.js';
import { dataPaths } from '../src/ledger/data-dir.js';
import {
  deployRegistry,
  EvmSequencer,
  evmProvider,
  parseCursor,
  registryArtifact,
} from '../src/ledger/evm-sequencer.js';
import type { EvmEngineInfo } from '../src/ledger/genesis.js';
import { SigningKey } from '../src/ledger/signing-keys.js';
import { signTransaction, txidOf } from '../src/ledger/transactions.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { type RunningServer, type ServerOptions, startServer } from '../src/server/app.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { ANVIL_FUNDER_KEY, type Anvil, anvilsStoppedAfter } from './support/anvil.js';
import { chainAlerts, metric, readyz } from './support/chain-probes.js';
import { evmReplica } from './support/evm-replica.js';
import { type RpcLog, type RpcProxy, rpcProxy } from './support/rpc-proxy.js';
import { CLIENT_PASSPHRASE, evmTestServer, registeredClient } from './support/server.js';

const chain = anvilsStoppedAfter();
let anvilStarted: Promise<Anvil> | undefined;
/** The file's anvil (each test deploys a contract of its own on it). */
const sharedAnvil = () => (anvilStarted ??= chain());
const proxies: RpcProxy[] = [];
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  for (const p of proxies) await p.close();
});

/** A proxy in front of `anvil`, closed after the file. */
async function proxyTo(anvil: Anvil): Promise<RpcProxy> {
  const p = await rpcProxy(anvil.url);
  proxies.push(p);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond` holds (polling), or fails naming `what`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** Waits until the follower behind `proxy` has polled `n` more times (each poll asks the head). */
async function polls(proxy: RpcProxy, n: number): Promise<void> {
  const from = proxy.count('eth_blockNumber');
  await until(`${n} more polls`, () => proxy.count('eth_blockNumber') >= from + n);
}

const portOf = (srv: RunningServer) => Number(new URL(srv.url).port);

/** Restarts a server over `dataDir` on `port` (the address its clients pinned). */
function restart(dataDir: string, port: number, o: Partial<ServerOptions> = {}) {
  return startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port, evm: { pollMs: 20 }, ...o });
}

const ABI = new Interface(registryArtifact().abi);
const TX_TOPIC = ABI.getEvent('KeyledgerTx')!.topicHash;
const isTx = (l: RpcLog) => l.topics[0] === TX_TOPIC;
const seqOf = (l: RpcLog) => Number(BigInt(l.topics[1]!));

/** The contract's `txCount` now, asked of the node itself (not through any proxy). */
async function txCount(anvil: Anvil, engine: EvmEngineInfo): Promise<number> {
  const data = ABI.encodeFunctionData('txCount');
  return Number(BigInt((await anvil.rpc('eth_call', [{ to: engine.contract, data }, 'latest'])) as string));
}

/** The follower's stored position, parsed (a complete one: block, hash, count). */
function cursorOf(srv: RunningServer) {
  const c = parseCursor(srv.ledger.sequencerCursor());
  assert.ok(c && c.hash !== null && c.seq !== null, 'a complete position is stored');
  return c as { number: number; hash: string; seq: number };
}

/** Waits until `srv` has read everything on the chain and sent everything it queued. */
async function settled(srv: RunningServer, anvil: Anvil, engine: EvmEngineInfo): Promise<void> {
  await srv.ledger.drain();
  await until('the follower has read the chain to its end', async () => {
    const st = srv.ledger.chainStatus()!;
    if (st.queued !== 0 || st.lag !== 0 || st.fault !== null) return false;
    return cursorOf(srv).seq === (await txCount(anvil, engine));
  });
}

const height = async (srv: RunningServer) => (await srv.ledger.checkpoint())!.header.height;

/** A first server of a new deployment on `anvil` whose follower talks to the chain through a proxy. */
async function serverBehindProxy(anvil: Anvil) {
  const proxy = await proxyTo(anvil);
  const lines: string[] = [];
  const o: Partial<ServerOptions> = { evm: { rpcUrl: proxy.url, pollMs: 20 }, log: (l) => lines.push(l) };
  const srv = await evmTestServer(anvil, o);
  closers.push(() => srv.close());
  const replica = evmReplica(srv.dataDir, anvil.url, srv.ledger.chainId);
  closers.push(() => replica.stop());
  return { proxy, srv, lines, o, replica, engine: replica.engine };
}

/** Two registrations by `replica` mined in one block (automine paused), their txids in chain order. */
async function twoInOneBlock(anvil: Anvil, replica: ReturnType<typeof evmReplica>, ids: [string, string]) {
  const writes = ids.map((id) => replica.registration(id));
  await anvil.rpc('evm_setAutomine', [false]);
  try {
    const sent = writes.map((w) => replica.send(w));
    await until('both are in the pool', async () => {
      const pool = (await anvil.rpc('txpool_status')) as { pending: string };
      return Number(pool.pending) >= 2;
    });
    await anvil.rpc('evm_mine');
    await Promise.all(sent);
  } finally {
    await anvil.rpc('evm_setAutomine', [true]);
  }
  return writes;
}

const refusedForFault = (e: Error & { code?: string }) => {
  assert.equal(e.code, 'KL_LEDGER_UNAVAILABLE');
  return true;
};

describe('EVM follower: the contract numbering of KeyledgerTx (anvil behind a lying JSON-RPC proxy)', () => {
  it('a node that hides one event (a gap) is a fault: nothing past it applied, logins refused, /readyz 503, one alert and one line; honest again, it clears and reads both once', async () => {
    const anvil = await sharedAnvil();
    const { proxy, srv, lines, replica, engine } = await serverBehindProxy(anvil);
    const home = await registeredClient(srv, 'before@example.org');
    await settled(srv, anvil, engine);
    const before = cursorOf(srv);
    const heightBefore = await height(srv);
    // The node hides the first of the next two events: the second comes where the first was due.
    const hidden = before.seq;
    proxy.rewrite('eth_getLogs', (logs) =>
      (logs as RpcLog[]).filter((l) => !(isTx(l) && seqOf(l) === hidden)),
    );
    const [gone, past] = await twoInOneBlock(anvil, replica, ['hidden@example.org', 'past@example.org']);
    await until('the fault is seen', () => srv.ledger.chainStatus()!.fault !== null, 5_000);
    const fault = srv.ledger.chainStatus()!.fault!;
    assert.match(fault, new RegExp(`number ${hidden + 1} .* where number ${hidden} comes next: it hides`));
    // Nothing of the range is applied: not the event after the gap either, and the position stays.
    assert.equal((await srv.ledger.getKeyRecord('hidden@example.org')).record, null);
    assert.equal((await srv.ledger.getKeyRecord('past@example.org')).record, null);
    assert.deepEqual(cursorOf(srv), before);
    assert.equal(await height(srv), heightBefore);
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), refusedForFault);
    await assert.rejects(registeredClient(srv, 'during@example.org'), refusedForFault);
    const r = await readyz(srv);
    assert.equal(r.status, 503);
    assert.equal(r.body.ready, false);
    assert.equal(r.body.chain.fault, fault);
    assert.equal(r.body.chain.read, before.number);
    assert.equal(await metric(srv, 'keyledger_chain_fault'), 1);
    await polls(proxy, 20);
    assert.deepEqual(
      chainAlerts(srv),
      [`chain fault: ${fault}`],
      'one alert for the change, not one per poll',
    );
    assert.equal(lines.filter((l) => /EVM follower: FAULT .*hides events/.test(l)).length, 1);
    // The node answers honestly again: the fault clears by itself and both events are read, once.
    proxy.rewrite('eth_getLogs', null);
    await until('the fault clears', () => srv.ledger.chainStatus()!.ok);
    assert.deepEqual(
      chainAlerts(srv).map((d) => d.split(':')[0]),
      ['chain fault', 'chain fault cleared'],
    );
    await settled(srv, anvil, engine);
    for (const w of [gone!, past!]) assert.equal((await srv.ledger.getTransaction(w.txid)).txid, w.txid);
    assert.equal(cursorOf(srv).seq, hidden + 2);
    assert.deepEqual(
      lines.filter((l) => l.includes(gone!.txid) || l.includes(past!.txid)),
      [],
      'nothing read twice',
    );
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    assert.equal((await readyz(srv)).status, 200);
    await srv.close();
  });

  it('a node that hides the last event (no gap to see) is a fault by the contract count at the block read', async () => {
    const anvil = await sharedAnvil();
    const { proxy, srv, replica, engine } = await serverBehindProxy(anvil);
    await replica.send(replica.registration('first@example.org'));
    await settled(srv, anvil, engine);
    const before = cursorOf(srv);
    proxy.rewrite('eth_getLogs', (logs) =>
      (logs as RpcLog[]).filter((l) => !(isTx(l) && seqOf(l) === before.seq)),
    );
    await replica.send(replica.registration('last@example.org'));
    await until('the fault is seen', () => srv.ledger.chainStatus()!.fault !== null, 5_000);
    assert.match(
      srv.ledger.chainStatus()!.fault!,
      new RegExp(
        `counts ${before.seq + 1} keyledger transactions at block \\d+, but the chain node served events of ${before.seq}: it hides`,
      ),
    );
    assert.deepEqual(cursorOf(srv), before);
    assert.equal((await srv.ledger.getKeyRecord('last@example.org')).record, null);
    assert.equal((await readyz(srv)).status, 503);
    proxy.rewrite('eth_getLogs', null);
    await until('the fault clears', () => srv.ledger.chainStatus()!.ok);
    assert.notEqual((await srv.ledger.getKeyRecord('last@example.org')).record, null);
    await srv.close();
  });

  it('a node that replays an event is a fault that survives a restart; honest again, it clears and the event is applied once', async () => {
    const anvil = await sharedAnvil();
    const { proxy, srv, lines, o, replica, engine } = await serverBehindProxy(anvil);
    const home = await registeredClient(srv, 'replay@example.org');
    await settled(srv, anvil, engine);
    const before = cursorOf(srv);
    const heightBefore = await height(srv);
    proxy.rewrite('eth_getLogs', (logs) =>
      (logs as RpcLog[]).flatMap((l) => (isTx(l) && seqOf(l) === before.seq ? [l, { ...l }] : [l])),
    );
    const twice = replica.registration('twice@example.org');
    await replica.send(twice);
    await until('the fault is seen', () => srv.ledger.chainStatus()!.fault !== null, 5_000);
    assert.match(
      srv.ledger.chainStatus()!.fault!,
      new RegExp(`number ${before.seq} .* where number ${before.seq + 1} comes next: it replays`),
    );
    assert.equal((await srv.ledger.getKeyRecord('twice@example.org')).record, null);
    assert.equal(await height(srv), heightBefore);
    // Restarted while the node still lies: the first read, during start, finds the fault again.
    await srv.close();
    const again = await restart(srv.dataDir, portOf(srv), o);
    closers.push(() => again.close());
    assert.match(again.ledger.chainStatus()!.fault ?? '', /it replays/, 'faulted from its first read');
    assert.deepEqual(cursorOf(again), before);
    assert.equal((await readyz(again)).status, 503);
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), refusedForFault);
    proxy.rewrite('eth_getLogs', null);
    await until('the fault clears', () => again.ledger.chainStatus()!.ok);
    await settled(again, anvil, engine);
    assert.equal((await again.ledger.getTransaction(twice.txid)).txid, twice.txid);
    assert.equal(cursorOf(again).seq, before.seq + 1);
    assert.deepEqual(
      lines.filter((l) => l.includes(twice.txid)),
      [],
      'read once',
    );
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await again.close();
    const check = verifyLedgerData({ dataDir: srv.dataDir });
    assert.equal(check.ok, true, check.problem?.reason);
  });

  it('logs answered out of order are read in chain order; a node that swaps two events (the later one where the earlier was) is a fault', async () => {
    const anvil = await sharedAnvil();
    const { proxy, srv, replica, engine } = await serverBehindProxy(anvil);
    await settled(srv, anvil, engine);
    // The answer's array in reverse order, every log with its own position: the same chain.
    proxy.rewrite('eth_getLogs', (logs) => [...(logs as RpcLog[])].reverse());
    const [a, b] = await twoInOneBlock(anvil, replica, ['order1@example.org', 'order2@example.org']);
    await settled(srv, anvil, engine);
    assert.equal(srv.ledger.chainStatus()!.fault, null);
    for (const w of [a!, b!]) assert.equal((await srv.ledger.getTransaction(w.txid)).txid, w.txid);
    // Now the node says the later event came first: it moves each event to the other's position.
    const before = cursorOf(srv);
    const POSITION = ['blockNumber', 'blockHash', 'transactionHash', 'transactionIndex', 'logIndex'] as const;
    proxy.rewrite('eth_getLogs', (result) => {
      const logs = (result as RpcLog[]).map((l) => ({ ...l }));
      const x = logs.find((l) => isTx(l) && seqOf(l) === before.seq);
      const y = logs.find((l) => isTx(l) && seqOf(l) === before.seq + 1);
      if (x && y)
        for (const k of POSITION) {
          const t = x[k];
          x[k] = y[k];
          y[k] = t;
        }
      return logs;
    });
    await twoInOneBlock(anvil, replica, ['swap1@example.org', 'swap2@example.org']);
    await until('the fault is seen', () => srv.ledger.chainStatus()!.fault !== null, 5_000);
    assert.match(
      srv.ledger.chainStatus()!.fault!,
      new RegExp(`number ${before.seq + 1} .* where number ${before.seq} comes next`),
    );
    assert.equal((await srv.ledger.getKeyRecord('swap1@example.org')).record, null);
    assert.equal((await srv.ledger.getKeyRecord('swap2@example.org')).record, null);
    assert.deepEqual(cursorOf(srv), before);
    proxy.rewrite('eth_getLogs', null);
    await until('the fault clears', () => srv.ledger.chainStatus()!.ok);
    await settled(srv, anvil, engine);
    assert.notEqual((await srv.ledger.getKeyRecord('swap2@example.org')).record, null);
    await srv.close();
  });

  it('an envelope put on the chain twice (two chain transactions, numbered in turn) is applied once', async () => {
    const anvil = await sharedAnvil();
    const { srv, lines, replica, engine } = await serverBehindProxy(anvil);
    await replica.send(replica.registration('first@example.org'));
    await settled(srv, anvil, engine);
    const before = cursorOf(srv);
    const heightBefore = await height(srv);
    const w = replica.registration('dup@example.org');
    await replica.send(w);
    await replica.send(w);
    await settled(srv, anvil, engine);
    assert.equal(srv.ledger.chainStatus()!.fault, null, 'the contract numbered both: no fault');
    assert.equal(cursorOf(srv).seq, before.seq + 2);
    assert.equal((await srv.ledger.getTransaction(w.txid)).txid, w.txid);
    assert.equal(await height(srv), heightBefore + 1, 'one block for the registration, none for its copy');
    assert.equal(lines.filter((l) => l.includes(`chain transaction ${w.txid} left out`)).length, 1);
    await srv.close();
    const check = verifyLedgerData({ dataDir: srv.dataDir });
    assert.equal(check.ok, true, check.problem?.reason);
  });
});

/** Rewrites the follower's stored position in a stopped server's ledger database. */
function storeCursor(dataDir: string, cursor: string): void {
  const db = new Database(dataPaths(dataDir).db);
  try {
    assert.equal(db.prepare("UPDATE meta SET value = ? WHERE key = 'evm-cursor'").run(cursor).changes, 1);
  } finally {
    db.close();
  }
}

describe('EVM follower: the stored position BLOCK:HASH:SEQ (anvil)', () => {
  it('a stored count changed by hand is a fault at the first read after it (more: invented events; fewer: hidden ones)', async () => {
    const anvil = await sharedAnvil();
    const lines: string[] = [];
    const srv = await evmTestServer(anvil, { log: (l) => lines.push(l) });
    closers.push(() => srv.close());
    const home = await registeredClient(srv, 'cursor@example.org');
    const replica = evmReplica(srv.dataDir, anvil.url, srv.ledger.chainId);
    closers.push(() => replica.stop());
    await settled(srv, anvil, replica.engine);
    const good = cursorOf(srv);
    await srv.close();
    const port = portOf(srv);
    const text = (seq: number) => `${good.number}:${good.hash}:${seq}`;
    // One more than read: a block after it is on the chain, so the read during start finds it.
    storeCursor(srv.dataDir, text(good.seq + 1));
    await anvil.rpc('anvil_mine', ['0x1']);
    const up = await restart(srv.dataDir, port, { log: (l) => lines.push(l) });
    closers.push(() => up.close());
    assert.match(
      up.ledger.chainStatus()!.fault ?? '',
      new RegExp(`counts ${good.seq} keyledger transactions .* served events of ${good.seq + 1}: it invents`),
    );
    assert.equal((await readyz(up)).status, 503);
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), refusedForFault);
    assert.equal(up.ledger.sequencerCursor(), text(good.seq + 1), 'the position does not move past it');
    await up.close();
    // One fewer: no block after it yet, so no fault until the next block is read.
    storeCursor(srv.dataDir, text(good.seq - 1));
    const down = await restart(srv.dataDir, port, { log: (l) => lines.push(l) });
    closers.push(() => down.close());
    await anvil.rpc('anvil_mine', ['0x1']);
    await until('the fault is seen', () => down.ledger.chainStatus()!.fault !== null, 5_000);
    assert.match(
      down.ledger.chainStatus()!.fault!,
      new RegExp(`counts ${good.seq} .* served events of ${good.seq - 1}: it hides`),
    );
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), refusedForFault);
    await down.close();
    // The true position back: it follows again.
    storeCursor(srv.dataDir, text(good.seq));
    const fixed = await restart(srv.dataDir, port);
    closers.push(() => fixed.close());
    assert.equal(fixed.ledger.chainStatus()!.fault, null);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await fixed.close();
  });

  for (const form of ['BLOCK', 'BLOCK:HASH'] as const)
    it(`a position in the older form ${form} is completed from the logs and stored in full; nothing is read twice and following goes on`, async () => {
      const anvil = await sharedAnvil();
      const lines: string[] = [];
      const log = (l: string) => lines.push(l);
      const srv = await evmTestServer(anvil, { log });
      closers.push(() => srv.close());
      const home = await registeredClient(srv, `old-${form.length}@example.org`);
      const replica = evmReplica(srv.dataDir, anvil.url, srv.ledger.chainId);
      closers.push(() => replica.stop());
      await replica.send(replica.registration(`old-second-${form.length}@example.org`));
      await settled(srv, anvil, replica.engine);
      const full = srv.ledger.sequencerCursor()!;
      const good = cursorOf(srv);
      assert.ok(good.seq >= 2, 'events before the position to count');
      const heightBefore = await height(srv);
      await srv.close();
      storeCursor(srv.dataDir, form === 'BLOCK' ? String(good.number) : `${good.number}:${good.hash}`);
      const linesBefore = lines.length;
      const up = await restart(srv.dataDir, portOf(srv), { log });
      closers.push(() => up.close());
      assert.equal(up.ledger.sequencerCursor(), full, 'completed at start, with the count from the logs');
      assert.equal(up.ledger.chainStatus()!.fault, null);
      assert.equal(await height(up), heightBefore, 'no block re-derived');
      // Following goes on from it: a new event is read with the right number.
      const next = replica.registration(`old-next-${form.length}@example.org`);
      await replica.send(next);
      await settled(up, anvil, replica.engine);
      assert.equal(up.ledger.chainStatus()!.fault, null);
      assert.equal((await up.ledger.getTransaction(next.txid)).txid, next.txid);
      assert.equal(cursorOf(up).seq, good.seq + 1);
      assert.deepEqual(
        lines.slice(linesBefore).filter((l) => /left out|FAULT/.test(l)),
        [],
        'nothing re-read (a re-read event is left out as a duplicate), no fault',
      );
      const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      await s.close();
      await up.close();
      const check = verifyLedgerData({ dataDir: srv.dataDir });
      assert.equal(check.ok, true, check.problem?.reason);
    });
});

const GWEI = 1_000_000_000n;

/**
 * Sets how long a queued write handed to the node waits before it is checked again (its
 * `resendAfterMs`): on the sequencer, and on its outbox sender when it keeps one.
 */
function resendAfter(sequencer: EvmSequencer, ms: number): void {
  const s = sequencer as unknown as { sender: { resendAfterMs: number } | null };
  assert.ok(s.sender, 'the sequencer has its outbox');
  s.sender.resendAfterMs = ms;
}

/**
 * A sequencer with a durable outbox over a fresh contract whose governor is anvil's funder and whose
 * registrar is a fresh account, talking to the chain through a proxy; `read` counts the envelopes the
 * follower read back, by txid.
 */
async function outboxRig(anvil: Anvil) {
  const proxy = await proxyTo(anvil);
  const registrar = Wallet.createRandom();
  await anvil.rpc('anvil_setBalance', [registrar.address, '0x56bc75e2d63100000']);
  const engine = await deployRegistry({
    rpcUrl: anvil.url,
    privateKey: ANVIL_FUNDER_KEY,
    registrar: registrar.address,
  });
  const govProvider = evmProvider(anvil.url);
  const governor = new Contract(engine.contract, ABI, new Wallet(ANVIL_FUNDER_KEY, govProvider));
  const outboxFile = join(tempDir('kl-outbox-'), 'chain-outbox.sqlite');
  const outbox = new ChainOutbox(outboxFile);
  const lines: string[] = [];
  const refusals: string[] = [];
  const sequencer = new EvmSequencer({
    rpcUrl: proxy.url,
    engine,
    privateKey: registrar.privateKey,
    pollMs: 20,
    log: (l) => lines.push(l),
    onRefused: (txid) => refusals.push(txid),
  });
  const read = new Map<string, number>();
  sequencer.useOutbox(outbox, async (txid) => read.has(txid));
  await sequencer.follow((batch) => {
    for (const t of batch.texts) {
      const txid = txidOf(JSON.parse(t));
      read.set(txid, (read.get(txid) ?? 0) + 1);
    }
  }, null);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await sequencer.stop();
    outbox.close();
    govProvider.destroy();
  };
  closers.push(stop);
  const signer = SigningKey.generate();
  /** A signed audit event (its canonical text and txid), as the server writes one. */
  const auditEvent = (event: string) => {
    const envelope = signTransaction({
      chain: 'kl-outbox-test',
      intent: { type: 'AuditEvent', body: { event, at: Date.now() } },
      signer,
      now: Date.now(),
      nonce: `${event}-${Date.now()}`,
    });
    return { envelope, text: canonicalize(envelope), txid: txidOf(envelope) };
  };
  /** The governor stops the registrar's account (sent with a higher tip: mined first in a block). */
  const removeRegistrar = () =>
    governor.getFunction('setRegistrar')(registrar.address, false, {
      maxPriorityFeePerGas: 100n * GWEI,
      maxFeePerGas: 200n * GWEI,
    }) as Promise<{ hash: string; wait: () => Promise<unknown> }>;
  return {
    proxy,
    engine,
    outbox,
    outboxFile,
    sequencer,
    lines,
    refusals,
    read,
    auditEvent,
    removeRegistrar,
    stop,
  };
}

/** The hashes of the chain transactions sent through `proxy`, in order. */
function sentHashes(proxy: RpcProxy): string[] {
  const hashes: string[] = [];
  proxy.rewrite('eth_sendRawTransaction', (hash) => {
    hashes.push(hash as string);
    return hash;
  });
  return hashes;
}

/** Whether the node's pool holds the transaction `hash`. */
async function inPool(anvil: Anvil, hash: string): Promise<boolean> {
  const tx = (await anvil.rpc('eth_getTransactionByHash', [hash])) as { blockNumber: string | null } | null;
  return tx !== null && tx.blockNumber === null;
}

/** Submits `write` while the node cannot be reached (the proxy down): it is queued in the outbox. */
async function queueWhileAway(
  rig: Awaited<ReturnType<typeof outboxRig>>,
  write: ReturnType<Awaited<ReturnType<typeof outboxRig>>['auditEvent']>,
) {
  rig.proxy.setDown(true);
  await assert.rejects(
    rig.sequencer.submit(write),
    (e: Error & { code?: string; details?: { queued?: boolean } }) => {
      assert.equal(e.code, 'KL_LEDGER_UNAVAILABLE');
      assert.equal(e.details?.queued, true);
      return true;
    },
  );
  assert.ok(
    rig.outbox.list().some((e) => e.txid === write.txid),
    'queued',
  );
}

describe('EVM outbox: refused writes kept, sends never repeated (anvil behind a counting proxy)', () => {
  it('a queued write refused when sent (its registrar removed while the chain was away) is kept with the reason, counted, and never sent again, across a reopen', async () => {
    const anvil = await sharedAnvil();
    const rig = await outboxRig(anvil);
    const a = rig.auditEvent('session_start');
    await queueWhileAway(rig, a);
    // While the chain is away for this server, the governor removes its registrar account.
    await (await rig.removeRegistrar()).wait();
    const simulated = rig.proxy.count('eth_estimateGas');
    rig.proxy.setDown(false);
    await until('the refusal is kept', () => rig.sequencer.status().refusedWrites === 1);
    assert.equal(rig.proxy.count('eth_sendRawTransaction'), 0, 'refused by its simulation: nothing sent');
    const [kept] = rig.outbox.refused();
    assert.equal(kept!.txid, a.txid);
    assert.match(
      kept!.reason,
      /not a registrar of the contract \(the chain refused the transaction: NotRegistrar\)/,
    );
    assert.equal(rig.sequencer.status().queued, 0, 'no longer waiting');
    assert.deepEqual(rig.refusals, [a.txid], 'reported once');
    assert.equal(
      rig.lines.filter((l) =>
        new RegExp(`queued write ${a.txid} refused( by the chain)?, kept in the outbox`).test(l),
      ).length,
      1,
    );
    const afterRefusal = rig.proxy.count('eth_estimateGas');
    assert.equal(afterRefusal, simulated + 1, 'simulated once when the chain was back');
    await polls(rig.proxy, 30);
    assert.equal(rig.proxy.count('eth_estimateGas'), afterRefusal, 'not tried again');
    assert.equal(rig.proxy.count('eth_sendRawTransaction'), 0);
    // A new write now is refused at once, and kept too.
    const b = rig.auditEvent('session_end');
    await assert.rejects(rig.sequencer.submit(b), /NotRegistrar/);
    assert.equal(rig.sequencer.status().refusedWrites, 2);
    // Reopened (a restart): still kept, still never sent.
    await rig.stop();
    const reopened = new ChainOutbox(rig.outboxFile);
    closers.push(async () => reopened.close());
    assert.deepEqual(
      reopened.refused().map((r) => r.txid),
      [a.txid, b.txid],
    );
    assert.equal(reopened.size(), 0);
    const again = new EvmSequencer({
      rpcUrl: rig.proxy.url,
      engine: rig.engine,
      privateKey: Wallet.createRandom().privateKey,
      pollMs: 20,
    });
    closers.push(() => again.stop());
    again.useOutbox(reopened, async () => false);
    await again.follow(() => {}, null);
    const simulatedBefore = rig.proxy.count('eth_estimateGas');
    await polls(rig.proxy, 30);
    assert.equal(rig.proxy.count('eth_estimateGas'), simulatedBefore, 'nothing of the outbox tried again');
    assert.equal(again.status().refusedWrites, 2);
    assert.equal(rig.proxy.count('eth_sendRawTransaction'), 0);
    await again.stop();
    reopened.close();
  });

  it('a queued write sent and reverted on chain (its registrar removed first in the same block) is kept as refused and not sent again', async () => {
    const anvil = await chain(); // its own: the same-block order of two senders by their tips
    const rig = await outboxRig(anvil);
    resendAfter(rig.sequencer, 100);
    const hashes = sentHashes(rig.proxy);
    const a = rig.auditEvent('session_start');
    await queueWhileAway(rig, a);
    await anvil.rpc('evm_setAutomine', [false]);
    try {
      rig.proxy.setDown(false);
      await until('sent from the outbox', () => hashes.length === 1);
      const removal = await rig.removeRegistrar();
      await until('the removal is in the pool', async () => inPool(anvil, removal.hash));
      await anvil.rpc('evm_mine');
    } finally {
      await anvil.rpc('evm_setAutomine', [true]);
    }
    const receipt = (await anvil.rpc('eth_getTransactionReceipt', [hashes[0]])) as { status: string };
    assert.equal(receipt.status, '0x0', 'the send was mined and reverted');
    await until('the refusal is kept', () => rig.sequencer.status().refusedWrites === 1);
    const [kept] = rig.outbox.refused();
    assert.equal(kept!.txid, a.txid);
    assert.match(kept!.reason, /the chain refused the transaction|reverted/);
    assert.equal(rig.sequencer.status().queued, 0);
    const t0 = Date.now();
    await polls(rig.proxy, 30);
    assert.ok(Date.now() - t0 > 300, 'well past the resend delay');
    assert.deepEqual(hashes, [hashes[0]], 'never sent again');
    assert.equal(rig.read.size, 0);
    await rig.stop();
  });

  it('a queued send the node still holds (pending) is not repeated; mined, it is read back once and leaves the outbox', async () => {
    const anvil = await sharedAnvil();
    const rig = await outboxRig(anvil);
    resendAfter(rig.sequencer, 100);
    const hashes = sentHashes(rig.proxy);
    const a = rig.auditEvent('session_start');
    await queueWhileAway(rig, a);
    await anvil.rpc('evm_setAutomine', [false]);
    try {
      rig.proxy.setDown(false);
      await until('sent from the outbox', () => hashes.length === 1);
      // The proxy sees the send before the sequencer has the node's answer and notes it.
      await until('the send noted in the outbox', () => rig.outbox.list()[0]?.chainTx != null);
      assert.equal(rig.outbox.list()[0]!.chainTx, hashes[0]);
      // Due again every 100 ms: each time the node is asked, says pending, and nothing is sent.
      const asked = rig.proxy.count('eth_getTransactionByHash');
      await until(
        'the send was checked again 5 times',
        () => rig.proxy.count('eth_getTransactionByHash') >= asked + 5,
      );
      assert.deepEqual(hashes, [hashes[0]], 'a pending send is not repeated');
      assert.equal(rig.outbox.size(), 1);
      await anvil.rpc('evm_mine');
    } finally {
      await anvil.rpc('evm_setAutomine', [true]);
    }
    await until('read back and out of the outbox', () => rig.outbox.size() === 0);
    assert.equal(rig.read.get(a.txid), 1);
    assert.equal(hashes.length, 1);
    await polls(rig.proxy, 20);
    assert.equal(hashes.length, 1);
    assert.equal(rig.sequencer.status().refusedWrites, 0);
    await rig.stop();
  });

  it('a queued send the node dropped from its pool is sent again, mined and read once', async () => {
    const anvil = await sharedAnvil();
    const rig = await outboxRig(anvil);
    resendAfter(rig.sequencer, 100);
    const hashes = sentHashes(rig.proxy);
    const b = rig.auditEvent('session_end');
    await queueWhileAway(rig, b);
    await anvil.rpc('evm_setAutomine', [false]);
    try {
      rig.proxy.setDown(false);
      await until('sent from the outbox', () => hashes.length === 1);
      await anvil.rpc('anvil_dropTransaction', [hashes[0]]);
      await until('sent again', () => hashes.length === 2, 5_000);
      assert.equal(rig.outbox.list()[0]!.chainTx, hashes[1]);
      // The node takes the new send as the account's next transaction (not one after a gap).
      await until('the new send is pending', async () => inPool(anvil, hashes[1]!), 5_000);
      await anvil.rpc('evm_mine');
    } finally {
      await anvil.rpc('evm_setAutomine', [true]);
    }
    await until('read back and out of the outbox', () => rig.outbox.size() === 0, 5_000);
    assert.equal(rig.read.get(b.txid), 1);
    await polls(rig.proxy, 20);
    assert.equal(hashes.length, 2);
    assert.equal(rig.sequencer.status().refusedWrites, 0);
    await rig.stop();
  });

  it('a write nobody waits for, while its own send is under way, is not sent a second time by the follower', async () => {
    const anvil = await sharedAnvil();
    const rig = await outboxRig(anvil);
    const hashes = sentHashes(rig.proxy);
    // The node is slow to simulate: the send takes several polls of the follower.
    rig.proxy.delay('eth_estimateGas', 300);
    const a = rig.auditEvent('session_start');
    await anvil.rpc('evm_setAutomine', [false]);
    let written: Promise<void> | null = null;
    try {
      written = rig.sequencer.submit(a);
      await until('sent', () => hashes.length >= 1);
      await polls(rig.proxy, 20);
      assert.deepEqual(hashes, [hashes[0]], 'one chain transaction for one write');
      await anvil.rpc('evm_mine');
    } finally {
      await anvil.rpc('evm_setAutomine', [true]);
    }
    await written;
    await until('read back and out of the outbox', () => rig.outbox.size() === 0);
    assert.equal(rig.read.get(a.txid), 1);
    await rig.stop();
  });

  it('a server whose account the governor removed keeps its audit events as refused: /readyz chain.refusedWrites and keyledger_chain_refused_writes count them, nothing is sent', async () => {
    const anvil = await sharedAnvil();
    const { proxy, srv, lines, replica, engine } = await serverBehindProxy(anvil);
    const home = await registeredClient(srv, 'refused@example.org');
    await settled(srv, anvil, engine);
    // Kept before (none, unless a write was refused already): the login's add to it.
    const base = (await readyz(srv)).body.chain.refusedWrites;
    assert.equal(await metric(srv, 'keyledger_chain_refused_writes'), base);
    const linesBefore = lines.length;
    // The server's account is the contract's governor and its registrar: it stops writing as registrar.
    const provider = evmProvider(anvil.url);
    try {
      const self = new Wallet(replica.account, provider);
      const contract = new Contract(engine.contract, ABI, self);
      await (await contract.getFunction('setRegistrar')(self.address, false)).wait();
    } finally {
      provider.destroy();
    }
    const sent = proxy.count('eth_sendRawTransaction');
    // A login writes two audit events (its start and its end): both refused by the chain.
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await until(
      'both refusals are kept',
      async () => (await readyz(srv)).body.chain.refusedWrites === base + 2,
    );
    const r = await readyz(srv);
    assert.equal(r.status, 200, 'a refused write does not make the server unready');
    assert.equal(r.body.chain.queued, 0);
    assert.equal(await metric(srv, 'keyledger_chain_refused_writes'), base + 2);
    const told = lines
      .slice(linesBefore)
      .map((l) => /queued write ([0-9a-f]{64}) refused( by the chain)?, kept in the outbox/.exec(l)?.[1])
      .filter((txid) => txid !== undefined);
    // Told once at once; more refusals within a minute are counted, and told in the next report.
    assert.equal(told.length, 1, 'the first refusal told in the log, the second within the minute not yet');
    await polls(proxy, 30);
    assert.equal(proxy.count('eth_sendRawTransaction'), sent, 'never sent');
    assert.equal(await metric(srv, 'keyledger_chain_refused_writes'), base + 2);
    await srv.close();
  });
});
