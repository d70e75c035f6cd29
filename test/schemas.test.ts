/**
 * The wire schemas (src/protocol/schemas/): they accept the real messages — the committed protocol
 * vectors and the replies of a real server on 127.0.0.1 — and refuse tampered ones with a typed error
 * naming the field; a client facing a server (or a proxy) that sends a malformed reply gets a clear
 * typed error, never a TypeError.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TSchema } from 'typebox';
import { advanceCheckpoint } from '../src/client/checkpoint.js';
import { fetchServerInfo, register, requestEmailCode } from '../src/client/register.js';
import { connect } from '../src/client/session.js';
import { isKlError } from '../src/protocol/errors.js';
import { check, fits, problemsOf, VALIDATION_ENGINE } from '../src/protocol/schemas/check.js';
import {
  CheckpointReply,
  EnrollEmailReply,
  InfoReply,
  RegisterBeginBody,
  RegisterBeginReply,
  RegisterCompleteBody,
} from '../src/protocol/schemas/http.js';
import {
  ConsistencyProofSchema,
  GenesisSchema,
  KeyRecordProofSchema,
  ReceiptSchema,
  SignedHeaderSchema,
} from '../src/protocol/schemas/ledger.js';
import {
  Challenge,
  ChallengePayload,
  ChallengeResponse,
  Finished,
  FrameMessage,
  Hello,
  Resume,
  ResumeChallenge,
  Resumed,
  ResumeProof,
  WireError,
} from '../src/protocol/schemas/login.js';
import { ServerChannelMessage, SessionListReply } from '../src/protocol/schemas/session.js';
import {
  IdentityProofSchema,
  RegistrationStatementSchema,
  RevocationStatementSchema,
  RotationStatementSchema,
} from '../src/protocol/schemas/statements.js';
import { EnvelopeSchema, TransactionSchema, TX_BODY_SCHEMAS } from '../src/protocol/schemas/transactions.js';
import type { RunningServer } from '../src/server/app.js';
import { liveClock } from './helpers.js';
import { rawSocket } from './support/raw-socket.js';
import { verdicts } from './support/schema-verdicts.js';
import { CLIENT_PASSPHRASE, invite, newClient, registeredClient, testServer } from './support/server.js';

const vectors = JSON.parse(
  await import('node:fs').then((fs) =>
    fs.readFileSync(new URL('./vectors/keyledger-v1.json', import.meta.url), 'utf8'),
  ),
);
const registrationFixture = JSON.parse(
  await import('node:fs').then((fs) =>
    fs.readFileSync(new URL('./fixtures/protocol/registration.json', import.meta.url), 'utf8'),
  ),
);

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** `value` refused by `schema` with `code`, its message matching `message`. */
function refused(schema: TSchema, value: unknown, message: RegExp, code = 'KL_BAD_INPUT' as const): void {
  assert.throws(
    () => check(schema, value, code, 'msg'),
    (e: unknown) => {
      assert.ok(isKlError(e, code), `not a ${code}: ${String(e)}`);
      assert.match((e as Error).message, message);
      return true;
    },
  );
}

/** Refuses an extra property, a wrong type and an oversize string on `field` of a valid `value`. */
function tamperings(schema: TSchema, value: Record<string, unknown>, field: string, max: number): void {
  assert.ok(fits(schema, value), 'the valid value fits');
  refused(schema, { ...value, isAdmin: true }, /^msg\.isAdmin is not an allowed field$/);
  refused(schema, { ...value, [field]: 12345 }, new RegExp(`^msg\\.${field} must be a string$`));
  refused(
    schema,
    { ...value, [field]: 'A'.repeat(max + 1) },
    new RegExp(`^msg\\.${field} must be at most ${max} characters$`),
  );
  const { [field]: _dropped, ...without } = value;
  refused(schema, without, new RegExp(`^msg\\.${field} is required$`));
  refused(schema, null, /^msg must be an object$/);
  refused(schema, [value], /^msg must be an object$/);
  refused(
    schema,
    JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(value).slice(1)}`),
    /__proto__ is not an allowed field/,
  );
}

describe('schemas accept the committed protocol vectors and refuse tampered copies', () => {
  const h = vectors.handshake;

  it('login messages: hello, challenge and its payload, response, finished', () => {
    tamperings(Hello, h.hello, 'ephemeral', 43);
    tamperings(Challenge, h.challenge, 'message', 64 * 1024);
    tamperings(ChallengePayload, h.challengePayload, 'helloHash', 64);
    tamperings(ChallengeResponse, h.response, 'signature', 8192);
    tamperings(Finished, h.finished, 'transcriptHash', 64);
    refused(Hello, { ...h.hello, v: 2 }, /^msg\.v must be 1$/);
    refused(Hello, { ...h.hello, type: 'hullo' }, /^msg\.type must be "hello"$/);
    refused(
      Hello,
      { ...h.hello, ephemeral: `${h.hello.ephemeral.slice(0, 42)}=` },
      /msg\.ephemeral has the wrong format/,
    );
    refused(Finished, { ...h.finished, expiresAt: -1 }, /msg\.expiresAt must be between 0 and/);
    refused(Finished, { ...h.finished, expiresAt: 1.5 }, /msg\.expiresAt must be an integer/);
  });

  it('frames and resumption', () => {
    for (const p of vectors.frames.positive) tamperings(FrameMessage, JSON.parse(p.frame), 'ct', 140_000);
    const first = JSON.parse(vectors.resume.firstFrame.frame);
    assert.ok(fits(FrameMessage, first));
    refused(FrameMessage, { ...first, seq: -1 }, /msg\.seq must be between 0 and/);
    refused(FrameMessage, { ...first, epoch: 1_000_001 }, /msg\.epoch must be between 0 and 1000000/);
    const r = vectors.resume;
    tamperings(Resume, { type: 'resume', sid: r.sid, nonce: r.clientNonce }, 'nonce', 22);
    tamperings(
      ResumeChallenge,
      { type: 'resume-challenge', nonce: r.serverNonce, epoch: r.epoch },
      'nonce',
      22,
    );
    tamperings(ResumeProof, { type: 'resume-proof', proof: r.proof }, 'proof', 43);
    assert.ok(fits(Resumed, { type: 'resumed', epoch: 1 }));
    refused(Resumed, { type: 'resumed', epoch: '1' }, /msg\.epoch must be an integer/);
    tamperings(WireError, { type: 'error', code: 'KL_AUTH_FAILED', message: 'no' }, 'message', 1024);
  });

  it('statements: registration (vectors and fixture), identity proof, revocation, rotation', () => {
    const reg = vectors.statements.registration;
    const statement = reg.statement ?? reg;
    tamperings(RegistrationStatementSchema, statement, 'name', 128);
    tamperings(RegistrationStatementSchema, registrationFixture.statement, 'id', 254);
    refused(
      RegistrationStatementSchema,
      { ...statement, proof: { ...statement.proof, method: 'sms' } },
      /^msg\.proof\.method must be one of invite, email$/,
    );
    refused(
      RegistrationStatementSchema,
      { ...statement, proof: { ...statement.proof, sealed: 'x'.repeat(4097) } },
      /^msg\.proof\.sealed must be at most 4096 characters$/,
    );
    const base = { v: 1, chain: statement.chain, id: statement.id };
    tamperings(
      IdentityProofSchema,
      {
        ...base,
        type: 'keyledger/identity-proof',
        fingerprint: statement.fingerprint,
        nonce: statement.nonce,
        server: statement.server,
        method: 'invite',
        code: 'ABCD-EFGH',
      },
      'code',
      64,
    );
    tamperings(
      RevocationStatementSchema,
      { ...base, time: 1, type: 'keyledger/revoke', fingerprint: statement.fingerprint, reason: 'retired' },
      'fingerprint',
      64,
    );
    tamperings(
      RotationStatementSchema,
      {
        ...base,
        time: 1,
        type: 'keyledger/rotate',
        oldFingerprint: statement.fingerprint,
        fingerprint: statement.server,
      },
      'oldFingerprint',
      64,
    );
  });
});

/** A proxy on 127.0.0.1 in front of `target` that rewrites the JSON reply of the paths in `rewrite`. */
async function rewritingProxy(
  target: string,
  rewrite: Map<string, (reply: Record<string, unknown>) => unknown>,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '/').split('?')[0]!;
    const answer = await fetch(new URL(req.url ?? '/', target), {
      method: req.method,
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
      ...(body.length ? { body } : {}),
    });
    let text = await answer.text();
    const change = [...rewrite].find(([prefix]) => path.startsWith(prefix))?.[1];
    if (change && answer.ok) text = JSON.stringify(change(JSON.parse(text)));
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('schemas accept what a real server sends', () => {
  let server: RunningServer;
  before(async () => {
    server = await testServer();
  });
  after(async () => {
    await server.close();
  });

  it('every HTTP reply, the login socket messages, and the session messages fit their schemas', async () => {
    const home = await registeredClient(server, 'alice@example.org');
    const get = async (path: string) => (await fetch(new URL(path, server.url))).json();
    const info = await get('/v1/info');
    assert.deepEqual(problemsOf(InfoReply, info), []);
    assert.ok(fits(GenesisSchema, info.genesis));
    assert.ok(fits(SignedHeaderSchema, info.checkpoint));
    assert.deepEqual(problemsOf(CheckpointReply, await get('/v1/ledger/checkpoint')), []);
    assert.deepEqual(problemsOf(KeyRecordProofSchema, await get('/v1/ledger/keys/alice@example.org')), []);
    assert.deepEqual(problemsOf(KeyRecordProofSchema, await get('/v1/ledger/keys/nobody@example.org')), []);
    const saved = await home.readServer();
    const receipt = saved.registration.receipt;
    assert.deepEqual(problemsOf(ReceiptSchema, receipt), []);
    assert.deepEqual(problemsOf(ReceiptSchema, await get(`/v1/ledger/tx/${receipt.txid}`)), []);
    const begin = { id: 'bob@example.org' };
    assert.ok(fits(RegisterBeginBody, begin));
    const begun = await (
      await fetch(new URL('/v1/register/begin', server.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(begin),
      })
    ).json();
    assert.deepEqual(problemsOf(RegisterBeginReply, begun), []);

    // A second session's activity writes blocks, so a consistency proof spans several.
    const session = await connect({ home, passphrase: CLIENT_PASSPHRASE, now: liveClock() });
    const signed = await session.sendSigned('schemas test');
    assert.equal(signed.verified, true);
    assert.deepEqual(problemsOf(ReceiptSchema, signed.receipt), []);
    const listed = await session.request({ op: 'session.list' });
    assert.deepEqual(problemsOf(SessionListReply, listed), []);
    session.close?.();
    assert.deepEqual(problemsOf(ConsistencyProofSchema, await get('/v1/ledger/consistency?from=1')), []);

    // The login socket: hello → challenge, and the error after a malformed response.
    const ws = await rawSocket(server.wsUrl);
    const hello = {
      type: 'hello',
      v: 1,
      id: 'alice@example.org',
      ephemeral: vectors.handshake.hello.ephemeral,
    };
    assert.ok(fits(Hello, hello));
    ws.send(hello);
    const challenge = await ws.next();
    assert.deepEqual(problemsOf(Challenge, challenge), []);
    ws.send({ type: 'response', extra: 1 });
    const error = await ws.next();
    assert.deepEqual(problemsOf(WireError, error), []);
    assert.match(String(error.message), /is not an allowed field|is required/);
    ws.ws.close();
  });

  it('the server refuses route bodies and socket messages that do not fit, naming the field', async () => {
    const post = async (path: string, body: unknown) => {
      const r = await fetch(new URL(path, server.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: (await r.json()) as { error: { code: string; message: string } } };
    };
    for (const body of [{ id: 'bob@example.org', admin: true }, { id: 5 }, { id: 'x'.repeat(255) }, {}]) {
      const r = await post('/v1/register/begin', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 'KL_BAD_INPUT');
    }
    const statement = clone(registrationFixture.statement);
    const complete = { statement, signature: 'sig', publicKey: 'key' };
    assert.ok(fits(RegisterCompleteBody, complete));
    const r = await post('/v1/register/complete', { ...complete, statement: { ...statement, v: 1 } });
    assert.equal(r.body.error.code, 'KL_BAD_INPUT');

    const ws = await rawSocket(server.wsUrl);
    ws.send({ ...vectors.handshake.hello, admin: true });
    const error = await ws.next();
    assert.equal(error.code, 'KL_PROTOCOL');
    assert.match(String(error.message), /hello\.admin is not an allowed field/);
    ws.ws.close();
  });

  it('a client facing a malformed reply gets a clear typed error, never a TypeError', async () => {
    const home = await newClient('carol@example.org');
    const cases: Array<{
      name: string;
      path: string;
      change: (reply: Record<string, unknown>) => unknown;
      run: (url: string) => Promise<unknown>;
      code: string;
      message: RegExp;
    }> = [
      {
        name: '/v1/info without the server key',
        path: '/v1/info',
        change: ({ server: _s, ...rest }) => rest,
        run: (url) => fetchServerInfo(url),
        code: 'KL_PROTOCOL',
        message: /answer to GET \/v1\/info is malformed: reply\.server is required/,
      },
      {
        name: '/v1/info with a number as genesis validators',
        path: '/v1/info',
        change: (r) => ({ ...r, genesis: { ...(r.genesis as object), validators: 3 } }),
        run: (url) => fetchServerInfo(url),
        code: 'KL_PROTOCOL',
        message: /reply\.genesis\.validators must be an array/,
      },
      {
        name: '/v1/info with a checkpoint whose hash is not hex',
        path: '/v1/info',
        change: (r) => ({ ...r, checkpoint: { ...(r.checkpoint as object), hash: 'zz' } }),
        run: (url) => fetchServerInfo(url),
        code: 'KL_PROTOCOL',
        message: /reply\.checkpoint\.hash has the wrong format/,
      },
      {
        name: 'register/begin with a number as nonce',
        path: '/v1/register/begin',
        change: (r) => ({ ...r, nonce: 12345 }),
        run: (url) =>
          register({
            home,
            server: url,
            proof: { method: 'invite', code: invite(server, 'carol@example.org') },
            passphrase: CLIENT_PASSPHRASE,
          }),
        code: 'KL_PROTOCOL',
        message: /answer to POST \/v1\/register\/begin is malformed: reply\.nonce must be a string/,
      },
      {
        name: 'register/complete whose receipt has no block',
        path: '/v1/register/complete',
        change: (r) => ({ ...r, receipt: { ...(r.receipt as object), block: undefined } }),
        run: (url) =>
          register({
            home,
            server: url,
            proof: { method: 'invite', code: invite(server, 'carol@example.org') },
            passphrase: CLIENT_PASSPHRASE,
          }),
        code: 'KL_RECEIPT_INVALID',
        message: /reply\.receipt\.block is required/,
      },
    ];
    for (const c of cases) {
      const proxy = await rewritingProxy(server.url, new Map([[c.path, c.change]]));
      try {
        await assert.rejects(c.run(proxy.url), (e: unknown) => {
          assert.ok(isKlError(e), `${c.name}: not a typed error: ${String((e as Error)?.stack ?? e)}`);
          assert.equal(e.code, c.code, `${c.name}: ${e.message}`);
          assert.match(e.message, c.message, c.name);
          return true;
        });
      } finally {
        await proxy.close();
      }
    }
  });

  it('a malformed consistency proof or checkpoint stops the login with KL_CHECKPOINT_INVALID', async () => {
    const home = await registeredClient(server, 'dave@example.org');
    // A later block, so the kept checkpoint is behind and a proof is needed.
    await registeredClient(server, 'erin@example.org');
    const saved = await home.readServer();
    const proxy = await rewritingProxy(
      server.url,
      new Map([['/v1/ledger/consistency', (r) => ({ ...r, consistency: 'not a list' })]]),
    );
    try {
      await assert.rejects(advanceCheckpoint(home, { ...saved, url: proxy.url }), (e: unknown) => {
        assert.ok(isKlError(e, 'KL_CHECKPOINT_INVALID'), String(e));
        assert.match((e as Error).message, /reply\.consistency must be an array/);
        return true;
      });
    } finally {
      await proxy.close();
    }
  });
});

describe('a client facing a fake server that answers anything', () => {
  let fake: Server;
  let url: string;
  let answer: unknown = null;
  before(async () => {
    fake = createServer((_req, res) => {
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => fake.close(() => resolve())));

  it('email code request: only the two documented answers are accepted', async () => {
    const home = await newClient('frank@example.org');
    answer = { sent: true, expiresAt: 1_767_272_400_000 };
    assert.deepEqual(await requestEmailCode({ home, server: url }), answer);
    answer = { sent: false, reason: 'recently-sent' };
    assert.deepEqual(await requestEmailCode({ home, server: url }), answer);
    assert.ok(fits(EnrollEmailReply, answer));
    for (const bad of [
      { sent: 'yes' },
      { sent: true },
      { sent: true, expiresAt: 1, extra: 1 },
      null,
      [1],
      'sent',
    ]) {
      answer = bad;
      await assert.rejects(requestEmailCode({ home, server: url }), (e: unknown) => {
        assert.ok(isKlError(e, 'KL_PROTOCOL'), String(e));
        assert.match((e as Error).message, /answer to POST \/v1\/enroll\/email is malformed/);
        return true;
      });
    }
  });

  it('/v1/info that is not an object at all', async () => {
    for (const bad of [null, 5, 'info', [], { server: null }]) {
      answer = bad;
      await assert.rejects(fetchServerInfo(url), (e: unknown) => isKlError(e, 'KL_PROTOCOL'));
    }
  });
});

describe('sealed session messages from the server', () => {
  it('only the documented kinds, with their fields, are accepted', () => {
    for (const ok of [
      { t: 'data', body: { any: ['thing'] } },
      { t: 'reply', re: 1, body: 'x' },
      { t: 'reply', re: 2, error: { code: 'KL_NOT_FOUND', message: 'no' } },
      { t: 'receipt', re: 3, error: { code: 'KL_INTERNAL', message: 'no' } },
      // The receipt itself is checked by the caller (KL_RECEIPT_INVALID), not dropped as untrusted.
      { t: 'receipt', re: 4, receipt: { txid: 'x' } },
      { t: 'rekey-ack', ephemeral: vectors.handshake.hello.ephemeral },
      { t: 'rekey-request' },
      { t: 'close-ack' },
      { t: 'alert', code: 'KL_KEY_REVOKED', message: 'revoked' },
    ])
      assert.ok(fits(ServerChannelMessage, ok), JSON.stringify(ok));
    for (const bad of [
      { t: 'reply', re: '1' },
      { t: 'reply', re: 1, error: 'boom' },
      { t: 'rekey-ack', ephemeral: 5 },
      { t: 'alert', code: 'KL_KEY_REVOKED' },
      { t: 'signed', id: 1, body: 'x', signature: 'y' },
      { t: 'close-ack', extra: 1 },
      null,
    ])
      assert.equal(fits(ServerChannelMessage, bad), false, JSON.stringify(bad));
    refused(ReceiptSchema, { txid: 'x' }, /^msg\.envelope is required$/);
  });
});

describe('ledger transactions', () => {
  it('envelope, transaction and per-type bodies name the field that is wrong', () => {
    const key =
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEaVZhwRYJKwYBBAHaRw8BAQdA\n-----END PGP PUBLIC KEY BLOCK-----\n';
    const body = {
      id: 'alice@example.org',
      name: 'Alice',
      fingerprint: 'a'.repeat(40),
      publicKey: key,
      algorithm: 'ed25519',
    };
    const tx = {
      v: 1,
      chain: 'c'.repeat(64),
      type: 'KeyRegistered',
      time: 1,
      nonce: 'd'.repeat(32),
      signer: 'e'.repeat(32),
      body: {},
    };
    assert.ok(fits(TransactionSchema, tx));
    assert.ok(fits(EnvelopeSchema, { tx: {}, sig: 'A'.repeat(86) }));
    const txCheck = (v: unknown) => check(TransactionSchema, v, 'KL_TX_MALFORMED', 'tx');
    const bodyCheck = (v: unknown) => check(TX_BODY_SCHEMAS.KeyRegistered, v, 'KL_TX_MALFORMED', 'body');
    assert.throws(() => txCheck({ ...tx, type: 'MintCoins' }), /tx\.type must be one of/);
    assert.throws(() => txCheck({ ...tx, time: '2026' }), /tx\.time must be an integer/);
    assert.throws(() => txCheck({ ...tx, time: -1 }), /tx\.time must be between/);
    assert.throws(() => txCheck({ ...tx, v: 1.5 }), /tx\.v must be an integer/);
    assert.throws(() => txCheck({ ...tx, nonce: 'abc' }), /tx\.nonce has the wrong format/);
    assert.throws(() => txCheck({ ...tx, admin: true }), /tx\.admin is not an allowed field/);
    assert.ok(fits(TX_BODY_SCHEMAS.KeyRegistered, body));
    assert.throws(() => bodyCheck({ ...body, isAdmin: true }), /body\.isAdmin is not an allowed field/);
    assert.throws(() => bodyCheck({ ...body, fingerprint: 'XYZ' }), /body\.fingerprint has the wrong format/);
    assert.throws(() => bodyCheck({ ...body, publicKey: 'hello' }), /body\.publicKey has the wrong format/);
    assert.throws(
      () => bodyCheck({ ...body, publicKey: `${key}${'A'.repeat(40_000)}` }),
      /at most 32768 characters/,
    );
    assert.throws(
      () => check(EnvelopeSchema, { tx: {}, sig: 'AAAA' }, 'KL_TX_MALFORMED'),
      /sig has the wrong format/,
    );
    const audit = (v: unknown) => check(TX_BODY_SCHEMAS.AuditEvent, v, 'KL_TX_MALFORMED', 'body');
    assert.throws(
      () => audit({ event: 'login', at: 1, detail: { nested: { deep: 1 } } }),
      /body\.detail\.nested must be a short string/,
    );
    assert.throws(() => audit({ event: 'Login!', at: 1 }), /body\.event has the wrong format/);
    assert.ok(
      fits(TX_BODY_SCHEMAS.AuditEvent, {
        event: 'login',
        at: 1,
        detail: { ip: '127.0.0.1', n: 3, ok: true },
      }),
    );
  });
});

describe('where code may not be generated at run time (a strict Content-Security-Policy)', () => {
  it("the same schemas give the same verdicts and the same messages, through TypeBox's interpreter", () => {
    assert.equal(VALIDATION_ENGINE, 'ajv', 'Node may generate code: Ajv compiles the validators');
    const here = verdicts();
    assert.ok(here.filter((v) => v === 'ok').length >= 7, 'the real messages are accepted');
    assert.ok(here.filter((v) => v !== 'ok').length > 150, 'the tampered ones are refused');
    const script = new URL('./support/schema-verdicts.ts', import.meta.url).pathname;
    const r = spawnSync(
      process.execPath,
      ['--disallow-code-generation-from-strings', '--import', 'tsx', script],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const there = JSON.parse(r.stdout) as { engine: string; verdicts: string[] };
    assert.equal(there.engine, 'typebox');
    assert.deepEqual(there.verdicts, here);
  });
});
