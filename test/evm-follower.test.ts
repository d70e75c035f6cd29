/**
 * The EVM engine's chain follower cannot be fooled or stuck (docs/deploy-besu.md "The follower";
 * docs/reliability.md "The chain away"), on anvil (a real EVM node, started, stopped, reverted and
 * restarted here): it derives the ledger from logs, never from historical state, so a node that
 * reloads its state does not strand a server that was behind; a chain that went back (snapshot
 * reverted) or came back empty is a fault — logins and writes refused at once, /readyz 503, one
 * alert and one log line per change, cleared when the node serves the same block again; audit
 * events written while the chain is away are queued durably and all land once, across restarts;
 * a server restarted with a backlog on the chain comes up, catches up and serves.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connect } from '../src/client/session.js';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { type RunningServer, type ServerOptions, startServer } from '../src/server/app.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { anvilsStoppedAfter } from './support/anvil.js';
import { chainAlerts, metric, readyz } from './support/chain-probes.js';
import { evmReplica } from './support/evm-replica.js';
import { CLIENT_PASSPHRASE, evmTestServer, registeredClient } from './support/server.js';

const chain = anvilsStoppedAfter();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond` holds (polling), or fails naming `what`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await sleep(25);
  }
}

/** Restarts a server over `dataDir` on `port` (the address its clients pinned). */
function restart(dataDir: string, port: number, o: Partial<ServerOptions> = {}) {
  return startServer({
    dataDir,
    passphrase: PASSPHRASE,
    host: '127.0.0.1',
    port,
    evm: { pollMs: 20 },
    ...o,
  });
}

const portOf = (srv: RunningServer) => Number(new URL(srv.url).port);

describe('EVM chain follower (anvil)', () => {
  it('a server that was behind while the node reloaded its state catches up (events, not historical state)', async () => {
    const stateFile = join(tempDir('kl-anvil-'), 'state.json');
    let anvil = await chain({ stateFile });
    const srv = await evmTestServer(anvil);
    const home = await registeredClient(srv, 'early@example.org');
    await srv.ledger.drain();
    await srv.close();
    // While the server is down, its chain gets a registration it has not read.
    const rep = evmReplica(srv.dataDir, anvil.url, srv.ledger.chainId);
    await rep.register('late@example.org');
    await rep.stop();
    await anvil.rpc('anvil_mine', ['0x3']); // and the chain moves on past it
    await sleep(1_200); // anvil writes its state file every second
    await anvil.stop();
    anvil = await chain({ stateFile, port: anvil.port });
    // The node kept its blocks and logs, not the state at past blocks: a follower that asked the
    // contract's storage as of a past block would be stuck here for good.
    await assert.rejects(
      anvil.rpc('eth_getBalance', ['0x0000000000000000000000000000000000000000', '0x1']),
      /OutOfRange|out of range|not found|state/i,
    );
    const again = await restart(srv.dataDir, portOf(srv));
    await until('the registration made while it was down is read', async () => {
      return (await again.ledger.getKeyRecord('late@example.org')).record !== null;
    });
    const status = again.ledger.chainStatus()!;
    assert.equal(status.fault, null);
    assert.equal(status.lag, 0);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await again.close();
    const check = verifyLedgerData({ dataDir: srv.dataDir });
    assert.equal(check.ok, true, check.problem?.reason);
  });

  it('a chain that went back (snapshot reverted) or was replaced is a fault: logins and writes refused at once, /readyz 503, one alert and one log line', async () => {
    const anvil = await chain();
    const lines: string[] = [];
    const srv = await evmTestServer(anvil, { log: (l) => lines.push(l) });
    // Availability over freshness does not extend to a chain that went back.
    const open = await evmTestServer(anvil, { insecureAllowStaleLedger: true });
    const home = await registeredClient(srv, 'before@example.org');
    const other = await registeredClient(open, 'open@example.org');
    await srv.ledger.drain();
    await open.ledger.drain();
    assert.equal((await readyz(srv)).status, 200);
    const snapshot = await anvil.rpc('evm_snapshot');
    // Both servers read blocks past the snapshot.
    await registeredClient(srv, 'after@example.org');
    await registeredClient(open, 'after2@example.org');
    await srv.ledger.drain();
    await open.ledger.drain();
    const readBefore = srv.ledger.chainStatus()!.read!;
    await anvil.rpc('evm_revert', [snapshot]);
    const reverted = Date.now();
    await until('the fault is seen', () => srv.ledger.chainStatus()!.fault !== null, 5_000);
    await until('the fault is seen', () => open.ledger.chainStatus()!.fault !== null, 5_000);
    assert.ok(Date.now() - reverted < 5_000, 'seen at the next polls, not after the staleness limit');
    assert.match(srv.ledger.chainStatus()!.fault!, /went back/);
    for (const [server, client] of [
      [srv, home],
      [open, other],
    ] as const) {
      await assert.rejects(
        connect({ home: client, passphrase: CLIENT_PASSPHRASE }),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'KL_LEDGER_UNAVAILABLE');
          return true;
        },
        `${server.url} refuses logins`,
      );
    }
    // Writes are refused too: a registration fails whole.
    await assert.rejects(registeredClient(srv, 'during@example.org'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KL_LEDGER_UNAVAILABLE');
      return true;
    });
    const r = await readyz(srv);
    assert.equal(r.status, 503);
    assert.equal(r.body.ready, false);
    assert.match(r.body.chain.fault!, /went back/);
    assert.equal(r.body.chain.read, readBefore);
    assert.equal(await metric(srv, 'keyledger_chain_fault'), 1);
    await sleep(500); // ~25 more polls
    assert.equal(chainAlerts(srv).length, 1, 'one alert for the change, not one per poll');
    assert.match(chainAlerts(srv)[0]!, /^chain fault: the chain went back/);
    assert.equal(lines.filter((l) => /FAULT/.test(l)).length, 1, 'one log line for the change');
    // The chain grows again past the block read, with other blocks: still a fault (replaced).
    await anvil.rpc('anvil_mine', [`0x${(readBefore + 5).toString(16)}`]);
    await until('the replaced block is seen', () =>
      /reorganised|replaced/.test(srv.ledger.chainStatus()!.fault ?? ''),
    );
    assert.equal((await readyz(srv)).status, 503);
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), /KL_LEDGER_UNAVAILABLE/);
    assert.equal(chainAlerts(srv).length, 2);
    assert.equal((await srv.ledger.getKeyRecord('during@example.org')).record, null);
    await open.close();
    await srv.close();
  });

  it('a node restarted without its state (chain empty) is a fault; restarted with it, the fault clears by itself', async () => {
    const stateFile = join(tempDir('kl-anvil-'), 'state.json');
    let anvil = await chain({ stateFile });
    const lines: string[] = [];
    // The default staleness limit (30 s): the fault must not wait for it.
    const srv = await evmTestServer(anvil, { log: (l) => lines.push(l) });
    const home = await registeredClient(srv, 'empty@example.org');
    await srv.ledger.drain();
    await sleep(1_200); // anvil writes its state every second
    await anvil.stop();
    anvil = await chain({ port: anvil.port }); // same address, empty chain
    const back = Date.now();
    await until('the fault is seen', () => srv.ledger.chainStatus()!.fault !== null, 5_000);
    assert.ok(Date.now() - back < 5_000);
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KL_LEDGER_UNAVAILABLE');
      return true;
    });
    const r = await readyz(srv);
    assert.equal(r.status, 503);
    assert.match(r.body.chain.fault!, /went back/);
    assert.ok(r.body.chain.stalenessMs < 30_000, 'refused for the fault, well before the staleness limit');
    await sleep(300);
    assert.deepEqual(
      chainAlerts(srv).map((d) => d.split(':')[0]),
      ['chain fault'],
    );
    // The node is restarted with its state: the same block, the same hash; nothing to do by hand.
    await anvil.stop();
    anvil = await chain({ stateFile, port: anvil.port });
    await until('the fault clears', () => srv.ledger.chainStatus()!.ok);
    assert.deepEqual(
      chainAlerts(srv).map((d) => d.split(':')[0]),
      ['chain fault', 'chain fault cleared'],
    );
    assert.equal(lines.filter((l) => /FAULT/.test(l)).length, 1);
    assert.equal(lines.filter((l) => /fault cleared/.test(l)).length, 1);
    const ok = await readyz(srv);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.chain.fault, null);
    assert.equal(ok.body.chain.lag, 0);
    assert.equal(await metric(srv, 'keyledger_chain_fault'), 0);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await srv.close();
  });

  it('a chain unreachable beyond the staleness limit: /readyz 503, gauges, one alert, and one when it is back', async () => {
    const stateFile = join(tempDir('kl-anvil-'), 'state.json');
    let anvil = await chain({ stateFile });
    const srv = await evmTestServer(anvil, { maxLedgerStalenessMs: 400 });
    await registeredClient(srv, 'reach@example.org');
    await srv.ledger.drain();
    await sleep(300); // the registration's audit event lands too
    await until('caught up', () => srv.ledger.chainStatus()!.lag === 0);
    const fresh = await readyz(srv);
    assert.equal(fresh.status, 200);
    assert.equal(fresh.body.chain.lag, 0);
    assert.equal(fresh.body.chain.fault, null);
    assert.equal(await metric(srv, 'keyledger_chain_lag_blocks'), 0);
    assert.equal(await metric(srv, 'keyledger_chain_read_block'), fresh.body.chain.read);
    await sleep(1_200);
    await anvil.stop();
    await until('readiness drops', async () => (await readyz(srv)).status === 503);
    const stale = await readyz(srv);
    assert.equal(stale.body.chain.fault, null, 'stale, not faulted');
    assert.ok(stale.body.chain.stalenessMs > 400);
    assert.ok((await metric(srv, 'keyledger_chain_staleness_seconds')) > 0.4);
    await until('the alert', () => chainAlerts(srv).length > 0);
    await sleep(300);
    assert.deepEqual(
      chainAlerts(srv).map((d) => d.split(':')[0]),
      ['chain unreachable'],
    );
    anvil = await chain({ stateFile, port: anvil.port });
    await until('readiness is back', async () => (await readyz(srv)).status === 200);
    assert.deepEqual(
      chainAlerts(srv).map((d) => d.split(':')[0]),
      ['chain unreachable', 'chain reachable again'],
    );
    await srv.close();
  });

  it('the embedded engine has no chain: /readyz says chain null, /metrics has no chain gauges', async () => {
    const srv = await startServer({
      dataDir: join(tempDir('kl-srv-'), 'data'),
      passphrase: PASSPHRASE,
      host: '127.0.0.1',
      port: 0,
    });
    const r = await readyz(srv);
    assert.equal(r.status, 200);
    assert.equal(r.body.chain, null);
    assert.doesNotMatch(await (await fetch(`${srv.url}/metrics`)).text(), /keyledger_chain_/);
    await srv.close();
  });

  it('audit events written while the chain is away are queued, survive restarts, and all land once; a restart with a backlog catches up and serves', async () => {
    const stateFile = join(tempDir('kl-anvil-'), 'state.json');
    let anvil = await chain({ stateFile });
    // Logins go on while the chain is away (a long staleness limit): their audit events must not be lost.
    const opts = { maxLedgerStalenessMs: 600_000 };
    const srv = await evmTestServer(anvil, opts);
    const port = portOf(srv);
    const home = await registeredClient(srv, 'audited@example.org');
    await srv.ledger.drain();
    await sleep(1_200);
    await anvil.stop();
    const away = Date.now();
    const N = 4;
    for (let i = 0; i < N; i++) {
      const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      await s.close();
    }
    // Each login writes a session start and a session end.
    await until('the audit events are queued', () => srv.ledger.chainStatus()!.queued === 2 * N);
    await srv.close();
    // Restarted while the chain is still away: it starts, says it is not ready, keeps the queue.
    const s2 = await restart(srv.dataDir, port, opts);
    const r2 = await readyz(s2);
    assert.equal(r2.status, 503);
    assert.equal(r2.body.chain.queued, 2 * N);
    assert.equal(await metric(s2, 'keyledger_chain_queued_writes'), 2 * N);
    await s2.close();
    // The chain is back, and holds blocks the server has not read.
    anvil = await chain({ stateFile, port: anvil.port });
    const rep = evmReplica(srv.dataDir, anvil.url, srv.ledger.chainId);
    await rep.register('backlog1@example.org');
    await rep.register('backlog2@example.org');
    await rep.stop();
    const backlogHead = Number(await anvil.rpc('eth_blockNumber'));
    const lines: string[] = [];
    const s3 = await restart(srv.dataDir, port, { ...opts, log: (l) => lines.push(l) });
    // The backlog was read during start (before the server's metrics existed), without a failure.
    const started = s3.ledger.chainStatus()!;
    assert.ok(started.read! >= backlogHead, 'the blocks it had not read were read before it served');
    assert.equal(started.fault, null);
    assert.deepEqual(
      lines.filter((l) => /EVM follower/.test(l) && !/queued write\(s\) sent/.test(l)),
      [],
    );
    await until('the queue is read back', () => {
      const st = s3.ledger.chainStatus()!;
      return st.queued === 0 && st.lag === 0;
    });
    assert.notEqual((await s3.ledger.getKeyRecord('backlog1@example.org')).record, null);
    assert.notEqual((await s3.ledger.getKeyRecord('backlog2@example.org')).record, null);
    const trail = await readAuditTrail(s3.ledger, { since: away });
    const count = (event: string) => trail.filter((e) => e.event === event).length;
    assert.equal(count('session_start'), N);
    assert.equal(count('session_end'), N);
    assert.equal(trail.length, 2 * N, 'nothing else, nothing twice');
    assert.equal(new Set(trail.map((e) => e.txid)).size, trail.length);
    // It serves.
    assert.equal((await readyz(s3)).status, 200);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await s3.close();
    const check = verifyLedgerData({ dataDir: srv.dataDir });
    assert.equal(check.ok, true, check.problem?.reason);
  });
});
