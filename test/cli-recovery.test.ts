/**
 * Recovery through the binary, as a person runs it (docs/protocol.md "Recovery"): `keyledger
 * recovery-key create` writes the key once (a new file, mode 0600) and prints its paper form;
 * `keyledger recover --key FILE` on a new device takes the identity back (the old device is out);
 * the paper form typed back recovers again; replacing a recovery key takes the current one; files
 * are never overwritten; every command has its help. Real server on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from './helpers.js';
import { bin, type CliResult, runCliAsync } from './support/cli.js';
import { invite, testServer } from './support/server.js';

const user = { KEYLEDGER_PASSPHRASE: 'pw of a person who loses devices' };
const run = (args: string[]) => runCliAsync(args, { env: user });
const ok = (r: CliResult) => {
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return r;
};

/** `keyledger ARGS…` with `input` on its standard input. */
function runWithInput(args: string[], input: string): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYLEDGER_')));
  const child = spawn(process.execPath, [bin, ...args], { env: { ...base, ...user } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.end(input);
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

let server: Awaited<ReturnType<typeof testServer>>;
before(async () => {
  server = await testServer({ rateLimits: { recoveryPerIp: { burst: 1_000, perSecond: 100 } } });
});
after(() => server.close());

describe('keyledger recovery-key and recover', () => {
  it('create writes the key once and prints its paper form; recover takes the identity to a new device, by file and by paper', async () => {
    const id = 'nora@example.org';
    const dir = tempDir('kl-recovery-cli-');
    const [laptop, phone, tablet] = ['laptop', 'phone', 'tablet'].map((d) => join(dir, d));
    const chain = server.ledger.chainId;
    ok(await run(['init', '--id', id, '--device', 'laptop', '--home', laptop!]));
    ok(await run(['register', '--server', server.url, '--invite', invite(server, id), '--home', laptop!]));

    const file = join(dir, 'recovery.asc');
    const made = ok(await run(['recovery-key', 'create', '--out', file, '--home', laptop!, '--json']));
    const created = JSON.parse(made.stdout) as { fingerprint: string; paper: string[]; verified: boolean };
    assert.equal(created.verified, true);
    assert.equal(created.paper.length, 4);
    assert.match(readFileSync(file, 'utf8'), /^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal((await server.ledger.getKeyRecord(id)).record?.recovery?.fingerprint, created.fingerprint);
    // Never over another file; and a second recovery key needs the current one.
    const again = await run(['recovery-key', 'create', '--out', file, '--home', laptop!]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /exists/);
    const second = join(dir, 'second.asc');
    const refused = await run(['recovery-key', 'create', '--out', second, '--home', laptop!]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /KL_RECOVERY_INVALID|current recovery key/);

    // A new device recovers with the file: the laptop is out.
    ok(await run(['init', '--id', id, '--device', 'phone', '--home', phone!]));
    const next = join(dir, 'next.asc');
    const recovered = ok(
      await run([
        'recover',
        '--key',
        file,
        '--out',
        next,
        '--server',
        server.url,
        '--chain',
        chain,
        '--yes',
        '--home',
        phone!,
        '--json',
      ]),
    );
    const done = JSON.parse(recovered.stdout) as { name: string; recoveryKey: string; paper: string[] };
    assert.equal(done.name, 'phone');
    assert.ok(existsSync(next));
    ok(await run(['whoami', '--home', phone!]));
    ok(await run(['login', '--home', phone!]));
    assert.notEqual((await run(['login', '--home', laptop!])).code, 0);

    // The next recovery key, typed back from its paper form (a mistyped line is named).
    ok(await run(['init', '--id', id, '--device', 'tablet', '--home', tablet!]));
    const args = ['recover', '--out', join(dir, 'third.asc'), '--server', server.url, '--chain', chain];
    const typo = done.paper.map((l, i) =>
      i === 2 ? l.replace(/[0-9A-Z](?=\s+\S$)/, (c) => (c === 'Z' ? 'Y' : 'Z')) : l,
    );
    const mistyped = await runWithInput([...args, '--yes', '--home', tablet!], `${typo.join('\n')}\n`);
    assert.notEqual(mistyped.code, 0);
    assert.match(mistyped.stderr, /line 3 does not check/);
    const byPaper = ok(
      await runWithInput([...args, '--yes', '--home', tablet!, '--json'], `${done.paper.join('\n')}\n`),
    );
    assert.equal((JSON.parse(byPaper.stdout) as { name: string }).name, 'tablet');
    assert.notEqual((await run(['login', '--home', phone!])).code, 0);
    ok(await run(['login', '--home', tablet!]));
  });

  it('recover refuses without confirmation on no terminal, and a key that is not the ledger’s sends nothing', async () => {
    const id = 'otto@example.org';
    const dir = tempDir('kl-recovery-cli-');
    const [first, other] = ['first', 'other'].map((d) => join(dir, d));
    ok(await run(['init', '--id', id, '--device', 'laptop', '--home', first!]));
    ok(await run(['register', '--server', server.url, '--invite', invite(server, id), '--home', first!]));
    ok(await run(['init', '--id', id, '--device', 'phone', '--home', other!]));
    const file = join(dir, 'key.asc');
    ok(await run(['recovery-key', 'create', '--out', file, '--home', first!]));
    const base = [
      'recover',
      '--key',
      file,
      '--server',
      server.url,
      '--chain',
      server.ledger.chainId,
      '--home',
      other!,
    ];
    const unconfirmed = await run([...base, '--out', join(dir, 'n1.asc')]);
    assert.notEqual(unconfirmed.code, 0);
    assert.match(unconfirmed.stderr, /not recovered/);
    // A file that is not a recovery key at all.
    const junk = join(dir, 'junk.asc');
    writeFileSync(junk, 'not a key');
    const unreadable = await run([
      ...base.slice(0, 1),
      '--key',
      junk,
      ...base.slice(3),
      '--out',
      join(dir, 'n2.asc'),
      '--yes',
    ]);
    assert.match(unreadable.stderr, /KL_RECOVERY_KEY_UNREADABLE|does not hold/);
    // Without --chain the server is not authenticated: --yes does not accept it, only a confirmation
    // on the terminal or --trust-first-use does.
    const unpinned = await run([
      'recover',
      '--key',
      file,
      '--server',
      server.url,
      '--home',
      other!,
      '--out',
      join(dir, 'n3.asc'),
      '--yes',
    ]);
    assert.notEqual(unpinned.code, 0);
    assert.match(unpinned.stderr, /not authenticated/);
    assert.match(unpinned.stderr, /KL_SERVER_UNPINNED|--trust-first-use/);
    // Nothing changed: the first device still logs in, and device list shows the recovery key.
    ok(await run(['login', '--home', first!]));
    const listed = JSON.parse(ok(await run(['device', 'list', '--home', first!, '--json'])).stdout) as {
      recoveryKey: { fingerprint: string } | null;
    };
    assert.equal(
      listed.recoveryKey?.fingerprint,
      (await server.ledger.getKeyRecord(id)).record?.recovery?.fingerprint,
    );
    for (const cmd of [['recover'], ['recovery-key'], ['recovery-key', 'create']]) {
      const help = ok(await run([...cmd, '--help']));
      assert.match(help.stdout, /Usage: keyledger/);
    }
  });
});
