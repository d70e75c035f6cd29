/**
 * Checking a signed message kept by `keyledger send --sign --out FILE` (docs/protocol.md "Phases 3 and 4",
 * Signed messages): the OpenPGP signature must be by the key the ledger held for the signer when the
 * message's hash was anchored. The key comes from the ledger, with proofs checked against the
 * genesis: the signer's key record with its state proof at a checkpoint at or after the anchoring
 * block, a consistency proof that this checkpoint's history holds the anchoring block, and — for a
 * key that was replaced since — the transaction that put that key on the ledger.
 */

import type { Genesis } from '../ledger/genesis.js';
import {
  type ConsistencyProof,
  type KeyRecordProof,
  type TransactionReceipt,
  verifyCheckpointConsistency,
  verifyKeyRecordProof,
  verifyTransactionReceipt,
} from '../ledger/proofs.js';
import type { KeyRecord, TxRef } from '../ledger/state-machine.js';
import { MAX_TX_CLOCK_SKEW_MS } from '../ledger/state-machine.js';
import type { TxBodies } from '../ledger/transactions.js';
import { readPublicKey, verifyDetached } from '../pgp/messages.js';
import { isKlError } from '../protocol/errors.js';
import { ConsistencyProofSchema, KeyRecordProofSchema, ReceiptSchema } from '../protocol/schemas/ledger.js';
import { callJson, endpoint } from './http.js';
import { checkReply } from './reply.js';

/** The outcome of {@link verifyMessageSigner}. */
export type SignerCheck =
  | {
      verified: true;
      id: string;
      /** Fingerprint of the key that made the signature. */
      fingerprint: string;
      /** Height of the checkpoint the key record was proven against. */
      proofHeight: number;
      /** True when the key is still the identity's current key. */
      current: boolean;
    }
  | { verified: false; reason: string };

/** What {@link verifyMessageSigner} checks. */
export interface SignerQuestion {
  /**
   * The ledger's server (the one pinned in the client's home), the genesis to check against, and the
   * admissions of further servers the client verified (server.json `admitted`).
   */
  server: { url: string; genesis: Genesis; admitted?: readonly unknown[] };
  /** The anchoring receipt, already verified against the genesis. */
  receipt: TransactionReceipt;
  /** The signer's identity, as the anchoring transaction names it. */
  id: string;
  message: string;
  signature: unknown;
}

/** A position on the ledger: block height, then index in the block. */
type Position = [number, number];
const before = (a: Position, b: Position) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/** Verifies the signature of an anchored message against the key the ledger held for its signer. */
export async function verifyMessageSigner(q: SignerQuestion): Promise<SignerCheck> {
  try {
    return await check(q);
  } catch (err) {
    return {
      verified: false,
      reason: isKlError(err) ? `${err.code}: ${err.message}` : `cannot check: ${(err as Error).message}`,
    };
  }
}

async function check({ server, receipt, id, message, signature }: SignerQuestion): Promise<SignerCheck> {
  const url = (path: string) => endpoint(server.url, path);
  const fail = (reason: string): SignerCheck => ({ verified: false, reason });
  const block = receipt.block;
  const anchor: Position = [block.header.height, receipt.index];

  // The signer's key record now, proven against a signed checkpoint…
  const proof: KeyRecordProof = checkReply(
    KeyRecordProofSchema,
    await callJson<unknown>('GET', url(`/v1/ledger/keys/${encodeURIComponent(id)}`)),
    'KL_PROOF_INVALID',
    `GET /v1/ledger/keys/${id}`,
  );
  const rec = verifyKeyRecordProof({ genesis: server.genesis, servers: server.admitted ?? [], proof });
  if (!rec.verified) return fail(`the ledger's key record of ${id} does not verify: ${rec.reason}`);
  if (proof.id !== id) return fail('the ledger answered about another identity');
  if (!rec.record) return fail(`the ledger holds no key for ${id}`);
  if (rec.height < anchor[0]) return fail('the ledger answered with a checkpoint older than the receipt');
  // …whose history holds the anchoring block (so the record's history covers that moment).
  if (rec.height === anchor[0]) {
    if (proof.checkpoint.hash !== block.hash)
      return fail('the ledger holds another block at the receipt height');
  } else {
    const cons: ConsistencyProof = checkReply(
      ConsistencyProofSchema,
      await callJson<unknown>('GET', url(`/v1/ledger/consistency?from=${anchor[0]}&to=${rec.height}`)),
      'KL_PROOF_INVALID',
      'GET /v1/ledger/consistency',
    );
    const c = verifyCheckpointConsistency({ genesis: server.genesis, proof: cons });
    if (!c.verified || cons.older.hash !== block.hash || cons.newer.hash !== proof.checkpoint.hash)
      return fail("the receipt's block is not part of the ledger's history");
  }

  // The identity's keys in order, each with the transaction that put it on the ledger and the one
  // that ended it (docs/ledger.md "State": history lists the earlier keys, oldest first).
  const record: KeyRecord = rec.record;
  // Keys that came as further devices overlap the others: the history's order no longer dates them
  // (docs/ledger.md "Devices"). Refused rather than guessed.
  if (record.devices?.length || record.deviceAdded || record.history.some((h) => h.further))
    return fail(
      `${id} holds or held several device keys at once: tying a signature to the key in force at block ${anchor[0]} is not supported for such identities yet`,
    );
  const keys = timeline(record);
  const position = async (ref: TxRef): Promise<Position> => {
    if (ref.height !== anchor[0]) return [ref.height, 0];
    return [ref.height, (await transaction(ref)).index];
  };
  const transaction = async (ref: TxRef) => {
    // The schema bounds the envelope; its body is checked for its transaction type by the verifier.
    const r = checkReply(
      ReceiptSchema,
      await callJson<unknown>('GET', url(`/v1/ledger/tx/${ref.txid}`)),
      'KL_RECEIPT_INVALID',
      `GET /v1/ledger/tx/${ref.txid}`,
    ) as TransactionReceipt;
    const t = verifyTransactionReceipt({
      genesis: server.genesis,
      servers: server.admitted ?? [],
      receipt: r,
    });
    if (!t.verified || t.txid !== ref.txid || t.height !== ref.height)
      throw new Error(`the ledger's transaction ${ref.txid} does not verify`);
    return { index: r.index, envelope: t.envelope };
  };
  // The key in force at the anchor: the last one put on the ledger before it.
  let held: (typeof keys)[number] | undefined;
  for (const k of keys) {
    if (k.from === null) {
      if (!held) held = k; // the first key, put on the ledger before anything recorded
      continue;
    }
    if (before(await position(k.from), anchor)) held = k;
  }
  if (!held || held.from === null)
    return fail(`the ledger record of ${id} does not say which key it held at block ${anchor[0]}`);
  if (held.until) {
    if (held.until.known) {
      if (!before(anchor, await position(held.until.ref)))
        return fail(`${id} held no key at block ${anchor[0]} (revoked before)`);
    } else if (!before(anchor, await position(held.until.ref))) {
      return fail(`${id} held no key at block ${anchor[0]}`);
    } else {
      return fail(
        `the key ${held.fingerprint} was revoked before ${id} registered again, and the record does not say when: the signature cannot be tied to block ${anchor[0]}`,
      );
    }
  }
  let armored: string;
  if (held.fingerprint === record.fingerprint) armored = record.publicKey;
  else {
    const t = await transaction(held.from);
    const body = t.envelope.tx.body as Partial<TxBodies['KeyRegistered']>;
    if (
      (t.envelope.tx.type !== 'KeyRegistered' && t.envelope.tx.type !== 'KeyRotated') ||
      body.id !== id ||
      body.fingerprint !== held.fingerprint ||
      typeof body.publicKey !== 'string'
    )
      return fail(`the ledger's transaction ${held.from.txid} does not hold the key ${held.fingerprint}`);
    armored = body.publicKey;
  }
  const key = await readPublicKey(armored);
  if (key.getFingerprint().toLowerCase() !== held.fingerprint)
    return fail('the key on the ledger does not match its fingerprint');
  // As of the anchoring block: made then (not later, e.g. with a key stolen since), by that key.
  try {
    await verifyDetached({
      data: new TextEncoder().encode(message),
      armoredSignature: signature,
      key,
      now: new Date(block.header.time),
      maxSkewMs: MAX_TX_CLOCK_SKEW_MS,
    });
  } catch (err) {
    return fail(
      `the signature is not a valid signature over the message by ${id}'s key ${held.fingerprint}, the key the ledger held at block ${anchor[0]}${isKlError(err) ? ` (${err.message})` : ''}`,
    );
  }
  return {
    verified: true,
    id,
    fingerprint: held.fingerprint,
    proofHeight: rec.height,
    current: held.fingerprint === record.fingerprint && record.status === 'active',
  };
}

/** One key of an identity: where it came onto the ledger (null: unrecorded) and what ended it. */
interface HeldKey {
  fingerprint: string;
  from: TxRef | null;
  /** `known`: the ending transaction itself; otherwise only a later bound (re-registration). */
  until: { ref: TxRef; known: boolean } | null;
}

/** The identity's keys, oldest first, from its key record. */
function timeline(record: KeyRecord): HeldKey[] {
  const keys: HeldKey[] = [];
  // `registered` is the last (re-)registration; rotations keep it.
  const lastRegistration = record.history.map((h) => h.reason).lastIndexOf('revoked');
  record.history.forEach((h, j) => {
    const from = j > 0 ? record.history[j - 1]!.replaced : lastRegistration === -1 ? record.registered : null;
    keys.push({
      fingerprint: h.fingerprint,
      from,
      // A rotation ends the key at the rotation; a revocation happened at some point before the
      // re-registration that recorded it.
      until: { ref: h.replaced, known: h.reason === 'rotated' },
    });
  });
  keys.push({
    fingerprint: record.fingerprint,
    from: record.history.length > 0 ? record.history[record.history.length - 1]!.replaced : record.registered,
    until:
      record.status === 'revoked' && record.revocation ? { ref: record.revocation.at, known: true } : null,
  });
  return keys;
}
