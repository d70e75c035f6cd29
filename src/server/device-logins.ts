/**
 * `device.logins`, a session message (docs/protocol.md "Devices"): the last login of each active
 * device of the session's own identity, read from the ledger's audit trail — the `session_start`
 * events, whose detail names the device key that logged in — and answered with each event's receipt,
 * which the client verifies against its pinned genesis (src/client/devices.ts). Only the identity's
 * own sessions ask, so nobody learns another person's login times.
 *
 * Bounded cost: the read walks at most {@link LOGIN_SEARCH_BLOCKS} blocks down from the top, never
 * below the block that added the identity's oldest active device, and stops after
 * {@link LOGIN_SEARCH_EVENTS} logins of the identity (readAuditTrail checks each block it walks, about
 * 0.6 ms a block of three transactions on a busy two-core machine); the answer says which blocks were
 * searched. Concurrent asks of one identity share one read, and at most
 * {@link MAX_CONCURRENT_READS} reads run at once on a server (more: `KL_RATE_LIMITED`).
 */
import { type AuditEntry, readAuditTrail } from '../ledger/audit-trail.js';
import { activeDevices } from '../ledger/devices.js';
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import type { MessageHandler } from './session-service.js';

/** The `op` of the session message. */
export const DEVICE_LOGINS_OP = 'device.logins';
/** Most blocks one answer searches, down from the top. */
export const LOGIN_SEARCH_BLOCKS = 2_000;
/** Most `session_start` events of the identity one answer reads (newest first). */
export const LOGIN_SEARCH_EVENTS = 256;
/** Most reads of the trail under way at once on one server. */
export const MAX_CONCURRENT_READS = 2;

/** The answer to `device.logins`. */
export interface DeviceLoginsAnswer {
  /**
   * The blocks searched, inclusive: a device without a login here may have logged in below
   * `fromHeight` (or never). 0 and 0 before the first block.
   */
  searched: { fromHeight: number; toHeight: number };
  /**
   * The newest `session_start` of each active device found there, the asking session's own left
   * out, newest first; each with its receipt (transaction, inclusion proof, signed block header).
   */
  logins: Array<{ fingerprint: string; receipt: TransactionReceipt }>;
}

/** The session message handler answering `device.logins` from `ledger`. */
export function deviceLoginsHandler(o: { ledger: Ledger }): MessageHandler {
  const reads = new Map<string, Promise<LoginRead>>();
  return async ({ id, sessionId, body, signed }) => {
    if (signed || (body as { op?: unknown } | null)?.op !== DEVICE_LOGINS_OP) return undefined;
    let read = reads.get(id);
    if (!read) {
      if (reads.size >= MAX_CONCURRENT_READS)
        throw new KlError('KL_RATE_LIMITED', 'last logins are being read for others: ask again in a moment');
      read = readLogins(o.ledger, id).finally(() => reads.delete(id));
      reads.set(id, read);
    }
    return answer(o.ledger, await read, sha256Hex(sessionId).slice(0, 32));
  };
}

/** What one read of the trail found for an identity. */
interface LoginRead {
  /** Its active devices' fingerprints. */
  devices: Set<string>;
  /** Its `session_start` events in the blocks searched, newest first. */
  rows: AuditEntry[];
  searched: DeviceLoginsAnswer['searched'];
}

/** The identity's logins in the blocks the bound allows (see the module comment). */
async function readLogins(ledger: Ledger, id: string): Promise<LoginRead> {
  const record = await ledger.getKeyRecord(id).then(
    (r) => r.record,
    (err: unknown) => {
      if (isKlError(err, 'KL_IDENTITY_UNKNOWN')) return null;
      throw err;
    },
  );
  const devices = record ? activeDevices(record) : [];
  const top = (await ledger.checkpoint())?.header.height ?? 0;
  if (devices.length === 0 || top === 0)
    return { devices: new Set(), rows: [], searched: { fromHeight: 0, toHeight: top } };
  // No device logged in before it was added.
  const oldest = Math.min(...devices.map((d) => d.added.height));
  const fromHeight = Math.max(1, top - LOGIN_SEARCH_BLOCKS + 1, oldest);
  const rows = (
    await readAuditTrail(ledger, {
      subject: sha256Hex(id),
      event: 'session_start',
      aboveHeight: fromHeight - 1,
      limit: LOGIN_SEARCH_EVENTS,
    })
  ).filter((r) => r.height <= top);
  // Stopped by the event limit: the blocks below the last event read were not searched.
  const reached = rows.length >= LOGIN_SEARCH_EVENTS ? rows[rows.length - 1]!.height : fromHeight;
  return {
    devices: new Set(devices.map((d) => d.fingerprint)),
    rows,
    searched: { fromHeight: reached, toHeight: top },
  };
}

/** The newest login of each device in `read`, without the asking session's own, with receipts. */
async function answer(ledger: Ledger, read: LoginRead, ownSession: string): Promise<DeviceLoginsAnswer> {
  const newest = new Map<string, AuditEntry>();
  for (const r of read.rows) {
    const fingerprint = r.detail?.fingerprint;
    if (typeof fingerprint !== 'string' || !read.devices.has(fingerprint)) continue;
    if (r.detail?.session === ownSession || newest.has(fingerprint)) continue;
    newest.set(fingerprint, r);
  }
  const logins = await Promise.all(
    [...newest].map(async ([fingerprint, r]) => ({
      fingerprint,
      receipt: await ledger.getTransaction(r.txid),
    })),
  );
  return { searched: read.searched, logins };
}
