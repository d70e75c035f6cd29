/**
 * Child process of bench/auth.ts: a real keyledger server with rate limits raised for the benchmark.
 * Prints {"url"} once listening; answers "cpu" on IPC with its own CPU seconds so far.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { startServer } from '../../src/server/app.js';

const [dataDir, passphrase] = process.argv.slice(2);
const big = { burst: 1e9, perSecond: 1e9 };
const server = await startServer({
  dataDir: dataDir!,
  passphrase: passphrase!,
  port: 0,
  rateLimits: { registerPerIp: big, registerPerIdentity: big, loginPerIp: big, loginPerIdentity: big },
  // A benchmark is a flood by design: the abnormal-activity alarms would (rightly) end its session.
  hijackPolicy: { maxFramesPerWindow: 1e9, baselineFactor: 0 },
});
// A plain ws echo server in the same process, as the round-trip baseline of bench/session.ts.
const echo = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1024 * 1024 });
echo.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
await new Promise((r) => echo.once('listening', r));
const echoUrl = `ws://127.0.0.1:${(echo.address() as AddressInfo).port}`;
process.stdout.write(`${JSON.stringify({ url: server.url, echoUrl })}\n`);
process.on('message', (msg) => {
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
