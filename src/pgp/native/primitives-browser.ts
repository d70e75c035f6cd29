/**
 * The browser form of primitives.ts (chosen by the package.json `browser` map): the same digests, AES
 * key wrap (RFC 3394) and AES-CFB with a zero IV (RFC 9580 §5.13.1), on @noble/hashes and @noble/ciphers.
 */
import { aeskw, cfb } from '@noble/ciphers/aes';
import { sha1 } from '@noble/hashes/legacy';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2';
import { sha3_256, sha3_512 } from '@noble/hashes/sha3';

type Hash = { create(): { update(data: Uint8Array): unknown; digest(): Uint8Array } };

/** The OpenPGP hash algorithm ids (RFC 9580 §9.5) the native path computes. */
const HASHES: Readonly<Record<number, Hash>> = {
  2: sha1,
  8: sha256,
  9: sha384,
  10: sha512,
  11: sha224,
  12: sha3_256,
  14: sha3_512,
};

/** The digest of the concatenated `parts` with OpenPGP hash algorithm `algorithm`, or `undefined` if unknown. */
export function digest(algorithm: number, parts: readonly Uint8Array[]): Uint8Array | undefined {
  const hash = HASHES[algorithm]?.create();
  if (hash === undefined) return undefined;
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** AES key wrap (RFC 3394) of `data` (a multiple of 8 bytes, at least 16) under a 16, 24 or 32-byte `kek`. */
export function aesKeyWrap(kek: Uint8Array, data: Uint8Array): Uint8Array {
  return aeskw(kek).encrypt(data);
}

/** AES key unwrap (RFC 3394); `undefined` when the integrity check fails or the input is malformed. */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array | undefined {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) return undefined;
  try {
    return aeskw(kek).decrypt(wrapped);
  } catch {
    return undefined;
  }
}

const ZERO_IV = new Uint8Array(16);

/** AES-CFB (128-bit segments) with a zero IV under a 16, 24 or 32-byte key (RFC 9580 §5.13.1). */
export function aesCfbEncrypt(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return cfb(key, ZERO_IV).encrypt(plaintext);
}

/** The inverse of {@link aesCfbEncrypt}. */
export function aesCfbDecrypt(key: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return cfb(key, ZERO_IV).decrypt(ciphertext);
}
