/**
 * What an operator can see and do, in one place for both ways in: the local admin socket
 * (`keyledger admin …`, the machine's operator account) and the web admin API behind the dashboard
 * (an identity with the admin role on the ledger). Callers authenticate; these functions act.
 */
import { findDevice } from '../ledger/devices.js';
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { REVOCATION_REASONS } from '../ledger/transactions.js';
import { KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import type { SessionTable } from './sessions.js';

/** A live session as operators see it (never keys). */
export interface SessionView {
  sessionId: string;
  id: string;
  /** The device key the session logged in with. */
  fingerprint: string;
  ip: string;
  createdAt: number;
  lastActivity: number;
  expiresAt: number;
  epoch: number;
  framesIn: number;
  framesOut: number;
  connected: boolean;
}

/** Live sessions, newest first. */
export function listSessions(sessions: SessionTable): SessionView[] {
  return sessions
    .list()
    .map((s) => ({
      sessionId: s.sessionId,
      id: s.id,
      fingerprint: s.fingerprint,
      ip: s.ip,
      createdAt: s.createdAt,
      lastActivity: s.lastActivity,
      expiresAt: s.expiresAt,
      epoch: s.channel.epoch,
      framesIn: s.channel.counters.framesReceived,
      framesOut: s.channel.counters.framesSent,
      connected: s.socket !== null,
    }))
    .sort((a, b) => b.createdAt - a.createdAt);
}

/** Ends one session, telling its client why. @throws KL_SESSION_UNKNOWN */
export function terminateSession(sessions: SessionTable, sessionId: string, by: string): void {
  if (!sessions.end(sessionId, 'revoked', `the session was ended by an administrator (${by})`))
    throw new KlError('KL_SESSION_UNKNOWN', 'no live session has this id');
}

/**
 * Revokes an identity's key on the ledger as an admin (KeyRevoked, by: admin); the server's ledger
 * subscription then ends every session of the identity.
 */
export async function revokeKeyAsAdmin(
  ledger: Ledger,
  o: { id: string; admin: string; reason?: unknown },
): Promise<TransactionReceipt> {
  const id = canonicalIdentity(o.id);
  const reason = REVOCATION_REASONS.find((r) => r === o.reason) ?? 'unspecified';
  const { record } = await ledger.getKeyRecord(id);
  if (!record) throw new KlError('KL_IDENTITY_UNKNOWN', 'no key is registered for this identity');
  if (record.status !== 'active') throw new KlError('KL_KEY_REVOKED', 'this key is already revoked');
  return ledger.submit({
    type: 'KeyRevoked',
    body: { id, fingerprint: record.fingerprint, reason, by: 'admin', admin: canonicalIdentity(o.admin) },
  });
}

/**
 * Revokes one device key of an identity as an operator (DeviceRevoked, by an admin): `device` is its
 * fingerprint or its name. The identity's last device may be revoked this way, which revokes the
 * identity (docs/ledger.md "Devices"). The server's ledger subscription ends that device's sessions.
 * @throws KlError `KL_IDENTITY_UNKNOWN`, `KL_KEY_REVOKED`, `KL_DEVICE_UNKNOWN`
 */
export async function revokeDeviceAsAdmin(
  ledger: Ledger,
  o: { id: string; device: string; admin: string; reason?: unknown },
): Promise<{ fingerprint: string; name: string | null; receipt: TransactionReceipt }> {
  const id = canonicalIdentity(o.id);
  const reason = REVOCATION_REASONS.find((r) => r === o.reason) ?? 'unspecified';
  const { record } = await ledger.getKeyRecord(id);
  if (!record) throw new KlError('KL_IDENTITY_UNKNOWN', 'no key is registered for this identity');
  if (record.status !== 'active') throw new KlError('KL_KEY_REVOKED', 'the key of this identity is revoked');
  const device = findDevice(record, o.device);
  if (!device)
    throw new KlError('KL_DEVICE_UNKNOWN', `${id} has no active device with this fingerprint or name`);
  const receipt = await ledger.submit({
    type: 'DeviceRevoked',
    body: { id, fingerprint: device.fingerprint, reason, revokedBy: { admin: canonicalIdentity(o.admin) } },
  });
  return { fingerprint: device.fingerprint, name: device.name, receipt };
}

/** Grants (or revokes) the admin role on the ledger (governance transaction). */
export function setAdminRole(ledger: Ledger, id: string, admin: boolean): Promise<TransactionReceipt> {
  return ledger.governance({
    type: admin ? 'RoleGranted' : 'RoleRevoked',
    body: { id: canonicalIdentity(id), role: 'admin' },
  });
}

/** True when `id` is an active identity holding the admin role on the ledger. */
export async function isAdmin(ledger: Ledger, id: string): Promise<boolean> {
  const { record } = await ledger.getKeyRecord(canonicalIdentity(id));
  return record?.status === 'active' && (record.roles ?? []).includes('admin');
}
