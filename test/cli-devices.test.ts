/**
 * Devices through the real CLI (bin/keyledger.js → dist/; issue 18): `init --device` (the name
 * registered with the first key), a new device's `device request` waiting while the first device
 * runs `device approve CODE`, the new device logging in, `device list` on both with each device's
 * last login (verified from the audit trail; the server answers `device.logins`), `device revoke`
 * by name, and the refusals a person meets (a bad device name, no confirmation without a terminal,
 * an unknown device, a server nothing authenticated). The server runs in this process, so every
 * command runs as a child without blocking it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readAuditTrail } from '../src/ledger/audit-trail.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { tempDir, until } from './helpers.js';
import { bin, type CliResult, runCliAsync } from './support/cli.js';
import { invite, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
const user = { KEYLEDGER_PASSPHRASE: 'pw of a person with two devices' };
const run = (args: string[]) => runCliAsync(args, { env: user });
const ok = (r: CliResult) => {
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return r;
};

/** `keyledger ARGS…` as a child whose stdout lines are read while it runs. */
function start(args: string[]) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYLEDGER_')));
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...base, ...user },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<CliResult>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return {
    /** The first stdout line, once written. */
    async firstLine(): Promise<string> {
      while (!stdout.includes('\n')) {
        const exit = exited.then((r) => assert.fail(`exited before a line: ${r.code}\n${r.stderr}`));
        await Promise.race([new Promise<void>((r) => waiters.push(r)), exit]);
      }
      return stdout.slice(0, stdout.indexOf('\n'));
    },
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

let server: Srv;
before(async () => {
  const open = { burst: 1_000, perSecond: 100 };
  server = await testServer({
    rateLimits: { deviceRequestPerIp: open, registerPerIp: open, loginPerIp: open, loginPerIdentity: open },
  });
});

/** How many logins of `fingerprint` (an identity's device key) the audit trail holds. */
async function loginsOf(id: string, fingerprint: string): Promise<number> {
  const starts = await readAuditTrail(server.ledger, {
    subject: sha256Hex(id),
    event: 'session_start',
    limit: 1_000,
  });
  return starts.filter((e) => e.detail?.fingerprint === fingerprint).length;
}

/** One device's entry in `device list --json`. */
interface ListedDevice {
  name: string | null;
  fingerprint: string;
  current: boolean;
  lastLogin?: { at: number; height: number; txid: string } | null;
}
after(async () => {
  await server.close();
});

describe('devices through the CLI', () => {
  it('init --device, device request + approve, the new device logs in, list, revoke by name', async () => {
    const id = 'nora@example.org';
    const first = join(tempDir(), 'laptop');
    const second = join(tempDir(), 'phone');

    // A name the ledger would refuse is refused before a key is made.
    const bad = await run(['init', '--id', id, '--device', 'my/phone', '--home', second]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /KL_BAD_INPUT: --device NAME/);
    assert.equal(existsSync(join(second, 'identity.json')), false);

    const made = ok(await run(['init', '--id', id, '--device', 'laptop', '--home', first]));
    assert.match(made.stdout, /^device {7}laptop$/m);
    ok(await run(['register', '--server', server.url, '--invite', invite(server, id), '--home', first]));
    ok(await run(['init', '--id', id, '--device', 'phone', '--home', second]));
    const secondFpr = JSON.parse(ok(await run(['whoami', '--home', second, '--json'])).stdout).fingerprint;

    // Without --chain and without a terminal to confirm on, nothing is sent.
    const unpinned = await run(['device', 'request', '--server', server.url, '--home', second]);
    assert.equal(unpinned.code, 2);
    assert.match(unpinned.stderr, /trusting .* on first use/);
    assert.match(unpinned.stderr, /error KL_SERVER_UNPINNED/);

    const chain = server.ledger.chainId;
    const request = start([
      'device',
      'request',
      '--server',
      server.url,
      '--chain',
      chain,
      '--home',
      second,
      '--json',
    ]);
    try {
      const asked = JSON.parse(await request.firstLine());
      assert.equal(asked.status, 'pending');
      assert.match(asked.code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
      assert.deepEqual(
        [asked.id, asked.name, asked.fingerprint, asked.chain, asked.trust],
        [id, 'phone', secondFpr, chain, 'pinned'],
      );

      assert.match(asked.check, /^\d{3} \d{3}$/);
      // No terminal to type the check number on: not approved, and the request still waits.
      const unchecked = await run(['device', 'approve', asked.code, '--yes', '--home', first]);
      assert.equal(unchecked.code, 2);
      assert.match(unchecked.stderr, /device {7}phone asks to join nora@example.org/);
      assert.match(unchecked.stderr, new RegExp(`fingerprint  ${secondFpr}`));
      assert.match(unchecked.stderr, /error KL_BAD_INPUT: not approved: type the check number/);
      // Another check number (a request swapped on the way gives another): not approved.
      const other = asked.check === '000 000' ? '000 001' : '000 000';
      const swapped = await run([
        'device',
        'approve',
        asked.code,
        '--check',
        other,
        '--yes',
        '--home',
        first,
      ]);
      assert.match(swapped.stderr, /error KL_BAD_INPUT: not approved: the check number is not the one/);
      // The right number but no terminal to confirm on and no --yes: not approved either.
      const unconfirmed = await run([
        'device',
        'approve',
        asked.code,
        '--check',
        asked.check,
        '--home',
        first,
      ]);
      assert.match(unconfirmed.stderr, /error KL_BAD_INPUT: not approved: answer y/);

      const approved = JSON.parse(
        ok(
          await run([
            'device',
            'approve',
            asked.code,
            '--check',
            asked.check,
            '--yes',
            '--home',
            first,
            '--json',
          ]),
        ).stdout,
      );
      assert.equal(approved.verified, true);
      assert.deepEqual([approved.id, approved.name, approved.fingerprint], [id, 'phone', secondFpr]);

      const done = await request.exited;
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stderr, /waiting for the approval/);
      const lines = done.stdout.trim().split('\n');
      const added = JSON.parse(lines[lines.length - 1]!);
      assert.equal(added.status, 'added');
      assert.equal(added.verified, true);
      assert.equal(added.txid, approved.txid);
      assert.equal(added.height, approved.height);
    } finally {
      request.kill();
    }

    // The new device logs in with its own key; its login is on the audit trail before the listing.
    const firstFpr = JSON.parse(ok(await run(['whoami', '--home', first, '--json'])).stdout).fingerprint;
    const phoneLogins = await loginsOf(id, secondFpr);
    const li = ok(await run(['login', '--home', second, '--json']));
    assert.equal(JSON.parse(li.stdout).verified, true);
    await until(async () => (await loginsOf(id, secondFpr)) > phoneLogins);

    // Both devices listed, each home marking its own, the first one by the name it registered
    // with; each with its last login (the laptop's: its last approval's session, before this
    // listing's), the phone's the newer. The text form too.
    const listed = JSON.parse(ok(await run(['device', 'list', '--home', first, '--json'])).stdout);
    assert.deepEqual(
      listed.devices.map((d: ListedDevice) => [d.name, d.current]),
      [
        ['laptop', true],
        ['phone', false],
      ],
    );
    assert.equal(listed.chain, server.ledger.chainId);
    assert.equal(listed.lastLogins.verified, true);
    const [laptopSeen, phoneSeen] = (listed.devices as ListedDevice[]).map((d) => d.lastLogin);
    assert.ok(laptopSeen && phoneSeen, JSON.stringify(listed.devices));
    assert.ok(phoneSeen.at > laptopSeen.at, 'the phone logged in last');
    const onLedger = await server.ledger.getTransaction(phoneSeen.txid);
    assert.equal(onLedger.envelope.tx.type, 'AuditEvent');
    assert.equal((onLedger.envelope.tx.body as TxBodies['AuditEvent']).detail?.fingerprint, secondFpr);
    const text = ok(await run(['device', 'list', '--home', second])).stdout;
    assert.match(
      text,
      new RegExp(
        `^\\* phone +${secondFpr} +added at block \\d+, approved by ${firstFpr} +\\(this device\\)$`,
        'm',
      ),
    );
    assert.match(text, /^ {2}laptop +[0-9a-f]{40} +added at block \d+$/m);
    // Each device's line is followed by its last login: the phone's is its login before this listing.
    assert.match(
      text,
      new RegExp(
        `^ {6}last login before this listing ${new Date(phoneSeen.at).toISOString().replace(/\.\d{3}Z$/, 'Z')} \\(block ${phoneSeen.height}\\)$`,
        'm',
      ),
    );
    assert.match(
      text,
      /^last logins: session starts on the ledger's audit trail, each verified against the genesis/m,
    );

    // The laptop logs in again: now the laptop's is the newer.
    const laptopLogins = await loginsOf(id, firstFpr);
    ok(await run(['login', '--home', first]));
    await until(async () => (await loginsOf(id, firstFpr)) > laptopLogins);
    const again = JSON.parse(ok(await run(['device', 'list', '--home', second, '--json'])).stdout);
    const [laptopNow, phoneNow] = (again.devices as ListedDevice[]).map((d) => d.lastLogin);
    assert.ok(laptopNow && phoneNow);
    assert.ok(laptopNow.at > phoneNow.at, 'the laptop logged in last');
    // A listing logs in too: the phone's last login before this one is its text listing's.
    assert.ok(phoneNow.at > phoneSeen.at);

    // Revoke: an unknown device, then no confirmation without a terminal, then by name with --yes.
    const unknown = await run(['device', 'revoke', 'toaster', '--yes', '--home', first]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /error KL_DEVICE_UNKNOWN/);
    const unconfirmed = await run(['device', 'revoke', 'phone', '--home', first]);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /error KL_BAD_INPUT: not revoked/);
    const revoked = ok(
      await run(['device', 'revoke', 'PHONE', '--reason', 'retired', '--yes', '--home', first]),
    );
    assert.match(
      revoked.stdout,
      new RegExp(`device phone \\(${secondFpr}\\) revoked on the ledger at block \\d+`),
    );

    const gone = await run(['login', '--home', second]);
    assert.equal(gone.code, 2);
    const after = JSON.parse(ok(await run(['device', 'list', '--home', first, '--json'])).stdout);
    assert.equal(after.devices.length, 1);
    assert.deepEqual(
      after.history.map((h: { fingerprint: string; reason: string; device: string }) => [
        h.fingerprint,
        h.reason,
        h.device,
      ]),
      [[secondFpr, 'revoked', 'phone']],
    );
    ok(await run(['login', '--home', first]));
  });
});
