/**
 * Child process of bench/auth.ts: a real keyledger server with rate limits raised for the benchmark.
 * Prints {"url"} once listening; answers "cpu" on IPC with its own CPU seconds so far.
 */
import { startServer } from '../../src/server/app.js';

const [dataDir, passphrase] = process.argv.slice(2);
const big = { burst: 1e9, perSecond: 1e9 };
const server = await startServer({
  dataDir: dataDir!,
  passphrase: passphrase!,
  port: 0,
  rateLimits: { registerPerIp: big, registerPerIdentity: big, loginPerIp: big, loginPerIdentity: big },
});
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
process.on('message', (msg) => {
  if (msg === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ cpuSeconds: (u.user + u.system) / 1e6 });
  }
  if (msg === 'stop') void server.close().then(() => process.exit(0));
});
