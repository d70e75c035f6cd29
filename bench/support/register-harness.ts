/**
 * The parent's side of bench/register.ts's server child (register-server.ts): starts it over a
 * data directory and asks it, one message at a time, for invitations, its CPU time, its ledger
 * height and a CPU profile of a phase.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/** A running registration-benchmark server. */
export interface RegisterBenchServer {
  url: string;
  dataDir: string;
  /** Invitation codes (CODE.PIN) for `ids`, in order. */
  invites(ids: string[]): Promise<string[]>;
  /** User + system CPU seconds of the server process so far. */
  cpuSeconds(): Promise<number>;
  /** Height of the server ledger's last block. */
  height(): Promise<number>;
  /** Starts the server's CPU profiler, one sample every `intervalUs` µs. */
  profileStart(intervalUs: number): Promise<void>;
  /** Stops it: the profile is written to `file`; the server's CPU ms (all threads) meanwhile. */
  profileStop(file: string): Promise<{ processCpuMs: number }>;
  /** Closes the server; resolves once the process has exited (killed after 5 s). */
  stop(): Promise<void>;
}

/** Starts register-server.ts over `root`/data. */
export function startRegisterServer(root: string, passphrase: string): Promise<RegisterBenchServer> {
  const dataDir = join(root, 'data');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./register-server.ts', import.meta.url).pathname, dataDir, passphrase],
    { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // One question at a time: each answer is the next message.
  let queue: Promise<unknown> = Promise.resolve();
  const ask = <T>(msg: string | object): Promise<T> => {
    const asked = queue.then(
      () =>
        new Promise<T>((resolve, reject) => {
          child.once('message', (m) => {
            const error = (m as { error?: string }).error;
            if (error) reject(new Error(`bench server: ${error}`));
            else resolve(m as T);
          });
          void exited.then(() => reject(new Error('bench server exited')));
          child.send(msg);
        }),
    );
    queue = asked.catch(() => {});
    return asked;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      if (!out.includes('\n')) return;
      const { url } = JSON.parse(out.split('\n')[0]!) as { url: string };
      resolve({
        url,
        dataDir,
        invites: (ids) => ask<{ codes: string[] }>({ invites: ids }).then((m) => m.codes),
        cpuSeconds: () => ask<{ cpuSeconds: number }>('cpu').then((m) => m.cpuSeconds),
        height: () => ask<{ height: number }>('height').then((m) => m.height),
        profileStart: (intervalUs) => ask({ profileStart: intervalUs }).then(() => undefined),
        profileStop: (file) => ask<{ processCpuMs: number }>({ profileStop: file }),
        stop: () => {
          if (child.connected) child.send('stop');
          const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
          return exited.finally(() => clearTimeout(kill));
        },
      });
    });
    child.on('exit', (code) => reject(new Error(`bench server exited ${code}`)));
  });
}
