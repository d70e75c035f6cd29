/**
 * `keyledger serve` — the real binary — as a child process, for tests of the whole server (crashes,
 * storage faults, the CLI). Every child is killed when the test file ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after } from 'node:test';
import { PASSPHRASE } from '../helpers.js';

const bin = new URL('../../bin/keyledger.js', import.meta.url).pathname;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A loopback port free right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A configuration file for `serve`: `port`, and rate limits open (one machine plays every user). */
export function writeServeConfig(path: string, port: number): string {
  const open = { burst: 1e6, perSecond: 1e6 };
  writeFileSync(
    path,
    JSON.stringify({
      port,
      rateLimits: {
        registerPerIp: open,
        registerPerIdentity: open,
        loginPerIp: open,
        loginPerIdentity: open,
      },
    }),
  );
  return path;
}

/** A running `keyledger serve`. */
export interface ServedCli {
  child: ChildProcess;
  url: string;
  /** What it printed on stderr so far. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `keyledger serve --data DATA --json` with `args` (e.g. `--config FILE`, `--port 0`) and the
 * test passphrase; resolves once it reports in, rejects with its stderr when it exits first. A
 * server that later dies on its own (not by SIGTERM or SIGKILL) prints why in the test output.
 */
export function serveCli(data: string, args: string[] = ['--port', '0']): Promise<ServedCli> {
  const child = spawn(process.execPath, [bin, 'serve', '--data', data, ...args, '--json'], {
    env: { ...process.env, KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      r({ code, signal });
    }),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let reported = false;
    child.stdout!.on('data', (c) => {
      out += c;
      if (reported || !out.includes('\n')) return;
      reported = true;
      resolve({ child, url: JSON.parse(out.split('\n')[0]!).url, stderr: () => err, exited });
    });
    void exited.then(({ code, signal }) => {
      if (!reported) reject(new Error(`serve exited ${code ?? signal}: ${err}`));
      else if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL')
        console.error(`serve exited ${code ?? signal}:\n${err}`);
    });
  });
}

/** Kills the server with SIGKILL and waits until it is gone. */
export async function killServer(s: ServedCli): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await s.exited;
}
