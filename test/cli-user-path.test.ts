/**
 * The new user's path through the CLI, as the README tells it: what `login` leaves behind, the
 * shell's own commands, `demo` next to a running server, the data directory `npm start` made, and a
 * server whose output reader goes away.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PASSPHRASE, tempDir } from './helpers.js';
import { bin, runCli } from './support/cli.js';
import { freePort, serveCli } from './support/serve-cli.js';

const user = { KEYLEDGER_PASSPHRASE: 'a passphrase only this user knows' };
const node = { KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE };

/** A registered home on the server of `data` at `url`. */
function registeredHome(url: string, data: string, id: string): string {
  const home = join(tempDir(), 'home');
  const code = JSON.parse(runCli(['admin', 'invite', id, '--data', data, '--json']).stdout).code as string;
  assert.equal(runCli(['init', '--id', id, '--home', home], { env: user }).code, 0);
  const reg = runCli(['register', '--server', url, '--invite', code, '--home', home], { env: user });
  assert.equal(reg.code, 0, reg.stderr);
  return home;
}

describe('the new user path through the CLI', () => {
  it('login proves both sides and logs out: no session is left behind', async () => {
    const data = join(tempDir(), 'data');
    const { url, child } = await serveCli(data);
    const home = registeredHome(url, data, 'lou@example.org');
    const li = runCli(['login', '--home', home], { env: user });
    assert.equal(li.code, 0, li.stderr);
    assert.match(
      li.stdout,
      /^logged in {4}lou@example.org at http:\/\/127\.0\.0\.1:\d+ \(both sides authenticated\)$/m,
    );
    assert.match(li.stdout, /^logged out {3}session \S+ ended/m);
    assert.match(li.stdout, /keyledger shell, or keyledger send MESSAGE/);
    const json = JSON.parse(runCli(['login', '--home', home, '--json'], { env: user }).stdout);
    assert.equal(json.verified, true);
    assert.equal(json.loggedOut, true);
    // The server holds no session of lou's: both logins ended theirs.
    const sessions = runCli(['admin', 'sessions', '--data', data, '--json']);
    assert.equal(sessions.code, 0, sessions.stderr);
    assert.deepEqual(JSON.parse(sessions.stdout), []);
    // The audit trail says how they ended: logged out, not left to time out.
    const events = JSON.parse(
      runCli(['audit', '--data', data, '--id', 'lou@example.org', '--json']).stdout,
    ) as Array<{
      event: string;
      detail?: { reason?: string };
    }>;
    const ends = events.filter((e) => e.event === 'session_end');
    assert.equal(ends.length, 2);
    for (const e of ends) assert.equal(e.detail?.reason, 'logout');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  it('the shell runs its commands (/help, exit, /sessions …) and sends only messages', async () => {
    const data = join(tempDir(), 'data');
    const { url, child } = await serveCli(data);
    const home = registeredHome(url, data, 'shelly@example.org');
    const sh = runCli(['shell', '--home', home], {
      env: user,
      input: [
        '/help',
        'help',
        '/bogus thing',
        'ping',
        '/send exit',
        '/note put todo buy milk and eggs',
        '/note get todo',
        '/notes',
        '/sessions',
        'exit',
        'after exit',
        '',
      ].join('\n'),
    });
    assert.equal(sh.code, 0, sh.stderr);
    // /help and help print the commands, twice; nothing of them reached the server.
    assert.equal(sh.stdout.match(/\/quit {18}log out and leave/g)?.length, 2);
    assert.match(sh.stderr, /unknown command \/bogus \(not sent\): \/help lists the commands/);
    const echoes = [...sh.stdout.matchAll(/"echo":"([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(echoes, ['ping', 'exit'], 'only ping and the /send text were sent');
    assert.match(sh.stdout, /^saved note todo$/m);
    assert.match(sh.stdout, /^buy milk and eggs$/m);
    assert.match(sh.stdout, /^todo$/m);
    // /sessions: one line, readable times, this session marked; no raw JSON.
    assert.match(
      sh.stdout,
      /^\S{22} {2}key …[0-9a-f]{16} {2}from 127\.0\.0\.1 {2}started \d\d:\d\d:\d\d \((?:just now|\d+ s ago)\) {2}last active (?:just now|\d+ s ago) {2}\(this one\)$/m,
    );
    assert.doesNotMatch(sh.stdout, /createdAt|lastActivity/);
    // `exit` ended the shell: the line after it was never read, the session was logged out.
    assert.doesNotMatch(sh.stdout, /after exit/);
    assert.match(sh.stderr, /logged out/);
    assert.doesNotMatch(sh.stderr, /session ended/, 'our own logout is said once');
    const list = runCli(['session', 'list', '--home', home], { env: user });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^no other sessions of shelly@example.org$/m);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  it('demo keeps to a directory of its own and needs no passphrase flag', async () => {
    const cwd = tempDir();
    // The server npm start runs, in the same folder.
    const { child } = await serveCli(join(cwd, 'keyledger-data'));
    const demo = runCli(['demo', '--users', '2'], { cwd });
    assert.equal(demo.code, 0, demo.stderr);
    assert.match(demo.stdout, /initialised a new ledger in \.\/keyledger-demo/);
    assert.match(
      demo.stderr,
      /--insecure-dev-passphrase: the keys are protected by a publicly known passphrase/,
    );
    assert.ok(existsSync(join(cwd, 'keyledger-demo', 'genesis.json')));
    // Run again: the same directory, opened with the same (development) passphrase.
    const again = runCli(['demo', '--users', '2'], { cwd });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /using the existing ledger in \.\/keyledger-demo/);
    const help = runCli(['demo', '--help']);
    assert.match(help.stdout, /defaults to \.\/keyledger-demo/);
    assert.match(help.stdout, /public development passphrase/);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  it('on the directory npm start made, a missing or wrong passphrase says it was the development one', () => {
    const dev = join(tempDir(), 'keyledger-data');
    assert.equal(runCli(['ledger', 'init', '--data', dev, '--insecure-dev-passphrase']).code, 0);
    const hint =
      /was made with the public development passphrase \(npm start does that\): add --insecure-dev-passphrase/;
    const wrong = runCli(['serve', '--data', dev, '--port', '0'], {
      env: { KEYLEDGER_SERVER_PASSPHRASE: 'a guess' },
    });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /error KL_PASSPHRASE_WRONG/);
    assert.match(wrong.stderr, hint);
    const none = runCli(['serve', '--data', dev, '--port', '0']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /error KL_PASSPHRASE_REQUIRED/);
    assert.match(none.stderr, hint);
    // The directory named in a configuration file, as serve reads it.
    const config = join(tempDir(), 'keyledger.json');
    writeFileSync(config, JSON.stringify({ dataDir: dev, port: 0 }));
    const viaConfig = runCli(['serve', '--config', config], {
      env: { KEYLEDGER_SERVER_PASSPHRASE: 'a guess' },
    });
    assert.equal(viaConfig.code, 2);
    assert.match(viaConfig.stderr, hint);
    const verify = runCli(['ledger', 'verify', '--data', dev, '--mark-verified'], {
      env: { KEYLEDGER_SERVER_PASSPHRASE: 'x' },
    });
    assert.match(verify.stderr, hint);
    // A directory with a passphrase of its own gets no such hint: nothing about it is public.
    const own = join(tempDir(), 'data');
    assert.equal(runCli(['ledger', 'init', '--data', own], { env: node }).code, 0);
    const guess = runCli(['serve', '--data', own, '--port', '0'], {
      env: { KEYLEDGER_SERVER_PASSPHRASE: 'a guess' },
    });
    assert.equal(guess.code, 2);
    assert.match(guess.stderr, /error KL_PASSPHRASE_WRONG/);
    assert.doesNotMatch(guess.stderr, /development passphrase/);
  });

  it('a data directory whose ledger.sqlite is gone is refused, never made anew over its keys', () => {
    const data = join(tempDir(), 'data');
    assert.equal(runCli(['ledger', 'init', '--data', data], { env: node }).code, 0);
    const keys = ['genesis.json', 'validator.key', 'registrar.key', 'server-key.asc'].map((f) =>
      readFileSync(join(data, f), 'utf8'),
    );
    rmSync(join(data, 'ledger.sqlite'));
    for (const args of [
      ['serve', '--data', data, '--port', '0'],
      ['ledger', 'init', '--data', data],
      ['demo', '--data', data],
    ]) {
      const r = runCli(args, { env: node });
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /error KL_DATA_DIR: .* holds genesis\.json but no ledger\.sqlite: .* Nothing was changed/,
      );
    }
    assert.deepEqual(
      ['genesis.json', 'validator.key', 'registrar.key', 'server-key.asc'].map((f) =>
        readFileSync(join(data, f), 'utf8'),
      ),
      keys,
      'the keys and the genesis are as they were',
    );
    assert.equal(existsSync(join(data, 'ledger.sqlite')), false);
  });

  it('ledger init makes a directory serve starts on; serve outlives a reader that goes away (| head)', async () => {
    const data = join(tempDir(), 'data');
    mkdirSync(data);
    const init = runCli(['ledger', 'init', '--data', data], { env: node });
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /start it: keyledger serve --data /);
    const child = spawn(process.execPath, [bin, 'serve', '--data', data, '--port', '0'], {
      env: { ...process.env, ...node },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (c) => {
        text += c;
        const m = /keyledger listening on (\S+)/.exec(text);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    // The reader closes its end, as `head -1` does; then events happen and serve writes lines.
    child.stdout.destroy();
    registeredHome(url, data, 'piped@example.org');
    assert.equal(runCli(['login', '--home', join(tempDir(), 'none')]).code, 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(child.exitCode, null, `serve is still running (stderr: ${err})`);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0, err);
    assert.doesNotMatch(err, /EPIPE|Error:/);
  });

  it('serve whose stdout cannot be written (a full disk: /dev/full) keeps serving and says so once', async () => {
    const data = join(tempDir(), 'data');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [bin, 'serve', '--data', data, '--port', String(port), '--json'], {
      env: { ...process.env, ...node },
      stdio: ['ignore', full, 'pipe'],
    });
    closeSync(full);
    let err = '';
    child.stderr!.on('data', (c) => (err += c));
    // No banner can be read from a full disk: the server is up once it answers.
    for (let i = 0; ; i++) {
      assert.equal(child.exitCode, null, `serve exited: ${err}`);
      if (
        await fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      assert.ok(i < 200, 'serve answers within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    registeredHome(url, data, 'full@example.org');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(child.exitCode, null, `serve is still running (stderr: ${err})`);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.match(err, /stdout cannot be written \(ENOSPC\)/);
    assert.equal(err.match(/cannot be written/g)?.length, 1, 'said once');
    child.kill('SIGTERM');
    assert.equal(await new Promise<number | null>((r) => child.once('exit', (c) => r(c))), 0, err);
  });
});
