/**
 * What the server does when the ledger commits something: key revocations, rotations and role
 * changes become events; revoking or rotating a key ends that identity's sessions at once, and a
 * revoked key or admin role also ends its dashboard sessions and links; the first admins named at
 * start get their role once they are registered.
 */
import type { CommittedTransaction, Ledger } from '../ledger/ledger.js';
import type { TxBodies } from '../ledger/transactions.js';
import { setAdminRole } from './admin-actions.js';
import type { DashboardAuth } from './dashboard-auth.js';
import type { ServerEvent } from './events.js';
import type { SessionTable } from './sessions.js';

/** Options of {@link watchLedger}. */
export interface LedgerWatchOptions {
  ledger: Ledger;
  sessions: SessionTable;
  dashboard: DashboardAuth;
  /** Identities that get the admin role once registered (canonical form). */
  bootstrapAdmins: ReadonlySet<string>;
  /** Told the height of each committed transaction. */
  onHeight: (height: number) => void;
  emit: (event: ServerEvent) => void;
  now: () => number;
  log: (line: string) => void;
}

/** Key revocations, rotations and role changes committed on the ledger, as events. */
function ledgerEvent(tx: CommittedTransaction, at: number): ServerEvent | undefined {
  if (tx.type === 'KeyRevoked') {
    const b = tx.envelope.tx.body as TxBodies['KeyRevoked'];
    const by = b.by === 'admin' ? { admin: b.admin ?? '' } : ('owner' as const);
    return { kind: 'key_revoked', at, id: b.id, fingerprint: b.fingerprint, reason: b.reason, by };
  }
  if (tx.type === 'KeyRotated') {
    const b = tx.envelope.tx.body as TxBodies['KeyRotated'];
    return { kind: 'key_rotated', at, id: b.id, fingerprint: b.fingerprint };
  }
  if (tx.type === 'DeviceAdded') {
    const b = tx.envelope.tx.body as TxBodies['DeviceAdded'];
    return { kind: 'device_added', at, id: b.id, fingerprint: b.fingerprint, name: b.name };
  }
  if (tx.type === 'DeviceRevoked') {
    const b = tx.envelope.tx.body as TxBodies['DeviceRevoked'];
    const by = 'admin' in b.revokedBy ? { admin: b.revokedBy.admin } : { device: b.revokedBy.device };
    return { kind: 'device_revoked', at, id: b.id, fingerprint: b.fingerprint, reason: b.reason, by };
  }
  if (tx.type === 'RecoveryKeySet') {
    const b = tx.envelope.tx.body as TxBodies['RecoveryKeySet'];
    return { kind: 'recovery_key_set', at, id: b.id, fingerprint: b.fingerprint };
  }
  if (tx.type === 'Recovered') {
    const b = tx.envelope.tx.body as TxBodies['Recovered'];
    return { kind: 'recovered', at, id: b.id, fingerprint: b.device.fingerprint, name: b.device.name };
  }
  if (tx.type === 'RoleGranted' || tx.type === 'RoleRevoked') {
    const b = tx.envelope.tx.body as TxBodies['RoleGranted'];
    return { kind: 'role_changed', at, id: b.id, role: b.role, granted: tx.type === 'RoleGranted' };
  }
  return undefined;
}

/**
 * Ends the sessions a key change took the key of: every session of a revoked or recovered identity,
 * the sessions of a rotated or revoked device only (docs/protocol.md "Devices"). After the current microtasks, so
 * the owner who asked for the change gets its receipt first.
 */
function endSessionsOf(sessions: SessionTable, tx: CommittedTransaction, id: string): void {
  if (tx.type === 'KeyRevoked')
    setImmediate(() =>
      sessions.endIdentity(id, 'key_revoked', 'the key of this identity was revoked on the ledger'),
    );
  if (tx.type === 'Recovered')
    setImmediate(() =>
      sessions.endIdentity(
        id,
        'key_revoked',
        'the identity was recovered with its recovery key on a new device: every device was revoked',
      ),
    );
  if (tx.type === 'KeyRotated') {
    const old = (tx.envelope.tx.body as TxBodies['KeyRotated']).oldFingerprint;
    setImmediate(() =>
      sessions.endDevice(id, old, 'key_revoked', 'the key this session logged in with was rotated'),
    );
  }
  if (tx.type === 'DeviceRevoked') {
    const gone = (tx.envelope.tx.body as TxBodies['DeviceRevoked']).fingerprint;
    setImmediate(() =>
      sessions.endDevice(id, gone, 'key_revoked', 'the device this session logged in with was revoked'),
    );
  }
}

/**
 * Subscribes to the ledger; returns the unsubscribe function and `grantBootstrapAdmins`, to call once
 * the server is up (for admins registered before this start).
 */
export function watchLedger(o: LedgerWatchOptions): {
  unsubscribe: () => void;
  grantBootstrapAdmins: () => void;
} {
  async function grant(id: string): Promise<void> {
    try {
      const { record } = await o.ledger.getKeyRecord(id);
      if (record?.status !== 'active' || record.roles?.includes('admin')) return;
      await setAdminRole(o.ledger, id, true);
      o.log(`admin role granted to ${id} (named at start)`);
    } catch (err) {
      o.log(`could not grant the admin role to ${id}: ${(err as Error).message}`);
    }
  }
  const unsubscribe = o.ledger.subscribe((tx) => {
    o.onHeight(tx.height);
    const subject = (tx.envelope.tx.body as { id?: unknown }).id;
    if (
      (tx.type === 'KeyRevoked' ||
        tx.type === 'RoleRevoked' ||
        tx.type === 'DeviceRevoked' ||
        tx.type === 'Recovered') &&
      typeof subject === 'string'
    )
      o.dashboard.endIdentity(subject);
    if (tx.type === 'KeyRegistered' && typeof subject === 'string' && o.bootstrapAdmins.has(subject))
      setImmediate(() => grant(subject));
    const event = ledgerEvent(tx, o.now());
    if (event) o.emit(event);
    if (typeof subject === 'string') endSessionsOf(o.sessions, tx, subject);
  });
  return {
    unsubscribe,
    grantBootstrapAdmins: () => {
      for (const id of o.bootstrapAdmins) void grant(id);
    },
  };
}
