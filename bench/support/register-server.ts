/**
 * Child process of bench/register.ts: a real keyledger server (rate limits raised for the
 * benchmark, as in auth-server.ts) that can profile itself over a phase the parent chooses.
 * Prints {"url"} once listening, then answers on IPC, one answer per message:
 *   {invites: ids[]}          → {codes}: invitation codes with the server's pin (CODE.PIN), one per id
 *   "cpu"                     → {cpuSeconds}: user + system CPU seconds of this process so far
 *   "height"                  → {height}: the ledger's last block height
 *   {profileStart: µs}        → {started: true}: V8 CPU profiler on, sampling every µs microseconds
 *   {profileStop: file}       → {file, processCpuMs}: the profile (.cpuprofile JSON) written to
 *                               `file`, and this process's CPU time (all threads) while it ran
 *   "stop"                    → closes the server and exits.
 * The profiler runs in this process (profiler.ts, node:inspector), so it covers only the phase
 * between profileStart and profileStop, unlike `node --cpu-prof`, which covers the whole process.
 */
import { writeFileSync } from 'node:fs';
import { formatInvitation } from '../../src/protocol/invitation.js';
import { startServer } from '../../src/server/app.js';
import { type RunningProfile, startCpuProfile } from './profiler.js';

const [dataDir, passphrase] = process.argv.slice(2);
const big = { burst: 1e9, perSecond: 1e9 };
const server = await startServer({
  dataDir: dataDir!,
  passphrase: passphrase!,
  port: 0,
  rateLimits: { registerPerIp: big, registerPerIdentity: big, loginPerIp: big, loginPerIdentity: big },
});
let profiling: RunningProfile | undefined;

async function answer(msg: unknown): Promise<unknown> {
  if (msg === 'cpu') {
    const u = process.cpuUsage();
    return { cpuSeconds: (u.user + u.system) / 1e6 };
  }
  if (msg === 'height') {
    const cp = await server.ledger.checkpoint();
    return { height: cp?.header.height ?? 0 };
  }
  if (typeof msg !== 'object' || msg === null) return { error: `unknown message ${String(msg)}` };
  if ('invites' in msg) {
    const now = Date.now();
    const codes = (msg.invites as string[]).map((id) =>
      formatInvitation(server.proofs.issueInvite(id, now, now + 3_600_000), server.ledger.chainId),
    );
    return { codes };
  }
  if ('profileStart' in msg) {
    if (profiling) return { error: 'the profiler is already running' };
    profiling = await startCpuProfile(Number(msg.profileStart));
    return { started: true };
  }
  if ('profileStop' in msg) {
    if (!profiling) return { error: 'the profiler is not running' };
    const { profile, processCpuMs } = await profiling.stop();
    profiling = undefined;
    writeFileSync(String(msg.profileStop), JSON.stringify(profile));
    return { file: msg.profileStop, processCpuMs };
  }
  return { error: 'unknown message' };
}

process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
process.on('message', (msg) => {
  if (msg === 'stop') {
    void server.close().then(() => process.exit(0));
    return;
  }
  void answer(msg).then(
    (a) => process.send!(a),
    (err: unknown) => process.send!({ error: (err as Error).message }),
  );
});
