import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { login } from '../src/client/login.js';
import { register, requestEmailCode } from '../src/client/register.js';
import { isKlError } from '../src/protocol/errors.js';
import { CLIENT_PASSPHRASE, newClient, registeredClient, testServer } from './support/server.js';
import { EMAILED_CODE, smtpSink, smtpTo } from './support/smtp-sink.js';

describe('identity proof by emailed one-time code (real SMTP on 127.0.0.1)', () => {
  let sink: Awaited<ReturnType<typeof smtpSink>>;
  let server: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    sink = await smtpSink();
    server = await testServer({
      smtp: smtpTo(sink),
    });
  });
  after(async () => {
    await server.close();
    await sink.close();
  });

  it('sends a code to the address; the code registers once; wrong codes are refused and void nothing', async () => {
    const home = await newClient('erin@example.org', 'Erin');
    const sent = await requestEmailCode({ home, server: server.url });
    assert.equal(sent.sent, true);
    await new Promise((r) => setTimeout(r, 100));
    const mail = sink.mails.at(-1)!;
    assert.match(mail, /To: erin@example.org/i);
    const code = EMAILED_CODE.exec(mail)![1]!;

    await assert.rejects(
      register({
        home,
        server: server.url,
        proof: { method: 'email', code: code === '00000000' ? '11111111' : '00000000' },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (e: unknown) => isKlError(e, 'KL_IDENTITY_PROOF_INVALID'),
    );
    const r = await register({
      home,
      server: server.url,
      proof: { method: 'email', code },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(r.verified, true);
    (await login({ home, passphrase: CLIENT_PASSPHRASE })).close();

    // Wrong tries (here five, from this address) do not void the owner's code.
    const other = await newClient('frank@example.org', 'Frank');
    await requestEmailCode({ home: other, server: server.url });
    await new Promise((r) => setTimeout(r, 100));
    const good = EMAILED_CODE.exec(sink.mails.at(-1)!)![1]!.split('.')[0]!;
    for (let i = 0; i < 5; i++) {
      await assert.rejects(
        register({
          home: other,
          server: server.url,
          proof: { method: 'email', code: String((Number(good) + 1 + i) % 1e8).padStart(8, '0') },
          passphrase: CLIENT_PASSPHRASE,
        }),
      );
    }
    const registered = await register({
      home: other,
      server: server.url,
      proof: { method: 'email', code: good },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(registered.trust, 'first-use'); // a bare code (no pin) trusts on first use
    // Used codes are spent.
    await assert.rejects(
      register({
        home: await newClient('frank@example.org', 'Frank'),
        server: server.url,
        proof: { method: 'email', code: good },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (e: unknown) => isKlError(e, 'KL_IDENTITY_TAKEN'),
    );
  });

  it('a server without SMTP says so clearly', async () => {
    const plain = await testServer();
    try {
      const home = await newClient('gail@example.org');
      await assert.rejects(requestEmailCode({ home, server: plain.url }), (e: unknown) =>
        isKlError(e, 'KL_EMAIL_UNAVAILABLE'),
      );
    } finally {
      await plain.close();
    }
  });
});

describe('concurrency', () => {
  it('200 clients logging in at once all succeed', async () => {
    const server = await testServer({ rateLimits: { registerPerIp: { burst: 1000, perSecond: 100 } } });
    try {
      const homes = [];
      for (let i = 0; i < 200; i += 20) {
        homes.push(
          ...(await Promise.all(
            Array.from({ length: 20 }, (_, j) => registeredClient(server, `crowd${i + j}@example.org`)),
          )),
        );
      }
      const sessions = await Promise.all(
        homes.map((home) => login({ home, passphrase: CLIENT_PASSPHRASE, checkLedger: false })),
      );
      assert.equal(new Set(sessions.map((s) => s.sessionId)).size, 200);
      for (const s of sessions) assert.equal(server.sessions.get(s.sessionId)?.id, s.id);
      for (const s of sessions) s.close();
    } finally {
      await server.close();
    }
  });
});
