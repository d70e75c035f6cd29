/**
 * OpenPGP key pairs for keyledger users, through OpenPGP.js with interoperable defaults: v4 keys,
 * Ed25519 (legacy EdDSA) for signing and Cv25519 for encryption (`type: 'ecc'`), or RSA ≥ 3072.
 * Never v6 keys and never `aeadProtect`: GnuPG 2.2 cannot read either (FACTS "OpenPGP.js traps").
 */
import * as openpgp from 'openpgp';
import { canonicalDisplayName, canonicalIdentity } from '../protocol/identity.js';

/** A freshly made key pair. */
export interface GeneratedKeyPair {
  /** Canonical identity the key's user id carries. */
  id: string;
  fingerprint: string;
  /** Short algorithm label such as `ed25519-legacy` or `rsa3072`. */
  algorithm: string;
  publicKey: string;
  /** Armored private key, encrypted when a passphrase was given. */
  privateKey: string;
}

/** Options of {@link generateKeyPair}. */
export interface GenerateKeyPairOptions {
  id: string;
  name: string;
  /** Encrypts the private key (iterated S2K, readable by GnuPG). */
  passphrase?: string;
  type?: 'ecc' | 'rsa';
  rsaBits?: 3072 | 4096;
  /** Creation time. */
  date?: Date;
}

/** Makes a v4 OpenPGP key pair for an identity. */
export async function generateKeyPair(options: GenerateKeyPairOptions): Promise<GeneratedKeyPair> {
  const id = canonicalIdentity(options.id);
  const name = canonicalDisplayName(options.name);
  const type = options.type ?? 'ecc';
  const { privateKey, publicKey } = await openpgp.generateKey({
    type,
    ...(type === 'rsa' ? { rsaBits: options.rsaBits ?? 3072 } : {}),
    userIDs: [{ name, email: id }],
    format: 'armored',
    ...(options.passphrase ? { passphrase: options.passphrase } : {}),
    ...(options.date ? { date: options.date } : {}),
    config: { v6Keys: false, aeadProtect: false },
  });
  const key = await openpgp.readKey({ armoredKey: publicKey });
  return { id, fingerprint: key.getFingerprint(), algorithm: algorithmLabel(key), publicKey, privateKey };
}

/** A short, stable label for a key's primary algorithm. */
export function algorithmLabel(key: openpgp.Key): string {
  const info = key.getAlgorithmInfo() as { algorithm: string; bits?: number; curve?: string };
  if (info.algorithm.startsWith('rsa')) return `rsa${info.bits ?? ''}`;
  if (info.algorithm === 'eddsaLegacy' || info.algorithm === 'eddsa') return 'ed25519-legacy';
  return info.algorithm.toLowerCase().replace(/[^a-z0-9-]/g, '-');
}
