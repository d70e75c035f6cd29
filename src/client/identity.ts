/**
 * Making or bringing the client's key pair (docs/protocol.md "Phase 1", before step 1): a new v4
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
import { checkGpgSecretKeys, exportGpgPublicKey, GpgClientKey, gpgKeyFor } from './gpg-key.js';
import type { ClientStore, IdentityFile } from './store.js';

/** Where a key comes from: made here, an armored secret key from another tool, or GnuPG. */
export type KeySource =
  | { source: 'generate'; passphrase: string; type?: 'ecc' | 'rsa' }
  | { source: 'import'; armoredSecretKey: string; passphrase: string; currentPassphrase?: string }
  | { source: 'gpg'; fingerprint: string; gpgHome?: string };

/** Options of {@link createIdentity}. */
export type CreateIdentityOptions = {
  home: ClientStore;
  id: string;
  name: string;
  /** Overwrite an existing identity in this home. */
  force?: boolean;
} & KeySource;

/** A key ready to be written to a home: its public part and, for file keys, the protected secret. */
export interface PreparedKey {
  key: Pick<IdentityFile, 'fingerprint' | 'algorithm' | 'publicKey' | 'keySource' | 'gpgHome'>;
  /** Armored, passphrase-protected (iterated S2K, no AEAD) private key; absent for gpg keys. */
  privateKey?: string;
}

/**
 * Makes or brings a key (docs/protocol.md "Phase 1", before step 1) and checks it against the key policy;
 * nothing is written. Used for a new identity and for a key rotation.
 */
export async function prepareKey(o: KeySource & { id: string; name: string }): Promise<PreparedKey> {
  const now = new Date();
  if (o.source === 'generate') {
    if (!o.passphrase)
      throw new KlError('KL_PASSPHRASE_REQUIRED', 'a passphrase is required to protect the private key');
    const pair = await generateKeyPair({
      id: o.id,
      name: o.name,
      passphrase: o.passphrase,
      type: o.type ?? 'ecc',
    });
    return {
      key: {
        fingerprint: pair.fingerprint,
        algorithm: pair.algorithm,
        publicKey: pair.publicKey,
        keySource: 'file',
      },
      privateKey: pair.privateKey,
    };
  }
  if (o.source === 'import') {
    if (!o.passphrase)
      throw new KlError(
        'KL_PASSPHRASE_REQUIRED',
        'a passphrase is required to protect the imported private key',
      );
    const unlocked = await unlockPrivateKey(o.armoredSecretKey, o.currentPassphrase ?? o.passphrase);
    const accepted = await acceptPublicKey(unlocked.toPublic().armor(), now);
    // Re-protect under our passphrase with interoperable (non-AEAD) S2K.
    const protectedKey = await openpgp.encryptKey({
      privateKey: unlocked,
      passphrase: o.passphrase,
      config: PGP_CONFIG,
    });
    return {
      key: {
        fingerprint: accepted.fingerprint,
        algorithm: accepted.algorithm,
        publicKey: accepted.armored,
        keySource: 'file',
      },
      privateKey: protectedKey.armor(),
    };
  }
  if (!/^[0-9a-fA-F]{40}$/.test(o.fingerprint))
    throw new KlError('KL_BAD_INPUT', 'give the full fingerprint of the primary key (40 hex digits)');
  const gpgOptions = { fingerprint: o.fingerprint, ...(o.gpgHome ? { homedir: o.gpgHome } : {}) };
  const armored = await exportGpgPublicKey(gpgOptions);
  const accepted = await acceptPublicKey(armored, now);
  if (accepted.fingerprint !== o.fingerprint.toLowerCase()) {
    throw new KlError('KL_BAD_INPUT', 'give the full fingerprint of the primary key (40 hex digits)');
  }
  // The key must sign and decrypt through GnuPG with the (sub)keys the server will use: e.g. a
  // certify-only primary key signs with its signing subkey, whose secret GnuPG must hold.
  await checkGpgSecretKeys(gpgOptions, {
    signing: await gpgKeyFor(accepted.armored, 'signing', now),
    encryption: await gpgKeyFor(accepted.armored, 'encryption', now),
  });
  return {
    key: {
      fingerprint: accepted.fingerprint,
      algorithm: algorithmLabel(accepted.key),
      publicKey: accepted.armored,
      keySource: 'gpg',
      ...(o.gpgHome ? { gpgHome: o.gpgHome } : {}),
    },
  };
}

/**
 * The identity `--force` replaces. An identity.json that cannot be read any more still has its key
 * file kept: it is retired under a name that says so (--force is how a damaged home is repaired).
 */
async function previousIdentity(home: ClientStore): Promise<Pick<IdentityFile, 'keySource' | 'fingerprint'>> {
  try {
    return await home.readIdentity();
  } catch {
    return {
      keySource: 'file',
      fingerprint: `unreadable-identity-${new Date().toISOString().replace(/[:.]/g, '-')}`,
    };
  }
}

/**
 * Makes or brings a key and writes identity.json (and the protected private key for file keys).
 * With `force`, the identity it replaces keeps its private key: the key file moves to
 * retired/FINGERPRINT.asc (as after a rotation), and `retiredKey` says where.
 */
export async function createIdentity(
  o: CreateIdentityOptions,
): Promise<IdentityFile & { retiredKey?: string }> {
  const exists = await o.home.hasIdentity();
  if (exists && !o.force)
    throw new KlError('KL_BAD_INPUT', `${o.home.name} already holds an identity (use --force to replace it)`);
  const previous = exists ? await previousIdentity(o.home) : null;
  const id = canonicalIdentity(o.id);
  const name = canonicalDisplayName(o.name);
  const prepared = await prepareKey({ ...o, id, name });
  const identity: IdentityFile = { v: 1, id, name, ...prepared.key };
  // Only once the new key is ready: a failed key generation or import leaves the home as it was.
  const retiredKey = previous ? await o.home.retireKey(previous) : null;
  await o.home.writeIdentity(identity, prepared.privateKey);
  return retiredKey ? { ...identity, retiredKey } : identity;
}

/**
 * The private-key operations of an identity: GnuPG for gpg keys, else the protected private key
 * (`armoredPrivateKey`, default the home's private-key.asc) unlocked with `passphrase`.
 */
export async function clientKeyFor(
  identity: IdentityFile,
  passphrase: string | undefined,
  armoredPrivateKey: () => string | Promise<string>,
): Promise<ClientKey> {
  if (identity.keySource === 'gpg') {
    return new GpgClientKey(identity.publicKey, {
      fingerprint: identity.fingerprint,
      ...(passphrase !== undefined ? { passphrase } : {}),
      ...(identity.gpgHome ? { homedir: identity.gpgHome } : {}),
    });
  }
  const key = await unlockPrivateKey(await armoredPrivateKey(), passphrase);
  if (key.getFingerprint() !== identity.fingerprint)
    throw new KlError('KL_DATA_DIR', 'the private key does not match identity.json');
  return new OpenPgpClientKey(key);
}

/** Unlocks the identity's key for signing and decrypting. */
export async function openClientKey(
  home: ClientStore,
  passphrase: string | undefined,
): Promise<{ identity: IdentityFile; key: ClientKey }> {
  const identity = await home.readIdentity();
  return { identity, key: await clientKeyFor(identity, passphrase, () => home.readPrivateKey()) };
}

/**
 * Unlocks the key of a device that joins its identity (a further device, or a recovery): it must
 * have a name, `name` or the home's own.
 * @throws KlError `KL_BAD_INPUT` when the device has no name
 */
export async function openDeviceKey(
  home: ClientStore,
  passphrase: string | undefined,
  name: string | undefined,
): Promise<{ identity: IdentityFile; key: ClientKey; name: string }> {
  const opened = await openClientKey(home, passphrase);
  const device = name ?? opened.identity.device;
  if (device === undefined)
    throw new KlError(
      'KL_BAD_INPUT',
      'this device has no name: give it one at init (keyledger init --id ID --device NAME --force makes a new key)',
    );
  return { ...opened, name: device };
}

/** Pinned server keys parsed so far, by their armored text (a handful per process). */
const pinnedKeys = new Map<string, Promise<openpgp.PublicKey>>();

/**
 * Parses the pinned server key, once per armored text: the parsed key carries what the native
 * OpenPGP path learnt about it (src/pgp/native/keys.ts), so the next login checks the challenge's
 * signature without re-validating the key.
 */
export function pinnedServerKey(armored: string): Promise<openpgp.PublicKey> {
  let key = pinnedKeys.get(armored);
  if (!key) {
    key = readPublicKey(armored);
    key.catch(() => pinnedKeys.delete(armored));
    if (pinnedKeys.size >= 16) pinnedKeys.delete(pinnedKeys.keys().next().value!);
    pinnedKeys.set(armored, key);
  }
  return key;
}
