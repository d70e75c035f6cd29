/**
 * The server console (`keyledger serve`): one line per event, never a secret, floods summarised,
 * --json as one object per line, --quiet silent. The real CLI on 127.0.0.1, real clients, a real
 * SMTP sink; the formatter and the flood summary also on their own.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventConsole } from '../src/cli/event-console.js';
import { eventJson, formatEvent, printable } from '../src/cli/event-line.js';
import { RefusalSummary, sourceGroup } from '../src/cli/refusal-summary.js';
import { register } from '../src/client/register.js';
import { type ServerEvent, safeListener, withoutUrlSecrets } from '../src/server/events.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { invitedUsers, logInUser, registerUser } from './support/serve-cli.js';
import { CLIENT_PASSPHRASE, newClient } from './support/server.js';
import { nextCode, smtpSink } from './support/smtp-sink.js';

const AT = Date.UTC(2026, 10, 30, 20, 41, 7);
const FPR = `3f2a${'0'.repeat(56)}91c0`;
const SID = '7d1e9aQx3kP0s2LmN8vB4w';

describe('console line of an event (formatter)', () => {
  it('one short line per kind: time, verb, identity, short key and session, address', () => {
    const lines = (
      [
        { kind: 'registered', at: AT, id: 'alice@example.org', fingerprint: FPR, ip: '127.0.0.1' },
        { kind: 'login', at: AT, id: 'alice@example.org', fingerprint: FPR, sessionId: SID, ip: '10.0.0.7' },
        {
          kind: 'session_ended',
          at: AT,
          id: 'alice@example.org',
          sessionId: SID,
          ip: '10.0.0.7',
          reason: 'logout',
        },
        {
          kind: 'session_ended',
          at: AT,
          id: 'alice@example.org',
          sessionId: SID,
          ip: '1.2.3.4',
          reason: 'timeout',
        },
        {
          kind: 'key_revoked',
          at: AT,
          id: 'alice@example.org',
          fingerprint: FPR,
          reason: 'compromised',
          by: 'owner',
        },
        {
          kind: 'key_revoked',
          at: AT,
          id: 'alice@example.org',
          fingerprint: FPR,
          reason: 'retired',
          by: { admin: 'bob@example.org' },
        },
        { kind: 'key_rotated', at: AT, id: 'alice@example.org', fingerprint: FPR },
        { kind: 'role_changed', at: AT, id: 'alice@example.org', role: 'admin', granted: true },
        {
          kind: 'alert',
          at: AT,
          alert: 'hijack',
          id: 'alice@example.org',
          sessionId: SID,
          detail: 'the session was resumed from another address',
        },
        {
          kind: 'refused',
          at: AT,
          what: 'login',
          ip: '10.0.0.9',
          code: 'KL_AUTH_FAILED',
          id: 'mallory@example.org',
        },
      ] satisfies ServerEvent[]
    ).map(formatEvent);
    assert.deepEqual(lines, [
      '20:41:07 registered alice@example.org  key 3F2A…91C0  from 127.0.0.1',
      '20:41:07 login      alice@example.org  key 3F2A…91C0  session 7d1e9a…  from 10.0.0.7',
      '20:41:07 logout     alice@example.org  session 7d1e9a…',
      '20:41:07 ended      alice@example.org  session 7d1e9a…  (idle timeout)',
      '20:41:07 revoked    alice@example.org  key 3F2A…91C0  (compromised, by its owner)',
      '20:41:07 revoked    alice@example.org  key 3F2A…91C0  (retired, by admin bob@example.org)',
      '20:41:07 rotated    alice@example.org  new key 3F2A…91C0',
      '20:41:07 role       alice@example.org  admin role granted',
      '20:41:07 ALERT      hijack  alice@example.org  session 7d1e9a…  the session was resumed from another address',
      '20:41:07 refused    login from 10.0.0.9  KL_AUTH_FAILED  (mallory@example.org)',
    ]);
    for (const l of lines) assert.ok(!l.includes(SID), 'the whole session id is never shown');
  });

  it('what came from the network cannot drive the terminal: controls and bidi overrides are replaced, length capped', () => {
    const id = `\u001b]0;owned\u0007\u001b[2J\r\nroot logged in\u202e${'x'.repeat(500)}`;
    const l = formatEvent({
      kind: 'refused',
      at: AT,
      what: 'login',
      ip: '10.0.0.9',
      code: 'KL_AUTH_FAILED',
      id,
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence
    assert.doesNotMatch(l, /[\u0000-\u001f\u007f-\u009f\u202e]/);
    assert.ok(l.length < 200, `${l.length} characters`);
    assert.equal(printable('a\u0000b\u2028c'), 'a?b?c');
  });

  it('--json form: the kind as "event", an ISO time, the session id shortened', () => {
    const j = eventJson({
      kind: 'login',
      at: AT,
      id: 'a@example.org',
      fingerprint: FPR,
      sessionId: SID,
      ip: '::1',
    });
    assert.deepEqual(j, {
      event: 'login',
      at: '2026-11-30T20:41:07.000Z',
      id: 'a@example.org',
      fingerprint: FPR,
      sessionId: '7d1e9a…',
      ip: '::1',
    });
  });
});

describe('ledger problems (EVM engine)', () => {
  it('an RPC URL loses its credentials, path and query before it is an event', () => {
    const line = withoutUrlSecrets(
      'EVM follower: request to https://user:s3cret@rpc.example.org:8545/v3/APIKEY123?token=abc failed (url="wss://node.example/KEY2")',
    );
    assert.equal(
      line,
      'EVM follower: request to https://rpc.example.org:8545 failed (url="wss://node.example")',
    );
    // A password holding "@" goes whole: the user info ends at the last "@" before the host.
    assert.equal(
      withoutUrlSecrets('at https://user:p@ss@host:8545/key?x=1 done'),
      'at https://host:8545 done',
    );
  });

  it('a listener that throws or rejects never reaches the server', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const event: ServerEvent = { kind: 'ledger_problem', at: AT, detail: 'x' };
      safeListener(() => {
        throw new Error('sync');
      })(event);
      safeListener((async () => {
        throw new Error('async');
      }) as unknown as (e: ServerEvent) => void)(event);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('one ALERT line, then the repeats of a lasting problem counted per window', () => {
    const written: string[] = [];
    const c = eventConsole({ json: false, write: (l) => written.push(l), now: () => AT });
    c.start();
    for (let i = 0; i < 30; i++)
      c.onEvent({ kind: 'ledger_problem', at: AT, detail: 'EVM follower: connect ECONNREFUSED' });
    c.stop();
    assert.deepEqual(written, [
      '20:41:07 ALERT      ledger  EVM follower: connect ECONNREFUSED',
      '20:41:07 ALERT      …and 29 more ledger problems in the last 10 s',
    ]);
  });
});

describe('flood summary', () => {
  it('groups IPv4 by /24 and IPv6 by /64', () => {
    assert.equal(sourceGroup('10.0.0.77'), '10.0.0.0/24');
    assert.equal(sourceGroup('::ffff:10.0.0.77'), '10.0.0.0/24');
    assert.equal(sourceGroup('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceGroup('*'), '*');
  });

  it('first refusal per source shown, the rest counted; a window prints a bounded number of lines', () => {
    const s = new RefusalSummary({ windowMs: 10_000, maxShown: 3, maxTracked: 5 });
    const shown: string[] = [];
    for (let i = 0; i < 120; i++) if (s.admit('login', `10.0.0.${i % 250}`)) shown.push(`10.0.0.${i}`);
    assert.deepEqual(shown, ['10.0.0.0']);
    // 40 sources (/24s) flooding: at most maxShown shown, the counts bounded by maxTracked.
    for (let i = 0; i < 400; i++) s.admit('login', `10.${i % 40}.1.1`);
    const w = s.flush();
    assert.equal(w.counts.length, 3);
    assert.deepEqual(w.counts[0], { what: 'login', source: '10.0.0.0/24', count: 119, windowMs: 10_000 });
    const counted = w.counts.reduce((n, c) => n + c.count, 0) + (w.others?.count ?? 0);
    assert.equal(counted, 120 + 400 - 3, 'every refusal not shown is counted');
    assert.equal(w.others?.exact, false, 'past maxTracked the sources are not told apart');
    // A new window: shown again once, nothing left over.
    assert.equal(s.admit('login', '10.0.0.1'), true);
    assert.deepEqual(s.flush(), { counts: [] });
  });

  it('the console: shutdown ends are one line; lines wait for the banner; --json lines parse', () => {
    const written: string[] = [];
    const c = eventConsole({ json: true, write: (l) => written.push(l), now: () => AT });
    c.onEvent({ kind: 'role_changed', at: AT, id: 'a@example.org', role: 'admin', granted: true });
    assert.equal(written.length, 0, 'nothing before the banner');
    c.start();
    for (let i = 0; i < 50; i++)
      c.onEvent({ kind: 'refused', at: AT, what: 'login', ip: '10.0.0.1', code: 'KL_PROTOCOL' });
    for (let i = 0; i < 3; i++)
      c.onEvent({
        kind: 'session_ended',
        at: AT,
        id: 'a@example.org',
        sessionId: SID,
        ip: '::1',
        reason: 'shutdown',
      });
    c.stop();
    assert.deepEqual(
      written.map((l) => JSON.parse(l).event),
      ['role_changed', 'refused', 'refusals_counted', 'sessions_ended'],
    );
    assert.equal(JSON.parse(written[2]!).count, 49);
    assert.equal(JSON.parse(written[3]!).count, 3);
  });
});

// --- the real CLI ---

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** `keyledger serve` with `args`; resolves with its URL once the banner is out. */
function serve(data: string, args: string[], json = false, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [bin, 'serve', '--data', data, '--port', '0', ...args], {
    env: { ...process.env, KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise<{ url: string; stdout: () => string; stop: () => Promise<string> }>(
    (resolve, reject) => {
      let reported = false;
      child.stdout!.on('data', (c) => {
        out += c;
        const url = json
          ? out.includes('\n') && (JSON.parse(out.split('\n')[0]!) as { url: string }).url
          : /keyledger listening on (\S+)/.exec(out)?.[1];
        if (reported || !url || (!json && !out.includes('invite a user'))) return;
        reported = true;
        resolve({
          url,
          stdout: () => out,
          stop: async () => {
            child.kill('SIGTERM');
            assert.equal(await exited, 0, err);
            children.delete(child);
            return out;
          },
        });
      });
      void exited.then((code) => {
        if (!reported) reject(new Error(`serve exited ${code}: ${err}`));
      });
    },
  );
}

/** `n` login attempts that fail (a hello for an identity whose name tries terminal escapes). */
async function badLogins(url: string, n: number): Promise<void> {
  const ws = `${url.replace(/^http/, 'ws')}/v1/login`;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const s = new WebSocket(ws);
      s.on('open', () =>
        s.send(
          JSON.stringify({
            type: 'hello',
            v: 1,
            id: '\u001b[2Jevil\u0007@example.org',
            ephemeral: 'A'.repeat(43),
          }),
        ),
      );
      s.on('close', () => resolve());
      s.on('error', reject);
    });
  for (let i = 0; i < n; i += 20) await Promise.all(Array.from({ length: Math.min(20, n - i) }, one));
}

/** The event lines of a console (after the banner). */
const eventLines = (stdout: string) => stdout.split('\n').filter((l) => /^\d\d:\d\d:\d\d /.test(l));

describe('keyledger serve console', { timeout: 120_000 }, () => {
  const data = join(tempDir('kl-console-'), 'data');

  it('one line per event with the identity, floods summarised, no secret', async () => {
    const sink = await smtpSink();
    after(() => sink.close());
    const s = await serve(data, [
      '--admin',
      'alice0@example.org',
      '--smtp-url',
      `smtp://127.0.0.1:${sink.port}`,
      '--insecure-smtp-plaintext',
    ]);
    const [alice] = await invitedUsers(data, 'alice', 1);
    const home = await newClient('bob@example.org');
    const wrong = await fetch(`${s.url}/v1/enroll/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'bob@example.org' }),
    });
    assert.equal(wrong.status, 202);
    const emailed = await nextCode(sink);
    const [digits, pin] = emailed.split('.');
    const guess = `${String((Number(digits) + 1) % 1e8).padStart(8, '0')}.${pin}`;
    await assert.rejects(
      register({
        home,
        server: s.url,
        proof: { method: 'email', code: guess },
        passphrase: CLIENT_PASSPHRASE,
      }),
    );
    await register({
      home,
      server: s.url,
      proof: { method: 'email', code: emailed },
      passphrase: CLIENT_PASSPHRASE,
    });
    await registerUser(s.url, alice!);
    const s1 = await logInUser(alice!);
    // The admin role named at start is written just after the registration: asked until it is.
    let link = '';
    for (let i = 0; !link; i++) {
      try {
        link = (await s1.request<{ url: string }>({ op: 'admin.dashboard-link' })).url;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const token = new URL(link).searchParams.get('token')!;
    s1.send({ op: 'echo', text: 'hello' });
    await s1.close();
    const s2 = await logInUser(alice!);
    await s2.revokeKey('compromised');
    const bob = await logInUser({ home });
    await badLogins(s.url, 200);
    await new Promise((r) => setTimeout(r, 200)); // the key_revoked session end runs on setImmediate
    const stdout = await s.stop();

    const lines = eventLines(stdout);
    const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
    assert.equal(
      count(/ registered +bob@example\.org {2}key [0-9A-F]{4}…[0-9A-F]{4} {2}from 127\.0\.0\.1$/),
      1,
      stdout,
    );
    assert.equal(count(/ registered +alice0@example\.org /), 1, stdout);
    assert.equal(count(/ refused +registration from 127\.0\.0\.1 {2}KL_/), 1, stdout);
    assert.equal(count(/ role +alice0@example\.org {2}admin role granted$/), 1, stdout);
    assert.equal(
      count(/ login +alice0@example\.org {2}key \S+ {2}session \S{6}… {2}from 127\.0\.0\.1$/),
      2,
      stdout,
    );
    assert.equal(count(/ login +bob@example\.org /), 1, stdout);
    assert.equal(count(/ logout +alice0@example\.org {2}session \S{6}…$/), 1, stdout);
    assert.equal(
      count(/ revoked +alice0@example\.org {2}key \S+ {2}\(compromised, by its owner\)$/),
      1,
      stdout,
    );
    assert.equal(count(/ ended +alice0@example\.org {2}session \S{6}… {2}\(key revoked\)$/), 1, stdout);
    assert.equal(count(/ ended +1 session\(s\) {2}\(server shutting down\)$/), 1, stdout);
    // 200 refused logins: one shown (per 10 s window), the rest counted, a few lines in all.
    const shown = count(/ refused +login from 127\.0\.0\.1 {2}KL_/);
    const counted = lines
      .map(
        (l) =>
          / refused +…and (\d+) more refused logins from 127\.0\.0\.0\/24 in the last 10 s$/.exec(l)?.[1],
      )
      .reduce((n, c) => n + Number(c ?? 0), 0);
    const refusedLogins = count(/ refused +(login from|…and \d+ more refused logins)/);
    assert.ok(shown >= 1 && refusedLogins <= 6, `${refusedLogins} lines:\n${stdout}`);
    assert.equal(shown + counted, 200, stdout);
    assert.equal(lines.length - refusedLogins, 11, `nothing else:\n${stdout}`);
    // Never a secret, never a terminal escape.
    for (const secret of [
      alice!.invite,
      emailed,
      digits!,
      guess,
      token,
      s1.sessionId,
      s2.sessionId,
      bob.sessionId,
    ])
      assert.ok(!stdout.includes(secret), `a secret is on the console: ${secret}`);
    assert.ok(!stdout.includes(PASSPHRASE) && !stdout.includes(CLIENT_PASSPHRASE));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence
    assert.doesNotMatch(stdout, /[\u0000-\u0009\u000b-\u001f\u007f]/);
  });

  it('--json: the start object, then one JSON object per event', async () => {
    const [carol] = await invitedUsers(data, 'carol', 1);
    const s = await serve(data, ['--json'], true);
    await registerUser(s.url, carol!);
    await (await logInUser(carol!)).close();
    const lines = (await s.stop())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(typeof lines[0]!.url, 'string');
    assert.deepEqual(
      lines.slice(1).map((l) => `${l.event} ${l.id}`),
      ['registered carol0@example.org', 'login carol0@example.org', 'session_ended carol0@example.org'],
    );
    assert.equal(lines[3]!.reason, 'logout');
  });

  it('--quiet: no event line', async () => {
    const [dave] = await invitedUsers(data, 'dave', 1);
    const s = await serve(data, ['--quiet']);
    await registerUser(s.url, dave!);
    await (await logInUser(dave!)).close();
    await badLogins(s.url, 5);
    const stdout = await s.stop();
    assert.deepEqual(eventLines(stdout), []);
    assert.match(stdout, /keyledger listening on/);
    assert.ok(!stdout.includes('dave0@example.org'));
    // The same from the environment (the `quiet` setting), as a service manager would set it.
    const [erin] = await invitedUsers(data, 'erin', 1);
    const quiet = await serve(data, [], false, { KEYLEDGER_QUIET: '1' });
    await registerUser(quiet.url, erin!);
    const silent = await quiet.stop();
    assert.deepEqual(eventLines(silent), []);
    assert.ok(!silent.includes('erin0@example.org'));
  });
});
