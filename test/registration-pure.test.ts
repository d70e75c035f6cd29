/**
 * The pure registration pair (src/server/registration-protocol.ts; docs/protocol.md "Phase 1"):
 * createRegistration mints a nonce bound to the identity, verifyRegistration checks a register/complete
 * request without state. A request made by the real client code verifies; each tampered variant is
 * refused with its typed error.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ClientKey } from '../src/client/client-key.js';
import { openClientKey } from '../src/client/identity.js';
import { buildRegistrationRequest } from '../src/client/register.js';
import { isKlError } from '../src/protocol/errors.js';
import { statementBytes } from '../src/protocol/statements.js';
import { createChallenge, verifyChallengeResponse } from '../src/server/handshake.js';
import { IdentityProofs } from '../src/server/identity-proofs.js';
import {
  createRegistration,
  type RegistrationRequest,
  verifyRegistration,
} from '../src/server/registration-protocol.js';
import { createServerKey, loadServerKey, type ServerKey } from '../src/server/server-key.js';
import { tempDir } from './helpers.js';
import { CLIENT_PASSPHRASE, newClient } from './support/server.js';

/** A minute ahead of the wall clock: the client keys made in `before` are older than every statement. */
const NOW = Date.now() + 60_000;
const CHAIN = 'c'.repeat(64);
const nonces = { key: randomBytes(32), ttlMs: 60_000 };
const code = (c: string) => (e: unknown) => {
  assert.ok(isKlError(e), `not a KlError: ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

type Identity = Awaited<ReturnType<typeof openClientKey>>['identity'];
let serverKey: ServerKey;
let otherServerKey: ServerKey;
let client: { identity: Identity; key: ClientKey };
let stranger: { identity: Identity; key: ClientKey };
let proofs: IdentityProofs;

async function serverKeyIn(dir: string): Promise<ServerKey> {
  await createServerKey(dir, 'server passphrase', { now: new Date(NOW - 60_000) });
  return loadServerKey(dir, 'server passphrase');
}

before(async () => {
  serverKey = await serverKeyIn(tempDir('kl-rp-'));
  otherServerKey = await serverKeyIn(tempDir('kl-rp-'));
  client = await openClientKey(await newClient('rae@example.org', 'Rae'), CLIENT_PASSPHRASE);
  stranger = await openClientKey(await newClient('sol@example.org', 'Sol'), CLIENT_PASSPHRASE);
  proofs = new IdentityProofs(tempDir('kl-rp-'));
});
after(() => proofs?.close());

/** A request as the real client builds it, against a nonce from createRegistration. */
async function request(o: { id?: string; who?: typeof client; time?: number; chain?: string } = {}) {
  const who = o.who ?? client;
  const begun = createRegistration({
    id: o.id ?? who.identity.id,
    chain: o.chain ?? CHAIN,
    serverKey,
    nonces,
    now: NOW,
  });
  const invite = proofs.issueInvite(who.identity.id, NOW, NOW + 86_400_000);
  const req = await buildRegistrationRequest({
    identity: who.identity,
    key: who.key,
    chain: begun.chain,
    nonce: begun.nonce,
    server: begun.server,
    proof: { method: 'invite', code: invite },
    time: o.time ?? NOW,
  });
  return { begun, invite, req: req as RegistrationRequest };
}

const verify = (req: RegistrationRequest, over: Partial<Parameters<typeof verifyRegistration>[0]> = {}) =>
  verifyRegistration({ request: req, chain: CHAIN, serverKey, nonces, now: NOW + 1_000, ...over });

/** `req` with its statement changed and signed again by `key` (a consistent, signed forgery). */
async function resigned(
  req: RegistrationRequest,
  change: object,
  key = client.key,
): Promise<RegistrationRequest> {
  const statement = { ...req.statement, ...change };
  return { ...req, statement, signature: await key.signDetached(statementBytes(statement), new Date(NOW)) };
}

describe('createRegistration / verifyRegistration', () => {
  it('a request built by the client verifies: identity, key, nonce and the opened identity proof', async () => {
    const { begun, invite, req } = await request({ id: 'Rae@Example.ORG' });
    assert.equal(begun.chain, CHAIN);
    assert.deepEqual(begun.server, {
      fingerprint: serverKey.fingerprint,
      publicKey: serverKey.armoredPublicKey,
    });
    assert.equal(begun.expiresAt, NOW + nonces.ttlMs);
    const v = await verify(req);
    assert.equal(v.verified, true);
    assert.equal(v.id, 'rae@example.org');
    assert.equal(v.name, 'Rae');
    assert.equal(v.fingerprint, client.identity.fingerprint);
    assert.equal(v.nonce, begun.nonce);
    assert.equal(v.nonceExpiresAt, begun.expiresAt);
    assert.deepEqual([v.proof.method, v.proof.code], ['invite', invite.split('.')[0]]);
  });

  it('refuses a statement changed after signing (proof of possession)', async () => {
    const { req } = await request();
    const changed = { ...req, statement: { ...req.statement, name: 'Mallory' } };
    await assert.rejects(verify(changed), (e) => isKlError(e) && /SIGNATURE|AUTH/.test(e.code));
  });

  it('refuses a nonce minted for another identity, expired, tampered, or under another key', async () => {
    const { begun } = await request({ who: stranger });
    const { req } = await request();
    await assert.rejects(verify(await resigned(req, { nonce: begun.nonce })), code('KL_NONCE_INVALID'));
    await assert.rejects(verify(req, { now: NOW + nonces.ttlMs }), code('KL_NONCE_INVALID'));
    const flipped = `${req.statement.nonce.slice(0, 30)}${req.statement.nonce[30] === 'A' ? 'B' : 'A'}${req.statement.nonce.slice(31)}`;
    await assert.rejects(verify(await resigned(req, { nonce: flipped })), code('KL_NONCE_INVALID'));
    await assert.rejects(
      verify(req, { nonces: { ...nonces, key: randomBytes(32) } }),
      code('KL_NONCE_INVALID'),
    );
  });

  it('refuses another ledger, another server key, a clock too far off, a non-canonical identity', async () => {
    const { req } = await request();
    await assert.rejects(verify(req, { chain: 'd'.repeat(64) }), code('KL_STATEMENT_INVALID'));
    await assert.rejects(verify(req, { serverKey: otherServerKey }), code('KL_STATEMENT_INVALID'));
    const late = await request({ time: NOW + 6 * 60_000 });
    await assert.rejects(verify(late.req), code('KL_STATEMENT_INVALID'));
    await assert.rejects(
      verify(await resigned(req, { id: 'Rae@example.org' })),
      code('KL_STATEMENT_INVALID'),
    );
  });

  it('refuses another key than the statement names, and a sealed proof taken from another registration', async () => {
    const { req } = await request();
    const other = await request({ who: stranger });
    await assert.rejects(verify({ ...req, publicKey: other.req.publicKey }), code('KL_STATEMENT_INVALID'));
    // The same identity's second registration attempt: its sealed proof names the other nonce.
    const second = await request();
    const swapped = await resigned(req, { proof: second.req.statement.proof });
    await assert.rejects(verify(swapped), code('KL_IDENTITY_PROOF_INVALID'));
  });

  it('refuses a request that does not fit the wire schema (an unknown field)', async () => {
    const { req } = await request();
    await assert.rejects(verify({ ...req, extra: 1 } as RegistrationRequest), code('KL_BAD_INPUT'));
  });
});

describe('the login pair (createChallenge / verifyChallengeResponse) on input from any transport', () => {
  // The pair is public: a caller's own transport may hand over anything. Checked before any use.
  const unused = {} as never;
  it('refuses a malformed hello with KL_PROTOCOL, before reading the ledger', async () => {
    for (const hello of [
      { type: 'hello', v: 1, id: 'a@example.org', ephemeral: 42 },
      { type: 'hello', v: 1, id: 'a@example.org', ephemeral: 'A'.repeat(43), extra: true },
      { type: 'hello', v: 2, id: 'a@example.org', ephemeral: 'A'.repeat(43) },
      null,
    ])
      await assert.rejects(
        createChallenge({
          hello: hello as never,
          ledger: unused,
          serverKey: unused,
          keys: unused,
          now: 0,
          ttlMs: 1,
        }),
        (err) => isKlError(err) && err.code === 'KL_PROTOCOL',
      );
  });

  it('refuses a malformed response with KL_PROTOCOL, not a TypeError', async () => {
    for (const response of [
      { type: 'response', challengeId: 'A'.repeat(22), rs: 5, rc: 'A'.repeat(43), signature: 'x' },
      { type: 'response', challengeId: 'A'.repeat(22), rs: 'A'.repeat(43), rc: 'A'.repeat(43) },
      'response',
    ])
      await assert.rejects(
        verifyChallengeResponse({
          pending: unused,
          response: response as never,
          ledger: unused,
          serverKey: unused,
          keys: unused,
          now: 0,
        }),
        (err) => isKlError(err) && err.code === 'KL_PROTOCOL',
      );
  });
});
