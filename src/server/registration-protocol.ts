/**
 * The server side of registration (docs/protocol.md "Phase 1") as a pair of functions, in the manner
 * of the login's createChallenge / verifyChallengeResponse: {@link createRegistration} answers
 * register/begin with a nonce bound to the identity; {@link verifyRegistration} checks a
 * register/complete request — the statement (identity and name in canonical form, this ledger and
 * server key, the nonce, the time), the key policy, proof of possession of the key, and the sealed
 * identity proof bound to this very statement. Neither does I/O nor keeps state: whether the nonce
 * was spent, whether the code is right and what the ledger holds are the caller's (RegistrationService).
 */
import type * as openpgp from 'openpgp';
import { acceptPublicKey } from '../pgp/key-policy.js';
import { verifyDetached } from '../pgp/messages.js';
import { openSealed } from '../pgp/sealed.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { canonicalDisplayName, canonicalIdentity } from '../protocol/identity.js';
import { check } from '../protocol/schemas/check.js';
import { RegisterCompleteBody } from '../protocol/schemas/http.js';
import { IdentityProofSchema } from '../protocol/schemas/statements.js';
import {
  type IdentityProofPayload,
  type RegistrationStatement,
  statementBytes,
} from '../protocol/statements.js';
import { checkNonce, mintNonce, type NonceKey } from './registration-nonces.js';
import type { ServerKey } from './server-key.js';

/** How far a client's clock may be from the server's. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Answer of register/begin. */
export interface RegistrationBegun {
  nonce: string;
  expiresAt: number;
  chain: string;
  server: { fingerprint: string; publicKey: string };
}

/** Body of register/complete. */
export interface RegistrationRequest {
  statement: RegistrationStatement;
  signature: string;
  publicKey: string;
}

/** Options of {@link createRegistration}. */
export interface CreateRegistrationOptions {
  /** The identity to register (any case; answered for its canonical form). */
  id: unknown;
  /** The ledger's chain id. */
  chain: string;
  serverKey: ServerKey;
  /** The server's nonce MAC key and nonce lifetime. */
  nonces: NonceKey;
  now: number;
}

/**
 * docs/protocol.md "Phase 1", step 2: a fresh single-use nonce bound to the identity, and the server
 * key. Stores nothing (registration-nonces.ts).
 * @throws KlError `KL_BAD_INPUT` for an identity that is not one.
 */
export function createRegistration(o: CreateRegistrationOptions): RegistrationBegun {
  const id = canonicalIdentity(o.id);
  const { nonce, expiresAt } = mintNonce({ ...o.nonces, id, now: o.now });
  return {
    nonce,
    expiresAt,
    chain: o.chain,
    server: { fingerprint: o.serverKey.fingerprint, publicKey: o.serverKey.armoredPublicKey },
  };
}

/** Options of {@link verifyRegistration}. */
export interface VerifyRegistrationOptions {
  request: RegistrationRequest;
  chain: string;
  serverKey: ServerKey;
  nonces: NonceKey;
  now: number;
}

/** A registration request that verified: what the caller checks against its state and writes. */
export interface VerifiedRegistration {
  verified: true;
  id: string;
  name: string;
  fingerprint: string;
  /** The device name the statement carries (the schema's DeviceName; docs/ledger.md "Devices"), if any. */
  device?: string;
  algorithm: string;
  /** The key as accepted (armored, minimal) and parsed. */
  armored: string;
  key: openpgp.PublicKey;
  /** The nonce, for the caller to spend (single use), and its expiry. */
  nonce: string;
  nonceExpiresAt: number;
  /** The identity proof, opened: the caller checks its code. */
  proof: IdentityProofPayload;
}

/**
 * docs/protocol.md "Phase 1", step 4, without state: the request's shape; the statement's own
 * checks; the key policy and that the statement names this key; the statement's signature by that
 * key (proof of possession); the sealed identity proof opened with the server key and bound to this
 * statement (identity, key, nonce, server, ledger, method).
 * @throws KlError `KL_BAD_INPUT`, `KL_STATEMENT_INVALID`, `KL_NONCE_INVALID`, `KL_KEY_REJECTED`,
 *   `KL_SIGNATURE_INVALID`, `KL_IDENTITY_PROOF_INVALID`
 */
export async function verifyRegistration(o: VerifyRegistrationOptions): Promise<VerifiedRegistration> {
  const req = check(RegisterCompleteBody, o.request, 'KL_BAD_INPUT', 'request') as RegistrationRequest;
  const s = req.statement;
  const { id, name, nonceExpiresAt } = checkStatement(s, o);
  const accepted = await acceptPublicKey(req.publicKey, new Date(o.now));
  if (accepted.fingerprint !== s.fingerprint)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement names another key than the one sent');
  // Proof of possession: the statement (with the server's nonce and the sealed identity proof)
  // signed by the key being registered.
  await verifyDetached({
    data: statementBytes(s),
    armoredSignature: req.signature,
    key: accepted.key,
    now: new Date(o.now),
    maxSkewMs: MAX_CLOCK_SKEW_MS,
  });
  const proof = await openProof(s, o.serverKey, o.now);
  return {
    verified: true,
    id,
    name,
    fingerprint: accepted.fingerprint,
    ...(s.device !== undefined ? { device: s.device } : {}),
    algorithm: accepted.algorithm,
    armored: accepted.armored,
    key: accepted.key,
    nonce: s.nonce,
    nonceExpiresAt,
    proof,
  };
}

/**
 * The statement's own checks (docs/protocol.md "Phase 1", step 4): canonical identity and name, this
 * ledger and server key, the nonce (minted for this identity, unexpired) and the time.
 */
function checkStatement(
  s: RegistrationStatement,
  o: { chain: string; serverKey: ServerKey; nonces: NonceKey; now: number },
): { id: string; name: string; nonceExpiresAt: number } {
  const id = canonicalIdentity(s.id);
  if (id !== s.id)
    throw new KlError(
      'KL_STATEMENT_INVALID',
      'the statement must carry the identity in canonical form (lower case)',
    );
  const name = canonicalDisplayName(s.name);
  if (name !== s.name)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement must carry the name in canonical form');
  if (s.chain !== o.chain) throw new KlError('KL_STATEMENT_INVALID', 'the statement names another ledger');
  if (s.server !== o.serverKey.fingerprint)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement names another server key');
  const { expiresAt } = checkNonce({ ...o.nonces, nonce: s.nonce, id, now: o.now });
  if (Math.abs(s.time - o.now) > MAX_CLOCK_SKEW_MS)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement time is too far from the server clock');
  return { id, name, nonceExpiresAt: expiresAt };
}

/**
 * Opens the sealed identity proof and checks that it was made for this very statement: a sealed
 * proof copied from another registration is refused.
 */
async function openProof(
  s: RegistrationStatement,
  serverKey: ServerKey,
  now: number,
): Promise<IdentityProofPayload> {
  const invalid = () =>
    new KlError(
      'KL_IDENTITY_PROOF_INVALID',
      'the invitation or verification code is not valid for this identity',
    );
  let payload: IdentityProofPayload;
  try {
    const bytes = await openSealed(s.proof.sealed, serverKey.privateKey, new Date(now));
    payload = check(
      IdentityProofSchema,
      JSON.parse(Buffer.from(bytes).toString('utf8')),
      'KL_IDENTITY_PROOF_INVALID',
    );
  } catch (err) {
    if (isKlError(err) && err.code === 'KL_STORAGE_UNAVAILABLE') throw err;
    throw invalid();
  }
  const bound =
    payload.chain === s.chain &&
    payload.id === s.id &&
    payload.fingerprint === s.fingerprint &&
    payload.nonce === s.nonce &&
    payload.server === s.server &&
    payload.method === s.proof.method;
  if (!bound) throw invalid();
  return payload;
}
