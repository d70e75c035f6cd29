/**
 * Private ledger keys at rest: PKCS#8 encrypted with AES-256-GCM under a key derived from a
 * passphrase with scrypt (N=2^15, r=8, p=1), written atomically with file mode 0600.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { KlError } from '../protocol/errors.js';
import { SigningKey } from './signing-keys.js';

const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

interface SealedKeyFile {
  v: 1;
  purpose: string;
  keyId: string;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: 'aes-256-gcm';
  iv: string;
  ciphertext: string;
  tag: string;
}

function deriveKey(passphrase: string, salt: Buffer, params: { N: number; r: number; p: number }): Buffer {
  return scryptSync(passphrase.normalize('NFC'), salt, 32, { ...params, maxmem: SCRYPT.maxmem });
}

/** Writes `data` to `path` atomically (temp file, fsync, rename) with mode 0600. */
export function writeFileAtomic(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Encrypts `plaintext` under `passphrase` into `path` (mode 0600). `label` (a key id, or "secret")
 * is stored in the clear and bound, with `purpose`, as associated data: a file cannot be passed off
 * for another purpose or key.
 */
function sealFile(
  path: string,
  plaintext: Uint8Array,
  passphrase: string,
  purpose: string,
  label: string,
): void {
  if (!passphrase) throw new KlError('KL_PASSPHRASE_REQUIRED', 'a passphrase is required to protect the key');
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(passphrase, salt, SCRYPT), iv);
  cipher.setAAD(Buffer.from(`${purpose}\n${label}`, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const file: SealedKeyFile = {
    v: 1,
    purpose,
    keyId: label,
    kdf: { name: 'scrypt', N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, salt: salt.toString('base64') },
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
  writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
}

/**
 * Reads and decrypts a file written by {@link sealFile}; returns the plaintext and the label.
 * @throws KlError `KL_PASSPHRASE_WRONG` when the passphrase does not open it, `KL_DATA_DIR` when the
 * file is missing, malformed, for another purpose, or asks for unreasonable KDF work.
 */
function openFile(path: string, passphrase: string, purpose: string): { plaintext: Buffer; label: string } {
  let file: SealedKeyFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as SealedKeyFile;
  } catch (err) {
    throw new KlError('KL_DATA_DIR', `cannot read ${path}`, undefined, { cause: err });
  }
  if (
    file?.v !== 1 ||
    file.kdf?.name !== 'scrypt' ||
    file.cipher !== 'aes-256-gcm' ||
    file.purpose !== purpose ||
    typeof file.keyId !== 'string'
  ) {
    throw new KlError('KL_DATA_DIR', `${path} is not a ${purpose} file`);
  }
  const { N, r, p } = file.kdf;
  if (![N, r, p].every(Number.isSafeInteger) || N > 2 ** 20 || r > 32 || p > 16) {
    throw new KlError('KL_DATA_DIR', `${path} has unacceptable KDF parameters`);
  }
  try {
    const k = deriveKey(passphrase, Buffer.from(file.kdf.salt, 'base64'), { N, r, p });
    const decipher = createDecipheriv('aes-256-gcm', k, Buffer.from(file.iv, 'base64'));
    decipher.setAAD(Buffer.from(`${purpose}\n${file.keyId}`, 'utf8'));
    decipher.setAuthTag(Buffer.from(file.tag, 'base64'));
    const plaintext = Buffer.concat([
      decipher.update(Buffer.from(file.ciphertext, 'base64')),
      decipher.final(),
    ]);
    return { plaintext, label: file.keyId };
  } catch (err) {
    throw new KlError(
      'KL_PASSPHRASE_WRONG',
      `the passphrase does not open ${purpose} file ${path}`,
      undefined,
      {
        cause: err,
      },
    );
  }
}

/** Encrypts `key` under `passphrase` and writes it to `path` (mode 0600). */
export function sealKeyFile(path: string, key: SigningKey, passphrase: string, purpose: string): void {
  const der = key.exportPkcs8();
  sealFile(path, der, passphrase, purpose, key.keyId);
  der.fill(0);
}

/**
 * Reads and decrypts a sealed key file.
 * @throws KlError `KL_PASSPHRASE_WRONG` when the passphrase does not open it, `KL_DATA_DIR` when the
 * file is missing or malformed.
 */
export function openKeyFile(path: string, passphrase: string, purpose: string): SigningKey {
  const { plaintext: der, label } = openFile(path, passphrase, purpose);
  try {
    const key = SigningKey.fromPkcs8(der);
    if (key.keyId !== label) throw new KlError('KL_DATA_DIR', `${path} holds another key than it names`);
    return key;
  } finally {
    der.fill(0);
  }
}

/** Encrypts arbitrary secret bytes under `passphrase` into `path` (same format, mode 0600). */
export function sealSecretFile(path: string, secret: Buffer, passphrase: string, purpose: string): void {
  sealFile(path, secret, passphrase, purpose, 'secret');
}

/** Opens a file written by {@link sealSecretFile}. */
export function openSecretFile(path: string, passphrase: string, purpose: string): Buffer {
  const { plaintext, label } = openFile(path, passphrase, purpose);
  if (label !== 'secret') throw new KlError('KL_DATA_DIR', `${path} is not a ${purpose} file`);
  return plaintext;
}
