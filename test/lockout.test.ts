/**
 * Nobody locks a user out by knowing their identity (docs/protocol.md, "Rate limits"): floods of
 * unauthenticated traffic for alice, from other source addresses (real sockets bound to 127.0.0.2…
 * on loopback), leave her own logins and registration working, and guessing emailed codes stays
 * bounded per source and server-wide.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { openClientKey } from '../src/client/identity.js';
import { login } from '../src/client/login.js';
import { buildRegistrationRequest, register, requestEmailCode } from '../src/client/register.js';
import { connect } from '../src/client/session.js';
import { generateEphemeral } from '../src/protocol/x25519.js';
import type { RunningServer } from '../src/server/app.js';
import { sourceKey } from '../src/server/client-address.js';
import { manualClock } from './helpers.js';
import { rawSocket, rawSocketWithHeaders } from './support/raw-socket.js';
import { CLIENT_PASSPHRASE, invite, newClient, registeredClient, testServer } from './support/server.js';
import { nextCode, smtpSink, smtpTo } from './support/smtp-sink.js';

/** POSTs JSON from `localAddress`; returns status and parsed body. */
function postFrom(
  localAddress: string,
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const req = request(
      url,
      {
        method: 'POST',
        localAddress,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': payload.length, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || 'null'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A hello for `id` from `localAddress`; returns the first answer's type or error code. */
async function helloFrom(server: RunningServer, localAddress: string, id: string): Promise<string> {
  const socket = await rawSocket(server.wsUrl, localAddress);
  socket.send({ type: 'hello', v: 1, id, ephemeral: generateEphemeral().publicKey });
  const answer: Record<string, unknown> = await socket.next().catch(() => ({ type: 'closed' }));
  socket.ws.terminate();
  return answer.type === 'error' ? String(answer.code) : String(answer.type);
}

/** A schema-valid register/complete body that proves nothing (made-up key, signature and sealed proof). */
function junkComplete(server: RunningServer, id: string, nonce: string) {
  return {
    statement: {
      type: 'keyledger/register',
      v: 2,
      chain: server.ledger.chainId,
      id,
      name: 'Mallory',
      fingerprint: 'a'.repeat(40),
      nonce,
      server: 'b'.repeat(40),
      time: Date.now(),
      proof: { method: 'invite', sealed: '-----BEGIN PGP MESSAGE-----\n\nxx\n-----END PGP MESSAGE-----\n' },
    },
    signature: '-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n',
    publicKey: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n',
  };
}

describe('lockout by strangers who know an identity (real server, floods from other loopback addresses)', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    // The default limits, except a smaller per-source login budget so the test reaches it fast.
    server = await testServer({ rateLimits: { loginPerIp: { burst: 40, perSecond: 1 } } });
  });
  after(() => server.close());

  it('hellos for alice from other addresses never charge her limit: she logs in; each flooding source is cut off', async () => {
    const alice = await registeredClient(server, 'alice@example.org');
    // 60 hellos for alice (3× her per-identity burst), from three other addresses.
    let limitedSources = 0;
    for (const source of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      const answers: string[] = [];
      for (let i = 0; i < 45; i++) answers.push(await helloFrom(server, source, 'alice@example.org'));
      assert.equal(answers.filter((a) => a === 'challenge').length, 40, 'each source gets its burst');
      assert.equal(answers.at(-1), 'KL_RATE_LIMITED', 'then the source is limited');
      limitedSources++;
    }
    assert.equal(limitedSources, 3);
    const session = await login({ home: alice, passphrase: CLIENT_PASSPHRASE });
    assert.equal(session.id, 'alice@example.org');
    session.close();
  });

  it('junk register/complete bodies for bob, from another address, do not block his real registration', async () => {
    for (let i = 0; i < 25; i++) {
      const begun = await postFrom('127.0.0.5', `${server.url}/v1/register/begin`, { id: 'bob@example.org' });
      assert.equal(begun.status, 200);
      const junk = await postFrom(
        '127.0.0.5',
        `${server.url}/v1/register/complete`,
        junkComplete(server, 'bob@example.org', String(begun.body.nonce)),
      );
      assert.ok(junk.status >= 400 && junk.status < 500, `junk answered ${junk.status}`);
      assert.notEqual(junk.body.error?.code, 'KL_RATE_LIMITED');
    }
    const bob = await newClient('bob@example.org');
    const r = await register({
      home: bob,
      server: server.url,
      proof: { method: 'invite', code: invite(server, 'bob@example.org') },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(r.verified, true);
  });
});

describe('emailed codes under attack (real server and SMTP, guesses from other loopback addresses)', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let sink: Awaited<ReturnType<typeof smtpSink>>;
  // A minute ahead of real time: keys made during the test are older than the server's clock.
  const clock = manualClock(Date.now() + 60_000);
  before(async () => {
    sink = await smtpSink();
    server = await testServer({
      now: clock,
      rateLimits: {
        wrongCodePerIp: { burst: 5, perSecond: 1 / 600 },
        wrongEmailCodeGlobal: { burst: 12, perSecond: 1 / 60 },
      },
      smtp: smtpTo(sink),
    });
  });
  after(async () => {
    await server.close();
    await sink.close();
  });

  it('asking for more codes does not void the one the owner received; wrong guesses are bounded per source and server-wide', async () => {
    const carol = await newClient('carol@example.org');
    const asked = await requestEmailCode({ home: carol, server: server.url });
    assert.equal(asked.sent, true);
    const code = await nextCode(sink);
    // Strangers ask for codes for carol: mails may go out (up to the mailbox limit), nothing is voided.
    for (let i = 0; i < 5; i++) {
      const r = await postFrom(`127.0.0.${10 + i}`, `${server.url}/v1/enroll/email`, {
        id: 'carol@example.org',
      });
      assert.equal(r.status, 202);
    }
    // Strangers guess with their own key: each source is cut off after its budget; across sources the
    // server-wide budget stops evaluating guesses altogether.
    const mallory = await openClientKey(await newClient('carol@example.org', 'Mallory'), CLIENT_PASSPHRASE);
    const outcomes: string[] = [];
    for (const source of ['127.0.0.20', '127.0.0.21', '127.0.0.22']) {
      for (let i = 0; i < 7; i++) {
        const guess = String((Number(code.split('.')[0]) + 1 + outcomes.length) % 1e8).padStart(8, '0');
        const begun = await postFrom(source, `${server.url}/v1/register/begin`, { id: 'carol@example.org' });
        const body = await buildRegistrationRequest({
          ...mallory,
          chain: String(begun.body.chain),
          nonce: String(begun.body.nonce),
          server: begun.body.server as { fingerprint: string; publicKey: string },
          proof: { method: 'email', code: guess },
          time: clock(),
        });
        const r = await postFrom(source, `${server.url}/v1/register/complete`, body);
        outcomes.push(r.body.error?.code ?? String(r.status));
      }
    }
    // Evaluated: 5 from the first source, 5 from the second, 2 from the third (server-wide 12).
    assert.deepEqual(
      outcomes,
      [5, 2, 5, 2, 2, 5].flatMap((n, i) =>
        Array(n).fill(i % 2 === 0 ? 'KL_IDENTITY_PROOF_INVALID' : 'KL_RATE_LIMITED'),
      ),
    );
    // Carol's code was never voided: once the server-wide budget refills, it registers her key.
    clock.advance(61_000);
    const r = await register({
      home: carol,
      server: server.url,
      proof: { method: 'email', code },
      passphrase: CLIENT_PASSPHRASE,
      now: clock,
    });
    assert.equal(r.verified, true);
    assert.equal(r.trust, 'pinned');
  });

  it('when the mailbox limit is used up, the answer says codes were sent recently, and they still work', async () => {
    const dave = await newClient('dave@example.org');
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await requestEmailCode({ home: dave, server: server.url });
      assert.equal(r.sent, true);
      codes.push(await nextCode(sink));
    }
    // A stranger's further request sends nothing and voids nothing.
    const limited = await postFrom('127.0.0.30', `${server.url}/v1/enroll/email`, { id: 'dave@example.org' });
    assert.equal(limited.status, 202);
    assert.deepEqual(limited.body, { sent: false, reason: 'recently-sent' });
    const r = await register({
      home: dave,
      server: server.url,
      proof: { method: 'email', code: codes[0]! },
      passphrase: CLIENT_PASSPHRASE,
      now: clock,
    });
    assert.equal(r.verified, true);
  });
});

describe('the source address behind a reverse proxy (trustProxy)', () => {
  const begin = (server: RunningServer, forwardedFor: string) =>
    postFrom(
      '127.0.0.1',
      `${server.url}/v1/register/begin`,
      { id: 'x@example.org' },
      { 'x-forwarded-for': forwardedFor },
    );

  it('believes X-Forwarded-For only from a trusted proxy: each client has its own budget, and a spoofed header buys nothing', async () => {
    const limits = {
      registerPerIp: { burst: 3, perSecond: 1 / 600 },
      loginPerIp: { burst: 2, perSecond: 1 / 600 },
    };
    const proxied = await testServer({ rateLimits: limits, trustProxy: ['127.0.0.1'] });
    const direct = await testServer({ rateLimits: limits });
    try {
      const statuses = async (server: RunningServer, sources: string[]) => {
        const out: number[] = [];
        for (const s of sources) out.push((await begin(server, s)).status);
        return out;
      };
      // Behind the trusted proxy: 127.0.0.50 uses its budget up; 127.0.0.51 still has its own.
      assert.deepEqual(
        await statuses(proxied, ['127.0.0.50', '127.0.0.50', '127.0.0.50', '127.0.0.50', '127.0.0.51']),
        [200, 200, 200, 429, 200],
      );
      // Without a trust list the header is ignored: changing it does not escape the socket's budget.
      assert.deepEqual(
        await statuses(direct, ['127.0.0.60', '127.0.0.61', '127.0.0.62', '127.0.0.63']),
        [200, 200, 200, 429],
      );
      // IPv6 sources are counted by their /64: one host's many addresses are one source.
      assert.deepEqual(
        await statuses(proxied, [
          '2001:db8::1',
          '2001:db8::2',
          '2001:db8::ffff:1',
          '2001:db8::abcd',
          '2001:db8:0:1::1',
        ]),
        [200, 200, 200, 429, 200],
      );
      // The login WebSocket follows the same rule.
      const helloVia = async (forwardedFor: string) => {
        const socket = await rawSocketWithHeaders(proxied.wsUrl, { 'x-forwarded-for': forwardedFor });
        socket.send({
          type: 'hello',
          v: 1,
          id: 'nobody@example.org',
          ephemeral: generateEphemeral().publicKey,
        });
        const answer: Record<string, unknown> = await socket.next().catch(() => ({ type: 'closed' }));
        socket.ws.terminate();
        return String(answer.code ?? answer.type);
      };
      assert.deepEqual(
        [
          await helloVia('127.0.0.70'),
          await helloVia('127.0.0.70'),
          await helloVia('127.0.0.70'),
          await helloVia('127.0.0.71'),
        ],
        ['KL_AUTH_FAILED', 'KL_AUTH_FAILED', 'KL_RATE_LIMITED', 'KL_AUTH_FAILED'],
      );
    } finally {
      await proxied.close();
      await direct.close();
    }
  });
});

describe('live sessions come back while strangers use up the server-wide login budget', () => {
  it('a resume is charged to its source only', async () => {
    const server = await testServer({ rateLimits: { loginGlobal: { burst: 3, perSecond: 1 / 600 } } });
    try {
      const home = await registeredClient(server, 'gina@example.org');
      const session = await connect({ home, passphrase: CLIENT_PASSPHRASE });
      // Strangers (another address) use the rest of the budget: new hellos are refused for everyone…
      const answers: string[] = [];
      for (let i = 0; i < 4; i++) answers.push(await helloFrom(server, '127.0.0.40', 'gina@example.org'));
      assert.equal(answers.at(-1), 'KL_RATE_LIMITED');
      // …but gina's live session, dropped, resumes and goes on.
      session.dropConnection();
      await session.resume();
      assert.deepEqual(await session.request('still here'), { echo: 'still here', id: 'gina@example.org' });
      await session.close();
    } finally {
      await server.close();
    }
  });
});

describe('sourceKey', () => {
  it('IPv4 as it is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8:1:2::9'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('unknown'), 'unknown');
  });
});
