/**
 * The exact bytes that are signed or encrypted in registration and login. Every statement is an
 * object with a `type` naming its purpose and a `v`ersion, encoded as RFC 8785 canonical JSON, so a
 * signature made for one step can never be presented at another. docs/protocol.md lists them.
 */
import { canonicalBytes } from './canonical-json.js';
import { sha256Hex } from './hash.js';

/**
 * docs/protocol.md "Phase 1", step 3: what the client signs to prove it holds KprivC.
 * Version 2 carries the identity proof sealed to the server key (docs/protocol.md "Registration on a
 * hostile network"), so the signature binds the sealed proof to this key, identity and nonce.
 */
export interface RegistrationStatement {
  type: 'keyledger/register';
  v: 2;
  /** Ledger chain id (from the genesis). */
  chain: string;
  id: string;
  name: string;
  /** Fingerprint of the key being registered. */
  fingerprint: string;
  /** The name of the device that holds the key (docs/ledger.md "Devices"), if the person gave one. */
  device?: string;
  /** The server's one-time nonce from register/begin. */
  nonce: string;
  /** Fingerprint of the server key the client expects to be talking to. */
  server: string;
  /** Client time, ms. */
  time: number;
  /** The identity proof, encrypted to KpubS: an OpenPGP message whose plaintext is an {@link IdentityProofPayload}. */
  proof: { method: 'invite' | 'email'; sealed: string };
}

/**
 * The plaintext of a sealed identity proof. It repeats what the statement binds, so a sealed proof
 * copied into another statement (another key, identity, nonce or server) is refused when opened.
 */
export interface IdentityProofPayload {
  type: 'keyledger/identity-proof';
  v: 1;
  chain: string;
  id: string;
  /** Fingerprint of the key being registered. */
  fingerprint: string;
  nonce: string;
  server: string;
  method: 'invite' | 'email';
  /** The invitation or emailed code, as the person received it (without the server pin). */
  code: string;
}

/** The identity proof payload that goes with a registration statement (before sealing). */
export function identityProofPayload(
  statement: Omit<RegistrationStatement, 'proof'>,
  proof: { method: 'invite' | 'email'; code: string },
): IdentityProofPayload {
  return {
    type: 'keyledger/identity-proof',
    v: 1,
    chain: statement.chain,
    id: statement.id,
    fingerprint: statement.fingerprint,
    nonce: statement.nonce,
    server: statement.server,
    method: proof.method,
    code: proof.code,
  };
}

/** docs/protocol.md "Phase 2", step 2: what the server encrypts to KpubC and signs with KprivS. */
export interface ChallengePayload {
  type: 'keyledger/challenge';
  v: 1;
  chain: string;
  challengeId: string;
  /** RS: 32 random bytes, base64url. */
  rs: string;
  /** Server ephemeral X25519 public key, base64url. */
  serverEphemeral: string;
  id: string;
  /** Fingerprint of the client key the challenge is encrypted to (the one on the ledger now). */
  fingerprint: string;
  server: string;
  expiresAt: number;
  /** SHA-256 of the client's hello (canonical JSON), hex. */
  helloHash: string;
}

/** docs/protocol.md "Phase 2", step 3: what the client signs with KprivC (challenge RS plus its own RC). */
export interface LoginTranscript {
  type: 'keyledger/login';
  v: 1;
  chain: string;
  id: string;
  fingerprint: string;
  server: string;
  challengeId: string;
  rs: string;
  /** RC: 32 random bytes from the client, base64url. */
  rc: string;
  clientEphemeral: string;
  serverEphemeral: string;
  helloHash: string;
  /** SHA-256 of the armored challenge message exactly as received, hex. */
  challengeHash: string;
}

/**
 * Builds the login transcript (docs/protocol.md "Phase 2", step 3). Client and server each build it from what
 * they saw; the signature only verifies if both saw the same handshake.
 */
export function loginTranscript(fields: Omit<LoginTranscript, 'type' | 'v'>): LoginTranscript {
  return { type: 'keyledger/login', v: 1, ...fields };
}

/** The canonical bytes of a statement: what is signed. */
export function statementBytes(statement: Statement): Uint8Array {
  return canonicalBytes(statement);
}

/** SHA-256 of a value's canonical JSON, hex (used for helloHash). */
export function hashOf(value: unknown): string {
  return sha256Hex(canonicalBytes(value));
}

/** SHA-256 of text exactly as received, hex (used for challengeHash). */
export function hashText(text: string): string {
  return sha256Hex(text);
}

/** What the owner signs to revoke its own key (`keyledger revoke-key`). */
export interface RevocationStatement {
  type: 'keyledger/revoke';
  v: 1;
  chain: string;
  id: string;
  fingerprint: string;
  reason: 'compromised' | 'superseded' | 'retired' | 'unspecified';
  time: number;
}

/**
 * What the owner signs, with the old key and again with the new key, to replace its key
 * (`keyledger rotate-key`, ledger transaction KeyRotated). Two signatures over one statement prove
 * that the holder of the registered key hands over to a key it also holds.
 */
export interface RotationStatement {
  type: 'keyledger/rotate';
  v: 1;
  chain: string;
  id: string;
  /** Fingerprint of the key on the ledger now. */
  oldFingerprint: string;
  /** Fingerprint of the key that replaces it. */
  fingerprint: string;
  time: number;
}

/**
 * What a new device's key and an active device of the same identity both sign to add the new key to
 * the identity (`keyledger device request` / `device approve`, ledger transaction DeviceAdded;
 * docs/protocol.md "Devices"). The new key's signature proves possession; the approving device's
 * proves the identity's consent.
 */
export interface DeviceAdditionStatement {
  type: 'keyledger/add-device';
  v: 1;
  chain: string;
  id: string;
  /** The name the person gave the new device. */
  name: string;
  /** Fingerprint of the new device's key. */
  fingerprint: string;
  time: number;
}

/**
 * What an active device signs to revoke one device key of its identity (`keyledger device revoke`,
 * ledger transaction DeviceRevoked). It may name itself.
 */
export interface DeviceRevocationStatement {
  type: 'keyledger/revoke-device';
  v: 1;
  chain: string;
  id: string;
  /** Fingerprint of the device key revoked. */
  fingerprint: string;
  reason: 'compromised' | 'superseded' | 'retired' | 'unspecified';
  time: number;
}

/**
 * An operator's device invitation as the new device seals it to the server key with its request
 * (docs/protocol.md "Devices"): it repeats what the request's statement binds.
 */
export interface DeviceInvitePayload {
  type: 'keyledger/device-invite';
  v: 1;
  chain: string;
  id: string;
  /** Fingerprint of the new device's key. */
  fingerprint: string;
  /** The request statement's time. */
  time: number;
  /** The invitation as handed over, without its pin. */
  code: string;
}

/**
 * What an active device and the new recovery key both sign to make that key the identity's recovery
 * key (`keyledger recovery-key create`, ledger transaction RecoveryKeySet; docs/protocol.md
 * "Recovery"). The device's signature is the identity's consent; the recovery key's proves possession.
 */
export interface RecoveryKeyStatement {
  type: 'keyledger/recovery-key';
  v: 1;
  chain: string;
  id: string;
  /** Fingerprint of the recovery key. */
  fingerprint: string;
  time: number;
}

/**
 * What the identity's recovery key, the new device's key and the next recovery key all sign to
 * recover the identity on a new device (`keyledger recover`, ledger transaction Recovered;
 * docs/protocol.md "Recovery"): every device is revoked, the new one enrolled and the next recovery
 * key takes the place of the one used.
 */
export interface RecoveryStatement {
  type: 'keyledger/recover';
  v: 1;
  chain: string;
  id: string;
  /** Fingerprint of the recovery key on the ledger now. */
  recovery: string;
  /** The name the person gave the new device. */
  name: string;
  /** Fingerprint of the new device's key. */
  fingerprint: string;
  /** Fingerprint of the recovery key that replaces the one used. */
  nextRecovery: string;
  time: number;
}

/** Every statement that is signed somewhere in the protocol. */
export type Statement =
  | RegistrationStatement
  | IdentityProofPayload
  | ChallengePayload
  | LoginTranscript
  | RevocationStatement
  | RotationStatement
  | DeviceAdditionStatement
  | DeviceRevocationStatement
  | RecoveryKeyStatement
  | RecoveryStatement;
