/**
 * The way back after a revocation, through the real CLI against a real `keyledger serve`: the owner
 * revokes its key (told plainly that it worked), the old key is refused with an explanation, a new
 * key (`init --force`, the old one kept in retired/) and a new invitation register and log in.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from './helpers.js';
import { runCli } from './support/cli.js';
import { serveCli } from './support/serve-cli.js';

/** `keyledger ARGS…` with `env` (test/support/cli.ts). */
const run = (args: string[], env: Record<string, string> = {}) => runCli(args, { env });

const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('after a revocation, through the CLI', () => {
  it('revoke-key says it worked; the old key is explained; init --force keeps it; a new key registers', async () => {
    const data = join(tempDir(), 'server-data');
    const { url, child } = await serveCli(data);
    const home = join(tempDir(), 'home');
    const user = { KEYLEDGER_PASSPHRASE: 'pw for gil' };
    const id = 'gil@example.org';
    const invite = (env: Record<string, string> = {}) => {
      const r = run(['admin', 'invite', id, '--data', data], env);
      assert.equal(r.code, 0, r.stderr);
      return { code: r.stdout.trim(), hint: r.stderr };
    };

    // The hint after an invitation: the public address when configured, else says what URL is.
    const first = invite();
    assert.match(first.hint, /keyledger register --server URL --invite /);
    assert.match(first.hint, new RegExp(`${literal(data)} does not record it`));
    const withUrl = invite({ KEYLEDGER_PUBLIC_URL: url });
    assert.match(
      withUrl.hint,
      new RegExp(`keyledger register --server ${literal(url)} --invite ${literal(withUrl.code)}`),
    );

    // init: the algorithm by its name, and the next step with this (non-default) home.
    const made = run(['init', '--id', id, '--home', home], user);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /algorithm {4}Ed25519\/Cv25519 \(OpenPGP v4\)/);
    assert.doesNotMatch(made.stdout, /ed25519-legacy/);
    assert.match(
      made.stderr,
      new RegExp(`keyledger register --server URL --invite CODE --home ${literal(home)}`),
    );
    const oldFpr = JSON.parse(run(['whoami', '--home', home, '--json']).stdout).fingerprint as string;
    const oldKey = readFileSync(join(home, 'private-key.asc'), 'utf8');

    const reg = run(['register', '--server', url, '--invite', first.code, '--home', home], user);
    assert.equal(reg.code, 0, reg.stderr);
    assert.equal(run(['login', '--home', home], user).code, 0);

    // The owner's own revocation is a success, not an ALERT.
    const rk = run(['revoke-key', '--reason', 'retired', '--home', home], user);
    assert.equal(rk.code, 0, rk.stderr);
    assert.doesNotMatch(rk.stderr, /ALERT/);
    assert.match(rk.stdout, new RegExp(`key ${oldFpr} revoked on the ledger at block \\d+`));
    assert.match(rk.stdout, new RegExp(`every session of ${literal(id)} has ended`));
    assert.match(rk.stdout, new RegExp(`keyledger init --id ${literal(id)} --force --home ${literal(home)}`));
    assert.match(rk.stdout, new RegExp(`the old key moves to ${literal(join(home, 'retired'))}/`));
    assert.match(rk.stdout, /new invitation/);
    const gone = run(['login', '--home', home], user);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /KL_KEY_REVOKED/);

    // The revoked key, even with a new invitation: refused, and the person is told the way back.
    const again = run(['register', '--server', url, '--invite', withUrl.code, '--home', home], user);
    assert.equal(again.code, 2, again.stdout);
    assert.match(again.stderr, /error KL_KEY_IN_USE/);
    assert.match(again.stderr, /revoked or replaced cannot be registered again/);
    assert.match(again.stderr, new RegExp(`keyledger init --id ${literal(id)} --force`));

    // A new key: the old private key moves to retired/, not deleted.
    const fresh = run(['init', '--id', id, '--force', '--home', home], user);
    assert.equal(fresh.code, 0, fresh.stderr);
    const retired = join(home, 'retired', `${oldFpr}.asc`);
    assert.match(fresh.stdout, new RegExp(`previous key moved to ${literal(retired)}`));
    assert.equal(readFileSync(retired, 'utf8'), oldKey);
    const newFpr = JSON.parse(run(['whoami', '--home', home, '--json']).stdout).fingerprint as string;
    assert.notEqual(newFpr, oldFpr);
    assert.notEqual(readFileSync(join(home, 'private-key.asc'), 'utf8'), oldKey);
    // The old key still opens the client's old logs (keyledger logs decrypt reads retired/).
    assert.ok(existsSync(retired));

    // A new invitation, and the revoked identity registers its new key and logs in.
    const next = invite();
    const back = run(['register', '--server', url, '--invite', next.code, '--home', home], user);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, new RegExp(`fingerprint {2}${newFpr}`));
    const li = run(['login', '--home', home, '--json'], user);
    assert.equal(li.code, 0, li.stderr);
    assert.equal(JSON.parse(li.stdout).verified, true);
    const st = run(['status', '--home', home, '--json']);
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout);
    assert.equal(s.ledger.status, 'active');
    assert.equal(s.ledger.matchesLocalKey, true);

    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  it('init --rsa names the algorithm RSA-3072', () => {
    const home = join(tempDir(), 'home');
    const r = run(['init', '--id', 'hal@example.org', '--rsa', '--home', home], {
      KEYLEDGER_PASSPHRASE: 'pw',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /algorithm {4}RSA-3072,/);
  });
});

describe('init --force on a damaged home', () => {
  it('replaces an unreadable identity.json and still keeps the old private key in retired/', async () => {
    const { createIdentity } = await import('../src/client/identity.js');
    const { CLIENT_PASSPHRASE, newClient } = await import('./support/server.js');
    const home = await newClient('hal@example.org');
    const oldKey = readFileSync(join(home.dir, 'private-key.asc'), 'utf8');
    writeFileSync(join(home.dir, 'identity.json'), '{ not json');
    const made = await createIdentity({
      home,
      id: 'hal@example.org',
      name: 'Hal',
      source: 'generate',
      passphrase: CLIENT_PASSPHRASE,
      force: true,
    });
    assert.match(made.retiredKey ?? '', /retired\/unreadable-identity-.*\.asc$/);
    assert.equal(readFileSync(made.retiredKey!, 'utf8'), oldKey);
    assert.equal(home.readIdentity().fingerprint, made.fingerprint);
  });
});
