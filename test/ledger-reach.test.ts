/**
 * Reads ahead of the ledger wait for it, boundedly (docs/reliability.md "Reads ahead of the
 * ledger"; src/server/ledger-reach.ts): a flood of such reads from one source holds at most its
 * share of waiters, and the rest of its reads are answered at once with the retryable 503
 * KL_LEDGER_BEHIND, while another source still waits; the total is bounded too. A real server on the
 * EVM engine (anvil) and real HTTP requests from several loopback addresses.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Ledger } from '../src/ledger/ledger.js';
import { DEFAULT_WAITER_LIMITS, heightWaiter } from '../src/server/ledger-reach.js';
import { type Anvil, startAnvil } from './support/anvil.js';
import { evmTestServer } from './support/server.js';

/** GETs `url` from `localAddress`; returns the status, the error code and how long it took. */
function getFrom(localAddress: string, url: string): Promise<{ status: number; code?: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString() || 'null') as { error?: { code: string } };
        resolve({ status: res.statusCode ?? 0, code: body?.error?.code, ms: Date.now() - t0 });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A ledger stub at a fixed height that never grows (checkpoint and subscribe only). */
function stuckLedger(height: number): Pick<Ledger, 'checkpoint' | 'subscribe'> {
  return {
    checkpoint: async () => ({ header: { height } }) as Awaited<ReturnType<Ledger['checkpoint']>>,
    subscribe: () => () => {},
  };
}

describe('waiters for a height: bounded in total and per source', () => {
  it('past the total or the per-source bound a read is answered at once; places are given back', async () => {
    const reach = heightWaiter(stuckLedger(5), 300, { total: 4, perSource: 2 });
    const t0 = Date.now();
    const held = [reach(9, '10.0.0.1'), reach(9, '10.0.0.1')];
    // The third from the same source, at once.
    assert.equal(await reach(9, '10.0.0.1'), 5);
    assert.ok(Date.now() - t0 < 100, 'the third read of one source did not wait');
    // An IPv6 /64 is one source.
    held.push(reach(9, '2001:db8::1'), reach(9, '2001:db8::2'));
    const t1 = Date.now();
    assert.equal(await reach(9, '2001:db8::3'), 5);
    // The total is reached: another source is answered at once too.
    assert.equal(await reach(9, '10.0.0.2'), 5);
    assert.ok(Date.now() - t1 < 100, 'answered at once past the bounds');
    assert.deepEqual(await Promise.all(held), [5, 5, 5, 5]);
    assert.ok(Date.now() - t0 >= 280, 'the reads within the bounds waited');
    // Every place was given back: the same source waits again.
    const t2 = Date.now();
    assert.equal(await reach(9, '10.0.0.1'), 5);
    assert.ok(Date.now() - t2 >= 280);
  });
});

describe('a flood of reads ahead of the ledger (EVM engine, anvil)', () => {
  let anvil: Anvil;
  let srv: Awaited<ReturnType<typeof evmTestServer>>;
  before(async () => {
    anvil = await startAnvil();
    srv = await evmTestServer(anvil, { ledgerBehindWaitMs: 2_000 });
  });
  after(async () => {
    await srv?.close();
    await anvil?.stop();
  });

  it('one source holds at most its share of waiters; the rest is 503 KL_LEDGER_BEHIND at once; another source still waits', async () => {
    const height = (await srv.ledger.checkpoint())?.header.height ?? 0;
    const ahead = `${srv.url}/v1/ledger/consistency?from=${height + 1}`;
    const share = DEFAULT_WAITER_LIMITS.perSource;
    const flood = Array.from({ length: share + 30 }, () => getFrom('127.0.0.2', ahead));
    // Once the flood's waiters are in, the excess has been answered already.
    const early = await Promise.all(flood.slice(share));
    for (const r of early) {
      assert.equal(r.status, 503);
      assert.equal(r.code, 'KL_LEDGER_BEHIND');
      assert.ok(r.ms < 1_500, `answered at once (${r.ms} ms), not after the wait`);
    }
    // Another source is not refused for the flood: it waits its turn like an honest client.
    const other = await getFrom('127.0.0.3', ahead);
    assert.equal(other.code, 'KL_LEDGER_BEHIND');
    assert.ok(other.ms >= 1_500, `the other source waited (${other.ms} ms)`);
    const waited = await Promise.all(flood.slice(0, share));
    for (const r of waited) {
      assert.equal(r.code, 'KL_LEDGER_BEHIND');
      assert.ok(r.ms >= 1_500, `a waiter within the share waited (${r.ms} ms)`);
    }
  });
});
