/**
 * The symmetric primitives of the native OpenPGP path (docs/protocol.md "The native OpenPGP path"), on
 * node:crypto: the message digests OpenPGP names (RFC 9580 §9.5), AES key wrap (RFC 3394, for the
 * Cv25519 session-key wrap of RFC 9580 §11.5) and AES in CFB mode with a zero IV (the SEIPD v1 packet,
 * RFC 9580 §5.13.1). The browser form (primitives-browser.ts) computes the same on @noble/*.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';

/** node:crypto names of the OpenPGP hash algorithm ids (RFC 9580 §9.5) the native path computes. */
const HASH_NAMES: Readonly<Record<number, string>> = {
  2: 'sha1',
  8: 'sha256',
  9: 'sha384',
  10: 'sha512',
  11: 'sha224',
  12: 'sha3-256',
  14: 'sha3-512',
};

/** The digest of the concatenated `parts` with OpenPGP hash algorithm `algorithm`, or `undefined` if unknown. */
export function digest(algorithm: number, parts: readonly Uint8Array[]): Uint8Array | undefined {
  const name = HASH_NAMES[algorithm];
  if (name === undefined) return undefined;
  const hash = createHash(name);
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** RFC 3394 §2.2.3.1: the default initial value. */
const WRAP_IV = Buffer.alloc(8, 0xa6);

/** AES key wrap (RFC 3394) of `data` (a multiple of 8 bytes, at least 16) under a 16, 24 or 32-byte `kek`. */
export function aesKeyWrap(kek: Uint8Array, data: Uint8Array): Uint8Array {
  const cipher = createCipheriv(`id-aes${kek.length * 8}-wrap`, kek, WRAP_IV);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** AES key unwrap (RFC 3394); `undefined` when the integrity check fails or the input is malformed. */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array | undefined {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) return undefined;
  try {
    const decipher = createDecipheriv(`id-aes${kek.length * 8}-wrap`, kek, WRAP_IV);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    return undefined;
  }
}

const ZERO_IV = Buffer.alloc(16);

/** AES-CFB (128-bit segments) with a zero IV under a 16, 24 or 32-byte key (RFC 9580 §5.13.1). */
export function aesCfbEncrypt(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv(`aes-${key.length * 8}-cfb`, key, ZERO_IV);
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

/** The inverse of {@link aesCfbEncrypt}. */
export function aesCfbDecrypt(key: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const decipher = createDecipheriv(`aes-${key.length * 8}-cfb`, key, ZERO_IV);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}
