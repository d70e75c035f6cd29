/**
 * An identity's devices (docs/ledger.md "Devices"): the active keys of a key record, read the same
 * way by the state rules, the server (which key a login or a statement must be signed with) and the
 * client (whether a proven record still holds its key). Pure: no I/O.
 *
 * A record keeps its first active key at the top level (`fingerprint`, `publicKey`, `algorithm`,
 * `device`), as a single-key record always did, and its further active keys in `devices`; a record
 * without `devices` is an identity with one device, so records written before devices existed need
 * no rewrite.
 */
import type { DeviceKey, KeyRecord, TxRef } from './state-machine.js';

/** Most active devices an identity may hold. */
export const MAX_DEVICES = 16;

/** One active key of an identity. */
export interface DeviceView {
  /** The name its person gave it; null for a first key registered without one. */
  name: string | null;
  fingerprint: string;
  publicKey: string;
  algorithm: string;
  /** When it became a key of the identity. */
  added: TxRef;
  /** The device or operator that approved it; absent for the key the identity registered with. */
  approvedBy?: DeviceKey['approvedBy'];
  /** Whether it is the record's top-level key. */
  primary: boolean;
}

/** The active devices of `record`, the top-level key first; none when the identity is revoked. */
export function activeDevices(record: KeyRecord): DeviceView[] {
  if (record.status !== 'active') return [];
  const first: DeviceView = {
    name: record.device ?? null,
    fingerprint: record.fingerprint,
    publicKey: record.publicKey,
    algorithm: record.algorithm,
    added: record.deviceAdded?.added ?? record.registered,
    ...(record.deviceAdded ? { approvedBy: record.deviceAdded.approvedBy } : {}),
    primary: true,
  };
  return [first, ...(record.devices ?? []).map((d) => ({ ...d, primary: false }))];
}

/** The active device of `record` with this fingerprint, if any. */
export function activeDevice(record: KeyRecord, fingerprint: string): DeviceView | undefined {
  return activeDevices(record).find((d) => d.fingerprint === fingerprint);
}

/**
 * The active device that `ref` names: a full fingerprint, or a device name (compared without regard
 * to case, as names are unique that way).
 */
export function findDevice(record: KeyRecord, ref: string): DeviceView | undefined {
  const lower = ref.toLowerCase();
  const devices = activeDevices(record);
  // A fingerprint first: a device name can never stand for another device's key.
  return devices.find((d) => d.fingerprint === lower) ?? devices.find((d) => d.name?.toLowerCase() === lower);
}

/**
 * Whether `fingerprint` is one of the record's device keys as it stands: an active device or, for a
 * revoked identity, one of the keys it held when it was revoked (its status says which).
 */
export function holdsKey(record: KeyRecord, fingerprint: string): boolean {
  return (
    record.fingerprint === fingerprint || (record.devices ?? []).some((d) => d.fingerprint === fingerprint)
  );
}
