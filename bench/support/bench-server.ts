/**
 * What the benchmarks share: a real keyledger server in a child process (auth-server.ts, rate limits
 * and flood alarms off), asked over IPC for its CPU time, its memory and a CPU profile of one phase
 * split by group (profile-split.ts), and registered clients with unlocked keys.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { OpenPgpClientKey } from '../../src/client/client-key.js';
import { ClientHome } from '../../src/client/home.js';
import { createIdentity } from '../../src/client/identity.js';
import { register } from '../../src/client/register.js';
import { unlockPrivateKey } from '../../src/pgp/messages.js';
import type { ProfileSplit } from './profile-split.js';

/** Memory figures of the server process (after two full GCs). */
export interface ServerMemory {
  heapUsed: number;
  external: number;
  rss: number;
  sessions: number;
}

/** The server's CPU profile of one phase: its main thread split by group, and its process CPU time. */
export interface ServerProfile extends ProfileSplit {
  /** CPU time of the whole server process (all threads) over the profiled window, ms. */
  processCpuMs: number;
  /** CPU time of its main thread (the one profiled) over the same window, ms; undefined off Linux. */
  mainThreadCpuMs: number | undefined;
}

/** A running benchmark server. */
export interface BenchServer {
  child: ChildProcess;
  url: string;
  /** A plain `ws` echo server in the same process (round-trip baseline). */
  echoUrl: string;
  dataDir: string;
  cpuSeconds(): Promise<number>;
  /** An invitation code for `id`, issued by the server process. */
  invite(id: string): Promise<string>;
  memory(): Promise<ServerMemory>;
  /** Starts a CPU profile of the server's main thread (resolves once it runs). */
  profileStart(): Promise<void>;
  /** Stops it and returns its split; `out` also gets the raw profile (a `.cpuprofile` file). */
  profileStop(out?: string): Promise<ServerProfile>;
  stop(): void;
}

function ask<T>(child: ChildProcess, msg: string | object): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(msg);
  });
}

/**
 * Starts the server over `root`/data. `profileDir` (or KL_PROFILE_SERVER) writes a CPU profile of
 * the server there; `openpgpJs` switches its native OpenPGP path off.
 */
export function startBenchServer(
  root: string,
  passphrase: string,
  profileDir?: string,
  { productionHijack = false, openpgpJs = false } = {},
): Promise<BenchServer> {
  const dataDir = join(root, 'data');
  const prof = profileDir ?? process.env.KL_PROFILE_SERVER;
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      'tsx',
      ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
      new URL('./auth-server.ts', import.meta.url).pathname,
      dataDir,
      passphrase,
      ...(productionHijack ? ['--production-hijack'] : []),
      ...(openpgpJs ? ['--openpgp-js'] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      if (!out.includes('\n')) return;
      const { url, echoUrl } = JSON.parse(out.split('\n')[0]!) as { url: string; echoUrl: string };
      resolve({
        child,
        url,
        echoUrl,
        dataDir,
        cpuSeconds: () => ask<{ cpuSeconds: number }>(child, 'cpu').then((m) => m.cpuSeconds),
        memory: () => ask<ServerMemory>(child, 'mem'),
        invite: (id) => ask<{ code: string }>(child, { invite: id }).then((m) => m.code),
        profileStart: () =>
          ask<{ profiling: true } | { error: string }>(child, 'profile-start').then((m) => {
            if ('error' in m) throw new Error(`server profile: ${m.error}`);
          }),
        profileStop: (out) =>
          ask<{ profile: ServerProfile } | { error: string }>(
            child,
            out === undefined ? 'profile-stop' : { 'profile-stop': { out } },
          ).then((m) => {
            if ('error' in m) throw new Error(`server profile: ${m.error}`);
            return m.profile;
          }),
        stop: () => {
          if (child.connected) child.send('stop');
          setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
        },
      });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

/**
 * A client home registered with `server` (invitation from the server process), with its key unlocked.
 * `log` is told each step with its time, so a run that stalls shows where.
 */
export async function benchClient(
  server: BenchServer,
  root: string,
  id: string,
  passphrase: string,
  log?: (line: string) => void,
): Promise<{ home: ClientHome; key: OpenPgpClientKey }> {
  const started = performance.now();
  const step = (what: string) => log?.(`  ${id}: ${what} (${Math.round(performance.now() - started)} ms)`);
  const home = new ClientHome(join(root, `home-${id}`));
  await createIdentity({ home, id, name: id.split('@')[0]!, source: 'generate', passphrase });
  step('key made');
  const code = await server.invite(id);
  step('invitation issued');
  await register({ home, server: server.url, proof: { method: 'invite', code }, passphrase });
  step('registered');
  return { home, key: new OpenPgpClientKey(await unlockPrivateKey(home.readPrivateKey(), passphrase)) };
}
