/**
 * The key policy for client keys at registration and rotation (docs/protocol.md phase 1, "Key
 * policy"): one armored public key, BEGIN and END lines alike; v4; Ed25519 (legacy EdDSA) with a
 * Cv25519 encryption subkey, or RSA ≥ 3072 bits; at most {@link MAX_USER_IDS} user IDs and
 * {@link MAX_SUBKEYS} subkeys; a valid signing and a valid encryption capability now; not expired, not
 * revoked; self-signatures not made with SHA-1. The key is then reduced to what its own valid
 * self-signatures bind (minimal-key.ts), and only that reduced key is returned for storing. A private
 * key is refused and never stored.
 */
import type * as openpgp from 'openpgp';
import { ed25519PublicKeyAcceptable, x25519KeyPair, x25519SharedSecret } from '../protocol/crypto/node.js';
import { KlError } from '../protocol/errors.js';
import { checkArmor } from './armor.js';
import { PGP_FULL_CONFIG } from './config.js';
import { algorithmLabel } from './key-pair.js';
import { readArmoredKey } from './messages.js';
import { minimalKey } from './minimal-key.js';
import { curvePoint } from './native/keys.js';

/** Longest armored public key accepted (as sent, and as stored after reduction). */
export const MAX_ARMORED_PUBLIC_KEY = 32 * 1024;
/** Most user IDs (and user attributes) a key may carry, counted as sent, before reduction. */
export const MAX_USER_IDS = 16;
/** Most subkeys a key may carry, counted as sent, before reduction. */
export const MAX_SUBKEYS = 16;

/** A public key that passed the policy. */
export interface AcceptedKey {
  key: openpgp.PublicKey;
  fingerprint: string;
  algorithm: string;
  /**
   * E-mail addresses in the key's self-signed user IDs (lower-cased): the key holder's own claims,
   * never evidence of identity (the registration statement and proof bind the identity).
   */
  emails: string[];
  /**
   * The armored form to store: the reduced key (self-signed parts only) re-armored from its packets,
   * so nothing unsigned, third-party or unparsed is kept. `key` is this same reduced key.
   */
  armored: string;
}

const ACCEPTED_ALGOS = new Set(['eddsaLegacy', 'ecdh', 'rsaEncryptSign', 'rsaSign', 'rsaEncrypt']);

/**
 * Refuses curve points no one should hold a key at: an Ed25519 key at a small-order or non-canonical
 * point (anyone can make signatures that verify under it: R = identity, S = 0) and a Cv25519 key at a
 * low-order point (no shared secret with anyone: nothing could be encrypted to it, RFC 7748 §6.1).
 */
function checkPoints(key: openpgp.PublicKey): void {
  for (const k of key.getKeys()) {
    const packet = curvePoint(k.keyPacket);
    if (packet?.curve === 'ed25519' && !ed25519PublicKeyAcceptable(packet.point))
      throw new KlError(
        'KL_KEY_POLICY',
        'the key holds an Ed25519 key at a small-order or non-canonical point: anyone could sign for it',
      );
    if (packet?.curve === 'cv25519') {
      try {
        x25519SharedSecret(x25519KeyPair().privateKey, packet.point);
      } catch {
        throw new KlError(
          'KL_KEY_POLICY',
          'the key holds a Cv25519 encryption key at a low-order point: nothing can be encrypted to it',
        );
      }
    }
  }
}

/**
 * What a key is for: a device logs in (challenges are encrypted to it, so it needs an encryption
 * capability); a recovery key only signs (docs/protocol.md "Recovery").
 */
export type KeyPurpose = 'device' | 'recovery';

/**
 * Reads and checks a client's armored public key at time `now`.
 * @throws KlError `KL_KEY_MALFORMED`, `KL_KEY_IS_PRIVATE` or `KL_KEY_POLICY` (message says which rule).
 */
export async function acceptPublicKey(
  armored: unknown,
  now: Date,
  purpose: KeyPurpose = 'device',
): Promise<AcceptedKey> {
  if (typeof armored !== 'string' || armored.length > MAX_ARMORED_PUBLIC_KEY) {
    throw new KlError(
      'KL_KEY_MALFORMED',
      `the public key must be an armored OpenPGP key of at most ${MAX_ARMORED_PUBLIC_KEY} bytes`,
    );
  }
  if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(armored)) {
    throw new KlError(
      'KL_KEY_IS_PRIVATE',
      'this is a private key: send only the public key (it was not stored)',
    );
  }
  checkArmor(armored, 'PUBLIC KEY BLOCK', 'KL_KEY_MALFORMED', 'public key');
  let key: openpgp.Key;
  try {
    key = await readArmoredKey(armored);
  } catch {
    throw new KlError('KL_KEY_MALFORMED', 'the public key cannot be read as an OpenPGP key');
  }
  if (key.isPrivate())
    throw new KlError(
      'KL_KEY_IS_PRIVATE',
      'this is a private key: send only the public key (it was not stored)',
    );
  const sent = key as openpgp.PublicKey;
  if (sent.keyPacket.version !== 4)
    throw new KlError(
      'KL_KEY_POLICY',
      'only version 4 OpenPGP keys are accepted (GnuPG 2.2 cannot use v6 keys)',
    );
  // Bounded before any signature is checked, so a key stuffed with parts costs little to refuse.
  if (sent.users.length > MAX_USER_IDS)
    throw new KlError(
      'KL_KEY_POLICY',
      `the key carries ${sent.users.length} user IDs; at most ${MAX_USER_IDS} are accepted (export only the ones you need, e.g. gpg --export-filter keep-uid=...)`,
      { userIDs: sent.users.length, max: MAX_USER_IDS },
    );
  if (sent.subkeys.length > MAX_SUBKEYS)
    throw new KlError(
      'KL_KEY_POLICY',
      `the key carries ${sent.subkeys.length} subkeys; at most ${MAX_SUBKEYS} are accepted`,
      { subkeys: sent.subkeys.length, max: MAX_SUBKEYS },
    );
  checkAlgorithm(sent);
  if (sent.getCreationTime().getTime() > now.getTime() + 5 * 60_000) {
    throw new KlError('KL_KEY_POLICY', 'the key was created in the future: check the clock');
  }
  if (await sent.isRevoked(undefined, undefined, now, PGP_FULL_CONFIG))
    throw new KlError('KL_KEY_POLICY', 'the key is revoked');
  // What is checked below, returned and stored is the key reduced to its valid self-signed parts.
  const pub = (await minimalKey(sent, now, PGP_FULL_CONFIG)).key;
  if (pub.users.length === 0)
    throw new KlError(
      'KL_KEY_POLICY',
      'the key has no user ID with a valid self-signature (SHA-1 and other weak signatures are refused)',
    );
  for (const k of pub.getSubkeys()) checkAlgorithm(k);
  checkPoints(pub);
  const expires = await pub.getExpirationTime(undefined, PGP_FULL_CONFIG).catch(() => null);
  if (expires === null) {
    throw new KlError(
      'KL_KEY_POLICY',
      'the key has no valid self-signature (SHA-1 and other weak signatures are refused)',
    );
  }
  if (expires instanceof Date && expires.getTime() <= now.getTime()) {
    throw new KlError('KL_KEY_POLICY', `the key expired on ${expires.toISOString()}`);
  }
  try {
    await pub.getSigningKey(undefined, now, undefined, PGP_FULL_CONFIG);
  } catch {
    throw new KlError(
      'KL_KEY_POLICY',
      'the key has no valid signing capability (expired, revoked, or signed with a refused hash such as SHA-1)',
    );
  }
  if (purpose === 'device') await needsEncryption(pub, now);
  const emails = pub.users
    .map((u) => u.userID?.email?.toLowerCase())
    .filter((e): e is string => typeof e === 'string' && e.length > 0);
  let stored: string;
  try {
    stored = pub.armor(PGP_FULL_CONFIG);
  } catch {
    // E.g. a zero MPI OpenPGP.js read but will not write.
    throw new KlError('KL_KEY_MALFORMED', 'the public key cannot be written back as an OpenPGP key');
  }
  if (stored.length > MAX_ARMORED_PUBLIC_KEY)
    throw new KlError('KL_KEY_POLICY', `the key is larger than ${MAX_ARMORED_PUBLIC_KEY} bytes armored`);
  return {
    key: pub,
    fingerprint: pub.getFingerprint(),
    algorithm: algorithmLabel(pub),
    emails,
    armored: stored,
  };
}

async function needsEncryption(pub: openpgp.PublicKey, now: Date): Promise<void> {
  try {
    await pub.getEncryptionKey(undefined, now, undefined, PGP_FULL_CONFIG);
  } catch {
    throw new KlError(
      'KL_KEY_POLICY',
      'the key has no valid encryption subkey: add one (gpg --quick-add-key FPR cv25519 encr)',
    );
  }
}

/** Refuses a primary key or subkey whose algorithm or size the policy does not accept. */
function checkAlgorithm(k: openpgp.PublicKey | openpgp.Subkey): void {
  const info = k.getAlgorithmInfo() as { algorithm: string; bits?: number; curve?: string };
  if (!ACCEPTED_ALGOS.has(info.algorithm)) {
    throw new KlError(
      'KL_KEY_POLICY',
      `key algorithm ${info.algorithm} is not accepted: use Ed25519/Cv25519 or RSA of 3072 bits or more`,
    );
  }
  if (info.algorithm.startsWith('rsa') && (info.bits ?? 0) < 3072) {
    throw new KlError('KL_KEY_POLICY', `RSA keys must have at least 3072 bits (this one has ${info.bits})`);
  }
  if (info.algorithm === 'eddsaLegacy' && info.curve !== 'ed25519Legacy') {
    throw new KlError('KL_KEY_POLICY', `EdDSA keys must use Ed25519 (this one uses ${info.curve})`);
  }
  if (info.algorithm === 'ecdh' && info.curve !== 'curve25519Legacy') {
    throw new KlError('KL_KEY_POLICY', `ECDH subkeys must use Curve25519 (this one uses ${info.curve})`);
  }
}
