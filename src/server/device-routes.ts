/**
 * The open routes of a new device (docs/protocol.md "Devices"): its signed request to join an
 * identity, answered with the short code a person types on a device already enrolled, and the
 * status the new device polls until that approval is written. Requests are charged to their source
 * address only: naming an identity proves nothing about it.
 */
import type { FastifyInstance } from 'fastify';
import { activeDevice } from '../ledger/devices.js';
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { acceptPublicKey } from '../pgp/key-policy.js';
import { verifyDetached } from '../pgp/messages.js';
import { openSealed } from '../pgp/sealed.js';
import { ERROR_CODES, isKlError, KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { check } from '../protocol/schemas/check.js';
import { DeviceRequestBody } from '../protocol/schemas/http.js';
import { DeviceAdditionStatementSchema, DeviceInviteSchema } from '../protocol/schemas/statements.js';
import { type DeviceAdditionStatement, statementBytes } from '../protocol/statements.js';
import { sourceKey } from './client-address.js';
import {
  type DeviceRequest,
  type DeviceRequestData,
  type DeviceRequests,
  invalidCode,
} from './device-requests.js';
import type { CheckedCode, IdentityProofs } from './identity-proofs.js';
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

/** Writes of device invitations under way, by identity and code: one at a time for each. */
type InvitationWrites = Map<string, Promise<unknown>>;

/**
 * A request that carries an operator's device invitation, sealed to the server key and bound to the
 * request's statement (docs/protocol.md "Devices"): the invitation is the approval, so DeviceAdded
 * (approved by the invitation's issuer) is written at once and the answer's poll reads it. The
 * invitation is taken for the request's key before the write (one invitation, one device) and given
 * back if the ledger refuses. Taken for this very key already (a request cut off by a crash, or whose
 * answer was lost), it is the same key asking again: the device is written now if the ledger does
 * not hold it, else the poll reads the receipt of its addition, as registration answers a retry with
 * the original receipt; for any other key the invitation is spent. Wrong invitations are charged to
 * the source, as at registration.
 * @throws KlError `KL_IDENTITY_PROOF_INVALID`, `KL_RATE_LIMITED`, the request's and the ledger's refusals
 */
async function invitedDevice(
  ctx: DeviceRoutesContext,
  writes: InvitationWrites,
  body: DeviceRequestBody,
  source: string,
): Promise<{ code: string; poll: string; expiresAt: number }> {
  ctx.limits.wrongCodePerIp.check(source);
  const data = await checkDeviceRequest(body, { chain: ctx.chain, now: ctx.now(), source });
  const { id, fingerprint } = data.statement;
  let code: string;
  try {
    code = await openInvite(ctx, body.invite!, data.statement);
  } catch (err) {
    throw chargedInvite(ctx, source, err);
  }
  // A retry of a request whose write is still under way reads what that write left.
  const key = `${id}\n${code}`;
  for (let earlier = writes.get(key); earlier; earlier = writes.get(key)) await earlier.catch(() => {});
  let invitation: CheckedCode;
  try {
    invitation = ctx.proofs.check(id, 'device', code, ctx.now(), fingerprint);
  } catch (err) {
    throw chargedInvite(ctx, source, err);
  }
  // Stored (it may be refused: a full table, a replay) and taken in the same turn as the check, so a
  // concurrent request with the same invitation finds it used (for its key).
  const answer = ctx.requests.add(data);
  const request = ctx.requests.claim(answer.code, id)!;
  try {
    if (!invitation.used) ctx.proofs.consume(id, 'device', code, ctx.now(), fingerprint);
  } catch (err) {
    throw refused(ctx, request, err);
  }
  const write = writeInvited(ctx, data, invitation, request).catch((err: unknown) => {
    // Given back only by the request that took it, and only when the ledger refused the device: a
    // failure whose outcome is unknown (5xx) or a retry's refusal (the key added, then revoked)
    // leaves it taken for this key, which may ask again.
    if (!invitation.used && isRefusal(err)) giveBack(ctx, id, code);
    throw refused(ctx, request, err);
  });
  writes.set(key, write);
  try {
    await write;
  } finally {
    writes.delete(key);
  }
  ctx.log(
    `device added by invitation${invitation.used ? ' (asked again)' : ''}: ${data.statement.name} for ${id}`,
  );
  return answer;
}

/**
 * The invited device's DeviceAdded, written (the invitation's first use, or a retry when the ledger
 * does not hold the device), or read back (a retry when it does); settles the request with it.
 */
async function writeInvited(
  ctx: DeviceRoutesContext,
  data: DeviceRequestData,
  invitation: CheckedCode,
  request: DeviceRequest,
): Promise<void> {
  const { id, name, fingerprint, time } = data.statement;
  const earlier = invitation.used ? await ledgerAddition(ctx.ledger, id, fingerprint) : undefined;
  const receipt =
    earlier ??
    (await ctx.ledger.submit({
      type: 'DeviceAdded',
      body: {
        id,
        name,
        fingerprint,
        publicKey: data.publicKey,
        algorithm: data.algorithm,
        time,
        approvedBy: { admin: invitation.issuer ?? OPERATOR },
        newKeySignature: data.signature,
      },
    }));
  ctx.requests.settle(request, { status: 'added', receipt });
}

/**
 * The receipt of the DeviceAdded that made `fingerprint` an active device of `id`, or undefined when
 * the ledger does not hold it as one.
 * @throws KlError `KL_KEY_IN_USE` when the key is the identity's but not by a DeviceAdded (its
 *   registered key)
 */
async function ledgerAddition(
  ledger: Ledger,
  id: string,
  fingerprint: string,
): Promise<TransactionReceipt | undefined> {
  const { record } = await ledger.getKeyRecord(id);
  const device = record ? activeDevice(record, fingerprint) : undefined;
  if (!device) return undefined;
  const receipt = await ledger.getTransaction(device.added.txid);
  const tx = receipt.envelope.tx;
  if (tx.type !== 'DeviceAdded' || (tx.body as { fingerprint?: unknown }).fingerprint !== fingerprint)
    throw new KlError('KL_KEY_IN_USE', 'this key is already a key of this identity');
  return receipt;
}

/** Settles `request` as refused by `err`, for its poll; returns `err`. */
function refused(ctx: DeviceRoutesContext, request: DeviceRequest, err: unknown): unknown {
  const e = isKlError(err) ? err : new KlError('KL_INTERNAL', 'internal error');
  ctx.requests.settle(request, { status: 'refused', error: { code: e.code, message: e.message } });
  return err;
}

/** Whether `err` is a refusal (a 4xx; a duplicate may be on the ledger): nothing was written. */
const isRefusal = (err: unknown): boolean =>
  isKlError(err) && ERROR_CODES[err.code] < 500 && err.code !== 'KL_TX_DUPLICATE';

/** Gives an invitation back; if that cannot be written, it stays taken for its key (still retryable). */
function giveBack(ctx: DeviceRoutesContext, id: string, code: string): void {
  try {
    ctx.proofs.release(id, 'device', code);
  } catch (err) {
    ctx.log(
      `device invitation for ${id} not given back: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** A wrong invitation, charged to its source; storage failures pass as they are. */
function chargedInvite(ctx: DeviceRoutesContext, source: string, err: unknown): KlError {
  if (isKlError(err, 'KL_STORAGE_UNAVAILABLE')) return err;
  ctx.limits.wrongCodePerIp.take(source);
  return invalidInvite();
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
  const writes: InvitationWrites = new Map();
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
        return reply.status(201).send(await invitedDevice(ctx, writes, req.body, source));
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
