import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { login } from '../src/client/login.js';
import { register, requestEmailCode } from '../src/client/register.js';
import { isKlError } from '../src/protocol/errors.js';
import { CLIENT_PASSPHRASE, newClient, registeredClient, testServer } from './support/server.js';

/** A real SMTP server on 127.0.0.1 that keeps what it receives. */
function smtpSink(): Promise<{ port: number; mails: string[]; close: () => Promise<void> }> {
  const mails: string[] = [];
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, callback) {
      let text = '';
      stream.on('data', (c) => (text += c));
      stream.on('end', () => {
        mails.push(text);
        callback();
      });
    },
  });
  return new Promise((resolve) => {
    smtp.listen(0, '127.0.0.1', () => {
      const port = (smtp.server.address() as AddressInfo).port;
      resolve({ port, mails, close: () => new Promise((r) => smtp.close(() => r())) });
    });
  });
}

describe('identity proof by emailed one-time code (real SMTP on 127.0.0.1)', () => {
  let sink: Awaited<ReturnType<typeof smtpSink>>;
  let server: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    sink = await smtpSink();
    server = await testServer({
      smtp: {
        url: `smtp://127.0.0.1:${sink.port}`,
        from: 'keyledger <noreply@example.org>',
        insecureAllowPlaintext: true,
      },
    });
  });
  after(async () => {
    await server.close();
    await sink.close();
  });

  it('sends a code to the address; the code registers once; wrong codes are refused and limited', async () => {
    const home = await newClient('erin@example.org', 'Erin');
    const sent = await requestEmailCode({ home, server: server.url });
    assert.equal(sent.sent, true);
    await new Promise((r) => setTimeout(r, 100));
    const mail = sink.mails.at(-1)!;
    assert.match(mail, /To: erin@example.org/i);
    const code = /verification code is (\d{8})/.exec(mail)![1]!;

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

    // Used codes are spent; after five wrong tries a fresh code is void too.
    const other = await newClient('frank@example.org', 'Frank');
    await requestEmailCode({ home: other, server: server.url });
    await new Promise((r) => setTimeout(r, 100));
    const good = /verification code is (\d{8})/.exec(sink.mails.at(-1)!)![1]!;
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
    await assert.rejects(
      register({
        home: other,
        server: server.url,
        proof: { method: 'email', code: good },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (e: unknown) => isKlError(e, 'KL_IDENTITY_PROOF_INVALID'),
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
