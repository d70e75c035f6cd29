/**
 * Making or bringing the client's key pair (seed phase 1 step 1, "Public Key Generation"): a new v4
 * Ed25519/Cv25519 key made here, an armored secret key made by another tool (gpg, sqop), or a key
 * that stays in GnuPG. Then `openClientKey` unlocks whichever it is for use.
 */
import * as openpgp from 'openpgp';
import { PGP_CONFIG } from '../pgp/config.js';
import { algorithmLabel, generateKeyPair } from '../pgp/key-pair.js';
import { acceptPublicKey } from '../pgp/key-policy.js';
import { readPublicKey, unlockPrivateKey } from '../pgp/messages.js';
import { KlError } from '../protocol/errors.js';
import { canonicalDisplayName, canonicalIdentity } from '../protocol/identity.js';
import { type ClientKey, OpenPgpClientKey } from './client-key.js';
import { exportGpgPublicKey, GpgClientKey } from './gpg-key.js';
import type { ClientHome, IdentityFile } from './home.js';

/** Options of {@link createIdentity}. */
export type CreateIdentityOptions = {
  home: ClientHome;
  id: string;
  name: string;
  /** Overwrite an existing identity in this home. */
  force?: boolean;
} & (
  | { source: 'generate'; passphrase: string; type?: 'ecc' | 'rsa' }
  | { source: 'import'; armoredSecretKey: string; passphrase: string; currentPassphrase?: string }
  | { source: 'gpg'; fingerprint: string; gpgHome?: string }
);

/** Makes or brings a key and writes identity.json (and the protected private key for file keys). */
export async function createIdentity(o: CreateIdentityOptions): Promise<IdentityFile> {
  if (o.home.hasIdentity() && !o.force)
    throw new KlError('KL_BAD_INPUT', `${o.home.dir} already holds an identity (use --force to replace it)`);
  const id = canonicalIdentity(o.id);
  const name = canonicalDisplayName(o.name);
  const now = new Date();
  if (o.source === 'generate') {
    if (!o.passphrase)
      throw new KlError('KL_PASSPHRASE_REQUIRED', 'a passphrase is required to protect the private key');
    const pair = await generateKeyPair({ id, name, passphrase: o.passphrase, type: o.type ?? 'ecc' });
    const identity: IdentityFile = {
      v: 1,
      id,
      name,
      fingerprint: pair.fingerprint,
      algorithm: pair.algorithm,
      publicKey: pair.publicKey,
      keySource: 'file',
    };
    o.home.writeIdentity(identity, pair.privateKey);
    return identity;
  }
  if (o.source === 'import') {
    if (!o.passphrase)
      throw new KlError(
        'KL_PASSPHRASE_REQUIRED',
        'a passphrase is required to protect the imported private key',
      );
    const unlocked = await unlockPrivateKey(o.armoredSecretKey, o.currentPassphrase ?? o.passphrase);
    const pub = unlocked.toPublic();
    const accepted = await acceptPublicKey(pub.armor(), now);
    // Re-protect under our passphrase with interoperable (non-AEAD) S2K.
    const protectedKey = await openpgp.encryptKey({
      privateKey: unlocked,
      passphrase: o.passphrase,
      config: PGP_CONFIG,
    });
    const identity: IdentityFile = {
      v: 1,
      id,
      name,
      fingerprint: accepted.fingerprint,
      algorithm: accepted.algorithm,
      publicKey: accepted.armored,
      keySource: 'file',
    };
    o.home.writeIdentity(identity, protectedKey.armor());
    return identity;
  }
  const armored = await exportGpgPublicKey({
    fingerprint: o.fingerprint,
    ...(o.gpgHome ? { homedir: o.gpgHome } : {}),
  });
  const accepted = await acceptPublicKey(armored, now);
  if (accepted.fingerprint !== o.fingerprint.toLowerCase()) {
    throw new KlError('KL_BAD_INPUT', 'give the full fingerprint of the primary key (40 hex digits)');
  }
  const identity: IdentityFile = {
    v: 1,
    id,
    name,
    fingerprint: accepted.fingerprint,
    algorithm: algorithmLabel(accepted.key),
    publicKey: accepted.armored,
    keySource: 'gpg',
    ...(o.gpgHome ? { gpgHome: o.gpgHome } : {}),
  };
  o.home.writeIdentity(identity);
  return identity;
}

/** Unlocks the identity's key for signing and decrypting. */
export async function openClientKey(
  home: ClientHome,
  passphrase: string | undefined,
): Promise<{ identity: IdentityFile; key: ClientKey }> {
  const identity = home.readIdentity();
  if (identity.keySource === 'gpg') {
    return {
      identity,
      key: new GpgClientKey(identity.publicKey, {
        fingerprint: identity.fingerprint,
        ...(passphrase !== undefined ? { passphrase } : {}),
        ...(identity.gpgHome ? { homedir: identity.gpgHome } : {}),
      }),
    };
  }
  const key = await unlockPrivateKey(home.readPrivateKey(), passphrase);
  if (key.getFingerprint() !== identity.fingerprint)
    throw new KlError('KL_DATA_DIR', 'private-key.asc does not match identity.json');
  return { identity, key: new OpenPgpClientKey(key) };
}

/** Parses the pinned server key. */
export function pinnedServerKey(armored: string): Promise<openpgp.PublicKey> {
  return readPublicKey(armored);
}
