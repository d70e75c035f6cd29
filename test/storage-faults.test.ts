/**
 * Issue 7, faults: the disk fills up, and the data directory turns read-only, under a running
 * `keyledger serve` (the real binary). Writes are refused with KL_STORAGE_UNAVAILABLE and a message
 * that says why; nothing is half written (the ledger verifies, refused writes are absent, the
 * encrypted log has only whole lines); logins and open sessions go on (they only read); the server
 * stays up, says so on /readyz and /metrics, and takes writes again once space or write access
 * returns. A server does not start on a read-only data directory: it exits 2 with one clear line.
 *
 * The disk is a real size-limited tmpfs mounted for the test; "read-only" is the immutable
 * attribute (chattr +i), which the filesystem enforces even against root and on files already open
 * — a read-only remount is refused while the server holds its files open. Both need root, as CI has.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { logWriter } from '../src/cli/log-writer.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { EncryptedLog, readEncryptedLog } from '../src/pgp/encrypted-log.js';
import { isKlError } from '../src/protocol/errors.js';
import { tempDir } from './helpers.js';
import {
  freePort,
  invitedUsers,
  logInUser,
  registerUser,
  type ServedCli,
  serveCli,
  serverLogs,
  writeServeConfig,
} from './support/serve-cli.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const run = promisify(execFile);
const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      // already undone by the test itself
    }
  }
});

/** `keyledger serve` (on `port`, or a free one) with rate limits open. */
async function serve(data: string, root: string, port?: number): Promise<ServedCli> {
  port ??= await freePort();
  return serveCli(data, ['--config', writeServeConfig(join(root, `config-${port}.json`), port)]);
}

async function stop(s: ServedCli): Promise<void> {
  s.child.kill('SIGTERM');
  const { code } = await s.exited;
  assert.equal(code, 0, `graceful shutdown: ${s.stderr()}`);
}

const refused = (fault: RegExp) => (err: unknown) =>
  isKlError(err) && err.code === 'KL_STORAGE_UNAVAILABLE' && fault.test(err.message);

async function readyz(url: string): Promise<{ ready: boolean; storage: string }> {
  return (await fetch(`${url}/readyz`)).json() as Promise<{ ready: boolean; storage: string }>;
}

/** A size-limited tmpfs mounted for the test (unmounted at the end). */
function smallDisk(root: string, size: string): string {
  const mnt = join(root, 'disk');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mnt]);
  cleanups.push(() => execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }));
  return mnt;
}

/** Fills the filesystem of `dir` to the last byte with `dir`/filler; returns its path. */
function fill(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  for (const size of [1 << 20, 1 << 12, 1]) {
    const chunk = Buffer.alloc(size, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    }
  }
  closeSync(fd);
  return filler;
}

describe('disk full', () => {
  it('the encrypted log loses the lines it cannot write, says so, and every line in it authenticates', async () => {
    const root = tempDir('kl-logfull-');
    const mnt = smallDisk(root, '256k');
    const key = (await openpgp.generateKey({ userIDs: [{ email: 'op@example.org' }], format: 'object' }))
      .privateKey;
    const log = await EncryptedLog.create(join(mnt, 'server.log.enc'), key.toPublic());
    const reports: string[] = [];
    const write = logWriter(log, { report: (m) => reports.push(m) });
    write('before');
    const filler = fill(mnt);
    // Lines of ~3 KiB: the first that needs a new page fails, possibly after part of it was written.
    const long = 'x'.repeat(3000);
    for (let i = 0; i < 5; i++) write(`while full ${i} ${long}`);
    assert.match(reports[0]!, /cannot write the encrypted log .* \(the disk is full\)/);
    rmSync(filler);
    write('after');
    assert.match(reports.at(-1)!, /is written again \(\d line\(s\) lost\)/);
    const { lines } = await readEncryptedLog(log.path, key);
    const texts = lines.map((l) => ('text' in l ? l.text.replace(/^\S+ /, '') : `ERROR ${l.error}`));
    assert.ok(!texts.some((t) => t.startsWith('ERROR')), 'no torn or misnumbered line');
    assert.equal(texts[0], 'before');
    assert.equal(texts.at(-1), 'after');
    // Every line was either written whole or counted in a note written after it.
    const written = texts.filter((t) => t.startsWith('while full')).length;
    const counted = texts
      .map((t) => /^(\d+) log line\(s\) lost: the log could not be written$/.exec(t)?.[1])
      .reduce((n, c) => n + Number(c ?? 0), 0);
    assert.ok(counted >= 1, 'some lines did not fit');
    assert.equal(written + counted, 5);
    execFileSync('umount', [mnt]);
  });

  it('writes are refused with KL_STORAGE_UNAVAILABLE, nothing is half written, logins go on, and writes resume when space returns', async () => {
    const root = tempDir('kl-diskfull-');
    const mnt = smallDisk(root, '24m');
    const data = join(mnt, 'data');
    let server = await serve(data, root);
    const [alice, ...waiting] = await invitedUsers(data, 'full', 40);
    await registerUser(server.url, alice!);
    const revoker = waiting.pop()!;
    await registerUser(server.url, revoker);
    const live = await logInUser(alice!);

    const filler = fill(mnt);

    // SQLite reuses the pages its write-ahead log already holds, so the first writes may still
    // fit; each registration either commits or is refused whole — and soon they are refused.
    const committed: typeof waiting = [];
    const refusedUsers: typeof waiting = [];
    for (const u of waiting) {
      try {
        await registerUser(server.url, u);
        committed.push(u);
      } catch (err) {
        assert.ok(refused(/disk is full/)(err), String(err));
        refusedUsers.push(u);
        if (refusedUsers.length >= 3) break;
      }
    }
    assert.equal(refusedUsers.length, 3, 'a full disk refuses registrations');
    const revokerSession = await logInUser(revoker); // logins only read: they go on
    await assert.rejects(revokerSession.revokeKey('retired'), refused(/disk is full/));
    assert.deepEqual(await live.request('still here'), { echo: 'still here', id: alice!.id });
    const invite = await run(process.execPath, [
      bin,
      'admin',
      'invite',
      'late@example.org',
      '--data',
      data,
    ]).then(
      () => assert.fail('an invitation cannot be stored on a full disk'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(invite.code, 2);
    assert.match(invite.stderr, /KL_STORAGE_UNAVAILABLE|disk is full/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await readyz(server.url)).storage, 'full');
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^keyledger_storage_fault 1$/m);
    // One operator alert (at most one a minute), however many writes failed.
    const { stdout } = await run(process.execPath, [bin, 'admin', 'alerts', '--data', data, '--json']);
    const storageAlerts = (JSON.parse(stdout) as Array<{ kind: string; detail: string }>).filter(
      (a) => a.kind === 'storage',
    );
    assert.equal(storageAlerts.length, 1);
    assert.match(storageAlerts[0]!.detail, /disk is full/);
    const reader = EmbeddedLedger.open({ dataDir: data });
    for (const u of refusedUsers) assert.equal((await reader.getKeyRecord(u.id)).record, null, u.id);
    await reader.close();

    // Space returns: the same invitations work (nothing was used up), the revocation goes through.
    rmSync(filler);
    for (const u of refusedUsers) assert.equal((await registerUser(server.url, u)).verified, true);
    await revokerSession.revokeKey('retired');
    assert.equal((await readyz(server.url)).storage, 'ok');
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^keyledger_storage_fault 0$/m);
    await live.close();
    await stop(server);

    const audit = verifyLedgerData({ dataDir: data });
    assert.ok(audit.ok, audit.problem?.reason);
    const ledger = EmbeddedLedger.open({ dataDir: data });
    for (const u of [alice!, ...committed, ...refusedUsers])
      assert.equal((await ledger.getKeyRecord(u.id)).record?.status, 'active', u.id);
    assert.equal((await ledger.getKeyRecord(revoker.id)).record?.status, 'revoked');
    await ledger.close();
    await serverLogs(data);

    // And a restart on the recovered disk serves as before.
    server = await serve(data, root, Number(new URL(server.url).port)); // the port clients know
    await (await logInUser(alice!)).close();
    await stop(server);
    execFileSync('umount', [mnt]);
  });
});

describe('read-only data directory', () => {
  // Every file and directory but SQLite's shared-memory index (*-shm): it is mapped into memory,
  // and a store into a mapped page of an immutable file is a SIGBUS, which kills any process
  // (see docs/reliability.md). Its content is rebuilt from the write-ahead log; nothing is kept in it.
  const immutable = (dir: string, on: boolean) => {
    const find = [dir, '(', '-type', 'f', '-o', '-type', 'd', ')', '-not', '-name', '*-shm'];
    const paths = execFileSync('find', find, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(Boolean);
    execFileSync('chattr', [on ? '+i' : '-i', ...paths]);
  };

  it('writes are refused clearly while the directory is read-only and resume after; no server starts on one', async () => {
    const root = tempDir('kl-readonly-');
    const data = join(root, 'data');
    let server = await serve(data, root);
    const [alice, bob, carol] = await invitedUsers(data, 'ro', 3);
    await registerUser(server.url, alice!);
    const live = await logInUser(alice!);
    cleanups.push(() => immutable(data, false));

    immutable(data, true);
    await assert.rejects(registerUser(server.url, bob!), refused(/read-only/));
    await (await logInUser(alice!)).close(); // logins go on
    assert.deepEqual(await live.request('ro'), { echo: 'ro', id: alice!.id });
    assert.equal((await readyz(server.url)).storage, 'read-only');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

    immutable(data, false);
    assert.equal((await registerUser(server.url, bob!)).verified, true);
    assert.equal((await readyz(server.url)).storage, 'ok');
    await live.close();
    await stop(server);

    // A server does not start on a read-only data directory: exit status 2 (every CLI error) and one line saying
    // why, not a crash with a stack trace.
    immutable(data, true);
    await assert.rejects(serve(data, root), (err: Error) => {
      assert.match(err.message, /^serve exited 2: .*KL_STORAGE_UNAVAILABLE.*read-only/s);
      assert.doesNotMatch(err.message, /\n\s+at /, 'no stack trace');
      return true;
    });
    immutable(data, false);

    const audit = verifyLedgerData({ dataDir: data });
    assert.ok(audit.ok, audit.problem?.reason);
    server = await serve(data, root);
    assert.equal((await registerUser(server.url, carol!)).verified, true);
    await stop(server);
    await serverLogs(data);
  });
});
