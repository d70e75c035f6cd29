/**
 * Fuzzing, short form (issue 7): every target of fuzz/targets.ts and fuzz/http-targets.ts with a few
 * hundred hostile inputs each (a few thousand in all; `npm run fuzz -- --runs 100000` is the long
 * form), and the invariants as properties: canonical encoding round-trips, any accepted frame
 * decrypts to what was sent, no frame is accepted twice, a proof verifies iff it matches the ledger.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { networkTargets } from '../fuzz/http-targets.js';
import { recoveryBodies, recoveryNetworkTargets, recoveryTargets } from '../fuzz/recovery-targets.js';
import { type FuzzTarget, type Material, material, mutated, mutatedBytes, targets } from '../fuzz/targets.js';
import { type TransactionReceipt, verifyTransactionReceipt } from '../src/ledger/proofs.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { Channel, type ChannelMessage } from '../src/protocol/channel.js';
import type { RunningServer } from '../src/server/app.js';
import { tempDir } from './helpers.js';
import { testServer } from './support/server.js';

const RUNS = Number(process.env.KEYLEDGER_FUZZ_RUNS ?? 300);
let m: Material;
let server: RunningServer;
/** Real recoveries (POST /v1/recover bodies) of identities on `server`'s ledger. */
let recoveries: unknown[];
before(async () => {
  m = await material(join(tempDir('kl-fuzz-'), 'ledger'));
  const big = { burst: 1e9, perSecond: 1e9 };
  server = await testServer({
    rateLimits: {
      registerPerIp: big,
      registerPerIdentity: big,
      loginPerIp: big,
      loginPerIdentity: big,
      emailPerIdentity: big,
      deviceRequestPerIp: big,
      recoveryPerIp: big,
      recoveryGlobal: big,
    },
    mailer: { sendCode: async () => {} },
  });
  recoveries = await recoveryBodies(server.ledger, Date.now());
});
after(async () => {
  await m.close();
  await server.close();
});

async function noCrash(t: FuzzTarget, runs: number) {
  const seen = { accepted: 0, rejected: 0 };
  await fc.assert(
    fc.asyncProperty(t.arbitrary, async (input) => {
      seen[await t.run(input)] += 1; // a crash or a 5xx throws: fast-check shrinks and reports it
    }),
    { numRuns: runs },
  );
  // The generators must reach both sides, or the target tests nothing.
  assert.ok(seen.rejected > 0, `${t.name}: nothing was rejected`);
  return seen;
}

describe('fuzzing: no input crashes a parser or verifier', () => {
  it('every in-process target: only typed rejections', async () => {
    for (const t of [...targets(m), ...recoveryTargets(m.genesis)]) {
      const seen = await noCrash(t, RUNS);
      if (t.name !== 'Merkle inclusion')
        assert.ok(seen.accepted > 0, `${t.name}: nothing valid was generated`);
    }
  });

  it('every route and the login WebSocket: no 5xx, no hang, and the server keeps serving', async () => {
    for (const t of [...networkTargets(server), ...recoveryNetworkTargets(server, recoveries)])
      await noCrash(t, Math.ceil(RUNS / 5));
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});

const keys = () => ({
  c2sKey: Buffer.alloc(32, 7),
  c2sIv: Buffer.alloc(12, 9),
  s2cKey: Buffer.alloc(32, 8),
  s2cIv: Buffer.alloc(12, 3),
  resumeKey: Buffer.alloc(32, 1),
});
const pair = () => {
  const o = { sid: 'A'.repeat(22), chain: Buffer.alloc(32, 2), now: () => 0 };
  return {
    client: new Channel({ role: 'client', keys: keys(), nextRecvSeq: 0, ...o }),
    server: new Channel({ role: 'server', keys: keys(), ...o }),
  };
};
const body = fc.jsonValue({ maxDepth: 3 }).filter((v) => canonicalize(v).length < 20_000);

describe('fuzzing: invariants', () => {
  it('canonical encoding round-trips and is a fixed point', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        const text = canonicalize(v);
        assert.equal(canonicalize(JSON.parse(text)), text);
        assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('any accepted frame decrypts to exactly what was sent; a changed frame is never accepted as something else', () => {
    fc.assert(
      fc.property(body, fc.nat(50), (b, extra) => {
        const { client, server } = pair();
        const message: ChannelMessage = { t: 'data', id: extra, body: b };
        const frame = client.seal(message);
        assert.deepEqual(server.open(structuredClone(frame)), JSON.parse(JSON.stringify(message)));
        return true;
      }),
      { numRuns: RUNS },
    );
    const { client } = pair();
    const message: ChannelMessage = { t: 'data', id: 1, body: { pay: 10 } };
    const frame = client.seal(message);
    fc.assert(
      fc.property(mutatedBytes(frame), (changed) => {
        try {
          const got = pair().server.open(changed as Uint8Array);
          // Accepted only if the authenticated parts were left alone: then it is the same message.
          assert.deepEqual(got, message);
        } catch (err) {
          assert.ok((err as { code?: string }).code, 'a typed rejection');
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('no frame is accepted twice, and none out of order, whatever the network does', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(9), { minLength: 1, maxLength: 40 }), (order) => {
        const { client, server } = pair();
        const frames = Array.from({ length: 10 }, (_, i) => client.seal({ t: 'data', body: i }));
        const accepted: number[] = [];
        for (const i of order) {
          try {
            accepted.push((server.open(frames[i]!) as { body: number }).body);
          } catch {
            // refused: replayed, reordered or ahead of a missing frame
          }
        }
        assert.deepEqual(
          accepted,
          [...accepted].sort((a, b) => a - b),
        );
        assert.equal(new Set(accepted).size, accepted.length);
        assert.deepEqual(
          accepted,
          accepted.map((_, i) => i),
          'only the next frame in sequence is accepted',
        );
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('a receipt verifies if and only if it is the ledger’s own', () => {
    const original = canonicalize(m.receipt.envelope);
    assert.equal(verifyTransactionReceipt({ genesis: m.genesis, receipt: m.receipt }).verified, true);
    fc.assert(
      fc.property(mutated(m.receipt), (changed) => {
        const r = verifyTransactionReceipt({ genesis: m.genesis, receipt: changed as TransactionReceipt });
        if (r.verified) {
          // Verified: then it is the same transaction, at the same place, in the same block.
          assert.equal(canonicalize((changed as TransactionReceipt).envelope), original);
          assert.equal(r.txid, m.receipt.txid);
          assert.equal(r.height, m.receipt.block.header.height);
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });
});
