/**
 * Several servers of one ledger (docs/protocol.md "Several servers"), on a real chain (anvil) and
 * real servers on 127.0.0.1: A, and B a replica of it (A's data directory copied while A was
 * stopped: the same genesis, keys and account), each listing the other as a peer, B reading the
 * chain slowly so that it lags. A home belongs to the ledger: it learns B from A, logs in on B right
 * after registering on A (B waits for the block), fails over to B when A is down or when a man in the
 * middle answers for A with plaintext errors, refuses a server of another ledger and an impostor
 * presenting another server key, and still reads an old server.json.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { advanceCheckpoint } from '../src/client/checkpoint.js';
import { onServers } from '../src/client/failover.js';
import type { ClientHome } from '../src/client/home.js';
import { register } from '../src/client/register.js';
import { serverList, withLearnt, withoutServer, withServer } from '../src/client/server-list.js';
import { connect } from '../src/client/session.js';
import type { ServerFile } from '../src/client/store.js';
import { isKlError } from '../src/protocol/errors.js';
import { type RunningServer, startServer } from '../src/server/app.js';
import { loadServerKey } from '../src/server/server-key.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { type Anvil, startAnvil } from './support/anvil.js';
import { impostorProxy } from './support/impostor-proxy.js';
import {
  type HttpForgery,
  type MitmProxy,
  mitmProxy,
  serversInOrder,
  signedChallenge,
} from './support/mitm-proxy.js';
import { freePort } from './support/serve-cli.js';
import { CLIENT_PASSPHRASE, evmTestServer, invite, newClient, registeredClient } from './support/server.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;

/** `keyledger ARGS…` in a child process (asynchronous: the servers answer from this process). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYLEDGER_')));
  return promisify(execFile)(process.execPath, [bin, ...args], {
    env: { ...env, KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE },
    encoding: 'utf8',
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

const code = (c: string, message?: RegExp) => (e: unknown) => {
  assert.ok(isKlError(e), String(e));
  assert.equal(e.code, c, e.message);
  if (message) assert.match(e.message, message);
  return true;
};

/** The error given when no server gave an authenticated answer: the first answer's code, said unverified. */
const unverified = (c: string, message?: RegExp) => (e: unknown) => {
  assert.ok(isKlError(e), String(e));
  assert.equal(e.code, c, e.message);
  assert.match(e.message, /\(not verified: no server of this ledger gave an authenticated answer; /);
  assert.equal(e.details?.authenticated, false);
  if (message) assert.match(e.message, message);
  return true;
};

const height = async (s: RunningServer) => (await s.ledger.checkpoint())?.header.height ?? 0;

let anvil: Anvil;
let A: RunningServer;
let B: RunningServer;
/** A server of another ledger (its own contract) on the same chain. */
let C: RunningServer & { dataDir: string };
let aData: string;
let aPort: number;
let bPort: number;
const url = (port: number) => `http://127.0.0.1:${port}`;

/** A server over `dataDir`, listing `peers`; B reads the chain every 2 s (it lags behind A). */
function serve(dataDir: string, port: number, peers: string[], pollMs = 20): Promise<RunningServer> {
  return startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port, evm: { pollMs }, peers });
}

before(async () => {
  anvil = await startAnvil();
  const first = await evmTestServer(anvil);
  aData = first.dataDir;
  aPort = Number(new URL(first.url).port);
  await first.close();
  // The replica: the same data directory, copied while A is stopped.
  const bData = join(tempDir('kl-multi-b-'), 'data');
  cpSync(aData, bData, { recursive: true, filter: (f) => !/ledger\.lock$|\.sock$/.test(f) });
  bPort = await freePort();
  A = await serve(aData, aPort, [url(bPort)]);
  B = await serve(bData, bPort, [url(aPort)], 2_000);
  C = await evmTestServer(anvil);
});

after(async () => {
  await A?.close().catch(() => {});
  await B?.close().catch(() => {});
  await C?.close().catch(() => {});
  await anvil?.stop();
});

describe('several servers of one ledger', () => {
  it('/v1/info lists the servers of the deployment, and a registration keeps them (B unchecked)', async () => {
    const info = (await (await fetch(`${A.url}/v1/info`)).json()) as { servers: string[] };
    assert.deepEqual(info.servers, [url(aPort), url(bPort)]);
    const home = await registeredClient(A, 'list@example.org');
    const saved = home.readServer();
    assert.deepEqual(saved.servers, [
      { url: url(aPort), fingerprint: saved.server.fingerprint },
      { url: url(bPort) },
    ]);
  });

  it('a server behind a checkpoint waits for it, then answers KL_LEDGER_BEHIND (503, Retry-After), not bad input', async () => {
    const ahead = (await height(A)) + 50;
    const t0 = Date.now();
    const res = await fetch(`${B.url}/v1/ledger/consistency?from=${ahead}`);
    const waited = Date.now() - t0;
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'KL_LEDGER_BEHIND');
    assert.match(body.error.message, /has not reached block \d+ yet \(it is catching up/);
    assert.ok(waited >= 2_500, `it waited (${waited} ms)`);
  });

  it('registration on A, then at once a login on B: B waits for the block, and the login succeeds', async () => {
    // B reads the chain every 2 s: a registration usually returns before B has read it (tried again
    // with another identity in the rare case B read it at once).
    let home: ClientHome | undefined;
    let id = '';
    for (let i = 0; i < 5 && !home; i++) {
      id = `quick${i}@example.org`;
      const candidate = await newClient(id);
      const r = await register({
        home: candidate,
        server: A.url,
        proof: { method: 'invite', code: invite(A, id) },
        passphrase: CLIENT_PASSPHRASE,
      });
      if ((await height(B)) < r.height) home = candidate;
    }
    assert.ok(home, 'B had not read the registration yet');
    const session = await connect({ home, passphrase: CLIENT_PASSPHRASE, server: B.url });
    assert.equal(session.serverUrl, url(bPort));
    assert.deepEqual(await session.request('hello'), { echo: 'hello', id });
    await session.close();
    assert.equal(home.readServer().url, url(bPort), 'B is now the preferred server');
  });

  it('--server with a server of another ledger is refused, and the home is left as it was', async () => {
    const home = await registeredClient(A, 'other-chain@example.org');
    const before = home.readServer();
    await assert.rejects(
      connect({ home, passphrase: CLIENT_PASSPHRASE, server: C.url }),
      code('KL_SERVER_KEY_MISMATCH', /serves another ledger .* than the one this home is registered with/),
    );
    assert.deepEqual(home.readServer(), before);
  });

  it('--server with a server that is down: a clear KL_NETWORK error naming it', async () => {
    const home = await registeredClient(A, 'down@example.org');
    const port = await freePort();
    await assert.rejects(
      connect({ home, passphrase: CLIENT_PASSPHRASE, server: url(port) }),
      code('KL_NETWORK', new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}`)),
    );
  });

  it('an impostor presenting another server key is refused and never used; its plaintext refusals (the key unknown to it, the identity unknown) are no verdict', async () => {
    const cInfo = (await (await fetch(`${C.url}/v1/info`)).json()) as {
      server: { fingerprint: string; publicKey: string };
    };
    const proxy = await impostorProxy({ http: A.url, ws: C.url, serverKey: cInfo.server });
    try {
      const home = await registeredClient(A, 'impostor@example.org');
      const saved = home.readServer();
      // Named with --server: refused before anything is sent.
      await assert.rejects(
        connect({ home, passphrase: CLIENT_PASSPHRASE, server: proxy.url }),
        code('KL_SERVER_KEY_MISMATCH', /presents a server key this client does not accept/),
      );
      assert.deepEqual(home.readServer(), saved);
      assert.equal(proxy.upgrades, 0);
      // Listed by some server and put first: checked before its first use, refused, not used.
      home.writeServer({ ...saved, url: proxy.url, servers: [{ url: proxy.url }, ...saved.servers!] });
      const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(s.serverUrl, url(aPort));
      await s.close();
      assert.equal(proxy.upgrades, 0, 'no login went to the impostor');
      // A server checked earlier whose login is now relayed to C, which does not know the identity
      // and refuses it in plaintext: an unauthenticated answer, no verdict; the next server is asked.
      const listed = () =>
        home.writeServer({
          ...saved,
          url: proxy.url,
          servers: [{ url: proxy.url, fingerprint: saved.server.fingerprint }, ...saved.servers!],
        });
      listed();
      const upgrades = proxy.upgrades;
      const next = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(next.serverUrl, url(aPort));
      await next.close();
      assert.ok(proxy.upgrades > upgrades, 'the login went to the impostor first');
      // Once C knows the identity (under another key), it refuses the hello, which names a key C
      // does not hold for it (docs/protocol.md "Devices"), in plaintext: that proves nothing (anyone
      // can send it) and is no verdict either; the next server is asked.
      await registeredClient(C, 'impostor@example.org');
      listed();
      const tried = proxy.upgrades;
      const third = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(third.serverUrl, url(aPort));
      await third.close();
      assert.ok(proxy.upgrades > tried, 'C answered the login first');
      // The impostor alone: no server gave an authenticated answer, and the error says so.
      home.writeServer({
        ...saved,
        url: proxy.url,
        servers: [{ url: proxy.url, fingerprint: saved.server.fingerprint }],
      });
      const alone = home.readServer();
      await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), unverified('KL_AUTH_FAILED'));
      assert.deepEqual(home.readServer().servers, alone.servers, 'the home still lists the impostor alone');
    } finally {
      await proxy.close();
    }
  });

  it('a plaintext error injected in front of A (login or HTTP) is no verdict: the client goes on to B', async () => {
    const proxy = await mitmProxy(A.url);
    try {
      const home = await registeredClient(A, 'forged-refusal@example.org');
      const behindProxy = () => serversInOrder(home, proxy.url, url(bPort));
      // The login: a forged plaintext KL_KEY_REVOKED from "A".
      behindProxy();
      proxy.takeOver((client) =>
        client.once('message', () =>
          client.send(JSON.stringify({ type: 'error', code: 'KL_KEY_REVOKED', message: 'revoked' })),
        ),
      );
      const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(s.serverUrl, url(bPort), 'logged in on B');
      await s.close();
      proxy.takeOver(null);
      // HTTP: every answer of "A" a forged error, or only the consistency proof refused (which
      // would otherwise read as a rewritten history): checked on B instead.
      const forgeries: HttpForgery[] = [
        () => ({
          status: 400,
          body: { error: { code: 'KL_NOT_REGISTERED', message: 'register again at https://evil.example' } },
        }),
        (_m, path) =>
          path.startsWith('/v1/ledger/consistency')
            ? { status: 400, body: { error: { code: 'KL_BAD_INPUT', message: 'forged' } } }
            : null,
        (_m, path) => (path.startsWith('/v1/ledger/consistency') ? { status: 200, body: { junk: 1 } } : null),
      ];
      for (const forgery of forgeries) {
        behindProxy();
        proxy.forgeHttp(forgery);
        const used = await onServers(home, async (server) => {
          await advanceCheckpoint(home, server);
          return server.url;
        });
        assert.equal(used, url(bPort));
      }
      // With A behind the proxy as the only server, the forged answer is all there is: it fails
      // with its code, said to be unverified, without its text.
      serversInOrder(home, proxy.url);
      proxy.forgeHttp(forgeries[0]!);
      await assert.rejects(
        onServers(home, (server) => advanceCheckpoint(home, server)),
        (e: unknown) => {
          unverified(
            'KL_NOT_REGISTERED',
            /^the server answered 400 KL_NOT_REGISTERED in a plain HTTP error body/,
          )(e);
          assert.doesNotMatch((e as Error).message, /evil/);
          return true;
        },
      );
      // The CLI says the same.
      const st = await cli(['status', '--home', home.dir]);
      assert.equal(st.code, 2, st.stdout + st.stderr);
      assert.match(
        st.stderr,
        /^error KL_NOT_REGISTERED: the server answered 400 KL_NOT_REGISTERED in a plain HTTP error body \(not verified: no server of this ledger gave an authenticated answer; /m,
      );
      assert.doesNotMatch(st.stderr, /evil/);
      // A key record proof rewritten in front of A (the record says revoked): `status` asks B, whose
      // proof verifies; with A alone, the check is reported failed (exit 1), never "revoked".
      const revokedProof: HttpForgery = async (_m, path) => {
        if (!path.startsWith('/v1/ledger/keys/')) return null;
        const real = (await (await fetch(`${url(aPort)}${path}`)).json()) as {
          record?: { status?: string };
        };
        return { status: 200, body: { ...real, record: { ...real.record, status: 'revoked' } } };
      };
      behindProxy();
      proxy.forgeHttp(revokedProof);
      const viaB = await cli(['status', '--home', home.dir, '--json']);
      assert.equal(viaB.code, 0, viaB.stdout + viaB.stderr);
      assert.equal(JSON.parse(viaB.stdout).server, url(bPort));
      serversInOrder(home, proxy.url);
      const alone = await cli(['status', '--home', home.dir]);
      assert.equal(alone.code, 1, alone.stdout + alone.stderr);
      assert.match(alone.stdout, /state proof INVALID/);
      assert.doesNotMatch(alone.stdout, /REVOKED/);
    } finally {
      await proxy.close();
    }
  });

  it('an old server.json (no list) still reads and logs in; the list is written on first use', async () => {
    const home = await registeredClient(A, 'old-form@example.org');
    const { servers: _servers, ...old } = home.readServer();
    home.writeServer(old as ServerFile);
    assert.equal(home.readServer().servers, undefined);
    assert.deepEqual(serverList(home.readServer()), [
      { url: url(aPort), fingerprint: old.server.fingerprint },
    ]);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    assert.equal(s.serverUrl, url(aPort));
    await s.close();
    assert.deepEqual(home.readServer().servers, [{ url: url(aPort), fingerprint: old.server.fingerprint }]);
  });
});

describe('a man in the middle in front of A cannot stop the failover', () => {
  let proxy: MitmProxy;
  before(async () => {
    proxy = await mitmProxy(A.url);
  });
  after(async () => {
    await proxy?.close();
  });

  /** What the man in the middle does to one login, and the code the client gives when only he answered. */
  interface Attack {
    name: string;
    code: string;
    message?: RegExp;
    arm(home: ClientHome): Promise<void> | void;
  }

  /** Answers the client's hello on the login socket with what `reply` makes of it. */
  const onHello = (reply: (hello: { id: string; ephemeral: string }) => Promise<string> | string) =>
    proxy.takeOver((client) =>
      client.once('message', async (data) => client.send(await reply(JSON.parse(data.toString())))),
    );

  /** A genuine challenge of A, taken from a login relayed earlier. */
  async function genuineChallenge(home: ClientHome): Promise<string> {
    const taken: string[] = [];
    proxy.rule((text, index) => {
      if (index === 0) taken.push(text);
      return 'relay';
    });
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE, server: proxy.url });
    await s.close();
    proxy.rule(null);
    assert.match(taken[0] ?? '', /^\{"type":"challenge"/);
    return taken[0]!;
  }

  /** A's real answer to `path` (a consistency proof), with every hash zeroed. */
  async function zeroedProof(path: string): Promise<{ status: number; body: unknown }> {
    const real = (await (await fetch(`${A.url}${path}`)).json()) as {
      consistency: string[];
      inclusion: string[];
    };
    const zero = (list: string[]) => (list.length ? list : ['']).map(() => '00'.repeat(32));
    return {
      status: 200,
      body: { ...real, consistency: zero(real.consistency), inclusion: zero(real.inclusion) },
    };
  }

  const attacks: Attack[] = [
    { name: 'text that is not JSON', code: 'KL_PROTOCOL', arm: () => onHello(() => 'garbage') },
    { name: 'JSON that is not an object', code: 'KL_PROTOCOL', arm: () => onHello(() => '[1]') },
    {
      name: 'a malformed challenge',
      code: 'KL_PROTOCOL',
      arm: () => onHello(() => JSON.stringify({ type: 'challenge', challengeId: 'x', message: 'y' })),
    },
    {
      name: "a challenge bound to this login but signed by another server's key (C's)",
      code: 'KL_DECRYPTION_FAILED',
      arm: async (home) => {
        const signer = (await loadServerKey(C.dataDir, PASSPHRASE)).privateKey;
        onHello((hello) => signedChallenge({ home, hello, signer }));
      },
    },
    {
      name: 'a genuine challenge of A replayed from an earlier login',
      code: 'KL_PROTOCOL',
      message: /another hello/,
      arm: async (home) => {
        const replay = await genuineChallenge(home);
        onHello(() => replay);
      },
    },
    {
      name: 'a junk finished frame',
      code: 'KL_AUTH_FAILED',
      arm: () => proxy.rule((_t, index) => (index === 1 ? { replace: Buffer.alloc(64, 7) } : 'relay')),
    },
    {
      name: 'a consistency proof with its hashes zeroed',
      code: 'KL_CHECKPOINT_INVALID',
      message: /^no valid proof that the ledger extends the checkpoint kept at block \d+ \(not verified/,
      arm: () =>
        proxy.forgeHttp((_m, path) => (path.startsWith('/v1/ledger/consistency') ? zeroedProof(path) : null)),
    },
    {
      name: 'the proof refused and an old signed checkpoint replayed as the end of the ledger',
      code: 'KL_CHECKPOINT_INVALID',
      message: /^history cut short: .* \(not verified/,
      arm: async (home) => {
        const kept = home.readServer().checkpoint.header.height;
        const old = (await (
          await fetch(`${A.url}/v1/ledger/consistency?from=${kept - 1}&to=${kept - 1}`)
        ).json()) as {
          older: unknown;
        };
        proxy.forgeHttp((_m, path) =>
          path.startsWith('/v1/ledger/consistency')
            ? { status: 400, body: { error: { code: 'KL_CHECKPOINT_INVALID', message: 'cut short' } } }
            : path.startsWith('/v1/ledger/checkpoint')
              ? { status: 200, body: { checkpoint: old.older } }
              : null,
        );
      },
    },
  ];

  it('each unauthenticated answer from "A" fails over to B; with A alone, a clear error says it is not verified and the home is left as it was', async () => {
    let n = 0;
    for (const attack of attacks) {
      n += 1;
      const home = await registeredClient(A, `mitm-${n}@example.org`);
      // A later block, so that the home's checkpoint has something to be proved consistent with.
      await registeredClient(A, `mitm-${n}-later@example.org`);
      const reset = () => {
        proxy.takeOver(null);
        proxy.rule(null);
        proxy.forgeHttp(null);
      };
      try {
        serversInOrder(home, proxy.url);
        await attack.arm(home);
        serversInOrder(home, proxy.url, url(bPort));
        const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
        assert.equal(s.serverUrl, url(bPort), `${attack.name}: logged in on B`);
        await s.close();
        // A behind the man in the middle, alone in the home.
        serversInOrder(home, proxy.url);
        const before = home.readServer();
        await assert.rejects(
          connect({ home, passphrase: CLIENT_PASSPHRASE }),
          unverified(attack.code, attack.message),
          attack.name,
        );
        const after = home.readServer();
        assert.equal(after.url, proxy.url, `${attack.name}: A is still the preferred server`);
        assert.deepEqual(after.servers, before.servers, attack.name);
      } finally {
        reset();
      }
    }
  });

  it('a challenge signed by A for this login but for another key than ours is a verdict: no other server is asked', async () => {
    const home = await registeredClient(A, 'signed-verdict@example.org');
    const other = await registeredClient(A, 'signed-verdict-other@example.org');
    serversInOrder(home, proxy.url, url(bPort));
    const signer = (await loadServerKey(aData, PASSPHRASE)).privateKey;
    const fingerprint = other.readIdentity().fingerprint;
    proxy.takeOver((client) =>
      client.once('message', async (data) =>
        client.send(
          await signedChallenge({
            home,
            hello: JSON.parse(data.toString()),
            signer,
            payload: { fingerprint },
          }),
        ),
      ),
    );
    try {
      await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), (e: unknown) => {
        assert.ok(isKlError(e), String(e));
        assert.equal(e.code, 'KL_PROTOCOL', e.message);
        assert.match(e.message, /encrypted to another key than ours/);
        assert.notEqual(e.details?.authenticated, false);
        return true;
      });
      assert.deepEqual(B.sessions.ofIdentity('signed-verdict@example.org'), [], 'B was not asked');
      assert.equal(home.readServer().url, proxy.url);
    } finally {
      proxy.takeOver(null);
    }
  });
});

describe("the home's list of servers (server.json)", () => {
  it('URLs kept once, normalised; what a server lists is bounded and left unchecked; the last checked one stays', async () => {
    const home = await registeredClient(A, 'list-rules@example.org');
    const saved = home.readServer();
    const fp = saved.server.fingerprint;
    const listed = withLearnt(saved, [
      `${url(bPort)}/`,
      'ftp://not-a-server.example.org',
      'javascript:alert(1)',
      ...Array.from({ length: 40 }, (_, i) => `https://kl${i}.example.org`),
    ]);
    const entries = serverList(listed);
    assert.deepEqual(entries.slice(0, 2), [{ url: url(aPort), fingerprint: fp }, { url: url(bPort) }]);
    assert.equal(entries.filter((e) => !e.fingerprint).length, 32, 'at most 32 learnt servers');
    assert.ok(entries.every((e) => /^https?:\/\//.test(e.url)));
    // Checked, then preferred; the fingerprint a server showed is kept when it is preferred again.
    const checked = withServer(listed, { url: url(bPort), fingerprint: fp });
    const preferred = withServer(checked, { url: url(bPort) }, true);
    assert.equal(preferred.url, url(bPort));
    assert.deepEqual(serverList(preferred)[0], { url: url(bPort), fingerprint: fp });
    // Removing the preferred one makes the next checked one preferred; the last checked one stays.
    const removed = withoutServer(preferred, url(bPort));
    assert.equal(removed.url, url(aPort));
    assert.throws(() => withoutServer(removed, url(aPort)), code('KL_BAD_INPUT', /only checked server/));
    assert.throws(() => withServer(saved, { url: 'file:///etc/passwd' }), code('KL_BAD_INPUT'));
  });
});

describe('keyledger --server and keyledger servers', () => {
  it('every command that talks to a server takes --server', async () => {
    for (const words of [
      ['login'],
      ['status'],
      ['send'],
      ['shell'],
      ['session', 'list'],
      ['session', 'revoke'],
      ['rotate-key'],
      ['revoke-key'],
    ]) {
      const r = await cli([...words, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ {2}--server <URL> /m, words.join(' '));
    }
  });

  it('register on A, login --server B at once, servers list | add | remove, another ledger refused', async () => {
    const home = await newClient('cli-multi@example.org');
    const dir = home.dir;
    const reg = await cli([
      'register',
      '--server',
      A.url,
      '--invite',
      invite(A, 'cli-multi@example.org'),
      '--home',
      dir,
    ]);
    assert.equal(reg.code, 0, reg.stderr);
    const login = await cli(['login', '--server', B.url, '--home', dir]);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, new RegExp(`logged in +cli-multi@example.org at ${url(bPort)} `));
    const list = JSON.parse((await cli(['servers', 'list', '--home', dir, '--json'])).stdout) as {
      preferred: string;
      servers: Array<{ url: string; checked: boolean }>;
    };
    assert.equal(list.preferred, url(bPort));
    assert.deepEqual(
      list.servers.map((s) => [s.url, s.checked]),
      [
        [url(bPort), true],
        [url(aPort), true],
      ],
    );
    const other = await cli(['servers', 'add', C.url, '--home', dir]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /^error KL_SERVER_KEY_MISMATCH: .* serves another ledger/m);
    const status = await cli(['status', '--server', C.url, '--home', dir]);
    assert.equal(status.code, 2);
    assert.match(status.stderr, /KL_SERVER_KEY_MISMATCH/);
    const removed = await cli(['servers', 'remove', url(bPort), '--home', dir]);
    assert.equal(removed.code, 0, removed.stderr);
    const added = await cli(['servers', 'add', B.url, '--prefer', '--home', dir]);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added .* now the preferred server/);
    const shown = await cli(['servers', 'list', '--home', dir]);
    assert.match(shown.stdout, new RegExp(`^ {2}${url(bPort)} {2}\\(preferred\\)`, 'm'));
    const st = await cli(['status', '--home', dir, '--json']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(JSON.parse(st.stdout).server, url(bPort));
  });
});

describe('A is down', () => {
  it('login and status fail over to B, which becomes the preferred server', async () => {
    const home = await registeredClient(A, 'failover@example.org');
    assert.equal(home.readServer().url, url(aPort));
    await A.close();
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    assert.equal(s.serverUrl, url(bPort));
    await s.close();
    assert.equal(home.readServer().url, url(bPort));
    // The CLI, from a home that still prefers A.
    home.writeServer({ ...home.readServer(), url: url(aPort) });
    const status = await cli(['status', '--home', home.dir, '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).server, url(bPort));
    const login = await cli(['login', '--home', home.dir]);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, new RegExp(`at ${url(bPort)} `));
    // Every server down: what was tried is in the error.
    await B.close();
    const none = await cli(['login', '--home', home.dir]);
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      new RegExp(
        `error KL_NETWORK: no server of this ledger could answer \\(tried 2\\): ${url(bPort)}: KL_NETWORK .*; ${url(aPort)}: KL_NETWORK`,
      ),
    );
  });
});
