/**
 * The server's OpenPGP key pair, KpubS / KprivS (docs/protocol.md "Phase 1"). Made once when the data
 * directory is initialised: v4 Ed25519/Cv25519, the private key encrypted with the node passphrase
 * (iterated S2K, so GnuPG can read it too) in DATA/server-key.asc, mode 0600. Kept decrypted in memory
 * only while the server runs (docs/threat-model.md "What is trusted").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { writeFileAtomic } from '../ledger/sealed-key-file.js';
import { PGP_CONFIG } from '../pgp/config.js';
import { unlockPrivateKey } from '../pgp/messages.js';
import { KlError } from '../protocol/errors.js';

/** The server key, unlocked. */
export interface ServerKey {
  privateKey: openpgp.PrivateKey;
  publicKey: openpgp.PublicKey;
  armoredPublicKey: string;
  fingerprint: string;
}

/** Path of the server key file in a data directory. */
export const serverKeyPath = (dataDir: string): string => join(dataDir, 'server-key.asc');

/** Makes the server key and writes it, encrypted under `passphrase`. Returns its public half. */
export async function createServerKey(
  dataDir: string,
  passphrase: string,
  { name = 'keyledger server', now = new Date() }: { name?: string; now?: Date } = {},
): Promise<{ fingerprint: string; publicKey: string }> {
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [{ name }],
    passphrase,
    format: 'armored',
    date: now,
    config: PGP_CONFIG,
  });
  writeFileAtomic(serverKeyPath(dataDir), privateKey);
  const pub = await openpgp.readKey({ armoredKey: publicKey });
  return { fingerprint: pub.getFingerprint(), publicKey };
}

/** Reads and unlocks the server key. */
export async function loadServerKey(dataDir: string, passphrase: string): Promise<ServerKey> {
  let armored: string;
  try {
    armored = readFileSync(serverKeyPath(dataDir), 'utf8');
  } catch (err) {
    throw new KlError('KL_DATA_DIR', `cannot read the server key in ${dataDir}`, undefined, { cause: err });
  }
  const privateKey = await unlockPrivateKey(armored, passphrase);
  const publicKey = privateKey.toPublic();
  return {
    privateKey,
    publicKey,
    armoredPublicKey: publicKey.armor(),
    fingerprint: publicKey.getFingerprint(),
  };
}
