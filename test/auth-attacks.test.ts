import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import * as openpgp from 'openpgp';
import { OpenPgpClientKey } from '../src/client/client-key.js';
import { answerChallenge } from '../src/client/handshake.js';
import { openClientKey, pinnedServerKey } from '../src/client/identity.js';
import { login } from '../src/client/login.js';
import { buildRegistrationRequest, register } from '../src/client/register.js';
import { dataPaths } from '../src/ledger/data-dir.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { signDetached } from '../src/pgp/messages.js';
import { isKlError } from '../src/protocol/errors.js';
import { generateEphemeral } from '../src/protocol/x25519.js';
import { createChallenge, type Hello, ParsedKeyCache } from '../src/server/handshake.js';
import { createServerKey, loadServerKey } from '../src/server/server-key.js';
import { liveClock, PASSPHRASE, tempDir } from './helpers.js';
import { rawSocket } from './support/raw-socket.js';
import { CLIENT_PASSPHRASE, invite, newClient, registeredClient, testServer } from './support/server.js';

const code = (c: string) => (err: unknown) => {
  assert.ok(isKlError(err), `not a KlError: ${String(err)}`);
  assert.equal(err.code, c, err.message);
  return true;
};

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
const clock = liveClock();
before(async () => {
  server = await testServer({ now: clock, rateLimits: { registerPerIp: { burst: 1000, perSecond: 100 } } });
});
after(async () => {
  await server.close();
});

/** Runs a login by hand up to the point where the response is ready (not sent). */
async function prepareLogin(home: Awaited<ReturnType<typeof newClient>>) {
  const { identity, key } = await openClientKey(home, CLIENT_PASSPHRASE);
  const pinned = home.readServer();
  const sock = await rawSocket(server.wsUrl);
  const ephemeral = generateEphemeral();
  const hello = { type: 'hello' as const, v: 1 as const, id: identity.id, ephemeral: ephemeral.publicKey };
  sock.send(hello);
  const challenge = await sock.next();
  const answer = await answerChallenge({
    challenge,
    hello,
    ephemeral,
    key,
    serverKey: await pinnedServerKey(pinned.server.publicKey),
    serverFingerprint: pinned.server.fingerprint,
    chain: pinned.chain,
    now: clock(),
  });
  return { sock, answer, challenge };
}

describe('handshake attacks', () => {
  it('a replayed client response is refused on a new connection and on the same one', async () => {
    const home = await registeredClient(server, 'replay@example.org');
    const first = await prepareLogin(home);
    first.sock.send(first.answer.response);
    assert.equal(
      (await first.sock.next()).type,
      'binary',
      'the genuine response logs in (finished, a binary frame)',
    );
    // Same connection, once more: the connection now carries only frames; the replay is dropped as
    // an anomaly and logs nobody in.
    first.sock.send(first.answer.response);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(server.sessions.ofIdentity('replay@example.org').length, 1);
    assert.equal(server.sessions.ofIdentity('replay@example.org')[0]!.anomalies.length, 1);
    // New connection: hello, then the captured response.
    const second = await prepareLogin(home);
    second.sock.send(first.answer.response);
    const e2 = await second.sock.next();
    assert.deepEqual([e2.type, e2.code], ['error', 'KL_CHALLENGE_UNKNOWN']);
    assert.equal((await second.sock.closed).code, 1008);
  });

  it("a response to another client's challenge is refused", async () => {
    const a = await registeredClient(server, 'a@example.org');
    const b = await registeredClient(server, 'b@example.org');
    const pa = await prepareLogin(a);
    const pb = await prepareLogin(b);
    pb.sock.send(pa.answer.response); // B's connection, A's answer
    const e = await pb.sock.next();
    assert.deepEqual([e.type, e.code], ['error', 'KL_CHALLENGE_UNKNOWN']);
    // A's own challenge was not disturbed by the attempt.
    pa.sock.send(pa.answer.response);
    assert.equal((await pa.sock.next()).type, 'binary');
  });

  it('an expired challenge is refused (server clock moved past the 60 s default)', async () => {
    const home = await registeredClient(server, 'slow@example.org');
    const p = await prepareLogin(home);
    clock.advance(61_000);
    p.sock.send(p.answer.response);
    const e = await p.sock.next();
    assert.deepEqual([e.type, e.code], ['error', 'KL_CHALLENGE_EXPIRED']);
  });

  it('a challenge cannot be used twice: after one failed answer it is gone', async () => {
    const home = await registeredClient(server, 'twice@example.org');
    const p = await prepareLogin(home);
    // One character of the signature's last data line changed: the end of its S value (RFC 4880
    // §5.2.2), which every check covers (a byte of the unhashed issuer subpacket would not be).
    const lines = p.answer.response.signature.split('\n');
    const end = lines.findIndex((l: string) => l.startsWith('-----END'));
    const last = lines[end - 1]!.startsWith('=') ? end - 2 : end - 1; // before the checksum, if any
    lines[last] = lines[last]!.replace(
      /^(..)(.)/,
      (_m: string, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'),
    );
    p.sock.send({ ...p.answer.response, signature: lines.join('\n') });
    const e = await p.sock.next();
    assert.deepEqual([e.type, e.code], ['error', 'KL_AUTH_FAILED']);
    await p.sock.closed;
    // The good answer, later, on another connection: unknown.
    const other = await prepareLogin(home);
    other.sock.send(p.answer.response);
    assert.equal((await other.sock.next()).code, 'KL_CHALLENGE_UNKNOWN');
  });

  it('a forged response (wrong RS or a signature by another key) fails with one generic error', async () => {
    const home = await registeredClient(server, 'forge@example.org');
    const p = await prepareLogin(home);
    p.sock.send({ ...p.answer.response, rs: Buffer.alloc(32, 7).toString('base64url') });
    assert.deepEqual(await p.sock.next(), {
      type: 'error',
      code: 'KL_AUTH_FAILED',
      message: 'authentication failed',
    });

    const intruder = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'forge@example.org' }],
      format: 'object',
    });
    const q = await prepareLogin(home);
    const bogus = await signDetached(Buffer.from('anything'), intruder.privateKey);
    q.sock.send({ ...q.answer.response, signature: bogus });
    assert.deepEqual(await q.sock.next(), {
      type: 'error',
      code: 'KL_AUTH_FAILED',
      message: 'authentication failed',
    });
  });

  it('unknown identities get the same answer as failed signatures (no enumeration)', async () => {
    const sock = await rawSocket(server.wsUrl);
    sock.send({ type: 'hello', v: 1, id: 'nobody@example.org', ephemeral: generateEphemeral().publicKey });
    assert.deepEqual(await sock.next(), {
      type: 'error',
      code: 'KL_AUTH_FAILED',
      message: 'authentication failed',
    });
  });

  it('a man in the middle serving another server key is detected by the client before it answers', async () => {
    const home = await registeredClient(server, 'mitm-victim@example.org');
    // The attacker has its own OpenPGP key and can read the public ledger (the victim's KpubC).
    const dir = join(tempDir(), 'impostor');
    mkdirSync(dir);
    await createServerKey(dir, 'x');
    const impostorKey = await loadServerKey(dir, 'x');
    const { challenge } = await createChallenge({
      hello: {
        type: 'hello',
        v: 1,
        id: 'mitm-victim@example.org',
        ephemeral: generateEphemeral().publicKey,
      } as Hello,
      ledger: server.ledger,
      serverKey: impostorKey,
      keys: new ParsedKeyCache(),
      now: clock(),
      ttlMs: 60_000,
    }).then((r) => ({ challenge: r.message }));
    const { key } = await openClientKey(home, CLIENT_PASSPHRASE);
    const pinned = home.readServer();
    const ephemeral = generateEphemeral();
    await assert.rejects(
      answerChallenge({
        challenge,
        hello: { type: 'hello', v: 1, id: 'mitm-victim@example.org', ephemeral: ephemeral.publicKey },
        ephemeral,
        key,
        serverKey: await pinnedServerKey(pinned.server.publicKey),
        serverFingerprint: pinned.server.fingerprint,
        chain: pinned.chain,
        now: clock(),
      }),
      code('KL_DECRYPTION_FAILED'),
    );
    // A genuine challenge relayed for another hello (the MITM swaps ephemerals) is refused too.
    const real = await prepareLogin(home);
    const mitmEphemeral = generateEphemeral();
    await assert.rejects(
      answerChallenge({
        challenge: real.challenge,
        hello: { type: 'hello', v: 1, id: 'mitm-victim@example.org', ephemeral: mitmEphemeral.publicKey },
        ephemeral: mitmEphemeral,
        key,
        serverKey: await pinnedServerKey(pinned.server.publicKey),
        serverFingerprint: pinned.server.fingerprint,
        chain: pinned.chain,
        now: clock(),
      }),
      (e: unknown) => isKlError(e, 'KL_PROTOCOL') && /another hello/.test(e.message),
    );
  });

  it('a revoked key cannot log in', async () => {
    const home = await registeredClient(server, 'revoked@example.org');
    const fingerprint = home.readIdentity().fingerprint;
    await server.ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: 'revoked@example.org',
        fingerprint,
        reason: 'compromised',
        by: 'admin',
        admin: 'root@example.org',
      },
    });
    await assert.rejects(login({ home, passphrase: CLIENT_PASSPHRASE }), code('KL_KEY_REVOKED'));
  });

  it('a revocation between challenge and response is honoured (the key is read from the ledger again)', async () => {
    const home = await registeredClient(server, 'late-revoke@example.org');
    const p = await prepareLogin(home);
    await server.ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: 'late-revoke@example.org',
        fingerprint: home.readIdentity().fingerprint,
        reason: 'compromised',
        by: 'admin',
        admin: 'root@example.org',
      },
    });
    p.sock.send(p.answer.response);
    assert.equal((await p.sock.next()).code, 'KL_KEY_REVOKED');
  });

  it('rate limits logins per identity', async () => {
    const limited = await testServer({ rateLimits: { loginPerIdentity: { burst: 2, perSecond: 0.001 } } });
    try {
      const home = await registeredClient(limited, 'busy@example.org');
      (await login({ home, passphrase: CLIENT_PASSPHRASE })).close();
      (await login({ home, passphrase: CLIENT_PASSPHRASE })).close();
      await assert.rejects(login({ home, passphrase: CLIENT_PASSPHRASE }), code('KL_RATE_LIMITED'));
    } finally {
      await limited.close();
    }
  });

  it('malformed, binary and oversized WebSocket messages close the connection with a clear error', async () => {
    const s1 = await rawSocket(server.wsUrl);
    s1.sendText('{not json');
    assert.equal((await s1.next()).code, 'KL_PROTOCOL');
    const s2 = await rawSocket(server.wsUrl);
    s2.send({ type: 'hello', v: 1, id: 'x@example.org', ephemeral: 'short', admin: true });
    const e2 = await s2.next();
    assert.equal(e2.code, 'KL_PROTOCOL');
    assert.match(String(e2.message), /hello.admin is not an allowed field/);
    const s3 = await rawSocket(server.wsUrl);
    s3.send({ type: 'response', challengeId: 'x' });
    assert.match(String((await s3.next()).message), /expected hello/);
    const s4 = await rawSocket(server.wsUrl);
    s4.sendText('x'.repeat(170_000));
    assert.equal((await s4.closed).code, 1009, 'message too big');
    const s5 = await rawSocket(server.wsUrl);
    s5.send({ type: 'hello', v: 1, id: 'x@example.org', ephemeral: Buffer.alloc(32).toString('base64url') });
    assert.equal((await s5.next()).code, 'KL_AUTH_FAILED');
  });
});

describe('key swapped in the server storage, outside the ledger', () => {
  it('is never used: the server refuses the altered record, and refuses to restart on it', async () => {
    const own = await testServer();
    const alice = await registeredClient(own, 'alice@example.org');
    const mallory = await newClient('alice@example.org', 'Mallory');
    // Mallory writes her key into Alice's state row directly in SQLite, with no ledger transaction.
    const db = new Database(dataPaths(own.dataDir).db);
    const row = db.prepare("SELECT value FROM state WHERE key = 'identity:alice@example.org'").get() as {
      value: string;
    };
    const forged = {
      ...JSON.parse(row.value),
      fingerprint: mallory.readIdentity().fingerprint,
      publicKey: mallory.readIdentity().publicKey,
    };
    db.prepare("UPDATE state SET value = ? WHERE key = 'identity:alice@example.org'").run(
      JSON.stringify(forged),
    );
    db.close();
    // Mallory logs in as Alice with her own key (pinning the real server).
    mallory.writeServer(alice.readServer());
    await assert.rejects(
      login({ home: mallory, passphrase: CLIENT_PASSPHRASE, checkLedger: false }),
      code('KL_LEDGER_CORRUPT'),
    );
    await assert.rejects(own.ledger.getKeyRecord('alice@example.org'), code('KL_LEDGER_CORRUPT'));
    await own.close();
    assert.throws(
      () => EmbeddedLedger.open({ dataDir: own.dataDir, passphrase: PASSPHRASE }),
      code('KL_LEDGER_CORRUPT'),
    );
  });
});

describe('registration attacks and key policy', () => {
  async function tryRegister(home: Awaited<ReturnType<typeof newClient>>, id: string) {
    return register({
      home,
      server: server.url,
      proof: { method: 'invite', code: invite(server, id) },
      passphrase: CLIENT_PASSPHRASE,
    });
  }

  it('a used invitation code and a replayed complete request are refused', async () => {
    const home = await newClient('once@example.org');
    const code1 = invite(server, 'once@example.org');
    await register({
      home,
      server: server.url,
      proof: { method: 'invite', code: code1 },
      passphrase: CLIENT_PASSPHRASE,
    });
    const other = await newClient('once2@example.org');
    // An invitation is bound to its identity.
    await assert.rejects(
      register({
        home: other,
        server: server.url,
        proof: { method: 'invite', code: code1 },
        passphrase: CLIENT_PASSPHRASE,
      }),
      code('KL_IDENTITY_PROOF_INVALID'),
    );
    // Replay of a full register/complete body: its nonce is spent.
    const { identity, key } = await openClientKey(other, CLIENT_PASSPHRASE);
    const begun = (await (
      await fetch(`${server.url}/v1/register/begin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: identity.id }),
      })
    ).json()) as { nonce: string; chain: string; server: { fingerprint: string; publicKey: string } };
    const body = await buildRegistrationRequest({
      identity,
      key,
      chain: begun.chain,
      nonce: begun.nonce,
      server: begun.server,
      proof: { method: 'invite', code: invite(server, identity.id) },
      time: clock(),
    });
    const post = (b: unknown) =>
      fetch(`${server.url}/v1/register/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
    assert.equal((await post(body)).status, 200);
    const replay = await post(body);
    assert.equal(replay.status, 401);
    assert.equal(((await replay.json()) as { error: { code: string } }).error.code, 'KL_NONCE_INVALID');
  });

  it('a registration retried with the same key (its answer lost) gets the original receipt and writes nothing', async () => {
    const home = await registeredClient(server, 'retry@example.org');
    const first = home.readServer().registration!.receipt;
    const before = await server.ledger.transactionsFor('retry@example.org');
    // The code was used by the first registration; the retry proves possession of the key instead.
    const again = await register({
      home,
      server: server.url,
      proof: { method: 'invite', code: 'used-or-unknown-code' },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(again.verified, true);
    assert.equal(again.txid, first.txid);
    assert.deepEqual(await server.ledger.transactionsFor('retry@example.org'), before);
    // Another key for the same identity is still refused, with or without a valid code.
    const other = await newClient('retry@example.org');
    await assert.rejects(tryRegister(other, 'retry@example.org'), code('KL_IDENTITY_TAKEN'));
  });

  it('case and Unicode variants of a registered identity are the same identity', async () => {
    await registeredClient(server, 'carol@example.org');
    for (const variant of ['Carol@Example.ORG', 'ｃarol@example.org']) {
      const home = await newClient(variant);
      assert.equal(home.readIdentity().id, 'carol@example.org');
      await assert.rejects(tryRegister(home, 'carol@example.org'), code('KL_IDENTITY_TAKEN'));
    }
  });

  it('refuses RSA-2048, expired keys, keys without an encryption subkey and private keys', async () => {
    const post = async (publicKey: string, privateKey?: openpgp.PrivateKey) => {
      const id = `policy${Math.random().toString(36).slice(2)}@example.org`;
      const begun = (await (
        await fetch(`${server.url}/v1/register/begin`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id }),
        })
      ).json()) as { nonce: string; chain: string; server: { fingerprint: string; publicKey: string } };
      const pub = await openpgp.readKey({ armoredKey: publicKey });
      const body = await buildRegistrationRequest({
        identity: { id, name: 'P', fingerprint: pub.getFingerprint(), publicKey },
        key: {
          signDetached: (data, date) =>
            privateKey ? signDetached(data, privateKey, date).catch(() => 'x') : Promise.resolve('x'),
        },
        chain: begun.chain,
        nonce: begun.nonce,
        server: begun.server,
        proof: { method: 'invite', code: invite(server, id) },
        time: clock(),
      });
      const res = await fetch(`${server.url}/v1/register/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return {
        status: res.status,
        error: ((await res.json()) as { error: { code: string; message: string } }).error,
      };
    };
    const rsa2048 = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 2048,
      userIDs: [{ email: 'r@example.org' }],
      format: 'object',
      config: { minRSABits: 2048 },
    });
    let r = await post(rsa2048.publicKey.armor(), rsa2048.privateKey);
    assert.equal(r.error.code, 'KL_KEY_POLICY');
    assert.match(r.error.message, /at least 3072 bits/);

    const past = new Date(Date.now() - 10 * 86_400_000);
    const expired = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'e@example.org' }],
      keyExpirationTime: 86_400,
      date: past,
      format: 'object',
    });
    r = await post(expired.publicKey.armor(), expired.privateKey);
    assert.equal(r.error.code, 'KL_KEY_POLICY');
    assert.match(r.error.message, /expired/);

    const gnupg = join(tempDir(), 'gnupg');
    mkdirSync(gnupg, { mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: gnupg };
    execFileSync(
      'gpg',
      [
        '--batch',
        '--passphrase',
        '',
        '--quick-gen-key',
        'Sign Only <s@example.org>',
        'ed25519',
        'sign',
        'never',
      ],
      { env, stdio: 'ignore' },
    );
    const signOnly = execFileSync('gpg', ['--armor', '--export', 's@example.org'], { env }).toString();
    r = await post(signOnly);
    assert.equal(r.error.code, 'KL_KEY_POLICY');
    assert.match(r.error.message, /no valid encryption subkey/);

    const good = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'p@example.org' }],
      format: 'object',
    });
    const before = (await server.ledger.checkpoint())?.header.height;
    r = await post(good.privateKey.armor(), good.privateKey);
    assert.equal(r.status, 422);
    assert.equal(r.error.code, 'KL_KEY_IS_PRIVATE');
    assert.equal((await server.ledger.checkpoint())?.header.height, before, 'nothing was written');
  });

  it('oversized and malformed bodies get clear errors; unknown fields are refused, not stripped', async () => {
    const post = (body: string) =>
      fetch(`${server.url}/v1/register/begin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    let res = await post(JSON.stringify({ id: 'x'.repeat(100_000) }));
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KL_TOO_LARGE');
    res = await post('{"id": ');
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KL_BAD_INPUT');
    res = await post(JSON.stringify({ id: 'ok@example.org', admin: true }));
    assert.equal(res.status, 400);
    assert.match(
      ((await res.json()) as { error: { message: string } }).error.message,
      /additional properties/,
    );
    res = await post(JSON.stringify({ id: 'not an email' }));
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KL_BAD_INPUT');
    res = await fetch(`${server.url}/v1/nothing`);
    assert.equal(res.status, 404);
  });

  it('a compressed OpenPGP message bomb is refused quickly, on both sides, with bounded memory', async () => {
    const home = await registeredClient(server, 'bomb@example.org');
    const { identity } = await openClientKey(home, CLIENT_PASSPHRASE);
    const clientPub = await openpgp.readKey({ armoredKey: identity.publicKey });
    const bomb = (await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: new Uint8Array(30 * 1024 * 1024) }),
      encryptionKeys: clientPub,
      format: 'armored',
      config: { preferredCompressionAlgorithm: openpgp.enums.compression.zlib },
    })) as string;
    assert.ok(bomb.length < 64 * 1024, `bomb is ${bomb.length} bytes armored`);
    const rss = process.memoryUsage().rss;
    const t0 = Date.now();
    const { key } = await openClientKey(home, CLIENT_PASSPHRASE);
    assert.ok(key instanceof OpenPgpClientKey);
    await assert.rejects(
      key.decryptVerified(bomb, await pinnedServerKey(home.readServer().server.publicKey), new Date()),
      code('KL_DECRYPTION_FAILED'),
    );
    assert.ok(Date.now() - t0 < 5_000);
    assert.ok(process.memoryUsage().rss - rss < 200 * 1024 * 1024, 'memory stayed bounded');
    // Server side: the bomb offered as a signature.
    const begun = (await (
      await fetch(`${server.url}/v1/register/begin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'bomber@example.org' }),
      })
    ).json()) as { nonce: string; chain: string; server: { fingerprint: string; publicKey: string } };
    const body = await buildRegistrationRequest({
      identity: { ...identity, id: 'bomber@example.org', name: 'B' },
      key: { signDetached: async () => bomb.slice(0, 8000) },
      chain: begun.chain,
      nonce: begun.nonce,
      server: begun.server,
      proof: { method: 'invite', code: 'KL-0000' },
      time: clock(),
    });
    const res = await fetch(`${server.url}/v1/register/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.ok(res.status >= 400 && res.status < 500);
  });
});
