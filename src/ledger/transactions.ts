/**
 * Ledger transactions: their types, bodies, canonical encoding and ids.
 *
 * Wire form (an *envelope*):
 *   { tx: { v: 1, chain, type, time, nonce, signer, body }, sig }
 * `sig` is the registrar's (or validator's) Ed25519 signature over TX_DOMAIN ‖ JCS(tx) (RFC 8785).
 * The transaction id is the RFC 6962 leaf hash of JCS(envelope): SHA-256(0x00 ‖ JCS(envelope)), hex.
 * So a transaction's id *is* its leaf in the block's Merkle tree.
 */
import { toHex, utf8 } from '../protocol/bytes.js';
import { canonicalBytes, canonicalize } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { isCanonicalIdentity } from '../protocol/identity.js';
import { check } from '../protocol/schemas/check.js';
import {
  EnvelopeSchema,
  type IDENTITY_ROLES,
  type REVOCATION_REASONS,
  TransactionSchema,
  TX_BODY_SCHEMAS,
  type TX_TYPES,
} from '../protocol/schemas/transactions.js';
import { TX_DOMAIN } from './domains.js';
import { leafHash } from './merkle.js';
import { SIGNATURE_B64, type SigningKey, verifySignature } from './signing-keys.js';

/** Largest canonical envelope accepted, in bytes. */
export const MAX_TX_BYTES = 64 * 1024;
/** OpenPGP v4 (40 hex) or v6 (64 hex) fingerprint, lowercase. */
export const FINGERPRINT = /^([0-9a-f]{40}|[0-9a-f]{64})$/;
// The limits and the lists of types, roles and reasons are the schemas' (protocol/schemas/).
export { MAX_ARMORED_KEY, MAX_ARMORED_SIGNATURE } from '../protocol/schemas/fields.js';
export { IDENTITY_ROLES, REVOCATION_REASONS, TX_TYPES } from '../protocol/schemas/transactions.js';
/** An identity role. */
export type IdentityRole = (typeof IDENTITY_ROLES)[number];
/** A transaction type. */
export type TxType = (typeof TX_TYPES)[number];

/**
 * A server of the deployment that a registrar runs (docs/deploy-besu.md "A second server"): the key
 * it signs the blocks it derives with, the OpenPGP key clients log in against, its Ethereum account
 * and its public URL.
 */
export interface NodeInfo {
  validator: { keyId: string; publicKey: string };
  server: { fingerprint: string; publicKey: string };
  account?: string;
  url?: string;
}

/** A validator's approval of a governance change. */
export interface Approval {
  validator: string;
  sig: string;
}

/** Bodies by transaction type. */
export interface TxBodies {
  KeyRegistered: {
    id: string;
    name: string;
    fingerprint: string;
    publicKey: string;
    algorithm: string;
    /** The name of the device that holds this key, the identity's first (docs/ledger.md "Devices"). */
    device?: string;
  };
  KeyRotated: {
    id: string;
    oldFingerprint: string;
    fingerprint: string;
    publicKey: string;
    algorithm: string;
    /** Armored detached signatures over the rotation statement, by the old and by the new key. */
    oldKeySignature: string;
    newKeySignature: string;
  };
  KeyRevoked: {
    id: string;
    fingerprint: string;
    reason: (typeof REVOCATION_REASONS)[number];
    by: 'owner' | 'admin';
    /** Armored detached signature of the owner over the revocation statement, when `by` is owner. */
    ownerSignature?: string;
    /** Identity of the admin who revoked, when `by` is admin. */
    admin?: string;
  };
  HashAnchored: { hash: string; algorithm: 'sha256'; id?: string; label?: string };
  AuditEvent: {
    event: string;
    at: number;
    subject?: string;
    session?: string;
    detail?: Record<string, string | number | boolean>;
  };
  RegistrarAdded: {
    keyId: string;
    publicKey: string;
    name: string;
    /** The server this registrar runs, on an engine ordered by a chain (see node-admission.ts). */
    node?: NodeInfo;
    govSeq: number;
    approvals: Approval[];
  };
  RegistrarRemoved: { keyId: string; govSeq: number; approvals: Approval[] };
  RoleGranted: { id: string; role: IdentityRole; govSeq: number; approvals: Approval[] };
  RoleRevoked: { id: string; role: IdentityRole; govSeq: number; approvals: Approval[] };
  /**
   * A further device key of an identity (docs/ledger.md "Devices"): the new key signed the
   * {@link DeviceAdditionStatement} (proof of possession), and an active device of the identity
   * signed the same statement, or an operator added it.
   */
  DeviceAdded: {
    id: string;
    name: string;
    fingerprint: string;
    publicKey: string;
    algorithm: string;
    /** The statement's time. */
    time: number;
    approvedBy: { device: string; signature: string } | { admin: string };
    newKeySignature: string;
  };
  /** One device key of an identity revoked; the others stay (docs/ledger.md "Devices"). */
  DeviceRevoked: {
    id: string;
    fingerprint: string;
    reason: (typeof REVOCATION_REASONS)[number];
    revokedBy: { device: string; signature: string; time: number } | { admin: string };
  };
  /**
   * The identity's recovery key, set or replaced (docs/ledger.md "Recovery"): an active device and
   * the recovery key both signed the {@link RecoveryKeyStatement}. A recovery key never logs in.
   */
  RecoveryKeySet: {
    id: string;
    fingerprint: string;
    publicKey: string;
    algorithm: string;
    /** The statement's time. */
    time: number;
    setBy: { device: string; signature: string };
    /** The recovery key's own signature over the statement (proof of possession). */
    keySignature: string;
    /**
     * The recovery key it replaces, which signed the statement too: a device alone cannot take away
     * the key that recovers the identity from a stolen device.
     */
    replaces?: { fingerprint: string; signature: string };
  };
  /**
   * The identity recovered on a new device with its recovery key (docs/ledger.md "Recovery"): every
   * device is revoked, `device` becomes the only one and `nextRecovery` the recovery key. All three
   * keys signed the {@link RecoveryStatement}.
   */
  Recovered: {
    id: string;
    /** Fingerprint of the recovery key used (the one on the ledger until now). */
    recovery: string;
    signature: string;
    /** The statement's time. */
    time: number;
    device: RecoveryKeyPart & { name: string };
    nextRecovery: RecoveryKeyPart;
  };
}

/** A key that comes with a recovery, and its signature over the recovery statement. */
export interface RecoveryKeyPart {
  fingerprint: string;
  publicKey: string;
  algorithm: string;
  signature: string;
}

/** The signed part of a transaction. */
export interface Transaction<T extends TxType = TxType> {
  v: 1;
  /** Chain id: hash of the genesis document. */
  chain: string;
  type: T;
  /** Milliseconds since the epoch, by the signer's clock. */
  time: number;
  /** 16 random bytes, hex: makes every transaction unique. */
  nonce: string;
  /** Key id of the signing registrar or validator. */
  signer: string;
  body: TxBodies[T];
}

/** A transaction with its signature: what is stored in blocks. */
export interface TxEnvelope<T extends TxType = TxType> {
  tx: Transaction<T>;
  sig: string;
}

/** What a caller asks the ledger to write. */
export type TxIntent = { [T in TxType]: { type: T; body: TxBodies[T] } }[TxType];

/**
 * Checks the shape of a body for its type, including that identities are canonical.
 * @throws KlError `KL_TX_MALFORMED`
 */
export function checkBody(type: TxType, body: unknown): void {
  check(TX_BODY_SCHEMAS[type], body, 'KL_TX_MALFORMED', 'body');
  const b = body as Record<string, unknown>;
  for (const field of ['id', 'admin'] as const) {
    if (b[field] !== undefined && !isCanonicalIdentity(b[field])) {
      throw new KlError(
        'KL_TX_MALFORMED',
        `body.${field} must be a canonical identity (lower-case email address)`,
        {
          field: `body.${field}`,
        },
      );
    }
  }
  if (type === 'KeyRevoked') {
    const r = body as TxBodies['KeyRevoked'];
    if (r.by === 'owner' && !r.ownerSignature) {
      throw new KlError('KL_TX_MALFORMED', 'an owner revocation must carry the owner signature', {
        field: 'body.ownerSignature',
      });
    }
    if (r.by === 'admin' && !r.admin) {
      throw new KlError('KL_TX_MALFORMED', 'an admin revocation must name the admin', {
        field: 'body.admin',
      });
    }
  }
}

/**
 * Parses and checks an envelope that came from outside: shape, size, body, and signature against
 * `signerKey` (the caller looks the signer up). Returns the envelope and its id.
 * @throws KlError `KL_TX_MALFORMED`, `KL_TX_TOO_LARGE`
 */
export function checkEnvelopeShape(value: unknown): {
  envelope: TxEnvelope;
  bytes: Uint8Array;
  txid: string;
} {
  // Outer and per-type shapes are checked in turn: envelope keys, then tx fields, then the body.
  if (!isObject(value)) throw new KlError('KL_TX_MALFORMED', 'transaction must be an object');
  const { tx, ...outerEnvelope } = value;
  check(EnvelopeSchema, { ...outerEnvelope, tx: {} }, 'KL_TX_MALFORMED');
  const v = value as { tx: unknown; sig: string };
  if (!isObject(tx)) throw new KlError('KL_TX_MALFORMED', 'tx must be an object', { field: 'tx' });
  const { body, ...outer } = tx;
  check(TransactionSchema, { ...outer, body: {} }, 'KL_TX_MALFORMED', 'tx');
  checkBody(outer.type as TxType, body);
  if (!SIGNATURE_B64.test(v.sig))
    throw new KlError('KL_TX_MALFORMED', 'sig has the wrong format', { field: 'sig' });
  let bytes: Uint8Array;
  try {
    bytes = canonicalBytes(value);
  } catch (err) {
    throw new KlError('KL_TX_MALFORMED', 'transaction is not canonical JSON', undefined, { cause: err });
  }
  if (bytes.length > MAX_TX_BYTES) {
    throw new KlError(
      'KL_TX_TOO_LARGE',
      `transaction is ${bytes.length} bytes; the limit is ${MAX_TX_BYTES}`,
      {
        limit: MAX_TX_BYTES,
      },
    );
  }
  return { envelope: value as unknown as TxEnvelope, bytes, txid: toHex(leafHash(bytes)) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The transaction id of an envelope (RFC 6962 leaf hash of its canonical bytes), hex. */
export function txidOf(envelope: TxEnvelope): string {
  return toHex(leafHash(canonicalBytes(envelope)));
}

/** True when `envelope.sig` is a valid signature by `publicKey` over the transaction. Never throws. */
export function verifyEnvelopeSignature(envelope: TxEnvelope, publicKey: string): boolean {
  try {
    return verifySignature(publicKey, TX_DOMAIN, canonicalBytes(envelope.tx), envelope.sig);
  } catch {
    return false;
  }
}

/** Options of {@link signTransaction}. */
export interface SignTransactionOptions {
  chain: string;
  intent: TxIntent;
  signer: SigningKey;
  /** Clock, milliseconds since the epoch. */
  now: number;
  /** 16 random bytes as hex. */
  nonce: string;
}

/** Builds and signs an envelope. The body is checked first. */
export function signTransaction(options: SignTransactionOptions): TxEnvelope {
  return signTransactionBytes(options).envelope;
}

/** Like {@link signTransaction}, also returning the envelope's canonical bytes (computed once). */
export function signTransactionBytes({ chain, intent, signer, now, nonce }: SignTransactionOptions): {
  envelope: TxEnvelope;
  bytes: Uint8Array;
} {
  const unsigned = prepareTransaction({ chain, intent, signer: signer.keyId, now, nonce });
  return sealTransaction(unsigned, signTransactionText(signer, unsigned.text));
}

/** A transaction built and checked, waiting for its signature. */
export interface UnsignedTransaction {
  tx: Transaction;
  /** The transaction's canonical JSON: what its signer signs. */
  text: string;
}

/**
 * Builds a transaction from an intent (the body is checked first) and its canonical text.
 * @throws KlError `KL_TX_MALFORMED`
 */
export function prepareTransaction({
  chain,
  intent,
  signer,
  now,
  nonce,
}: Omit<SignTransactionOptions, 'signer'> & { signer: string }): UnsignedTransaction {
  checkBody(intent.type, intent.body);
  const tx = { v: 1, chain, type: intent.type, time: now, nonce, signer, body: intent.body } as Transaction;
  return { tx, text: canonicalize(tx) };
}

/** The signature (base64url) of a transaction's canonical text, under the transaction domain. */
export function signTransactionText(signer: SigningKey, text: string): string {
  return signer.sign(TX_DOMAIN, utf8(text));
}

/** The signed envelope of a prepared transaction, and its canonical bytes. */
export function sealTransaction(
  { tx, text }: UnsignedTransaction,
  sig: string,
): { envelope: TxEnvelope; bytes: Uint8Array } {
  // RFC 8785 orders "sig" before "tx"; the signed text is already canonical.
  const bytes = utf8(`{"sig":${JSON.stringify(sig)},"tx":${text}}`);
  return { envelope: { tx, sig }, bytes };
}
