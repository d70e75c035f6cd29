/**
 * Key rotation for a home directory (`keyledger rotate-key`): make or bring the new key, keep it in
 * rotation.json, log in with the current key and ask the server to write KeyRotated (signed by both
 * keys), verify the receipt, install the new key, and log in with it to prove it works. A rotation
 * interrupted after the ledger switched keys is finished by running it again.
 */
import { KlError } from '../protocol/errors.js';
import { isOutage } from './failover.js';
import { clientKeyFor, type KeySource, prepareKey } from './identity.js';
import { connect, type KeyChangeReceipt } from './session.js';
import type { ClientStore, IdentityFile } from './store.js';

/** Options of {@link rotateKey}. */
export interface RotateKeyOptions {
  home: ClientStore;
  /** Passphrase of the current key (file keys; optional for gpg keys). */
  passphrase?: string;
  /** The new key. Generated and imported keys are protected with their own passphrase. */
  next: KeySource;
  /** Passphrase of the new key, for the final login (default: next.passphrase). */
  nextPassphrase?: string;
  now?: () => number;
  timeoutMs?: number;
  /** Use this server only (`--server URL`): checked first, as for a login (server-trust.ts). */
  server?: string;
}

/** What {@link rotateKey} did. */
export interface RotateKeyResult {
  verified: true;
  oldFingerprint: string;
  identity: IdentityFile;
  /** Receipt of KeyRotated; absent when an interrupted rotation was finished (the ledger had it). */
  rotation?: KeyChangeReceipt;
  /** The session opened with the new key to prove it works (already closed). */
  checkedSessionId: string;
}

async function loginWithNewKey(o: RotateKeyOptions, identity: IdentityFile, privateKey?: string) {
  const passphrase = o.nextPassphrase ?? ('passphrase' in o.next ? o.next.passphrase : undefined);
  const key = await clientKeyFor(identity, passphrase, () => {
    if (privateKey === undefined) throw new KlError('KL_DATA_DIR', 'the new private key is missing');
    return privateKey;
  });
  const session = await connect({
    home: o.home,
    ...(o.server !== undefined ? { server: o.server } : {}),
    key,
    ...(o.now ? { now: o.now } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  });
  await session.close();
  return session.sessionId;
}

/**
 * Rotates the home's key on the ledger (the key record's rotation history; docs/protocol.md
 * "Phases 3 and 4", Key revocation and rotation).
 */
export async function rotateKey(o: RotateKeyOptions): Promise<RotateKeyResult> {
  const current = await o.home.readIdentity();
  const leftOver = await o.home.readPendingRotation();
  if (leftOver) {
    // An earlier run stopped after asking for the rotation. If the ledger has the new key, the new
    // key logs in and the rotation only needs installing; otherwise start again.
    try {
      const checkedSessionId = await loginWithNewKey(o, leftOver.identity, leftOver.privateKey);
      const identity = await o.home.installPendingRotation();
      return { verified: true, oldFingerprint: current.fingerprint, identity, checkedSessionId };
    } catch (err) {
      // Unreachable server: keep the new key, the ledger may have it. A refusal of a login is a
      // plaintext answer, which anyone on the path can forge: the new key is forgotten only once
      // the current key logs in (mutual authentication: the ledger still holds the current key).
      if (!(err instanceof KlError) || isOutage(err)) throw err;
      const check = await connect({
        home: o.home,
        ...(o.server !== undefined ? { server: o.server } : {}),
        ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}),
        ...(o.now ? { now: o.now } : {}),
        ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
      });
      await check.close();
      await o.home.discardPendingRotation();
    }
  }
  const prepared = await prepareKey({ ...o.next, id: current.id, name: current.name });
  if (prepared.key.fingerprint === current.fingerprint)
    throw new KlError('KL_BAD_INPUT', 'the new key is the key already registered');
  const identity: IdentityFile = {
    v: 1,
    id: current.id,
    name: current.name,
    ...prepared.key,
  };
  const nextKey = await clientKeyFor(
    identity,
    o.nextPassphrase ?? ('passphrase' in o.next ? o.next.passphrase : undefined),
    () => prepared.privateKey!,
  );
  await o.home.writePendingRotation({
    v: 1,
    identity,
    ...(prepared.privateKey ? { privateKey: prepared.privateKey } : {}),
    startedAt: (o.now ?? Date.now)(),
  });
  const session = await connect({
    home: o.home,
    ...(o.server !== undefined ? { server: o.server } : {}),
    ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}),
    ...(o.now ? { now: o.now } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  }).catch(async (err) => {
    await o.home.discardPendingRotation();
    throw err;
  });
  let rotation: KeyChangeReceipt;
  try {
    rotation = await session.rotateKey(nextKey, o.timeoutMs ? { timeoutMs: o.timeoutMs } : {});
  } catch (err) {
    // A typed refusal sealed in the live session means the ledger did not change: forget the new
    // key. Anything else (the connection dropped, no answer, the session ended under the request,
    // e.g. because the rotation was written) may have happened after the write: keep rotation.json
    // so that running the rotation again finishes or restarts it.
    if (
      err instanceof KlError &&
      err.code !== 'KL_NETWORK' &&
      !err.code.startsWith('KL_SESSION_') &&
      !session.isClosed
    )
      await o.home.discardPendingRotation();
    throw err;
  } finally {
    if (!session.isClosed) await session.close().catch(() => {});
  }
  const installed = await o.home.installPendingRotation();
  const checkedSessionId = await loginWithNewKey(o, installed, prepared.privateKey);
  return {
    verified: true,
    oldFingerprint: current.fingerprint,
    identity: installed,
    rotation,
    checkedSessionId,
  };
}
