/**
 * Device changes asked for inside an authenticated session (docs/protocol.md "Devices"): showing a
 * pending device request by its code, approving it (DeviceAdded, signed by the session's device over
 * the statement the new key signed) and revoking a device (DeviceRevoked). The session's own device
 * must still be active on the ledger for each.
 */
import { activeDevice, type DeviceView } from '../ledger/devices.js';
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { verifyDetached } from '../pgp/messages.js';
import type { ChannelMessage } from '../protocol/channel.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { DeviceRevocationStatementSchema } from '../protocol/schemas/statements.js';
import { statementBytes } from '../protocol/statements.js';
import { type DeviceRequests, invalidCode } from './device-requests.js';
import type { ParsedKeyCache } from './handshake.js';
import type { RateLimiter } from './rate-limiter.js';
import { parseSessionStatement, STATEMENT_SKEW_MS } from './session-statement.js';
import type { Session } from './sessions.js';

/** What the device handlers need. */
export interface DeviceSessionContext {
  ledger: Ledger;
  keys: ParsedKeyCache;
  requests: DeviceRequests;
  /** Codes that matched nothing, charged to the session's (proven) identity. */
  wrongCodes: RateLimiter;
  now: () => number;
}

/**
 * The session's device as the ledger holds it now.
 * @throws KlError `KL_KEY_REVOKED` when the identity or this device is no longer active.
 */
export async function sessionDevice(ledger: Ledger, s: Session): Promise<DeviceView> {
  const { record } = await ledger.getKeyRecord(s.id);
  if (record?.status !== 'active') throw new KlError('KL_KEY_REVOKED', 'the key of this identity is revoked');
  const device = activeDevice(record, s.fingerprint);
  if (!device)
    throw new KlError(
      'KL_KEY_REVOKED',
      'the key this session logged in with is no longer a key of this identity',
    );
  return device;
}

/** Verifies `signature` over `data` by the session's `device` (a statement made within the skew). */
export async function verifyByDevice(
  ctx: DeviceSessionContext,
  device: DeviceView,
  data: Uint8Array,
  signature: unknown,
): Promise<void> {
  await verifyDetached({
    data,
    armoredSignature: signature,
    key: await ctx.keys.get(device.publicKey),
    now: new Date(ctx.now()),
    maxSkewMs: STATEMENT_SKEW_MS,
  });
}

/** The pending request of the session's identity under `code`; a miss is charged to the identity. */
function pendingOrCharge(ctx: DeviceSessionContext, s: Session, code: unknown, claim: boolean) {
  ctx.wrongCodes.check(s.id);
  const r = claim ? ctx.requests.claim(code, s.id) : ctx.requests.pending(code, s.id);
  if (!r) {
    ctx.wrongCodes.take(s.id);
    throw invalidCode();
  }
  return r;
}

/** `device-pending`: what the request under the code asks, for the person to confirm. */
export async function pendingDevice(
  ctx: DeviceSessionContext,
  s: Session,
  m: Extract<ChannelMessage, { t: 'device-pending' }>,
): Promise<{ statement: unknown; publicKey: string; signature: string }> {
  await sessionDevice(ctx.ledger, s);
  const r = pendingOrCharge(ctx, s, m.code, false);
  return { statement: r.statement, publicKey: r.publicKey, signature: r.signature };
}

/**
 * `add-device`: the session's device signs the request's statement; DeviceAdded carries both
 * signatures. The code is taken first (single use); if the approver's own signature fails it waits
 * again, any other outcome is the requester's answer too.
 */
export async function approveDevice(
  ctx: DeviceSessionContext,
  s: Session,
  m: Extract<ChannelMessage, { t: 'add-device' }>,
): Promise<{ receipt: TransactionReceipt }> {
  const device = await sessionDevice(ctx.ledger, s);
  const r = pendingOrCharge(ctx, s, m.code, true);
  try {
    await verifyByDevice(ctx, device, statementBytes(r.statement), m.signature);
  } catch (err) {
    ctx.requests.release(r);
    throw err;
  }
  try {
    const receipt = await ctx.ledger.submit({
      type: 'DeviceAdded',
      body: {
        id: s.id,
        name: r.statement.name,
        fingerprint: r.statement.fingerprint,
        publicKey: r.publicKey,
        algorithm: r.algorithm,
        time: r.statement.time,
        approvedBy: { device: device.fingerprint, signature: String(m.signature) },
        newKeySignature: r.signature,
      },
    });
    ctx.requests.settle(r, { status: 'added', receipt });
    return { receipt };
  } catch (err) {
    const e = isKlError(err) ? err : new KlError('KL_INTERNAL', 'internal error');
    ctx.requests.settle(r, { status: 'refused', error: { code: e.code, message: e.message } });
    throw err;
  }
}

/** `revoke-device`: a statement signed by the session's device names the device to revoke. */
export async function revokeDevice(
  ctx: DeviceSessionContext,
  s: Session,
  m: Extract<ChannelMessage, { t: 'revoke-device' }>,
): Promise<{ receipt: TransactionReceipt }> {
  const statement = parseSessionStatement(m.statement, DeviceRevocationStatementSchema, {
    id: s.id,
    chain: ctx.ledger.chainId,
    now: ctx.now(),
  });
  const device = await sessionDevice(ctx.ledger, s);
  await verifyByDevice(ctx, device, statementBytes(statement), m.signature);
  const receipt = await ctx.ledger.submit({
    type: 'DeviceRevoked',
    body: {
      id: s.id,
      fingerprint: statement.fingerprint,
      reason: statement.reason,
      revokedBy: { device: device.fingerprint, signature: String(m.signature), time: statement.time },
    },
  });
  return { receipt };
}
