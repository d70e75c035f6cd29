/**
 * Schemas of the signed statements as they arrive from outside (protocol/statements.ts builds them;
 * docs/protocol.md lists them): the registration statement, the sealed identity proof once opened,
 * and the owner's revocation and rotation statements sent on a session.
 */
import { Type } from 'typebox';
import { B64url32, DeviceName, DisplayName, Fingerprint, Hash, Identity, Time } from './fields.js';

const closed = { additionalProperties: false } as const;

/** Longest armored sealed identity proof accepted (one PKESK and a short SEIPD; ~700 bytes in practice). */
export const MAX_SEALED_PROOF = 4096;

/** How a person proves the identity at registration. */
export const ProofMethod = Type.Enum(['invite', 'email']);

/** docs/protocol.md "Phase 1", step 3: the registration statement (statements.ts `RegistrationStatement`). */
export const RegistrationStatementSchema = Type.Object(
  {
    type: Type.Literal('keyledger/register'),
    v: Type.Literal(2),
    chain: Hash,
    id: Identity,
    name: DisplayName,
    fingerprint: Fingerprint,
    device: Type.Optional(DeviceName),
    nonce: B64url32,
    server: Fingerprint,
    time: Time,
    proof: Type.Object(
      { method: ProofMethod, sealed: Type.String({ minLength: 1, maxLength: MAX_SEALED_PROOF }) },
      closed,
    ),
  },
  closed,
);

/** The plaintext of a sealed identity proof, as decrypted (statements.ts `IdentityProofPayload`). */
export const IdentityProofSchema = Type.Object(
  {
    type: Type.Literal('keyledger/identity-proof'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    fingerprint: Fingerprint,
    nonce: B64url32,
    server: Fingerprint,
    method: ProofMethod,
    code: Type.String({ minLength: 4, maxLength: 64 }),
  },
  closed,
);

/** The owner's revocation of its key, as received (statements.ts `RevocationStatement`). */
export const RevocationStatementSchema = Type.Object(
  {
    type: Type.Literal('keyledger/revoke'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    fingerprint: Fingerprint,
    reason: Type.Enum(['compromised', 'superseded', 'retired', 'unspecified']),
    time: Time,
  },
  closed,
);

/** The owner's rotation to a new key, as received (statements.ts `RotationStatement`). */
export const RotationStatementSchema = Type.Object(
  {
    type: Type.Literal('keyledger/rotate'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    oldFingerprint: Fingerprint,
    fingerprint: Fingerprint,
    time: Time,
  },
  closed,
);

/** A device addition, as received (statements.ts `DeviceAdditionStatement`). */
export const DeviceAdditionStatementSchema = Type.Object(
  {
    type: Type.Literal('keyledger/add-device'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    name: DeviceName,
    fingerprint: Fingerprint,
    time: Time,
  },
  closed,
);

/** A device revocation, as received (statements.ts `DeviceRevocationStatement`). */
export const DeviceRevocationStatementSchema = Type.Object(
  {
    type: Type.Literal('keyledger/revoke-device'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    fingerprint: Fingerprint,
    reason: Type.Enum(['compromised', 'superseded', 'retired', 'unspecified']),
    time: Time,
  },
  closed,
);

/**
 * The plaintext of an operator's device invitation as the new device seals it to the server key
 * (docs/protocol.md "Devices"): it repeats what the request's statement binds, so a sealed
 * invitation copied into another request (another key, identity, ledger or time) is refused.
 */
export const DeviceInviteSchema = Type.Object(
  {
    type: Type.Literal('keyledger/device-invite'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    fingerprint: Fingerprint,
    time: Time,
    code: Type.String({ minLength: 4, maxLength: 64 }),
  },
  closed,
);

/** A recovery key's registration, as received (statements.ts `RecoveryKeyStatement`). */
export const RecoveryKeyStatementSchema = Type.Object(
  {
    type: Type.Literal('keyledger/recovery-key'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    fingerprint: Fingerprint,
    time: Time,
  },
  closed,
);

/** A recovery on a new device, as received (statements.ts `RecoveryStatement`). */
export const RecoveryStatementSchema = Type.Object(
  {
    type: Type.Literal('keyledger/recover'),
    v: Type.Literal(1),
    chain: Hash,
    id: Identity,
    recovery: Fingerprint,
    name: DeviceName,
    fingerprint: Fingerprint,
    nextRecovery: Fingerprint,
    time: Time,
  },
  closed,
);
