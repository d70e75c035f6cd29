/**
 * An identity's devices as the ledger proves them (docs/protocol.md "Devices"): the key record's
 * state proof, checked against the pinned genesis (and the servers whose admissions the home holds)
 * at a checkpoint no older than the one the home keeps, read like `keyledger status` reads it. Only
 * the proven record is shown: nothing a server says about devices is believed otherwise. Each
 * device's last login comes from the audit trail, asked inside a session (`device.logins`), every
 * event checked against the genesis by its receipt ({@link readDeviceLogins}).
 */
import { Type } from 'typebox';
import { activeDevices, type DeviceView } from '../ledger/devices.js';
import { type TransactionReceipt, verifyKeyRecordProof, verifyTransactionReceipt } from '../ledger/proofs.js';
import type { KeyRecord } from '../ledger/state-machine.js';
import type { TxBodies } from '../ledger/transactions.js';
import { KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { check } from '../protocol/schemas/check.js';
import { Count, Fingerprint } from '../protocol/schemas/fields.js';
import { ReceiptSchema } from '../protocol/schemas/ledger.js';
import { advanceCheckpoint } from './checkpoint.js';
import { onServers } from './failover.js';
import { fetchKeyRecordProof } from './register.js';
import type { ClientStore, ServerFile } from './store.js';
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

/** One device's last login, as an audit event the ledger holds (docs/ledger.md "Devices"). */
export interface DeviceLogin {
  /** When the session started, by the server's clock (the event's `at`), ms. */
  at: number;
  /** The block that holds the event, and the event's transaction id. */
  height: number;
  txid: string;
}

/** What {@link readDeviceLogins} proved. */
export interface DeviceLogins {
  /** Each event shown verified against the genesis; which events the server chose is its word. */
  verified: true;
  /** The last login of each device that has one in the blocks searched, by fingerprint. */
  byDevice: Map<string, DeviceLogin>;
  /**
   * The blocks the server says it searched (inclusive): a device without a login here may have
   * logged in below `fromHeight`.
   */
  searched: { fromHeight: number; toHeight: number };
}

/** The `device.logins` answer as it must arrive (src/server/device-logins.ts). */
const DeviceLoginsAnswerSchema = Type.Object(
  {
    searched: Type.Object({ fromHeight: Count, toHeight: Count }, { additionalProperties: false }),
    logins: Type.Array(
      Type.Object({ fingerprint: Fingerprint, receipt: ReceiptSchema }, { additionalProperties: false }),
      { maxItems: 64 },
    ),
  },
  { additionalProperties: false },
);

/**
 * The last login of each of `devices` (fingerprints of the identity `id`), asked inside `session`
 * (`device.logins`) and checked here: every login's receipt verifies against the genesis (and the
 * admitted servers) of `server`, and is a `session_start` audit event of this identity naming that
 * device key, one per device. The server could leave out a later login than one it shows; it cannot
 * show one that is not on the ledger. The asking session's own login is not among them.
 * @throws KlError `KL_PROOF_INVALID` when the answer or one of its events does not verify; the
 *   session's errors (`KL_NOT_FOUND` from a server that does not answer `device.logins`).
 */
export async function readDeviceLogins(o: {
  session: { request<T>(body: unknown): Promise<T> };
  server: Pick<ServerFile, 'genesis' | 'admitted'>;
  id: string;
  devices: readonly string[];
}): Promise<DeviceLogins> {
  const a = check(
    DeviceLoginsAnswerSchema,
    await o.session.request<unknown>({ op: 'device.logins' }),
    'KL_PROOF_INVALID',
    'device.logins',
  );
  const subject = sha256Hex(o.id);
  const byDevice = new Map<string, DeviceLogin>();
  for (const { fingerprint, receipt } of a.logins) {
    const bad = (why: string) =>
      new KlError('KL_PROOF_INVALID', `the last login the server gave for ${fingerprint} ${why}`);
    if (!o.devices.includes(fingerprint) || byDevice.has(fingerprint))
      throw bad('is not one of the devices listed, or is given twice');
    const v = verifyTransactionReceipt({
      genesis: o.server.genesis,
      receipt: receipt as TransactionReceipt,
      servers: o.server.admitted ?? [],
    });
    if (!v.verified) throw bad(`does not verify against the genesis: ${v.reason}`);
    const tx = v.envelope.tx;
    const body = tx.body as TxBodies['AuditEvent'];
    if (
      tx.type !== 'AuditEvent' ||
      body.event !== 'session_start' ||
      body.subject !== subject ||
      body.detail?.fingerprint !== fingerprint
    )
      throw bad('is not a login of that device key');
    byDevice.set(fingerprint, { at: body.at, height: v.height, txid: v.txid });
  }
  return { verified: true, byDevice, searched: a.searched };
}
