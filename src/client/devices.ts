/**
 * An identity's devices as the ledger proves them (docs/protocol.md "Devices"): the key record's
 * state proof, checked against the pinned genesis (and the servers whose admissions the home holds)
 * at a checkpoint no older than the one the home keeps, read like `keyledger status` reads it. Only
 * the proven record is shown: nothing a server says about devices is believed otherwise.
 */
import { activeDevices, type DeviceView } from '../ledger/devices.js';
import { verifyKeyRecordProof } from '../ledger/proofs.js';
import type { KeyRecord } from '../ledger/state-machine.js';
import { KlError } from '../protocol/errors.js';
import { advanceCheckpoint } from './checkpoint.js';
import { onServers } from './failover.js';
import { fetchKeyRecordProof } from './register.js';
import type { ClientStore } from './store.js';
import { unverifiedAnswer } from './unverified-answer.js';

/** One active device of the identity, and whether this home holds its key. */
export interface DeviceListEntry extends DeviceView {
  /** True for the device whose key this home holds. */
  current: boolean;
}

/** What {@link listDevices} proved. */
export interface DeviceList {
  verified: true;
  id: string;
  /** The identity's status on the ledger. */
  status: KeyRecord['status'];
  /** The active devices, the record's top-level key first. */
  devices: DeviceListEntry[];
  /** Keys the identity held before, oldest first: rotated or revoked, with the device that held them. */
  history: KeyRecord['history'];
  /** The proven record itself (for `findDevice`). */
  record: KeyRecord;
  /** The block height of the checkpoint the proof was verified at. */
  height: number;
  /** The server that answered. */
  server: string;
}

/**
 * The home identity's devices, from its key record proven against the pinned genesis; asks the
 * preferred server, the next while servers are out or give no verified answer (failover.ts), or
 * `server` only.
 * @throws KlError `KL_NOT_REGISTERED` when the home has no identity or server, or the ledger holds
 *   no record of it; `KL_PROOF_INVALID` (unverified) when no server gave a proof that verifies;
 *   `KL_CHECKPOINT_INVALID` when the ledger's history was rewritten.
 */
export async function listDevices(o: { home: ClientStore; server?: string }): Promise<DeviceList> {
  const identity = await o.home.readIdentity();
  await o.home.readServer();
  return onServers(
    o.home,
    async (server) => {
      const checkpoint = await advanceCheckpoint(o.home, server);
      const proof = await fetchKeyRecordProof(server.url, identity.id);
      const check = verifyKeyRecordProof({ genesis: server.genesis, servers: server.admitted ?? [], proof });
      // About us, at a checkpoint no older than the one just kept: else no answer (the next server).
      if (!check.verified || proof.id !== identity.id || check.height < checkpoint.header.height)
        throw unverifiedAnswer(
          new KlError('KL_PROOF_INVALID', `${server.url} gave no verified proof of the key record`),
        );
      const record = check.record;
      if (!record) throw new KlError('KL_NOT_REGISTERED', `the ledger holds no record of ${identity.id}`);
      return {
        verified: true as const,
        id: identity.id,
        status: record.status,
        devices: activeDevices(record).map((d) => ({
          ...d,
          current: d.fingerprint === identity.fingerprint,
        })),
        history: record.history,
        record,
        height: check.height,
        server: server.url,
      };
    },
    o.server !== undefined ? { only: o.server } : {},
  );
}
