/**
 * Recovering an identity on a new device with its recovery key (docs/protocol.md "Recovery"). The
 * home holds a new key for the identity (`keyledger init --id ID --device NAME`). Before anything is
 * sent, the server is authenticated (an expected chain id, else trust on first use through
 * `onServer`) and the ledger's state proof must show this very recovery key as the identity's. The
 * recovery key, the new device's key and the next recovery key then sign one RecoveryStatement; the
 * Recovered receipt must prove exactly that recovery, and the ledger is pinned in the home as a
 * registration does. An answer lost or refused on the way is no verdict: the ledger is asked.
 */
import { type KeyRecordProof, type TransactionReceipt, verifyKeyRecordProof } from '../ledger/proofs.js';
import type { KeyRecord } from '../ledger/state-machine.js';
import type { TxBodies } from '../ledger/transactions.js';
import { signDetached } from '../pgp/messages.js';
import type { RecoveryKeyPair } from '../pgp/recovery-key.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { ReceiptSchema } from '../protocol/schemas/ledger.js';
import { RecoveryReply } from '../protocol/schemas/recovery.js';
import { type RecoveryStatement, statementBytes } from '../protocol/statements.js';
import { callJson, endpoint } from './http.js';
import { openDeviceKey } from './identity.js';
import {
  authenticateServer,
  fetchKeyRecordProof,
  pinServer,
  type ServerAuthentication,
  type ServerInfo,
  verifiedReceipt,
} from './register.js';
import { checkReply } from './reply.js';
import type { ClientStore } from './store.js';
import { unverifiedAnswer } from './unverified-answer.js';

/** Recovery keys themselves, for users of the package (made, read from a file, rebuilt from paper). */
export { generateRecoveryKey, readRecoveryKey, recoveryKeyFromPaper } from '../pgp/recovery-key.js';
export type { RecoveryKeyPair };

/** Options of {@link recoverIdentity}. */
export interface RecoverOptions extends ServerAuthentication {
  /** The new device's home: the identity and its new key, not on the ledger yet. */
  home: ClientStore;
  passphrase?: string;
  /** The new device's name (the schema's DeviceName); default the home's `device`. */
  name?: string;
  /** The identity's recovery key, as the ledger holds it now. */
  recovery: RecoveryKeyPair;
  /**
   * The recovery key that replaces it (`generateRecoveryKey`): write its private part somewhere
   * safe before calling, so that nothing is lost if the answer is.
   */
  nextRecovery: RecoveryKeyPair;
  now?: () => number;
}

/** A recovery the ledger holds, its receipt verified. */
export interface Recovered {
  verified: true;
  id: string;
  name: string;
  /** The new device's key: the identity's only device now. */
  fingerprint: string;
  /**
   * The identity's recovery key now: `nextRecovery`'s fingerprint, or, when an earlier try's answer
   * was lost, that try's next recovery key (keep that one's file).
   */
  recoveryKey: string;
  height: number;
  txid: string;
  chain: string;
}

/**
 * Recovers the home's identity on this device; see the module comment.
 * @throws KlError `KL_BAD_INPUT` without a device name or for a recovery key of another identity;
 *   `KL_RECOVERY_INVALID` when the ledger does not hold `recovery` as the identity's recovery key
 *   (nothing is sent then); `KL_SERVER_KEY_MISMATCH`; what `onServer` throws; the server's refusal
 *   (not authenticated) when the ledger does not show the recovery; `KL_RECEIPT_INVALID`.
 */
export async function recoverIdentity(o: RecoverOptions): Promise<Recovered> {
  const now = o.now ?? Date.now;
  const { identity, key, name } = await openDeviceKey(o.home, o.passphrase, o.name);
  for (const k of [o.recovery, o.nextRecovery])
    if (k.id !== identity.id)
      throw new KlError('KL_BAD_INPUT', `the recovery key is for ${k.id}; this device is for ${identity.id}`);
  const { info } = await authenticateServer(o, undefined, 'recovery');
  const before = await provenRecord(o.server, info, identity.id);
  // Done already (an earlier try whose answer was lost): the ledger says so.
  if (recoveredBy(before, identity.fingerprint, o.recovery.fingerprint)) {
    const receipt = await receiptOf(o.server, before!.deviceAdded!.added.txid);
    const done = recovered(info, receipt, {
      id: identity.id,
      name,
      fingerprint: identity.fingerprint,
      recovery: o.recovery.fingerprint,
    });
    await pinServer(o.home, { server: o.server, info, receipt, at: now() });
    return done;
  }
  if (before?.recovery?.fingerprint !== o.recovery.fingerprint)
    throw new KlError(
      'KL_RECOVERY_INVALID',
      `the ledger does not hold this recovery key (${o.recovery.fingerprint}) for ${identity.id}: it was replaced, used, or is of another ledger`,
    );
  const statement: RecoveryStatement = {
    type: 'keyledger/recover',
    v: 1,
    chain: info.chain,
    id: identity.id,
    recovery: o.recovery.fingerprint,
    name,
    fingerprint: identity.fingerprint,
    nextRecovery: o.nextRecovery.fingerprint,
    time: now(),
  };
  const data = statementBytes(statement);
  const date = new Date(statement.time);
  const body = {
    statement: JSON.stringify(statement),
    signature: await signDetached(data, o.recovery.key, date),
    device: { publicKey: identity.publicKey, signature: await key.signDetached(data, date) },
    nextRecovery: {
      publicKey: o.nextRecovery.publicKey,
      signature: await signDetached(data, o.nextRecovery.key, date),
    },
  };
  let receipt: TransactionReceipt;
  try {
    const answer = await callJson<unknown>('POST', endpoint(o.server, 'v1/recover'), body);
    receipt = checkReply(RecoveryReply, answer, 'KL_PROTOCOL', 'POST /v1/recover')
      .receipt as TransactionReceipt;
  } catch (err) {
    // Plain HTTP: a refusal or a lost answer is no verdict until the ledger agrees.
    const proven = await provenRecovery(o.server, info, statement);
    if (!proven) throw isKlError(err) ? unverifiedAnswer(err) : err;
    receipt = proven;
  }
  const done = recovered(info, receipt, statement);
  await pinServer(o.home, { server: o.server, info, receipt, at: now() });
  return done;
}

/** Whether `record` shows the identity recovered onto `device` with the recovery key `recovery`. */
function recoveredBy(record: KeyRecord | null, device: string, recovery: string): boolean {
  const by = record?.deviceAdded?.approvedBy;
  return (
    record?.status === 'active' &&
    record.fingerprint === device &&
    !!by &&
    'recovery' in by &&
    by.recovery === recovery
  );
}

async function receiptOf(server: string, txid: string): Promise<TransactionReceipt> {
  const answer = await callJson<unknown>('GET', endpoint(server, `v1/ledger/tx/${txid}`));
  return checkReply(ReceiptSchema, answer, 'KL_RECEIPT_INVALID', 'GET /v1/ledger/tx') as TransactionReceipt;
}

/** The identity's key record as the ledger proves it against the genesis, or null when it holds none. */
async function provenRecord(server: string, info: ServerInfo, id: string): Promise<KeyRecord | null> {
  const proof: KeyRecordProof = await fetchKeyRecordProof(server, id);
  const checked = verifyKeyRecordProof({ genesis: info.genesis, servers: info.admitted, proof });
  if (!checked.verified || proof.id !== id)
    throw new KlError('KL_PROOF_INVALID', `the ledger's key record of ${id} does not verify`);
  return checked.record ?? null;
}

/** The recovery's receipt when the ledger shows it done (see {@link recoverIdentity}), else undefined. */
async function provenRecovery(
  server: string,
  info: ServerInfo,
  statement: RecoveryStatement,
): Promise<TransactionReceipt | undefined> {
  try {
    const record = await provenRecord(server, info, statement.id);
    if (!recoveredBy(record, statement.fingerprint, statement.recovery)) return undefined;
    if (record!.recovery?.fingerprint !== statement.nextRecovery) return undefined;
    return await receiptOf(server, record!.deviceAdded!.added.txid);
  } catch {
    return undefined;
  }
}

/**
 * Verifies the Recovered receipt: this identity, recovery key, device key and name, and, for the
 * statement just sent, its time and next recovery key.
 */
function recovered(
  info: ServerInfo,
  receipt: TransactionReceipt,
  expected: Pick<RecoveryStatement, 'id' | 'name' | 'fingerprint' | 'recovery'> & Partial<RecoveryStatement>,
): Recovered {
  const check = verifiedReceipt(info, receipt, 'recovery');
  const { tx } = check.envelope;
  const body = tx.body as TxBodies['Recovered'];
  if (
    tx.type !== 'Recovered' ||
    body.id !== expected.id ||
    body.recovery !== expected.recovery ||
    body.device.fingerprint !== expected.fingerprint ||
    body.device.name !== expected.name ||
    (expected.time !== undefined && body.time !== expected.time) ||
    (expected.nextRecovery !== undefined && body.nextRecovery.fingerprint !== expected.nextRecovery)
  )
    throw new KlError('KL_RECEIPT_INVALID', 'the receipt is for another recovery');
  return {
    verified: true,
    id: body.id,
    name: body.device.name,
    fingerprint: body.device.fingerprint,
    recoveryKey: body.nextRecovery.fingerprint,
    height: check.height,
    txid: check.txid,
    chain: info.chain,
  };
}
