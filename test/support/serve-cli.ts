/**
 * `keyledger serve` — the real binary — as a child process, for tests of the whole server (crashes,
 * storage faults, the CLI), and the users of such a server. Every child is killed when the test
 * file ends.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import type { ClientHome } from '../../src/client/home.js';
import { register } from '../../src/client/register.js';
import { connect } from '../../src/client/session.js';
import { readEncryptedLog } from '../../src/pgp/encrypted-log.js';
import { IdentityProofs } from '../../src/server/identity-proofs.js';
import { loadServerKey } from '../../src/server/server-key.js';
import { PASSPHRASE } from '../helpers.js';
import { freePort } from './free-port.js';
import { CLIENT_PASSPHRASE, newClient } from './server.js';

export { freePort };

const bin = new URL('../../bin/keyledger.js', import.meta.url).pathname;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

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

/** A user of a served data directory: a client home with a fresh key and an invitation code. */
export interface InvitedUser {
  id: string;
  home: ClientHome;
  invite: string;
}

/**
 * `n` users `PREFIXi@example.org`, invited in DATA/server.sqlite (what `keyledger admin invite`
 * writes; works while the server runs or not), each with a client home and a fresh key.
 */
export async function invitedUsers(data: string, prefix: string, n: number): Promise<InvitedUser[]> {
  const proofs = new IdentityProofs(data);
  try {
    const out: InvitedUser[] = [];
    for (let i = 0; i < n; i++) {
      const id = `${prefix}${i}@example.org`;
      out.push({
        id,
        home: await newClient(id),
        invite: proofs.issueInvite(id, Date.now(), Date.now() + 86_400_000),
      });
    }
    return out;
  } finally {
    proofs.close();
  }
}

/** Registers `u` with the server at `url`, with its invitation. */
export function registerUser(url: string, u: InvitedUser) {
  return register({
    home: u.home,
    server: url,
    proof: { method: 'invite', code: u.invite },
    passphrase: CLIENT_PASSPHRASE,
  });
}

/** Logs `u` in to the server it registered with (without the checkpoint check). */
export function logInUser(u: { home: ClientHome }) {
  return connect({ home: u.home, passphrase: CLIENT_PASSPHRASE, checkLedger: false });
}

/**
 * Opens every server log in DATA/logs with the server key and asserts that every line
 * authenticates; returns how many files there are and all their lines.
 */
export async function serverLogs(data: string): Promise<{ files: number; lines: string[] }> {
  const key = await loadServerKey(data, PASSPHRASE);
  const files = readdirSync(join(data, 'logs')).filter((f) => f.startsWith('server-'));
  const texts: string[] = [];
  for (const f of files) {
    const { lines } = await readEncryptedLog(join(data, 'logs', f), key.privateKey);
    for (const l of lines) {
      assert.ok('text' in l, `${f} line ${l.line}: ${'error' in l ? l.error : ''}`);
      texts.push(l.text);
    }
  }
  return { files: files.length, lines: texts };
}
