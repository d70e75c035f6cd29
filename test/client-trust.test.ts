/**
 * The client trusts only what is authenticated and validates every server answer. A real server, a
 * real WebSocket proxy on 127.0.0.1 between it and the client playing the man in the middle (it
 * injects plaintext errors, garbage, `null`, forged frames and closes with its own reason once the
 * login is done, or answers logins and resumptions itself), the SDK and `keyledger shell` as a
 * child process.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { ClientHome } from '../src/client/home.js';
import { callJson } from '../src/client/http.js';
import { clientKeyFor, prepareKey } from '../src/client/identity.js';
import { rotateKey } from '../src/client/rotate.js';
import { serverUrl } from '../src/client/server-list.js';
import { type ClientSession, connect } from '../src/client/session.js';
import { signHeader } from '../src/ledger/block.js';
import { dataPaths } from '../src/ledger/data-dir.js';
import { openKeyFile } from '../src/ledger/sealed-key-file.js';
import { ERROR_CODES, errorFromWire, isErrorCode, isKlError } from '../src/protocol/errors.js';
import { callAdmin } from '../src/server/admin-socket.js';
import { PASSPHRASE } from './helpers.js';
import { type MitmProxy, mitmProxy, registeredBehind, serversInOrder } from './support/mitm-proxy.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
const EVIL = 'https://evil.example';
const INJECTED_ERROR = JSON.stringify({
  type: 'error',
  code: 'KL_KEY_REVOKED',
  message: `your key was revoked: re-register at ${EVIL}`,
});

const code = (c: string) => (e: unknown) => {
  assert.ok(isKlError(e), `not a KlError: ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};
const once = <T>(emitter: NodeJS.EventEmitter, event: string, ms = 10_000) =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (v: T) => {
      clearTimeout(t);
      resolve(v);
    });
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Proxy = MitmProxy;

let server: Srv;
let proxy: Proxy;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
before(async () => {
  process.on('uncaughtException', onUncaught);
  server = await testServer();
  proxy = await mitmProxy(server.url);
});
// A test that failed half way must not leave the proxy answering for the server.
beforeEach(() => proxy.takeOver(null));
after(async () => {
  process.off('uncaughtException', onUncaught);
  await proxy.close();
  await server.close();
});

/** A client registered directly, whose server.json then points at the proxy. */
const clientBehindProxy = (id: string): Promise<ClientHome> => registeredBehind(proxy, server, id);

/** Makes the proxy the home's only server (no other server to ask after a refusal). */
function onlyTheProxy(home: ClientHome): void {
  const saved = home.readServer();
  home.writeServer({
    ...saved,
    url: proxy.url,
    servers: [{ url: proxy.url, fingerprint: saved.server.fingerprint }],
  });
}

/** Records every event a session emits that could carry text. */
function watch(s: ClientSession) {
  const seen: string[] = [];
  const alerts: Array<{ code: string; message: string }> = [];
  s.on('alert', (a: { code: string; message: string }) => {
    alerts.push(a);
    seen.push(JSON.stringify(a));
  });
  s.on('close', (c: unknown) => seen.push(JSON.stringify(c)));
  return { seen, alerts };
}

describe('after login, anything not sealed by the channel is a lost connection, never a verdict', () => {
  /** Each takes the server's messages held back so far (the answer to a pending request). */
  const injections: Array<[string, (held: Array<string | Buffer>) => void]> = [
    ['a plaintext KL_KEY_REVOKED error', () => proxy.inject(INJECTED_ERROR)],
    ['garbage bytes', () => proxy.inject(Buffer.from([0x00, 0xff, 0x7b, 0x65, 0x76, 0x69, 0x6c]))],
    ['garbage text', () => proxy.inject(`KL_KEY_REVOKED ${EVIL} {"type":`)],
    ['null', () => proxy.inject('null')],
    [
      "the server's real answer with a flipped tag bit",
      (held) => {
        assert.equal(held.length, 1, 'the answer was held back');
        assert.ok(Buffer.isBuffer(held[0]), 'a sealed frame is a binary message');
        const raw = Buffer.from(held[0]!);
        raw[raw.length - 1]! ^= 0x01; // the last bit of the tag
        proxy.inject(raw);
      },
    ],
    [
      'a plaintext alert-looking message',
      () => proxy.inject(JSON.stringify({ t: 'alert', code: 'KL_KEY_REVOKED', message: EVIL })),
    ],
  ];

  it('a pending request fails as a network loss, the session resumes by itself and goes on', async () => {
    const home = await clientBehindProxy('mitm-inject@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const w = watch(s);
    for (const [name, inject] of injections) {
      // A request whose answer the man in the middle holds back, then the injection.
      const held = proxy.hold();
      const pending = s.request(`before ${name}`);
      await sleep(150);
      const resumed = once<number>(s, 'resumed');
      inject(held);
      await assert.rejects(pending, code('KL_NETWORK'), name);
      await resumed;
      assert.equal(s.isClosed, false, name);
      assert.deepEqual(await s.request(`after ${name}`), {
        echo: `after ${name}`,
        id: 'mitm-inject@example.org',
      });
      assert.ok(server.sessions.get(s.sessionId), `${name}: the server still has the session`);
    }
    // A request made as soon as the connection is dropped waits for the resumption.
    const resumed = once<number>(s, 'resumed');
    const dropped = once(s, 'close');
    proxy.inject(INJECTED_ERROR);
    await dropped;
    assert.deepEqual(await s.request('right after'), { echo: 'right after', id: 'mitm-inject@example.org' });
    await resumed;
    assert.deepEqual(w.alerts, [], 'no alert event');
    assert.ok(!w.seen.some((t) => t.includes('evil') || t.includes('KL_KEY_REVOKED')), w.seen.join('\n'));
    await s.close();
    assert.equal(uncaught.length, 0, String(uncaught[0]));
  });

  it('a WebSocket close with an attacker reason (even 1000 or 4000) leaves the session resumable', async () => {
    const home = await clientBehindProxy('mitm-close@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const w = watch(s);
    for (const closeCode of [4000, 1000, 1008]) {
      proxy.hold();
      const pending = s.request('held');
      await sleep(150);
      const closed = once<{ resumable: boolean; alert: unknown; reason: string }>(s, 'close');
      proxy.last().client.close(closeCode, `KL_KEY_REVOKED ${EVIL}`);
      await assert.rejects(pending, code('KL_NETWORK'));
      const c = await closed;
      assert.equal(c.resumable, true, `close ${closeCode}`);
      assert.equal(c.alert, null);
      assert.doesNotMatch(c.reason, /evil|KL_KEY_REVOKED/);
      assert.equal(s.isClosed, false);
      await assert.rejects(s.request('while down'), code('KL_NETWORK'));
      await s.resume();
      assert.deepEqual(await s.request('back'), { echo: 'back', id: 'mitm-close@example.org' });
      assert.ok(server.sessions.get(s.sessionId));
    }
    assert.deepEqual(w.alerts, []);
    assert.ok(!w.seen.some((t) => t.includes('evil')), w.seen.join('\n'));
    await s.close();
  });

  it('a genuine revocation, sealed in the channel, still ends the session with KL_KEY_REVOKED', async () => {
    const home = await clientBehindProxy('mitm-genuine@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const w = watch(s);
    const closed = once<{ resumable: boolean; alert: { code: string } | null }>(s, 'close');
    await callAdmin(server.dataDir, 'POST', '/keys/mitm-genuine@example.org/revoke', {
      reason: 'compromised',
      admin: 'root@example.org',
    });
    const c = await closed;
    assert.equal(c.alert?.code, 'KL_KEY_REVOKED');
    assert.equal(c.resumable, false);
    assert.deepEqual(
      w.alerts.map((a) => a.code),
      ['KL_KEY_REVOKED'],
    );
    assert.equal(s.isClosed, true);
    await assert.rejects(s.request('after'), code('KL_KEY_REVOKED'));
    await assert.rejects(s.resume(), code('KL_KEY_REVOKED'));
  });
});

describe('plaintext errors during the login or a resumption only fail that attempt', () => {
  it('a login refused in plaintext is no verdict: the next server is asked; alone, it shows the code only, marked unauthenticated; a forged code is not a code', async () => {
    const home = await clientBehindProxy('mitm-login@example.org');
    // The home lists the real server after the proxy: a forged refusal fails that attempt only.
    proxy.takeOver((client) => client.once('message', () => client.send(INJECTED_ERROR)));
    const next = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    assert.equal(next.serverUrl, serverUrl(server.url), 'logged in on the next server');
    await next.close();
    // The proxy as the only server: the forged answer is all there is.
    onlyTheProxy(home);
    const answers = [
      INJECTED_ERROR,
      JSON.stringify({ type: 'error', code: 'toString', message: EVIL }),
      '{"type":"error","code":"__proto__","message":"evil"}',
      JSON.stringify({ type: 'error', code: 'constructor' }),
    ];
    const expected = ['KL_KEY_REVOKED', 'KL_PROTOCOL', 'KL_PROTOCOL', 'KL_PROTOCOL'];
    for (const [i, answer] of answers.entries()) {
      proxy.takeOver((client) => client.once('message', () => client.send(answer)));
      await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), (e: unknown) => {
        assert.ok(isKlError(e), String(e));
        assert.equal(e.code, expected[i]);
        assert.doesNotMatch(e.message, /evil|re-register/);
        assert.match(e.message, /refused.*not verified/);
        assert.equal(e.details?.authenticated, false);
        return true;
      });
    }
    for (const junk of ['null', '[]', '"text"', 'not json']) {
      proxy.takeOver((client) => client.once('message', () => client.send(junk)));
      await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), (e: unknown) => {
        assert.ok(isKlError(e), String(e));
        assert.equal(e.code, 'KL_PROTOCOL', e.message);
        assert.match(e.message, /not verified: no server of this ledger gave an authenticated answer/);
        return true;
      });
    }
    proxy.takeOver(null);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    assert.equal(uncaught.length, 0, String(uncaught[0]));
  });

  it('resume(): non-JSON, null or wrong-shape answers fail the attempt cleanly; the session stays resumable', async () => {
    const home = await clientBehindProxy('mitm-resume@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const closed = once(s, 'close');
    s.dropConnection();
    await closed;
    const challenge = (extra: object) =>
      JSON.stringify({ type: 'resume-challenge', nonce: 'A'.repeat(22), epoch: 0, ...extra });
    const cases: Array<[string, string[], string]> = [
      ['not JSON', ['{not json'], 'KL_PROTOCOL'],
      ['null', ['null'], 'KL_PROTOCOL'],
      ['an array', ['[1,2]'], 'KL_PROTOCOL'],
      ['a challenge without a nonce', [JSON.stringify({ type: 'resume-challenge' })], 'KL_PROTOCOL'],
      ['a challenge with a number as nonce', [challenge({ nonce: 5 })], 'KL_PROTOCOL'],
      ['a challenge, then null', [challenge({}), 'null'], 'KL_PROTOCOL'],
      ['a challenge, then not JSON', [challenge({}), '}{'], 'KL_PROTOCOL'],
      [
        'a challenge, then resumed with extra fields',
        [challenge({}), '{"type":"resumed","epoch":1,"x":1}'],
        'KL_PROTOCOL',
      ],
      [
        'an error with a forged code',
        ['{"type":"error","code":"hasOwnProperty","message":"evil"}'],
        'KL_AUTH_FAILED',
      ],
      [
        'an unauthenticated KL_SESSION_UNKNOWN',
        [JSON.stringify({ type: 'error', code: 'KL_SESSION_UNKNOWN', message: EVIL })],
        'KL_SESSION_UNKNOWN',
      ],
    ];
    for (const [name, replies, want] of cases) {
      proxy.takeOver((client) => {
        const queue = [...replies];
        client.on('message', () => {
          const r = queue.shift();
          if (r !== undefined) client.send(r);
        });
      });
      const t0 = Date.now();
      await assert.rejects(s.resume({ timeoutMs: 5_000 }), (e: unknown) => {
        assert.ok(isKlError(e), `${name}: ${String(e)}`);
        assert.equal(e.code, want, `${name}: ${e.message}`);
        assert.doesNotMatch(e.message, /evil/);
        return true;
      });
      assert.ok(Date.now() - t0 < 4_000, `${name}: failed at once, not by the time-out`);
      assert.equal(s.isClosed, false, name);
    }
    assert.equal(uncaught.length, 0, String(uncaught[0]));

    // A server that never answers: the attempt times out and its socket is closed, not left open.
    let serverSide: WebSocket | undefined;
    proxy.takeOver((client) => {
      serverSide = client;
    });
    await assert.rejects(s.resume({ timeoutMs: 400 }), code('KL_NETWORK'));
    assert.ok(serverSide, 'the resume connection was made');
    const sock = serverSide;
    await Promise.race([
      new Promise((r) => (sock.readyState === WebSocket.CLOSED ? r(null) : sock.once('close', r))),
      sleep(3_000).then(() => assert.fail('the timed-out resume socket is still open')),
    ]);

    // The genuine server still takes the session back.
    proxy.takeOver(null);
    await s.resume();
    assert.deepEqual(await s.request('resumed'), { echo: 'resumed', id: 'mitm-resume@example.org' });
    assert.ok(server.sessions.get(s.sessionId));
    await s.close();
  });
});

describe('before the finished frame, only what the server signed or sealed for this login is a verdict', () => {
  /** Lists the proxy first and the real server second in `home`. */
  function proxyThenServer(home: ClientHome): void {
    serversInOrder(home, proxy.url, serverUrl(server.url));
  }

  it('junk instead of the challenge or the finished frame is no verdict: the next server is asked', async () => {
    const home = await registeredClient(server, 'mitm-junk@example.org');
    const answers = [
      'null',
      '[]',
      '"text"',
      'not json',
      '{"type":"challenge","challengeId":"x","message":"y"}',
    ];
    for (const junk of answers) {
      proxyThenServer(home);
      proxy.takeOver((client) => client.once('message', () => client.send(junk)));
      const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(s.serverUrl, serverUrl(server.url), junk);
      await s.close();
    }
    proxy.takeOver(null);
    // The real challenge relayed, the finished frame replaced with bytes that do not open.
    proxyThenServer(home);
    proxy.rule((_text, index) => (index === 1 ? { replace: Buffer.alloc(80, 1) } : 'relay'));
    try {
      const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(s.serverUrl, serverUrl(server.url));
      await s.close();
    } finally {
      proxy.rule(null);
    }
  });

  it('a header the validator signed at the kept height with another hash (a signed fork) is a verdict: no other server is asked', async () => {
    const home = await registeredClient(server, 'signed-fork@example.org');
    proxyThenServer(home);
    const kept = home.readServer().checkpoint;
    const validator = openKeyFile(dataPaths(server.dataDir).validatorKey, PASSPHRASE, 'validator');
    const fork = signHeader({ ...kept.header, stateRoot: '00'.repeat(32) }, validator);
    proxy.forgeHttp((_m, path) =>
      path.startsWith('/v1/ledger/consistency')
        ? { status: 200, body: { older: fork, newer: fork, consistency: [], inclusion: [] } }
        : null,
    );
    try {
      await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), (e: unknown) => {
        assert.ok(isKlError(e), String(e));
        assert.equal(e.code, 'KL_CHECKPOINT_INVALID', e.message);
        assert.match(
          e.message,
          new RegExp(
            `^history was rewritten: the ledger signed block ${fork.hash} at height ${kept.header.height}`,
          ),
        );
        assert.notEqual(e.details?.authenticated, false);
        return true;
      });
      assert.deepEqual(
        server.sessions.ofIdentity('signed-fork@example.org'),
        [],
        'the next server was not asked',
      );
      assert.equal(home.readServer().checkpoint.hash, kept.hash, 'the kept checkpoint is kept');
      // The same header with the signature of another proves nothing: the next server is asked.
      const otherHeader = signHeader({ ...kept.header, stateRoot: '11'.repeat(32) }, validator);
      const broken = { ...fork, signatures: otherHeader.signatures };
      proxy.forgeHttp((_m, path) =>
        path.startsWith('/v1/ledger/consistency')
          ? { status: 200, body: { older: broken, newer: broken, consistency: [], inclusion: [] } }
          : null,
      );
      const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(s.serverUrl, serverUrl(server.url));
      await s.close();
    } finally {
      proxy.forgeHttp(null);
    }
  });
});

describe('key rotation keeps key material unless the refusal is authenticated', () => {
  it('a forged plaintext refusal of the new key does not make the client forget it', async () => {
    const home = await registeredClient(server, 'mitm-rotate@example.org');
    const current = home.readIdentity();
    // A rotation written on the ledger, but not installed yet (as after a crash).
    const prepared = await prepareKey({
      source: 'generate',
      passphrase: 'new',
      id: current.id,
      name: current.name,
    });
    const identity = { ...current, ...prepared.key };
    home.writePendingRotation({ v: 1, identity, privateKey: prepared.privateKey!, startedAt: Date.now() });
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.rotateKey(await clientKeyFor(identity, 'new', () => prepared.privateKey!));

    // Running it again through the man in the middle, who refuses every login in plaintext (the
    // home's only server: with another listed, the refusal would not even stop the login).
    onlyTheProxy(home);
    proxy.takeOver((client) =>
      client.once('message', () =>
        client.send(JSON.stringify({ type: 'error', code: 'KL_KEY_MISMATCH', message: EVIL })),
      ),
    );
    const next = { source: 'generate' as const, passphrase: 'new' };
    await assert.rejects(rotateKey({ home, passphrase: CLIENT_PASSPHRASE, next }), code('KL_KEY_MISMATCH'));
    assert.equal(
      home.readPendingRotation()?.identity.fingerprint,
      prepared.key.fingerprint,
      'the new key is kept',
    );

    // Without him, the rotation is finished with the kept key.
    proxy.takeOver(null);
    const r = await rotateKey({ home, passphrase: CLIENT_PASSPHRASE, next });
    assert.equal(r.rotation, undefined);
    assert.equal(home.readIdentity().fingerprint, prepared.key.fingerprint);
  });
});

describe('server errors are revived in one place', () => {
  it('isErrorCode and errorFromWire refuse inherited names and unknown codes', () => {
    for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', 'KL_NOPE', ''])
      assert.equal(isErrorCode(name), false, name);
    assert.equal(isErrorCode('KL_KEY_REVOKED'), true);
    for (const wire of [
      { code: 'toString', message: 'm' },
      JSON.parse('{"code":"__proto__","message":"m"}'),
      { code: 'constructor' },
      { code: 'KL_NOPE' },
      { code: 42 },
      null,
      'KL_KEY_REVOKED',
      ['KL_KEY_REVOKED'],
      undefined,
    ]) {
      const e = errorFromWire(wire, 'KL_INTERNAL');
      assert.equal(e.code, 'KL_INTERNAL', JSON.stringify(wire));
      assert.equal(e.status, ERROR_CODES.KL_INTERNAL);
    }
    const e = errorFromWire(
      { code: 'KL_NOT_FOUND', message: `a\u001b[31mred\u202e${'x'.repeat(2000)}` },
      'KL_INTERNAL',
    );
    assert.equal(e.code, 'KL_NOT_FOUND');
    assert.ok(e.message.length <= 500);
    assert.ok(!e.message.includes('\u001b') && !e.message.includes('\u202e'), 'control characters are gone');
    const u = errorFromWire({ code: 'KL_KEY_REVOKED', message: EVIL }, 'KL_PROTOCOL', {
      authenticated: false,
    });
    assert.equal(u.code, 'KL_KEY_REVOKED');
    assert.doesNotMatch(u.message, /evil/);
    assert.equal(u.details?.authenticated, false);
  });

  it('an HTTP error body with an inherited name as code becomes the fallback code', async () => {
    const bodies = [
      { error: { code: 'toString', message: 'x' } },
      { error: { code: 'constructor', message: 'x' } },
      { error: { code: '__proto__', message: 'x' } },
      { error: null },
      null,
    ];
    const http = createServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify(bodies.shift()));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/`;
    try {
      for (let i = 0; i < 5; i++) {
        await assert.rejects(callJson('GET', url), (e: unknown) => {
          assert.ok(isKlError(e), String(e));
          assert.equal(e.code, 'KL_NETWORK');
          assert.equal(typeof e.status, 'number');
          return true;
        });
      }
    } finally {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    }
  });
});

describe('keyledger shell through the man in the middle', () => {
  const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
  let child: ChildProcess | undefined;
  after(() => child?.kill('SIGKILL'));

  it('never prints injected text, resumes, and goes on', async () => {
    const home = await clientBehindProxy('mitm-shell@example.org');
    child = spawn(process.execPath, [bin, 'shell', '--home', home.dir], {
      env: { ...process.env, KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (err += c));
    const exited = new Promise<number | null>((r) => child!.on('exit', (c) => r(c)));
    const waitFor = async (what: () => boolean, label: string) => {
      for (let i = 0; i < 300 && !what(); i++) await sleep(50);
      assert.ok(what(), `${label}\nstdout:\n${out}\nstderr:\n${err}`);
    };
    const count = (re: RegExp) => (err.match(re) ?? []).length;
    await waitFor(() => /session \S+ as mitm-shell@example.org/.test(out), 'the shell started');
    const pairsAtStart = proxy.pairs.length;

    // A plaintext error, then the close a man in the middle would send with it.
    const c1 = proxy.last().client;
    proxy.inject(INJECTED_ERROR);
    c1.close(4000, `KL_KEY_REVOKED ${EVIL}`);
    await waitFor(() => count(/^resumed$/gm) === 1, 'resumed after the injected error');
    child.stdin!.write('one\n');
    await waitFor(() => /"echo":"one"/.test(out), 'answer after the first resumption');

    // Garbage.
    proxy.inject(Buffer.from(`\u001b[2J${EVIL}`));
    await waitFor(() => count(/^resumed$/gm) === 2, 'resumed after garbage');
    child.stdin!.write('two\n');
    await waitFor(() => /"echo":"two"/.test(out), 'answer after the second resumption');

    // A close with an attacker reason alone.
    proxy.last().client.close(1000, `KL_KEY_REVOKED ${EVIL}`);
    await waitFor(() => count(/^resumed$/gm) === 3, 'resumed after a forged close');
    child.stdin!.write('three\n/quit\n');
    assert.equal(await exited, 0, err);
    assert.match(out, /"echo":"three"/);
    assert.ok(proxy.pairs.length >= pairsAtStart + 3, 'it resumed through the proxy');
    assert.doesNotMatch(out + err, /evil|re-register|KL_KEY_REVOKED|ALERT/);
  });
});
