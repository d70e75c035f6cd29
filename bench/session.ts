/**
 * `npm run bench:session` — the session channel, each figure next to a baseline from the same run:
 *   bulk:        MB/s of 64 KiB application messages through the channel (client process → server
 *                process), next to raw AES-256-GCM seal+open of 64 KiB buffers in one process;
 *   round trips: sequential request/answer per second, next to a plain `ws` echo served by the same
 *                server process;
 *   memory:      bytes per idle session in the server (heap + external after GC) with N sessions
 *                open, next to as many idle plain `ws` connections to the same process.
 * `--json` prints the results document (bulkRatio, roundTripRatio, bytesPerIdleSession…) on stdout;
 * `--out FILE` writes it (bench/support/bench-cli.ts, bench/README.md). Options: --idle-sessions N
 * (default 10000, the goal's figure), --frames N (default 2000), --round-trips N (default 3000).
 * Never fails on timing.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { type ClientSession, connect } from '../src/client/session.js';
import { benchArgs } from './support/bench-cli.js';
import {
  type BenchServer,
  benchClient,
  type ServerMemory,
  startBenchServer,
} from './support/bench-server.js';

const args = benchArgs({
  name: 'session',
  command: 'npm run bench:session --',
  summary:
    'Session channel bulk MB/s, round trips/s and server memory per idle session, next to raw AES-256-GCM, a plain ws echo and idle ws connections.',
  params: {
    'idle-sessions': { kind: 'count', full: '10000', fullWhen: 'atLeast', help: 'idle sessions held open' },
    frames: { kind: 'count', full: '2000', fullWhen: 'atLeast', help: '64 KiB messages in the bulk run' },
    'round-trips': { kind: 'count', full: '3000', fullWhen: 'atLeast', help: 'sequential round trips' },
  },
  out: 'file',
  resultsFile: 'session.json',
});
const IDLE = args.count('idle-sessions');
const FRAMES = args.count('frames');
const RTS = args.count('round-trips');
const root = mkdtempSync(join(tmpdir(), 'kl-bench-session-'));
const log = (s: string) => process.stderr.write(`${s}\n`);
const PASS = 'bench';

function rawAesMBps(size: number, n: number): number {
  const key = randomBytes(32);
  const data = randomBytes(size);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([c.update(data), c.final()]);
    const tag = c.getAuthTag();
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    Buffer.concat([d.update(ct), d.final()]);
  }
  return (size * n) / 1e6 / ((performance.now() - t0) / 1000);
}

async function echoRoundTrips(url: string, n: number): Promise<number> {
  const ws = new WebSocket(url);
  await new Promise((r) => ws.once('open', r));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      ws.once('message', () => resolve());
      ws.send(JSON.stringify({ t: 'data', id: i, body: 'x' }));
    });
  }
  const rate = n / ((performance.now() - t0) / 1000);
  ws.close();
  return rate;
}

let server: BenchServer | undefined;
try {
  log(`keyledger session benchmark — ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}`);
  server = await startBenchServer(root, PASS);
  const { echoUrl } = server;
  const { home, key } = await benchClient(server, root, 'bench@example.org', PASS);
  const session = await connect({ home, key, checkLedger: false });

  // Memory per idle session, next to the memory of as many idle plain ws connections (same process).
  type Mem = ServerMemory;
  const perConnection = (a: Mem, b: Mem) =>
    Math.round((b.heapUsed + b.external - a.heapUsed - a.external) / IDLE);
  const beforeWs = await server.memory();
  const plain: WebSocket[] = [];
  for (let i = 0; i < IDLE; i += 100) {
    const batch = Array.from({ length: Math.min(100, IDLE - i) }, () => new WebSocket(echoUrl));
    await Promise.all(batch.map((ws) => new Promise((r) => ws.once('open', r))));
    plain.push(...batch);
  }
  const wsBytesPerIdleConnection = perConnection(beforeWs, await server.memory());
  for (const ws of plain) ws.terminate();
  await new Promise((r) => setTimeout(r, 500));

  const before = await server.memory();
  const idle: ClientSession[] = [];
  for (let i = 0; i < IDLE; i += 50) {
    idle.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, IDLE - i) }, () => connect({ home, key, checkLedger: false })),
      )),
    );
    if (i % 1000 === 0) log(`  ${idle.length}/${IDLE} idle sessions open`);
  }
  const afterMem = await server.memory();
  const bytesPerIdleSession = perConnection(before, afterMem);
  const rssPerIdleSession = Math.round((afterMem.rss - before.rss) / IDLE);
  log(
    `memory per idle session: ${bytesPerIdleSession} bytes heap+external (${rssPerIdleSession} bytes RSS) with ${afterMem.sessions} sessions open   (a plain idle ws connection: ${wsBytesPerIdleConnection} bytes)`,
  );
  for (const s of idle) s.dropConnection();
  await new Promise((r) => setTimeout(r, 500));

  // Bulk.
  const body = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 50; i++) session.send(body);
  await session.request('warm');
  const t0 = performance.now();
  for (let i = 0; i < FRAMES; i++) {
    session.send(body);
    if (i % 64 === 63) await session.request('sync'); // bounded in flight, as a real sender would be
  }
  await session.request('done');
  const bulkMBps = (FRAMES * body.length) / 1e6 / ((performance.now() - t0) / 1000);
  const rawMBps = rawAesMBps(64 * 1024, FRAMES);
  log(
    `bulk 64 KiB messages: ${bulkMBps.toFixed(1)} MB/s   (raw AES-256-GCM seal+open in one process: ${rawMBps.toFixed(1)} MB/s)`,
  );

  // Round trips.
  for (let i = 0; i < 100; i++) await session.request('x');
  const t1 = performance.now();
  for (let i = 0; i < RTS; i++) await session.request('x');
  const rtPerSec = RTS / ((performance.now() - t1) / 1000);
  const echoPerSec = await echoRoundTrips(echoUrl, RTS);
  log(
    `round trips: ${Math.round(rtPerSec)}/s   (plain ws echo, same server process: ${Math.round(echoPerSec)}/s)`,
  );
  await session.close();

  server.stop();

  const result = await args.finish({
    bulkMBps: +bulkMBps.toFixed(1),
    rawAesGcmMBps: +rawMBps.toFixed(1),
    bulkRatio: +(bulkMBps / rawMBps).toFixed(3),
    roundTripsPerSec: Math.round(rtPerSec),
    wsEchoRoundTripsPerSec: Math.round(echoPerSec),
    roundTripRatio: +(rtPerSec / echoPerSec).toFixed(3),
    idleSessions: IDLE,
    bytesPerIdleSession,
    wsBytesPerIdleConnection,
    rssBytesPerIdleSession: rssPerIdleSession,
    goals: { bulkRatio: '≥ 0.6', roundTripRatio: '≥ 0.6', bytesPerIdleSession: '≤ 6144' },
  });
  log(
    `ratios: bulk ${result.bulkRatio} (goal ≥ 0.6), round trips ${result.roundTripRatio} (goal ≥ 0.6); ${bytesPerIdleSession} B per idle session (goal ≤ 6 KiB)`,
  );
} finally {
  server?.stop();
  rmSync(root, { recursive: true, force: true });
}
process.exit(0); // the dropped idle sessions' timers would keep the process alive
