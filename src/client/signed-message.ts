/**
 * Checking a signed message kept by `keyledger send --sign --out FILE` (docs/protocol.md "Phases 3 and 4",
 * Signed messages): the OpenPGP signature must be by the key the ledger held for the signer when the
 * message's hash was anchored. The key comes from the ledger, with proofs checked against the
 * genesis: the signer's key record with its state proof at a checkpoint at or after the anchoring
 * block, a consistency proof that this checkpoint's history holds the anchoring block, and — for a
 * key that was replaced since — the transaction that put that key on the ledger. For an identity with
 * several devices (docs/ledger.md "Devices") the key is the one the signature names as its issuer,
 * which must have been an active device key at the anchor: from the verified transaction that put it
 * on the ledger to the one that ended it; a key the record cannot date so is refused, never guessed.
 */

import * as openpgp from 'openpgp';
import { activeDevice } from '../ledger/devices.js';
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
import type { TxBodies, TxEnvelope } from '../ledger/transactions.js';
import { PGP_CONFIG } from '../pgp/config.js';
import { MAX_ARMORED_SIGNATURE, readPublicKey, verifyDetached } from '../pgp/messages.js';
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

  const record: KeyRecord = rec.record;
  const ledger = ledgerReader(server, id, anchor);
  // Keys that came as further devices overlap the others: the history's order no longer dates them,
  // so the signature's issuer is dated on its own (docs/ledger.md "Devices").
  const held = severalDevices(record)
    ? await deviceKeyAtAnchor(ledger, record, signature)
    : await lineKeyAtAnchor(ledger, record);
  if ('reason' in held) return fail(held.reason);
  const key = await readPublicKey(held.publicKey);
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
    current: activeDevice(record, held.fingerprint) !== undefined,
  };
}

/** Whether the record holds or held a key that came as a further device (DeviceAdded or Recovered). */
function severalDevices(record: KeyRecord): boolean {
  return Boolean(record.devices?.length || record.deviceAdded || record.history.some((h) => h.further));
}

/** A transaction of the ledger, fetched with its receipt and verified against the genesis. */
interface LedgerTx {
  index: number;
  envelope: TxEnvelope;
}

/** The identity, the anchor, and the ledger's transactions as this check reads them (each fetched once). */
interface LedgerReader {
  id: string;
  anchor: Position;
  transaction(ref: TxRef): Promise<LedgerTx>;
  /** Where `ref` stands relative to the anchor: its index matters (and is fetched) only in the anchor's block. */
  position(ref: TxRef): Promise<Position>;
}

/** The value `make` gives for `key`, made once and kept in `made`. */
function once<K, V>(made: Map<K, V>, key: K, make: () => V): V {
  if (!made.has(key)) made.set(key, make());
  return made.get(key)!;
}

/** The key that made the signature, as the ledger held it at the anchor, or why it cannot be named. */
type HeldKeyAtAnchor = { fingerprint: string; publicKey: string } | { reason: string };

function ledgerReader(server: SignerQuestion['server'], id: string, anchor: Position): LedgerReader {
  const fetched = new Map<string, Promise<LedgerTx>>();
  const fetchTx = async (ref: TxRef): Promise<LedgerTx> => {
    // The schema bounds the envelope; its body is checked for its transaction type by the verifier.
    const r = checkReply(
      ReceiptSchema,
      await callJson<unknown>('GET', endpoint(server.url, `/v1/ledger/tx/${ref.txid}`)),
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
  const transaction = (ref: TxRef): Promise<LedgerTx> => once(fetched, ref.txid, () => fetchTx(ref));
  return {
    id,
    anchor,
    transaction,
    position: async (ref) =>
      ref.height !== anchor[0] ? [ref.height, 0] : [ref.height, (await transaction(ref)).index],
  };
}

/**
 * The key in force at the anchor for an identity that only ever held one key at a time: the last one
 * put on the ledger before it (docs/ledger.md "State": history lists the earlier keys, oldest first).
 */
async function lineKeyAtAnchor(ledger: LedgerReader, record: KeyRecord): Promise<HeldKeyAtAnchor> {
  const { id, anchor, position } = ledger;
  const keys = timeline(record);
  let held: (typeof keys)[number] | undefined;
  for (const k of keys) {
    if (k.from === null) {
      if (!held) held = k; // the first key, put on the ledger before anything recorded
      continue;
    }
    if (before(await position(k.from), anchor)) held = k;
  }
  if (!held || held.from === null)
    return { reason: `the ledger record of ${id} does not say which key it held at block ${anchor[0]}` };
  if (held.until) {
    if (held.until.known) {
      if (!before(anchor, await position(held.until.ref)))
        return { reason: `${id} held no key at block ${anchor[0]} (revoked before)` };
    } else if (!before(anchor, await position(held.until.ref))) {
      return { reason: `${id} held no key at block ${anchor[0]}` };
    } else {
      return {
        reason: `the key ${held.fingerprint} was revoked before ${id} registered again, and the record does not say when: the signature cannot be tied to block ${anchor[0]}`,
      };
    }
  }
  if (held.fingerprint === record.fingerprint)
    return { fingerprint: held.fingerprint, publicKey: record.publicKey };
  const publicKey = introducedKey((await ledger.transaction(held.from)).envelope, id, held.fingerprint);
  if (publicKey === undefined)
    return { reason: `the ledger's transaction ${held.from.txid} does not hold the key ${held.fingerprint}` };
  return { fingerprint: held.fingerprint, publicKey };
}

/**
 * For an identity with several devices: the key the signature names as its issuer, if the record
 * shows it was an active device key of the identity at the anchor (its start at or before, its end
 * after). Its start is the verified transaction that put exactly that key on the ledger.
 */
async function deviceKeyAtAnchor(
  ledger: LedgerReader,
  record: KeyRecord,
  signature: unknown,
): Promise<HeldKeyAtAnchor> {
  const { id, anchor } = ledger;
  const issuer = await signatureIssuer(signature);
  if ('reason' in issuer) return issuer;
  const introductions = new Map<RecordKey, Promise<Introduction | null>>();
  const introduced = (k: RecordKey) => once(introductions, k, () => introduction(ledger, k));
  const key = await issuingKey(recordKeys(record), issuer, introduced);
  if (!key)
    return {
      reason: `the signature's issuer ${issuer.label} is not a device key the ledger's record of ${id} holds or held`,
    };
  const start = await introduced(key);
  if (!start)
    return {
      reason: `the ledger record of ${id} does not say when the key ${key.fingerprint} became one of its device keys (the transaction that added it is no longer in the record): the signature cannot be tied to block ${anchor[0]}`,
    };
  const outside = await outsideItsTime(ledger, key, start.ref);
  return outside
    ? { reason: outside }
    : { fingerprint: key.fingerprint, publicKey: key.publicKey ?? start.publicKey };
}

/** Why the anchor is not between `key`'s start and its end (or cannot be placed so); null if it is. */
async function outsideItsTime(ledger: LedgerReader, key: RecordKey, start: TxRef): Promise<string | null> {
  const { id, anchor } = ledger;
  const fpr = key.fingerprint;
  if (!before(await ledger.position(start), anchor))
    return `the key ${fpr} was not a device key of ${id} at block ${anchor[0]}: it came onto the ledger after the anchor (block ${start.height})`;
  const end = await keyEnd(ledger, key);
  if (end && !before(anchor, await ledger.position(end.ref)))
    return `the key ${fpr} was no longer a device key of ${id} at block ${anchor[0]}: it left the record at block ${end.ref.height}`;
  if (end && !end.exact)
    return `the key ${fpr} was revoked by block ${end.ref.height} and the record of ${id} does not say when: the signature cannot be tied to block ${anchor[0]}`;
  return null;
}

/** The key a signature names as its issuer: a key ID, and the fingerprint when the signature has it. */
interface Issuer {
  keyId: openpgp.KeyID;
  fingerprint: string | null;
  /** How a reason names it. */
  label: string;
}

async function signatureIssuer(signature: unknown): Promise<Issuer | { reason: string }> {
  const unreadable = { reason: 'the signature cannot be read as one armored OpenPGP signature' };
  if (typeof signature !== 'string' || signature.length > MAX_ARMORED_SIGNATURE) return unreadable;
  let packets: openpgp.Signature['packets'];
  try {
    packets = (await openpgp.readSignature({ armoredSignature: signature, config: PGP_CONFIG })).packets;
  } catch {
    return unreadable;
  }
  const packet = packets.length === 1 ? packets[0] : undefined;
  if (!packet) return unreadable;
  const fingerprint = packet.issuerFingerprint ? hex(packet.issuerFingerprint) : null;
  if (/^0+$/.test(packet.issuerKeyID.toHex()) && !fingerprint)
    return { reason: 'the signature does not name the key that made it' };
  return {
    keyId: packet.issuerKeyID,
    fingerprint,
    label: fingerprint ?? `key ID ${packet.issuerKeyID.toHex()}`,
  };
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Whether the issuer is the primary key with this fingerprint (v4: key ID last 16 digits; v6: first). */
function namesPrimary(issuer: Issuer, fingerprint: string): boolean {
  if (issuer.fingerprint) return issuer.fingerprint === fingerprint;
  const keyId = fingerprint.length === 64 ? fingerprint.slice(0, 16) : fingerprint.slice(-16);
  return issuer.keyId.toHex() === keyId;
}

/** Most retired keys whose armored key is fetched to look for a signing subkey. */
const MAX_SUBKEY_SEARCH = 16;

/**
 * The record's key that made the signature: by its primary fingerprint, else the key holding the
 * issuing subkey (active keys first, from the record; then retired ones, from the transaction that
 * put each on the ledger).
 */
async function issuingKey(
  keys: RecordKey[],
  issuer: Issuer,
  introduced: (k: RecordKey) => Promise<Introduction | null>,
): Promise<RecordKey | undefined> {
  const primary = keys.find((k) => namesPrimary(issuer, k.fingerprint));
  if (primary) return primary;
  const ordered = [...keys.filter((k) => k.publicKey), ...keys.filter((k) => !k.publicKey).reverse()];
  let searched = 0;
  for (const k of ordered) {
    if (!k.publicKey && ++searched > MAX_SUBKEY_SEARCH) return undefined;
    const armored = k.publicKey ?? (await introduced(k))?.publicKey;
    if (armored && (await readPublicKey(armored)).getKeys(issuer.keyId).length > 0) return k;
  }
  return undefined;
}

/** A device key of the record: its armored key when the record holds it, and what dates it. */
interface RecordKey {
  fingerprint: string;
  /** The armored key, for a key the record still holds. */
  publicKey?: string;
  /** The transactions that may have put it on the ledger, likeliest first; each is checked. */
  starts: TxRef[];
  /**
   * What ended it: `exact`, that transaction; `bound`, at or before it; `revocation`, a history
   * revocation whose transaction says which (a DeviceRevoked of this key is exact).
   */
  end: { ref: TxRef; how: 'exact' | 'bound' | 'revocation' } | null;
}

type HistoryEntry = KeyRecord['history'][number];

/**
 * Every key of the record with the candidates for its start (docs/ledger.md "Devices"): a device's
 * latest rotation since it was added, else its addition; the first device line's latest rotation,
 * else its registration. A retired further key is dated only through a rotation, or through the
 * addition of the device of that name still in the record.
 */
function recordKeys(record: KeyRecord): RecordKey[] {
  const h = record.history;
  const sameLine = (further: boolean, name: string | undefined) => (e: HistoryEntry) =>
    e.reason === 'rotated' && (further ? e.further === true && e.device === name : !e.further);
  const lastRotation = (upTo: number, match: (e: HistoryEntry) => boolean, after?: TxRef) => {
    for (let i = upTo - 1; i >= 0; i--)
      if (match(h[i]!) && (!after || h[i]!.replaced.height >= after.height)) return h[i]!.replaced;
    return undefined;
  };
  const held: RecordKey['end'] =
    record.status !== 'revoked'
      ? null
      : record.revocation
        ? { ref: record.revocation.at, how: 'exact' }
        : { ref: record.updated, how: 'bound' };
  const firstStart = record.deviceAdded?.added ?? record.registered;
  const active: RecordKey[] = [
    {
      fingerprint: record.fingerprint,
      publicKey: record.publicKey,
      starts: refs(
        lastRotation(h.length, sameLine(!!record.deviceAdded, record.device), firstStart),
        firstStart,
      ),
      end: held,
    },
    ...(record.devices ?? []).map((d) => ({
      fingerprint: d.fingerprint,
      publicKey: d.publicKey,
      starts: refs(lastRotation(h.length, sameLine(true, d.name), d.added), d.added),
      end: held,
    })),
  ];
  const addedAs = (name: string | undefined): TxRef | undefined =>
    name === undefined
      ? undefined
      : record.device === name && record.deviceAdded
        ? record.deviceAdded.added
        : record.devices?.find((d) => d.name === name)?.added;
  const retired = h.map((e, j): RecordKey => {
    const further = e.further === true;
    const rotation = lastRotation(j, sameLine(further, e.device));
    const earlier = (ref: TxRef | undefined) => (ref && ref.height <= e.replaced.height ? ref : undefined);
    const starts = further
      ? refs(rotation, earlier(addedAs(e.device)))
      : refs(
          rotation,
          h
            .slice(0, j)
            .reverse()
            .find((x) => x.reason === 'revoked')?.replaced,
          earlier(record.registered),
        );
    return {
      fingerprint: e.fingerprint,
      starts,
      end: { ref: e.replaced, how: e.reason === 'rotated' ? 'exact' : 'revocation' },
    };
  });
  return [...active, ...retired];
}

/** The defined refs, each transaction once. */
function refs(...candidates: Array<TxRef | undefined>): TxRef[] {
  const out: TxRef[] = [];
  for (const r of candidates) if (r && !out.some((o) => o.txid === r.txid)) out.push(r);
  return out;
}

/** The transaction that put a key on the ledger, and the armored key it holds. */
interface Introduction {
  ref: TxRef;
  publicKey: string;
}

/** The first candidate start of `key` whose verified transaction puts exactly that key on the ledger. */
async function introduction(ledger: LedgerReader, key: RecordKey): Promise<Introduction | null> {
  for (const ref of key.starts) {
    const publicKey = introducedKey((await ledger.transaction(ref)).envelope, ledger.id, key.fingerprint);
    if (publicKey !== undefined) return { ref, publicKey };
  }
  return null;
}

/**
 * The armored key if `envelope` puts the key `fingerprint` on the ledger for `id` (KeyRegistered,
 * KeyRotated, DeviceAdded, Recovered's new device). A key's fingerprint is bound to one identity for
 * good, so at most one transaction ever does.
 */
function introducedKey(envelope: TxEnvelope, id: string, fingerprint: string): string | undefined {
  const { type, body } = envelope.tx;
  const key =
    type === 'Recovered'
      ? (body as Partial<TxBodies['Recovered']>).device
      : type === 'KeyRegistered' || type === 'KeyRotated' || type === 'DeviceAdded'
        ? (body as Partial<TxBodies['DeviceAdded']>)
        : undefined;
  if ((body as { id?: unknown }).id !== id || key?.fingerprint !== fingerprint) return undefined;
  return typeof key.publicKey === 'string' ? key.publicKey : undefined;
}

/** What ended `key`, and whether the record says exactly when (a revocation: if its transaction revoked that key). */
async function keyEnd(ledger: LedgerReader, key: RecordKey): Promise<{ ref: TxRef; exact: boolean } | null> {
  if (!key.end) return null;
  if (key.end.how !== 'revocation') return { ref: key.end.ref, exact: key.end.how === 'exact' };
  const { tx } = (await ledger.transaction(key.end.ref)).envelope;
  const body = tx.body as Partial<TxBodies['DeviceRevoked']>;
  return {
    ref: key.end.ref,
    exact: tx.type === 'DeviceRevoked' && body.id === ledger.id && body.fingerprint === key.fingerprint,
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
