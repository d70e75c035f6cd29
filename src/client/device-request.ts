/**
 * A new device asks to join an identity (docs/protocol.md "Devices"): the home holds a new key for an
 * identity another device of the same person already holds on the ledger. As at registration, the
 * server is authenticated first (an expected chain id, else trust on first use through `onServer`);
 * the new key then signs a DeviceAdditionStatement (proof of possession) and the server answers with
 * a short code the person types on an enrolled device (`keyledger device approve CODE`). The new
 * device polls until that approval is written to the ledger, verifies the DeviceAdded receipt
 * against the genesis, and pins the ledger in server.json exactly as a registration does.
 */

import { activeDevice } from '../ledger/devices.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { verifyKeyRecordProof } from '../ledger/proofs.js';
import type { TxBodies } from '../ledger/transactions.js';
import { readPublicKey } from '../pgp/messages.js';
import { sealTo } from '../pgp/sealed.js';
import { canonicalBytes } from '../protocol/canonical-json.js';
import { deviceCheckNumber } from '../protocol/device-check.js';
import { errorFromWire, isKlError, KlError, wireText } from '../protocol/errors.js';
import { parseInvitation } from '../protocol/invitation.js';
import { DeviceRequestReply, DeviceRequestStatusReply } from '../protocol/schemas/http.js';
import { ReceiptSchema } from '../protocol/schemas/ledger.js';
import {
  type DeviceAdditionStatement,
  type DeviceInvitePayload,
  statementBytes,
} from '../protocol/statements.js';
import { callJson, endpoint } from './http.js';
import { openDeviceKey } from './identity.js';
import {
  authenticateServer,
  fetchKeyRecordProof,
  pinServer,
  type RegisterOptions,
  type ServerInfo,
  type ServerTrust,
  verifiedReceipt,
} from './register.js';
import { checkReply } from './reply.js';
import type { ClientStore } from './store.js';
import { unverifiedAnswer } from './unverified-answer.js';

/** Options of {@link requestDevice}. */
export interface DeviceRequestOptions {
  /** The new device's home: an identity (its new key) not yet on the ledger. */
  home: ClientStore;
  /** Base URL of a server of the identity's ledger. */
  server: string;
  passphrase?: string;
  /** The name to add this device as (the schema's DeviceName); default the home's `device`. */
  name?: string;
  /** Expected chain id, learnt out of band (pins the server); without it the first contact is trusted. */
  expectChain?: string;
  /**
   * An operator's invitation for a further device (`keyledger admin invite ID --device`), as handed
   * over: its pin authenticates the server, and the invitation approves the device at once.
   */
  invite?: string;
  /** Told who the server is before anything is sent; may throw to refuse it (see {@link RegisterOptions}). */
  onServer?: RegisterOptions['onServer'];
  now?: () => number;
  /** How often {@link DeviceRequest.wait} asks, ms (default 1,000). */
  pollMs?: number;
}

/** A poll's answer while the request waits for its approval. */
export interface DeviceRequestProgress {
  status: 'pending';
  expiresAt: number;
}

/** The request as the server took it: the code to approve it with, and the wait for that approval. */
export interface DeviceRequest {
  /** What the person types on an enrolled device (`XXXX-XXXX`, Crockford base32). */
  code: string;
  /**
   * The check number (`123 456`) the approving device shows for this request and code: the person
   * types it there, so a request swapped on the way is not approved (protocol/device-check.ts).
   */
  check: string;
  /** When the code stops working, ms. */
  expiresAt: number;
  /** The ledger's chain id (the pin to compare with the enrolled device's). */
  chain: string;
  /** The new key's fingerprint, as the enrolled device will show it. */
  fingerprint: string;
  /** The name asked for. */
  name: string;
  /** Whether the server was authenticated (by `expectChain` or the invitation's pin) before the request was sent. */
  trust: ServerTrust;
  /**
   * Polls until the request is approved and written (then verifies the receipt and pins the ledger
   * in the home), refused, or expired.
   * @throws KlError the refusal's code (its text is the server's, not authenticated);
   *   `KL_DEVICE_CODE_INVALID` once the code expired or the server no longer knows it;
   *   `KL_RECEIPT_INVALID` when the receipt does not prove this addition; `KL_NETWORK` when `signal`
   *   aborts.
   */
  wait(o?: { signal?: AbortSignal; onPoll?: (p: DeviceRequestProgress) => void }): Promise<DeviceAdded>;
}

/** What {@link DeviceRequest.wait} returns once the addition is on the ledger and verified. */
export interface DeviceAdded {
  verified: true;
  id: string;
  name: string;
  fingerprint: string;
  height: number;
  txid: string;
  chain: string;
  server: { fingerprint: string };
}

/**
 * Asks `server` to add the home's key to its identity as a device named `name` (docs/protocol.md
 * "Devices"); see the module comment.
 * @throws KlError `KL_BAD_INPUT` without a device name; `KL_SERVER_KEY_MISMATCH` for a server of
 *   another ledger than `expectChain`, or one whose key the genesis does not pin; what `onServer`
 *   throws; the server's refusal of the request (`KL_STATEMENT_INVALID`, `KL_KEY_*`,
 *   `KL_SIGNATURE_INVALID`, `KL_RATE_LIMITED`).
 */
export async function requestDevice(o: DeviceRequestOptions): Promise<DeviceRequest> {
  const now = o.now ?? Date.now;
  const { identity, key, name } = await openDeviceKey(o.home, o.passphrase, o.name);
  const invitation = o.invite === undefined ? undefined : parseInvitation(o.invite);
  const { info, trust } = await authenticateServer(o, invitation?.pin);
  const statement: DeviceAdditionStatement = {
    type: 'keyledger/add-device',
    v: 1,
    chain: info.chain,
    id: identity.id,
    name,
    fingerprint: identity.fingerprint,
    time: now(),
  };
  const signature = await key.signDetached(statementBytes(statement), new Date(statement.time));
  // The invitation travels sealed to the server key the genesis pins, bound to this statement.
  const invite = invitation && (await sealInvite(info, statement, invitation.code));
  const answer = await callJson<unknown>('POST', endpoint(o.server, 'v1/devices/requests'), {
    statement: JSON.stringify(statement),
    publicKey: identity.publicKey,
    signature,
    ...(invite ? { invite } : {}),
  });
  const taken = checkReply(DeviceRequestReply, answer, 'KL_PROTOCOL', 'POST /v1/devices/requests');
  // This very request: an older addition of the same key (replayed) does not count.
  const expected = {
    id: identity.id,
    name,
    fingerprint: identity.fingerprint,
    time: statement.time,
    signature,
  };
  return {
    code: taken.code,
    check: deviceCheckNumber(statement, taken.code),
    expiresAt: taken.expiresAt,
    chain: info.chain,
    fingerprint: identity.fingerprint,
    name,
    trust,
    wait: (w = {}) =>
      waitForApproval({
        home: o.home,
        server: o.server,
        info,
        poll: taken.poll,
        expiresAt: taken.expiresAt,
        expected,
        now,
        pollMs: o.pollMs ?? 1_000,
        ...w,
      }),
  };
}

/** `code` sealed to the server key for the request `statement` (docs/protocol.md "Devices"). */
async function sealInvite(
  info: ServerInfo,
  statement: DeviceAdditionStatement,
  code: string,
): Promise<string> {
  const serverKey = await readPublicKey(info.server.publicKey);
  if (serverKey.getFingerprint() !== info.server.fingerprint)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server key does not have the pinned fingerprint');
  const payload: DeviceInvitePayload = {
    type: 'keyledger/device-invite',
    v: 1,
    chain: statement.chain,
    id: statement.id,
    fingerprint: statement.fingerprint,
    time: statement.time,
    code,
  };
  return sealTo(canonicalBytes(payload), serverKey, new Date(statement.time));
}

/** Extra time past the code's expiry during which a poll may still find it settled, ms. */
const EXPIRY_GRACE_MS = 5_000;

/** The poll loop of {@link DeviceRequest.wait}. */
async function waitForApproval(o: {
  home: ClientStore;
  server: string;
  info: ServerInfo;
  poll: string;
  expiresAt: number;
  expected: { id: string; name: string; fingerprint: string; time: number; signature: string };
  now: () => number;
  pollMs: number;
  signal?: AbortSignal;
  onPoll?: (p: DeviceRequestProgress) => void;
}): Promise<DeviceAdded> {
  const url = endpoint(o.server, `v1/devices/requests/${o.poll}`);
  let expiresAt = o.expiresAt;
  // Added already (an earlier request whose answer was lost or forged): the ledger says so.
  const before = await provenAddition(o);
  if (before) return before;
  for (;;) {
    if (o.signal?.aborted) throw new KlError('KL_NETWORK', 'stopped waiting for the approval');
    let answer: unknown;
    try {
      answer = await callJson<unknown>('GET', url);
    } catch (err) {
      // A server out for a moment is no answer: ask again while the code lasts.
      if (isKlError(err, 'KL_NETWORK') && o.now() <= expiresAt + EXPIRY_GRACE_MS) answer = undefined;
      else {
        // The ledger decides: a poll the server no longer knows (a restart) may follow an addition.
        const proven = await provenAddition(o);
        if (proven) return proven;
        throw isKlError(err) && !isKlError(err, 'KL_NETWORK') ? unverifiedAnswer(err) : err;
      }
    }
    if (answer !== undefined) {
      const status = checkReply(
        DeviceRequestStatusReply,
        answer,
        'KL_PROTOCOL',
        'GET /v1/devices/requests/{poll}',
      );
      if (status.status === 'added') return added(o, status.receipt);
      if (status.status === 'refused') {
        // Plain HTTP, as every HTTP error body: no verdict until the ledger shows the key is not added.
        const proven = await provenAddition(o);
        if (proven) return proven;
        const said = errorFromWire(status.error, 'KL_PROTOCOL');
        throw unverifiedAnswer(
          new KlError(
            said.code,
            `the server answered that the request was refused: "${wireText(said.message, 300)}" — not verified (plain HTTP), and the ledger does not show this key as a device; if a device of yours approved it, run keyledger device request again`,
            { authenticated: false },
          ),
        );
      }
      // Never later than the code's first expiry: an answer cannot keep this device waiting for good.
      expiresAt = Math.min(o.expiresAt, status.expiresAt);
      o.onPoll?.({ status: 'pending', expiresAt });
    }
    if (o.now() > expiresAt + EXPIRY_GRACE_MS)
      throw new KlError(
        'KL_DEVICE_CODE_INVALID',
        'the code expired before a device of this identity approved it: ask again (keyledger device request)',
      );
    await pause(o.pollMs, o.signal);
  }
}

/**
 * The addition as the ledger proves it, when a poll answered something else (a refusal, an unknown
 * request: plain HTTP, which a man in the middle writes at will): the key record's state proof
 * against the genesis shows this key as a device, and the receipt of the transaction that added it is
 * this very request's. Undefined when the ledger does not show it (or cannot be read).
 */
async function provenAddition(o: Parameters<typeof added>[0]): Promise<DeviceAdded | undefined> {
  try {
    const proof = await fetchKeyRecordProof(o.server, o.expected.id);
    const checked = verifyKeyRecordProof({ genesis: o.info.genesis, servers: o.info.admitted, proof });
    if (!checked.verified || proof.id !== o.expected.id || !checked.record) return undefined;
    const record = checked.record;
    if (!activeDevice(record, o.expected.fingerprint)) return undefined;
    const added_ =
      record.devices?.find((d) => d.fingerprint === o.expected.fingerprint)?.added ??
      (record.fingerprint === o.expected.fingerprint ? record.deviceAdded?.added : undefined);
    if (!added_) return undefined;
    const receipt = await callJson<unknown>('GET', endpoint(o.server, `v1/ledger/tx/${added_.txid}`));
    // The state proof shows the key active now: the addition that made it so stands, whichever
    // request of this key it answered.
    return await added(o, checkReply(ReceiptSchema, receipt, 'KL_RECEIPT_INVALID', 'GET /v1/ledger/tx'), {
      sameRequest: false,
    });
  } catch {
    return undefined;
  }
}

/** Verifies the DeviceAdded receipt against what was asked, and pins the ledger in the home. */
async function added(
  o: {
    home: ClientStore;
    server: string;
    info: ServerInfo;
    expected: { id: string; name: string; fingerprint: string; time: number; signature: string };
    now: () => number;
  },
  answer: unknown,
  { sameRequest = true }: { sameRequest?: boolean } = {},
): Promise<DeviceAdded> {
  // The schema bounds the envelope; its body is checked for its transaction type by the verifier.
  const receipt = answer as TransactionReceipt;
  const check = verifiedReceipt(o.info, receipt, 'device addition');
  const tx = check.envelope.tx;
  const body = tx.body as TxBodies['DeviceAdded'];
  if (
    tx.type !== 'DeviceAdded' ||
    body.id !== o.expected.id ||
    body.fingerprint !== o.expected.fingerprint ||
    body.name !== o.expected.name ||
    (sameRequest && (body.time !== o.expected.time || body.newKeySignature !== o.expected.signature))
  )
    throw new KlError('KL_RECEIPT_INVALID', 'the receipt is for another device addition');
  await pinServer(o.home, { server: o.server, info: o.info, receipt, at: o.now() });
  return {
    verified: true,
    id: o.expected.id,
    name: o.expected.name,
    fingerprint: o.expected.fingerprint,
    height: check.height,
    txid: check.txid,
    chain: o.info.chain,
    server: { fingerprint: o.info.server.fingerprint },
  };
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
