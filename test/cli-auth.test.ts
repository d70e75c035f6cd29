import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PASSPHRASE, tempDir } from './helpers.js';
import { runCli } from './support/cli.js';
import { serveCli } from './support/serve-cli.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;

/** `keyledger ARGS…` with `env` (test/support/cli.ts). */
const run = (args: string[], env: Record<string, string> = {}) => runCli(args, { env });

describe('a new user through the CLI: serve → invite → init → register → login', () => {
  it('works as the README says', async () => {
    const data = join(tempDir(), 'server-data');
    const { url, child } = await serveCli(data);
    const home = join(tempDir(), 'home');
    const user = { KEYLEDGER_PASSPHRASE: 'my secret passphrase' };

    const inv = run(['admin', 'invite', 'Dana@Example.org', '--data', data, '--json']);
    assert.equal(inv.code, 0, inv.stderr);
    const { code, id } = JSON.parse(inv.stdout);
    assert.equal(id, 'dana@example.org');
    // The code and, after the ".", the pin of the server's ledger (128 bits of its chain id).
    assert.match(code, /^KL-(?:[0-9A-Z]{4}-){4}[0-9A-Z]{4}\.[0-9a-f]{32}$/);

    const initR = run(['init', '--id', 'dana@example.org', '--name', 'Dana', '--home', home, '--json'], user);
    assert.equal(initR.code, 0, initR.stderr);
    const identity = JSON.parse(initR.stdout);
    assert.match(identity.fingerprint, /^[0-9a-f]{40}$/);
    assert.equal(statSync(join(home, 'private-key.asc')).mode & 0o777, 0o600);

    const reg = run(['register', '--server', url, '--invite', code, '--home', home], user);
    assert.equal(reg.code, 0, reg.stderr);
    assert.match(reg.stdout, /registered {3}dana@example.org/);
    assert.match(reg.stdout, /receipt verified against the genesis/);
    assert.match(reg.stdout, /authenticated by the pin of your invitation before the code was sent/);
    assert.doesNotMatch(reg.stderr, /first use/);

    // Run again (as after a lost answer): the same key gets the same receipt, nothing is written.
    const again = run(['register', '--server', url, '--invite', code, '--home', home], user);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /receipt verified against the genesis/);
    // Another key cannot use the spent invitation.
    const other = join(tempDir(), 'home');
    assert.equal(run(['init', '--id', 'dana@example.org', '--name', 'Dana', '--home', other], user).code, 0);
    const stolen = run(['register', '--server', url, '--invite', code, '--home', other], user);
    assert.equal(stolen.code, 2);
    // The identity is taken: the person is told by which key, and what it means if it was not theirs.
    assert.match(stolen.stderr, /error KL_IDENTITY_TAKEN/);
    assert.match(
      stolen.stderr,
      new RegExp(`another key for dana@example.org \\(fingerprint ${identity.fingerprint}, block \\d+\\)`),
    );
    assert.match(stolen.stderr, /someone else registered first/);

    // An invitation without its pin: the CLI says plainly that nothing authenticated the server, and
    // without a terminal to confirm on it sends nothing unless told --trust-first-use.
    const bare = JSON.parse(
      run(['admin', 'invite', 'erin@example.org', '--data', data, '--json']).stdout,
    ).code;
    const erin = join(tempDir(), 'home');
    assert.equal(run(['init', '--id', 'erin@example.org', '--name', 'Erin', '--home', erin], user).code, 0);
    const refused = run(['register', '--server', url, '--invite', bare.split('.')[0], '--home', erin], user);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /on first use/);
    assert.match(refused.stderr, /error KL_SERVER_UNPINNED: not sent: give the invitation whole/);
    const tofu = run(
      ['register', '--server', url, '--invite', bare.split('.')[0], '--home', erin, '--trust-first-use'],
      user,
    );
    assert.equal(tofu.code, 0, tofu.stderr);
    assert.match(tofu.stderr, /trusting http:\/\/127\.0\.0\.1:\d+ on first use/);
    assert.match(tofu.stdout, /trusted on first use \(no pin\)/);
    // A pin naming another ledger stops the client before it sends anything.
    const fayInvite = JSON.parse(
      run(['admin', 'invite', 'fay@example.org', '--data', data, '--json']).stdout,
    ).code;
    const fay = join(tempDir(), 'home');
    assert.equal(run(['init', '--id', 'fay@example.org', '--name', 'Fay', '--home', fay], user).code, 0);
    const mismatch = run(
      [
        'register',
        '--server',
        url,
        '--invite',
        `${fayInvite.split('.')[0]}.${'0'.repeat(32)}`,
        '--home',
        fay,
      ],
      user,
    );
    assert.equal(mismatch.code, 2);
    assert.match(
      mismatch.stderr,
      /KL_SERVER_KEY_MISMATCH.*not the one your invitation names.*Nothing was sent/,
    );

    const li = run(['login', '--home', home, '--json'], user);
    assert.equal(li.code, 0, li.stderr);
    const session = JSON.parse(li.stdout);
    assert.equal(session.verified, true);
    assert.equal(session.id, 'dana@example.org');
    assert.ok(Date.parse(session.expiresAt) > Date.now());

    const who = JSON.parse(run(['whoami', '--home', home, '--json']).stdout);
    assert.equal(who.fingerprint, identity.fingerprint);
    const st = run(['status', '--home', home, '--json']);
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout);
    assert.equal(s.ledger.status, 'active');
    assert.equal(s.ledger.matchesLocalKey, true);
    assert.equal(s.serverKeyMatchesPin, true);

    const wrong = run(['login', '--home', home], { KEYLEDGER_PASSPHRASE: 'not my passphrase' });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /error KL_PASSPHRASE_WRONG/);

    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const verify = run(['ledger', 'verify', '--data', data]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });

  it('a session through the CLI: send, send --sign and receipt verify, shell, admin sessions, audit, revoke-key', async () => {
    const data = join(tempDir(), 'server-data');
    const { url, child } = await serveCli(data);
    const home = join(tempDir(), 'home');
    const user = { KEYLEDGER_PASSPHRASE: 'pw for eve' };
    const code = JSON.parse(
      run(['admin', 'invite', 'eve@example.org', '--data', data, '--json']).stdout,
    ).code;
    assert.equal(run(['init', '--id', 'eve@example.org', '--home', home], user).code, 0);
    assert.equal(run(['register', '--server', url, '--invite', code, '--home', home], user).code, 0);

    const echo = run(['send', 'hello there', '--home', home], user);
    assert.equal(echo.code, 0, echo.stderr);
    assert.match(echo.stdout, /"echo":"hello there"/);

    const file = join(tempDir(), 'signed.json');
    const signed = run(['send', 'I owe Bob 10 EUR', '--sign', '--out', file, '--home', home], user);
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(signed.stdout, /signed and anchored: block \d+/);
    const ok = run(['receipt', 'verify', file, '--home', home]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /receipt OK: HashAnchored/);
    assert.match(ok.stdout, /exactly the one anchored/);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...doc, message: 'I owe Bob 1000 EUR' }));
    const bad = run(['receipt', 'verify', file, '--genesis', join(data, 'genesis.json')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /receipt INVALID: the message does not match/);

    const sh = spawnSync(process.execPath, [bin, 'shell', '--home', home], {
      input: 'ping\n/note put a hello\n/note get a\n/renew\n/quit\n',
      encoding: 'utf8',
      env: { ...process.env, ...user },
    });
    assert.equal(sh.status, 0, sh.stderr);
    assert.match(sh.stdout, /"echo":"ping"/);
    assert.match(sh.stdout, /^hello$/m);
    assert.match(sh.stderr, /keys renewed \(epoch 1\)/);

    assert.match(run(['admin', 'sessions', '--data', data]).stdout, /no live sessions/);

    // The operator makes eve an admin; eve gets a one-time dashboard link with her key.
    const noLink = run(['admin', 'dashboard', '--home', home, '--json', '--no-open'], user);
    assert.equal(noLink.code, 2);
    assert.match(noLink.stderr, /error KL_NOT_ADMIN/);
    const grant = run(['admin', 'grant', 'eve@example.org', '--data', data, '--json']);
    assert.equal(grant.code, 0, grant.stderr);
    assert.equal(JSON.parse(grant.stdout).admin, true);
    const dash = run(['admin', 'dashboard', '--home', home, '--json', '--no-open'], user);
    assert.equal(dash.code, 0, dash.stderr);
    const { url: link } = JSON.parse(dash.stdout) as { url: string };
    assert.ok(link.startsWith(`${url}/admin/login?token=`));
    assert.equal((await fetch(link, { redirect: 'manual' })).status, 303);
    const events = JSON.parse(
      run(['audit', '--data', data, '--id', 'eve@example.org', '--json']).stdout,
    ) as Array<{ event: string }>;
    const names = new Set(events.map((e) => e.event));
    for (const e of ['registration', 'session_start', 'session_end', 'session_renewal'])
      assert.ok(names.has(e), `audit has ${e}`);

    // Rotate the key: the new key logs in, the ledger and the home agree, the old key is retired.
    const oldFpr = JSON.parse(run(['whoami', '--home', home, '--json']).stdout).fingerprint;
    const rot = run(['rotate-key', '--home', home, '--json'], user);
    assert.equal(rot.code, 0, rot.stderr);
    const rotated = JSON.parse(rot.stdout);
    assert.equal(rotated.verified, true);
    assert.equal(rotated.oldFingerprint, oldFpr);
    assert.notEqual(rotated.fingerprint, oldFpr);
    assert.equal(
      JSON.parse(run(['whoami', '--home', home, '--json']).stdout).fingerprint,
      rotated.fingerprint,
    );
    assert.equal(statSync(join(home, 'retired', `${oldFpr}.asc`)).mode & 0o777, 0o600);
    const st = JSON.parse(run(['status', '--home', home, '--json']).stdout);
    assert.equal(st.ledger.matchesLocalKey, true);
    assert.equal(run(['send', 'after rotation', '--home', home], user).code, 0);
    const shown = JSON.parse(
      run(['ledger', 'show', '--data', data, '--id', 'eve@example.org', '--json']).stdout,
    );
    assert.equal(JSON.stringify(shown).includes(oldFpr), true, 'the ledger keeps the old key in the history');

    const rk = run(['revoke-key', '--reason', 'retired', '--home', home], user);
    assert.equal(rk.code, 0, rk.stderr);
    const after = run(['login', '--home', home], user);
    assert.equal(after.code, 2);
    assert.match(after.stderr, /error KL_KEY_REVOKED/);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    // Both sides kept encrypted logs.
    const serverLog = run(['logs', 'decrypt', '--data', data], { KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE });
    assert.equal(serverLog.code, 0, serverLog.stderr);
    assert.match(serverLog.stdout, /server started on http/);
    assert.match(serverLog.stdout, /server stopped/);
    const clientLog = run(['logs', 'decrypt', '--home', home], user);
    assert.equal(clientLog.code, 0, clientLog.stderr);
    assert.match(clientLog.stdout, /session \S+ started as eve@example.org/);
    assert.match(clientLog.stdout, /keys renewed, epoch 1/);
  });

  it('serve shuts down gracefully (exit 0) on SIGTERM, even right after it reports in', async () => {
    const { child } = await serveCli(join(tempDir(), 'server-data'));
    const t = performance.now();
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0);
    assert.ok(performance.now() - t < 5_000, 'and promptly');
  });

  it('--help works for every command', () => {
    for (const cmd of [
      'serve',
      'admin',
      'init',
      'register',
      'login',
      'whoami',
      'status',
      'ledger',
      'demo',
      'send',
      'shell',
      'session',
      'revoke-key',
      'rotate-key',
      'config',
      'audit',
      'receipt',
    ]) {
      const r = run([cmd, '--help']);
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, new RegExp(`keyledger ${cmd}`));
    }
  });
});
