/**
 * Ledger transactions: their types, bodies, canonical encoding and ids.
 *
 * Wire form (an *envelope*):
 *   { tx: { v: 1, chain, type, time, nonce, signer, body }, sig }
 * `sig` is the registrar's (or validator's) Ed25519 signature over TX_DOMAIN ‖ JCS(tx) (RFC 8785).
 * The transaction id is the RFC 6962 leaf hash of JCS(envelope): SHA-256(0x00 ‖ JCS(envelope)), hex.
 * So a transaction's id *is* its leaf in the block's Merkle tree.
 */
import { canonicalBytes, canonicalize } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { HASH_HEX } from '../protocol/hash.js';
import { isCanonicalIdentity, MAX_IDENTITY_LENGTH, MAX_NAME_LENGTH } from '../protocol/identity.js';
import { checkShape, type FieldShape, type ObjectShape } from '../protocol/shape.js';
import { TX_DOMAIN } from './domains.js';
import { leafHash } from './merkle.js';
import { KEY_ID, PUBLIC_KEY_B64, SIGNATURE_B64, type SigningKey, verifySignature } from './signing-keys.js';

/** Largest canonical envelope accepted, in bytes. */
export const MAX_TX_BYTES = 64 * 1024;
/** Largest armored OpenPGP public key accepted. */
export const MAX_ARMORED_KEY = 32 * 1024;
/** Largest armored OpenPGP signature accepted. */
export const MAX_ARMORED_SIGNATURE = 8 * 1024;

/** OpenPGP v4 (40 hex) or v6 (64 hex) fingerprint, lowercase. */
export const FINGERPRINT = /^([0-9a-f]{40}|[0-9a-f]{64})$/;
// One armored block (RFC 4880 §6.2) whose body has no other armor line: a block that ends as another
// kind, or holds a second block, is not a key or signature (src/pgp/armor.ts checks the same).
const ARMORED_PUBLIC_KEY =
  /^-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(?:(?!-----)[^\n]*\n)+-----END PGP PUBLIC KEY BLOCK-----\s*$/;
const ARMORED_SIGNATURE =
  /^-----BEGIN PGP SIGNATURE-----\r?\n(?:(?!-----)[^\n]*\n)+-----END PGP SIGNATURE-----\s*$/;
const EVENT_NAME = /^[a-z][a-z0-9_]{1,39}$/;
const NONCE = /^[0-9a-f]{32}$/;
const CHAIN = /^[0-9a-f]{64}$/;

/** Every transaction type. */
export const TX_TYPES = [
  'KeyRegistered',
  'KeyRotated',
  'KeyRevoked',
  'HashAnchored',
  'AuditEvent',
  'RegistrarAdded',
  'RegistrarRemoved',
  'RoleGranted',
  'RoleRevoked',
] as const;

/** Roles an identity can hold on the ledger (admins: docs/architecture.md "The operator side"). */
export const IDENTITY_ROLES = ['admin'] as const;
/** An identity role. */
export type IdentityRole = (typeof IDENTITY_ROLES)[number];
/** A transaction type. */
export type TxType = (typeof TX_TYPES)[number];

/** Why a key was revoked. */
export const REVOCATION_REASONS = ['compromised', 'superseded', 'retired', 'unspecified'] as const;

/** A validator's approval of a governance change. */
export interface Approval {
  validator: string;
  sig: string;
}

/** Bodies by transaction type. */
export interface TxBodies {
  KeyRegistered: { id: string; name: string; fingerprint: string; publicKey: string; algorithm: string };
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
  RegistrarAdded: { keyId: string; publicKey: string; name: string; govSeq: number; approvals: Approval[] };
  RegistrarRemoved: { keyId: string; govSeq: number; approvals: Approval[] };
  RoleGranted: { id: string; role: IdentityRole; govSeq: number; approvals: Approval[] };
  RoleRevoked: { id: string; role: IdentityRole; govSeq: number; approvals: Approval[] };
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

const identity: FieldShape = { type: 'string', max: MAX_IDENTITY_LENGTH, min: 3 };
const fingerprint: FieldShape = { type: 'string', max: 64, pattern: FINGERPRINT };
const armoredKey: FieldShape = { type: 'string', max: MAX_ARMORED_KEY, pattern: ARMORED_PUBLIC_KEY };
const armoredSig: FieldShape = { type: 'string', max: MAX_ARMORED_SIGNATURE, pattern: ARMORED_SIGNATURE };
const algorithm: FieldShape = { type: 'string', max: 32, pattern: /^[a-z0-9-]+$/ };
const approvals: FieldShape = {
  type: 'array',
  maxItems: 64,
  minItems: 1,
  items: {
    type: 'object',
    fields: {
      validator: { type: 'string', max: 32, pattern: KEY_ID },
      sig: { type: 'string', max: 86, pattern: SIGNATURE_B64 },
    },
  },
};
const govSeq: FieldShape = { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER };

/** Body shapes: every allowed field, its type and limits. */
export const BODY_SHAPES: { readonly [T in TxType]: ObjectShape } = {
  KeyRegistered: {
    id: identity,
    name: { type: 'string', max: MAX_NAME_LENGTH, min: 1 },
    fingerprint,
    publicKey: armoredKey,
    algorithm,
  },
  KeyRotated: {
    id: identity,
    oldFingerprint: fingerprint,
    fingerprint,
    publicKey: armoredKey,
    algorithm,
    oldKeySignature: armoredSig,
    newKeySignature: armoredSig,
  },
  KeyRevoked: {
    id: identity,
    fingerprint,
    reason: { type: 'string', max: 16, enum: REVOCATION_REASONS },
    by: { type: 'string', max: 8, enum: ['owner', 'admin'] },
    ownerSignature: { ...armoredSig, optional: true },
    admin: { ...identity, optional: true },
  },
  HashAnchored: {
    hash: { type: 'string', max: 64, pattern: HASH_HEX },
    algorithm: { type: 'string', max: 8, enum: ['sha256'] },
    id: { ...identity, optional: true },
    label: { type: 'string', max: 200, optional: true },
  },
  AuditEvent: {
    event: { type: 'string', max: 40, pattern: EVENT_NAME },
    at: { type: 'integer', min: 0, max: 8.64e15 },
    subject: { type: 'string', max: 64, pattern: HASH_HEX, optional: true },
    session: { type: 'string', max: 64, pattern: /^[A-Za-z0-9_-]{8,64}$/, optional: true },
    detail: { type: 'flat-record', maxEntries: 16, maxValueLength: 256, optional: true },
  },
  RegistrarAdded: {
    keyId: { type: 'string', max: 32, pattern: KEY_ID },
    publicKey: { type: 'string', max: 43, pattern: PUBLIC_KEY_B64 },
    name: { type: 'string', max: 64, min: 1 },
    govSeq,
    approvals,
  },
  RegistrarRemoved: { keyId: { type: 'string', max: 32, pattern: KEY_ID }, govSeq, approvals },
  RoleGranted: { id: identity, role: { type: 'string', max: 16, enum: IDENTITY_ROLES }, govSeq, approvals },
  RoleRevoked: { id: identity, role: { type: 'string', max: 16, enum: IDENTITY_ROLES }, govSeq, approvals },
};

const TX_SHAPE: ObjectShape = {
  v: { type: 'integer', min: 1, max: 1 },
  chain: { type: 'string', max: 64, pattern: CHAIN },
  type: { type: 'string', max: 32, enum: TX_TYPES },
  time: { type: 'integer', min: 0, max: 8.64e15 },
  nonce: { type: 'string', max: 32, pattern: NONCE },
  signer: { type: 'string', max: 32, pattern: KEY_ID },
  body: { type: 'object', fields: {} }, // checked per type below
};

/**
 * Checks the shape of a body for its type, including that identities are canonical.
 * @throws KlError `KL_TX_MALFORMED`
 */
export function checkBody(type: TxType, body: unknown): void {
  checkShape(body, BODY_SHAPES[type], 'KL_TX_MALFORMED', 'body');
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
export function checkEnvelopeShape(value: unknown): { envelope: TxEnvelope; bytes: Buffer; txid: string } {
  // Outer and per-type shapes are checked in turn: envelope keys, then tx fields, then the body.
  if (!isObject(value)) throw new KlError('KL_TX_MALFORMED', 'transaction must be an object');
  const { tx, ...outerEnvelope } = value;
  checkShape(
    { ...outerEnvelope, tx: {} },
    { tx: { type: 'object', fields: {} }, sig: { type: 'string', max: 86 } },
    'KL_TX_MALFORMED',
  );
  const v = value as { tx: unknown; sig: string };
  if (!isObject(tx)) throw new KlError('KL_TX_MALFORMED', 'tx must be an object', { field: 'tx' });
  const { body, ...outer } = tx;
  checkShape({ ...outer, body: {} }, TX_SHAPE, 'KL_TX_MALFORMED', 'tx');
  checkBody(outer.type as TxType, body);
  if (!SIGNATURE_B64.test(v.sig))
    throw new KlError('KL_TX_MALFORMED', 'sig has the wrong format', { field: 'sig' });
  let bytes: Buffer;
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
  return { envelope: value as unknown as TxEnvelope, bytes, txid: leafHash(bytes).toString('hex') };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The transaction id of an envelope (RFC 6962 leaf hash of its canonical bytes), hex. */
export function txidOf(envelope: TxEnvelope): string {
  return leafHash(canonicalBytes(envelope)).toString('hex');
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
  bytes: Buffer;
} {
  checkBody(intent.type, intent.body);
  const tx = {
    v: 1,
    chain,
    type: intent.type,
    time: now,
    nonce,
    signer: signer.keyId,
    body: intent.body,
  } as Transaction;
  const txText = canonicalize(tx);
  const sig = signer.sign(TX_DOMAIN, Buffer.from(txText, 'utf8'));
  // RFC 8785 orders "sig" before "tx"; the signed text is already canonical.
  const bytes = Buffer.from(`{"sig":${JSON.stringify(sig)},"tx":${txText}}`, 'utf8');
  return { envelope: { tx, sig }, bytes };
}
