/**
 * Child process of the benchmarks: a real keyledger server with rate limits raised for the benchmark.
 * Prints {"url"} once listening; answers on IPC "cpu" (its CPU seconds so far), "mem" (memory after
 * GC), {invite: id} (an invitation code), "profile-start" (starts a CPU profile of its main thread;
 * answers {profiling: true}), "profile-stop" or {"profile-stop": {out: FILE}} (stops it; answers
 * {profile: ServerProfile}, the split of profile-split.ts, and writes the raw .cpuprofile to FILE when
 * given; either answers {error} when out of turn) and "stop". With `--production-hijack` the hijack alarms keep their defaults (the load test
 * sends at a normal pace; the throughput benchmarks flood). With `--openpgp-js` the native OpenPGP
 * path is off (bench:auth --openpgp-js).
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { startServer } from '../../src/server/app.js';
import { splitProfile } from './profile-split.js';
import { type RunningProfile, startCpuProfile } from './profiler.js';

const [dataDir, passphrase, ...flags] = process.argv.slice(2);
const big = { burst: 1e9, perSecond: 1e9 };
const server = await startServer({
  dataDir: dataDir!,
  passphrase: passphrase!,
  port: 0,
  rateLimits: { registerPerIp: big, registerPerIdentity: big, loginPerIp: big, loginPerIdentity: big },
  // A benchmark is a flood by design: the abnormal-activity alarms would (rightly) end its session.
  ...(flags.includes('--openpgp-js') ? { nativeOpenPgp: false } : {}),
  ...(flags.includes('--production-hijack')
    ? {}
    : { hijackPolicy: { maxFramesPerWindow: 1e9, baselineFactor: 0 } }),
});
// A plain ws echo server in the same process, as the round-trip baseline of bench/session.ts.
const echo = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1024 * 1024 });
echo.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
await new Promise((r) => echo.once('listening', r));
const echoUrl = `ws://127.0.0.1:${(echo.address() as AddressInfo).port}`;
process.stdout.write(`${JSON.stringify({ url: server.url, echoUrl })}\n`);
const REPO = new URL('../..', import.meta.url).pathname;
let profiling: Promise<RunningProfile> | undefined;
process.on('message', (msg) => {
  if (msg === 'profile-start') {
    if (profiling !== undefined) process.send!({ error: 'a profile is already running' });
    else {
      profiling = startCpuProfile();
      void profiling.then(() => process.send!({ profiling: true }));
    }
  }
  const stop = msg === 'profile-stop' || (typeof msg === 'object' && msg !== null && 'profile-stop' in msg);
  if (stop && profiling === undefined) process.send!({ error: 'no profile is running' });
  else if (stop) {
    const out =
      typeof msg === 'object' ? (msg as { 'profile-stop': { out?: string } })['profile-stop'].out : undefined;
    const running = profiling!;
    profiling = undefined;
    void running
      .then((p) => p.stop())
      .then(({ profile, processCpuMs, mainThreadCpuMs }) => {
        if (out !== undefined) writeFileSync(out, JSON.stringify(profile));
        process.send!({
          profile: {
            ...splitProfile(profile, { top: 20, root: REPO }),
            processCpuMs: +processCpuMs.toFixed(1),
            mainThreadCpuMs,
          },
        });
      });
  }
  if (typeof msg === 'object' && msg !== null && 'invite' in msg) {
    const now = Date.now();
    process.send!({ code: server.proofs.issueInvite(String(msg.invite), now, now + 3_600_000) });
  }
  if (msg === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ cpuSeconds: (u.user + u.system) / 1e6 });
  }
  if (msg === 'mem') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.(); // twice: the first pass leaves weak and finalised objects for the second
    const m = process.memoryUsage();
    process.send!({
      heapUsed: m.heapUsed,
      external: m.external,
      rss: m.rss,
      arrayBuffers: m.arrayBuffers,
      sessions: server.sessions.size,
    });
  }
  if (msg === 'stop') void server.close().then(() => process.exit(0));
});
