/**
 * Schemas of ledger transactions as they arrive from outside (docs/ledger.md "Transactions"): the
 * signed envelope, the transaction around its body, and one body schema per transaction type. An
 * envelope is checked in turn (envelope, then transaction, then the body for its type) so a refusal
 * names the field that is wrong.
 */
import { Type } from 'typebox';
import {
  Count,
  DeviceName,
  DisplayName,
  Fingerprint,
  Hash,
  Identity,
  MAX_ARMORED_KEY,
  MAX_ARMORED_SIGNATURE,
  Time,
} from './fields.js';
import { KeyId } from './ledger.js';

const closed = { additionalProperties: false } as const;

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
  'DeviceAdded',
  'DeviceRevoked',
  'RecoveryKeySet',
  'Recovered',
] as const;

/** Roles an identity can hold on the ledger (docs/architecture.md "The operator side"). */
export const IDENTITY_ROLES = ['admin'] as const;
/** Why a key was revoked. */
export const REVOCATION_REASONS = ['compromised', 'superseded', 'retired', 'unspecified'] as const;

// One armored block (RFC 4880 §6.2) whose body has no other armor line: a block that ends as another
// kind, or holds a second block, is not a key or signature (src/pgp/armor.ts checks the same).
const ARMORED_PUBLIC_KEY =
  '^-----BEGIN PGP PUBLIC KEY BLOCK-----\\r?\\n(?:(?!-----)[^\\n]*\\n)+-----END PGP PUBLIC KEY BLOCK-----\\s*$';
const ARMORED_SIGNATURE =
  '^-----BEGIN PGP SIGNATURE-----\\r?\\n(?:(?!-----)[^\\n]*\\n)+-----END PGP SIGNATURE-----\\s*$';

const armoredKey = Type.String({ maxLength: MAX_ARMORED_KEY, pattern: ARMORED_PUBLIC_KEY });
const armoredSig = Type.String({ maxLength: MAX_ARMORED_SIGNATURE, pattern: ARMORED_SIGNATURE });
const algorithm = Type.String({ maxLength: 32, pattern: '^[a-z0-9-]+$' });
const role = Type.Enum([...IDENTITY_ROLES]);
/** A key that comes with a recovery, and its signature over the recovery statement. */
const recoveryKeyPart = { fingerprint: Fingerprint, publicKey: armoredKey, algorithm, signature: armoredSig };
const govSeq = Count;
/** A validator's approval of a governance change. */
const approvals = Type.Array(
  Type.Object(
    { validator: KeyId, sig: Type.String({ maxLength: 86, pattern: '^[A-Za-z0-9_-]{86}$' }) },
    closed,
  ),
  { minItems: 1, maxItems: 64 },
);
/** A flat record of short facts: at most 16 entries, each a short string, an integer or a boolean. */
const detail = Type.Record(
  Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,39}$' }),
  Type.Union(
    [
      Type.String({ maxLength: 256 }),
      Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
      Type.Boolean(),
    ],
    { description: 'a short string, an integer or a boolean' },
  ),
  { ...closed, maxProperties: 16 },
);

/**
 * A server of the deployment run by a registrar (docs/deploy-besu.md "A second server"): the key it
 * signs the blocks it derives with, the OpenPGP key clients log in against, and where it is.
 */
export const NodeInfoSchema = Type.Object(
  {
    validator: Type.Object(
      { keyId: KeyId, publicKey: Type.String({ maxLength: 43, pattern: '^[A-Za-z0-9_-]{43}$' }) },
      closed,
    ),
    server: Type.Object({ fingerprint: Fingerprint, publicKey: armoredKey }, closed),
    account: Type.Optional(Type.String({ maxLength: 42, pattern: '^0x[0-9a-f]{40}$' })),
    url: Type.Optional(Type.String({ maxLength: 200, pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' })),
  },
  closed,
);

/** Body schemas by transaction type: every allowed field, its type and limits. */
export const TX_BODY_SCHEMAS = {
  KeyRegistered: Type.Object(
    {
      id: Identity,
      name: DisplayName,
      fingerprint: Fingerprint,
      publicKey: armoredKey,
      algorithm,
      device: Type.Optional(DeviceName),
    },
    closed,
  ),
  KeyRotated: Type.Object(
    {
      id: Identity,
      oldFingerprint: Fingerprint,
      fingerprint: Fingerprint,
      publicKey: armoredKey,
      algorithm,
      oldKeySignature: armoredSig,
      newKeySignature: armoredSig,
    },
    closed,
  ),
  KeyRevoked: Type.Object(
    {
      id: Identity,
      fingerprint: Fingerprint,
      reason: Type.Enum([...REVOCATION_REASONS]),
      by: Type.Enum(['owner', 'admin']),
      ownerSignature: Type.Optional(armoredSig),
      admin: Type.Optional(Identity),
    },
    closed,
  ),
  HashAnchored: Type.Object(
    {
      hash: Hash,
      algorithm: Type.Enum(['sha256']),
      id: Type.Optional(Identity),
      label: Type.Optional(Type.String({ maxLength: 200 })),
    },
    closed,
  ),
  AuditEvent: Type.Object(
    {
      event: Type.String({ maxLength: 40, pattern: '^[a-z][a-z0-9_]{1,39}$' }),
      at: Time,
      subject: Type.Optional(Hash),
      session: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]{8,64}$' })),
      detail: Type.Optional(detail),
    },
    closed,
  ),
  RegistrarAdded: Type.Object(
    {
      keyId: KeyId,
      publicKey: Type.String({ maxLength: 43, pattern: '^[A-Za-z0-9_-]{43}$' }),
      name: Type.String({ minLength: 1, maxLength: 64 }),
      node: Type.Optional(NodeInfoSchema),
      govSeq,
      approvals,
    },
    closed,
  ),
  RegistrarRemoved: Type.Object({ keyId: KeyId, govSeq, approvals }, closed),
  RoleGranted: Type.Object({ id: Identity, role, govSeq, approvals }, closed),
  RoleRevoked: Type.Object({ id: Identity, role, govSeq, approvals }, closed),
  DeviceAdded: Type.Object(
    {
      id: Identity,
      name: DeviceName,
      fingerprint: Fingerprint,
      publicKey: armoredKey,
      algorithm,
      /** The time of the addition statement both keys signed. */
      time: Time,
      approvedBy: Type.Union([
        Type.Object({ device: Fingerprint, signature: armoredSig }, closed),
        Type.Object({ admin: Identity }, closed),
      ]),
      newKeySignature: armoredSig,
    },
    closed,
  ),
  DeviceRevoked: Type.Object(
    {
      id: Identity,
      fingerprint: Fingerprint,
      reason: Type.Enum([...REVOCATION_REASONS]),
      /** A device of the identity (its signature over the revocation statement, and its time), or an operator. */
      revokedBy: Type.Union([
        Type.Object({ device: Fingerprint, signature: armoredSig, time: Time }, closed),
        Type.Object({ admin: Identity }, closed),
      ]),
    },
    closed,
  ),
  RecoveryKeySet: Type.Object(
    {
      id: Identity,
      fingerprint: Fingerprint,
      publicKey: armoredKey,
      algorithm,
      /** The time of the statement the device and the recovery key signed. */
      time: Time,
      setBy: Type.Object({ device: Fingerprint, signature: armoredSig }, closed),
      keySignature: armoredSig,
      replaces: Type.Optional(Type.Object({ fingerprint: Fingerprint, signature: armoredSig }, closed)),
    },
    closed,
  ),
  Recovered: Type.Object(
    {
      id: Identity,
      recovery: Fingerprint,
      signature: armoredSig,
      /** The time of the statement all three keys signed. */
      time: Time,
      device: Type.Object({ ...recoveryKeyPart, name: DeviceName }, closed),
      nextRecovery: Type.Object(recoveryKeyPart, closed),
    },
    closed,
  ),
} as const;

/**
 * A transaction around its body (ledger/transactions.ts `Transaction`); the body is checked apart,
 * against {@link TX_BODY_SCHEMAS} for its type, so here it only has to be an object.
 */
export const TransactionSchema = Type.Object(
  {
    // An integer range rather than a constant, so 1.5 is "not an integer".
    v: Type.Integer({ minimum: 1, maximum: 1 }),
    chain: Hash,
    type: Type.Enum([...TX_TYPES]),
    time: Time,
    nonce: Type.String({ maxLength: 32, pattern: '^[0-9a-f]{32}$' }),
    signer: KeyId,
    body: Type.Object({}),
  },
  closed,
);

/** A signed envelope's outer fields; `tx` is checked apart against {@link TransactionSchema}. */
export const EnvelopeSchema = Type.Object(
  { tx: Type.Object({}), sig: Type.String({ maxLength: 86, pattern: '^[A-Za-z0-9_-]{86}$' }) },
  closed,
);
