/**
 * The key policy for client keys at registration (DESIGN phase 1 step 4): one armored public key;
 * v4; Ed25519 (legacy EdDSA) with a Cv25519 encryption subkey, or RSA ≥ 3072 bits; a valid signing
 * and a valid encryption capability now; not expired, not revoked; binding signatures not made with
 * SHA-1. A private key is refused and never stored.
 */
import * as openpgp from 'openpgp';
import { KlError } from '../protocol/errors.js';
import { PGP_CONFIG, PGP_FULL_CONFIG } from './config.js';
import { algorithmLabel } from './key-pair.js';

/** Longest armored public key accepted. */
export const MAX_ARMORED_PUBLIC_KEY = 32 * 1024;

/** A public key that passed the policy. */
export interface AcceptedKey {
  key: openpgp.PublicKey;
  fingerprint: string;
  algorithm: string;
  /** E-mail addresses in the key's user ids (lower-cased). */
  emails: string[];
  /** The armored form to store: re-armored from the parsed packets, so nothing unparsed is kept. */
  armored: string;
}

const ACCEPTED_ALGOS = new Set(['eddsaLegacy', 'ecdh', 'rsaEncryptSign', 'rsaSign', 'rsaEncrypt']);

/**
 * Reads and checks a client's armored public key at time `now`.
 * @throws KlError `KL_KEY_MALFORMED`, `KL_KEY_IS_PRIVATE` or `KL_KEY_POLICY` (message says which rule).
 */
export async function acceptPublicKey(armored: unknown, now: Date): Promise<AcceptedKey> {
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
  const blocks = armored.match(/-----BEGIN PGP [A-Z ]+-----/g) ?? [];
  if (blocks.length !== 1 || blocks[0] !== '-----BEGIN PGP PUBLIC KEY BLOCK-----') {
    throw new KlError('KL_KEY_MALFORMED', 'send exactly one armored public key block');
  }
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored, config: PGP_CONFIG });
  } catch {
    throw new KlError('KL_KEY_MALFORMED', 'the public key cannot be read as an OpenPGP key');
  }
  if (key.isPrivate())
    throw new KlError(
      'KL_KEY_IS_PRIVATE',
      'this is a private key: send only the public key (it was not stored)',
    );
  const pub = key as openpgp.PublicKey;
  if (pub.keyPacket.version !== 4)
    throw new KlError(
      'KL_KEY_POLICY',
      'only version 4 OpenPGP keys are accepted (GnuPG 2.2 cannot use v6 keys)',
    );

  for (const k of [pub, ...pub.getSubkeys()]) {
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
  if (await pub.isRevoked(undefined, undefined, now, PGP_FULL_CONFIG))
    throw new KlError('KL_KEY_POLICY', 'the key is revoked');
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
  if (pub.getCreationTime().getTime() > now.getTime() + 5 * 60_000) {
    throw new KlError('KL_KEY_POLICY', 'the key was created in the future: check the clock');
  }
  try {
    await pub.getSigningKey(undefined, now, undefined, PGP_FULL_CONFIG);
  } catch {
    throw new KlError(
      'KL_KEY_POLICY',
      'the key has no valid signing capability (expired, revoked, or signed with a refused hash such as SHA-1)',
    );
  }
  try {
    await pub.getEncryptionKey(undefined, now, undefined, PGP_FULL_CONFIG);
  } catch {
    throw new KlError(
      'KL_KEY_POLICY',
      'the key has no valid encryption subkey: add one (gpg --quick-add-key FPR cv25519 encr)',
    );
  }
  const emails = pub.users
    .map((u) => u.userID?.email?.toLowerCase())
    .filter((e): e is string => typeof e === 'string' && e.length > 0);
  return {
    key: pub,
    fingerprint: pub.getFingerprint(),
    algorithm: algorithmLabel(pub),
    emails,
    armored: pub.armor(PGP_FULL_CONFIG),
  };
}
