/**
 * The open routes of a new device (docs/protocol.md "Devices"): its signed request to join an
 * identity, answered with the short code a person types on a device already enrolled, and the
 * status the new device polls until that approval is written. Requests are charged to their source
 * address only: naming an identity proves nothing about it.
 */
import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import { acceptPublicKey } from '../pgp/key-policy.js';
import { verifyDetached } from '../pgp/messages.js';
import { openSealed } from '../pgp/sealed.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { check } from '../protocol/schemas/check.js';
import { DeviceRequestBody } from '../protocol/schemas/http.js';
import { DeviceAdditionStatementSchema, DeviceInviteSchema } from '../protocol/schemas/statements.js';
import { type DeviceAdditionStatement, statementBytes } from '../protocol/statements.js';
import { sourceKey } from './client-address.js';
import { type DeviceRequestData, type DeviceRequests, invalidCode } from './device-requests.js';
import type { IdentityProofs } from './identity-proofs.js';
import type { RateLimiters } from './rate-limits.js';
import type { ServerKey } from './server-key.js';
import { STATEMENT_SKEW_MS } from './session-statement.js';

/** What the device routes need. */
export interface DeviceRoutesContext {
  ledger: Ledger;
  /** Device invitations (`keyledger admin invite --device`). */
  proofs: IdentityProofs;
  /** Opens the invitations sealed to it. */
  serverKey: ServerKey;
  chain: string;
  requests: DeviceRequests;
  limits: RateLimiters;
  now: () => number;
  log: (line: string) => void;
}

/**
 * Checks a new device's request: the statement (for this ledger, a canonical identity, a fresh
 * time), the key (the same policy as at registration, the statement's fingerprint) and the key's
 * signature over the statement. The identity is not looked up: the answer is the same for any.
 * @throws KlError `KL_STATEMENT_INVALID`, `KL_KEY_*`, `KL_SIGNATURE_INVALID`
 */
export async function checkDeviceRequest(
  body: DeviceRequestBody,
  options: { chain: string; now: number; source: string },
): Promise<DeviceRequestData> {
  let value: unknown;
  try {
    value = JSON.parse(body.statement);
  } catch {
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is not JSON');
  }
  const statement: DeviceAdditionStatement = check(
    DeviceAdditionStatementSchema,
    value,
    'KL_STATEMENT_INVALID',
    'statement',
  );
  if (statement.chain !== options.chain)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is for another ledger');
  if (canonicalIdentity(statement.id) !== statement.id)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement must carry the identity in canonical form');
  if (Math.abs(statement.time - options.now) > STATEMENT_SKEW_MS)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is too old or too far in the future');
  const key = await acceptPublicKey(body.publicKey, new Date(options.now));
  if (key.fingerprint !== statement.fingerprint)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement names another key');
  await verifyDetached({
    data: statementBytes(statement),
    armoredSignature: body.signature,
    key: key.key,
    now: new Date(options.now),
    maxSkewMs: STATEMENT_SKEW_MS,
  });
  return {
    statement,
    publicKey: key.armored,
    algorithm: key.algorithm,
    signature: body.signature,
    source: options.source,
  };
}

/**
 * A request that carries an operator's device invitation, sealed to the server key and bound to the
 * request's statement (docs/protocol.md "Devices"): the invitation is the approval, so DeviceAdded
 * (approved by the invitation's issuer) is written at once and the answer's poll reads it. The
 * invitation is taken before the write (one invitation, one device) and given back if the ledger
 * refuses. Wrong invitations are charged to the source, as at registration.
 * @throws KlError `KL_IDENTITY_PROOF_INVALID`, `KL_RATE_LIMITED`, the request's and the ledger's refusals
 */
async function invitedDevice(
  ctx: DeviceRoutesContext,
  body: DeviceRequestBody,
  source: string,
): Promise<{ code: string; poll: string; expiresAt: number }> {
  ctx.limits.wrongCodePerIp.check(source);
  const data = await checkDeviceRequest(body, { chain: ctx.chain, now: ctx.now(), source });
  const { id } = data.statement;
  let code: string;
  let issuer: string | null;
  try {
    code = await openInvite(ctx, body.invite!, data.statement);
    issuer = ctx.proofs.check(id, 'device', code, ctx.now()).issuer;
  } catch (err) {
    if (isKlError(err, 'KL_STORAGE_UNAVAILABLE')) throw err;
    ctx.limits.wrongCodePerIp.take(source);
    throw invalidInvite();
  }
  // Stored (it may be refused: a full table, a replay) and taken in the same turn as the check, so a
  // concurrent request with the same invitation finds it used.
  const answer = ctx.requests.add(data);
  const request = ctx.requests.claim(answer.code, id)!;
  let taken = false;
  try {
    ctx.proofs.consume(id, 'device', code, ctx.now());
    taken = true;
    const receipt = await ctx.ledger.submit({
      type: 'DeviceAdded',
      body: {
        id,
        name: data.statement.name,
        fingerprint: data.statement.fingerprint,
        publicKey: data.publicKey,
        algorithm: data.algorithm,
        time: data.statement.time,
        approvedBy: { admin: issuer ?? OPERATOR },
        newKeySignature: data.signature,
      },
    });
    ctx.requests.settle(request, { status: 'added', receipt });
  } catch (err) {
    if (taken) ctx.proofs.release(id, 'device', code);
    const e = isKlError(err) ? err : new KlError('KL_INTERNAL', 'internal error');
    ctx.requests.settle(request, { status: 'refused', error: { code: e.code, message: e.message } });
    throw err;
  }
  ctx.log(`device added by invitation: ${data.statement.name} for ${id}`);
  return answer;
}

const invalidInvite = () =>
  new KlError('KL_IDENTITY_PROOF_INVALID', 'the device invitation is not valid for this identity and key');

/** The invitation's code, once the sealed invitation opened and repeats what the statement binds. */
async function openInvite(
  ctx: DeviceRoutesContext,
  sealed: string,
  statement: DeviceAdditionStatement,
): Promise<string> {
  const bytes = await openSealed(sealed, ctx.serverKey.privateKey, new Date(ctx.now()));
  const invite = check(
    DeviceInviteSchema,
    JSON.parse(Buffer.from(bytes).toString('utf8')),
    'KL_IDENTITY_PROOF_INVALID',
  );
  const bound =
    invite.chain === statement.chain &&
    invite.id === statement.id &&
    invite.fingerprint === statement.fingerprint &&
    invite.time === statement.time;
  if (!bound) throw invalidInvite();
  return invite.code;
}

/** The operator named on a device invitation issued without one. */
const OPERATOR = 'admin@localhost';

/** POST /v1/devices/requests, GET /v1/devices/requests/:poll. */
export function registerDeviceRoutes(app: FastifyInstance, ctx: DeviceRoutesContext): void {
  app.post<{ Body: DeviceRequestBody }>(
    '/v1/devices/requests',
    {
      schema: {
        summary: 'A new device asks to join an identity: the code to approve it with from an enrolled device',
        tags: ['devices'],
        body: DeviceRequestBody,
      },
    },
    async (req, reply) => {
      const source = sourceKey(req.ip);
      ctx.limits.deviceRequestPerIp.take(source);
      if (req.body.invite !== undefined)
        return reply.status(201).send(await invitedDevice(ctx, req.body, source));
      const data = await checkDeviceRequest(req.body, { chain: ctx.chain, now: ctx.now(), source });
      const answer = ctx.requests.add(data);
      ctx.log(
        `device request: ${data.statement.name} (${data.statement.fingerprint.slice(-16)}) for ${data.statement.id}, from ${req.ip}`,
      );
      return reply.status(201).send(answer);
    },
  );
  app.get<{ Params: { poll: string } }>(
    '/v1/devices/requests/:poll',
    {
      schema: {
        summary: 'Where a device request stands: pending, added (with the receipt) or refused',
        tags: ['devices'],
        params: {
          type: 'object',
          properties: { poll: { type: 'string', maxLength: 43, pattern: '^[A-Za-z0-9_-]{43}$' } },
          required: ['poll'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const r = ctx.requests.polled(req.params.poll);
      if (!r) throw invalidCode();
      const state = r.state;
      if (state.status === 'added') return { status: 'added', receipt: state.receipt };
      if (state.status === 'refused') return { status: 'refused', error: state.error };
      return { status: 'pending', expiresAt: r.expiresAt };
    },
  );
}
