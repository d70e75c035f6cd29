/**
 * The benchmarks' CPU-profile split (bench/support/profile-split.ts, bench/README.md "Profile
 * split"): a small synthetic profile with known sample times is split into its groups (native frames
 * and Node's general internals counted with their caller), and a real benchmark server answers
 * "profile-start" / "profile-stop" over IPC with the split of real logins and the raw profile.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { benchClient, startBenchServer } from '../bench/support/bench-server.js';
import {
  type CpuProfile,
  type CpuProfileNode,
  groupOfUrl,
  PROFILE_GROUPS,
  perOperation,
  splitProfile,
} from '../bench/support/profile-split.js';
import { login } from '../src/client/login.js';
import { tempDir } from './helpers.js';

/** A profile node: `id`, function, URL (`''`: native or a V8 node), 0-based line, children. */
function node(id: number, functionName: string, url: string, lineNumber = -1, children: number[] = []) {
  return {
    id,
    callFrame: { functionName, scriptId: String(id), url, lineNumber, columnNumber: 0 },
    children,
  } satisfies CpuProfileNode;
}

const REPO = '/repo';
const F = (path: string) => `file://${REPO}/${path}`;

/**
 * The call tree, and how long each sample lasts (µs): the interval to the next sample, the last one
 * to `endTime`.
 */
const NODES = [
  node(1, '(root)', '', -1, [2, 3, 4, 5]),
  node(2, '(program)', ''),
  node(3, '(idle)', ''),
  node(4, '(garbage collector)', ''),
  node(5, 'onMessage', F('src/server/login-connection.ts'), 40, [6, 7, 8, 9]),
  node(6, 'verifyDetached', F('src/pgp/messages.ts'), 9, [10, 11]),
  node(7, 'getKeyRecord', F('src/ledger/embedded-ledger.ts'), 99, [13]),
  node(8, 'frame', F('node_modules/ws/lib/sender.js'), 78),
  node(9, 'writeGeneric', 'node:internal/stream_base_commons', 140),
  node(10, 'concat', 'node:buffer', 560), // Node's general internal: counts with its caller (openpgp)
  node(11, 'verifyOneShot', 'node:internal/crypto/sig', 200, [12]),
  node(12, 'run', ''), // native OpenSSL job under node:crypto: crypto
  node(13, 'run', ''), // native better-sqlite3 statement under src/ledger: ledger
];
const SAMPLES: Array<[node: number, us: number]> = [
  [12, 4000],
  [11, 1000],
  [10, 2000],
  [6, 4000],
  [13, 3000],
  [8, 2000],
  [9, 1000],
  [5, 1500],
  [2, 500],
  [4, 1000],
  [3, 7000], // idle, last: until endTime
];

function syntheticProfile(): CpuProfile {
  const startTime = 1_000_000;
  const timeDeltas = SAMPLES.map((_, i) => (i === 0 ? 0 : SAMPLES[i - 1]![1]));
  const total = SAMPLES.reduce((s, [, us]) => s + us, 0);
  return {
    nodes: structuredClone(NODES),
    startTime,
    endTime: startTime + total,
    samples: SAMPLES.map(([id]) => id),
    timeDeltas,
  };
}

describe('profile split: groups of a CPU profile', () => {
  it('groups script URLs; native frames and general Node internals take their caller’s group', () => {
    const cases: Array<[string, string | undefined]> = [
      ['file:///r/node_modules/openpgp/dist/node/openpgp.mjs', 'openpgp'],
      ['file:///r/src/pgp/native/packets.ts', 'openpgp'],
      ['node:crypto', 'crypto'],
      ['node:internal/crypto/webcrypto', 'crypto'],
      ['file:///r/src/protocol/crypto/node.ts', 'crypto'],
      ['file:///r/src/protocol/key-schedule.ts', 'crypto'],
      ['file:///r/src/ledger/merkle.ts', 'ledger'],
      ['file:///r/node_modules/better-sqlite3/lib/methods/transaction.js', 'ledger'],
      ['file:///r/node_modules/ws/lib/receiver.js', 'framing'],
      ['file:///r/node_modules/@fastify/websocket/index.js', 'framing'],
      ['file:///r/node_modules/ajv/dist/compile/index.js', 'framing'],
      ['file:///r/src/protocol/schemas/check.ts', 'framing'],
      ['file:///r/src/protocol/frame.ts', 'framing'],
      ['file:///r/src/protocol/canonical-json.ts', 'framing'],
      ['file:///r/node_modules/fastify/lib/route.js', 'http'],
      ['file:///r/node_modules/@fastify/cors/index.js', 'http'],
      ['file:///r/node_modules/find-my-way/index.js', 'http'],
      ['node:_http_server', 'http'],
      ['node:net', 'http'],
      ['node:internal/streams/writable', 'http'],
      ['file:///r/src/server/handshake.ts', 'other'],
      ['file:///r/node_modules/pino/pino.js', 'other'],
      ['node:events', undefined],
      ['node:buffer', undefined],
      ['', undefined],
    ];
    for (const [url, group] of cases) assert.equal(groupOfUrl(url), group, url);
  });

  it('splits busy time by group, counting each sample until the next one and leaving idle out', () => {
    const split = splitProfile(syntheticProfile(), { root: REPO });
    assert.equal(split.samples, SAMPLES.length);
    assert.equal(split.sampledMs, 27);
    assert.equal(split.idleMs, 7);
    assert.equal(split.busyMs, 20);
    assert.deepEqual(split.groups, {
      openpgp: { ms: 6, share: 0.3 }, // src/pgp 4 + node:buffer called from it 2
      crypto: { ms: 5, share: 0.25 }, // native run 4 + node:internal/crypto/sig 1
      ledger: { ms: 3, share: 0.15 }, // native run under src/ledger
      framing: { ms: 2, share: 0.1 },
      http: { ms: 1, share: 0.05 },
      gc: { ms: 1, share: 0.05 },
      other: { ms: 2, share: 0.1 }, // src/server 1.5 + (program) 0.5
    });
    assert.deepEqual(Object.keys(split.groups), [...PROFILE_GROUPS]);
  });

  it('lists the heaviest functions by self time, with path:line (1-based) or (native) and its caller, per group', () => {
    const { top } = splitProfile(syntheticProfile(), { root: REPO, top: 4 });
    assert.deepEqual(top, [
      // A native frame names the nearest caller outside Node's internals.
      {
        fn: 'run',
        at: '(native) from verifyDetached src/pgp/messages.ts:10',
        group: 'crypto',
        selfMs: 4,
        share: 0.2,
      },
      { fn: 'verifyDetached', at: 'src/pgp/messages.ts:10', group: 'openpgp', selfMs: 4, share: 0.2 },
      {
        fn: 'run',
        at: '(native) from getKeyRecord src/ledger/embedded-ledger.ts:100',
        group: 'ledger',
        selfMs: 3,
        share: 0.15,
      },
      { fn: 'concat', at: 'node:buffer:561', group: 'openpgp', selfMs: 2, share: 0.1 },
    ]);
  });

  it('turns shares into ms per operation over a given total (e.g. the thread’s CPU time)', () => {
    const split = splitProfile(syntheticProfile());
    const busy = perOperation(split, 10);
    assert.deepEqual(busy.openpgp, { share: 0.3, msPerOp: 0.6 });
    const cpu = perOperation(split, 10, 40);
    assert.deepEqual(cpu.openpgp, { share: 0.3, msPerOp: 1.2 });
    assert.deepEqual(cpu.http, { share: 0.05, msPerOp: 0.2 });
  });

  it('an empty profile splits into zeros', () => {
    const split = splitProfile({ nodes: [node(1, '(root)', '')], startTime: 5, endTime: 5 });
    assert.equal(split.busyMs, 0);
    assert.equal(split.groups.openpgp.share, 0);
    assert.deepEqual(split.top, []);
  });
});

describe('profile split: a real benchmark server profiles real logins over IPC', () => {
  it('answers profile-start / profile-stop with the split and writes the raw .cpuprofile; out of turn, an error', async () => {
    const root = tempDir('kl-profile-split-');
    const server = await startBenchServer(root, 'bench');
    try {
      const c = await benchClient(server, root, 'profiled@example.org', 'bench');
      await assert.rejects(server.profileStop(), /no profile is running/);
      await server.profileStart();
      await assert.rejects(server.profileStart(), /a profile is already running/);
      for (let i = 0; i < 15; i++) (await login({ home: c.home, key: c.key, checkLedger: false })).close();
      const out = join(root, 'logins.cpuprofile');
      const p = await server.profileStop(out);
      assert.ok(p.samples > 0 && p.busyMs > 0, `samples ${p.samples}, busy ${p.busyMs} ms`);
      assert.ok(p.processCpuMs > 0);
      if (process.platform === 'linux') assert.ok((p.mainThreadCpuMs ?? 0) > 0);
      const shares = PROFILE_GROUPS.reduce((s, g) => s + p.groups[g].share, 0);
      assert.ok(Math.abs(shares - 1) < 0.01, `shares add up to ${shares}`);
      // A login verifies a signature and reads the ledger on the server: both show.
      assert.ok(p.groups.openpgp.ms > 0 || p.groups.crypto.ms > 0, JSON.stringify(p.groups));
      assert.ok(p.top.length > 0 && p.top.length <= 20);
      // Positions are mapped back to the TypeScript sources (tsx runs them as one line per file).
      const ours = p.top.filter((f) => f.at.startsWith('src/'));
      for (const f of ours) assert.match(f.at, /^src\/.+\.ts:\d+$/);
      for (const f of p.top.filter((f) => f.at.startsWith('(native) from ')))
        assert.match(f.at, /^\(native\) from \S+ \S+:\d+$/);
      assert.ok(
        ours.every((f) => !f.at.endsWith(':1')),
        `source-mapped lines: ${ours.map((f) => f.at)}`,
      );
      const raw = JSON.parse(readFileSync(out, 'utf8')) as CpuProfile;
      assert.ok(raw.nodes.length > 0 && (raw.samples?.length ?? 0) === p.samples);
    } finally {
      server.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
