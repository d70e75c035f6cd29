/**
 * Hash helpers. SHA-256 everywhere (RFC 6962 trees, transaction ids, block hashes, state tree), from
 * the crypto backend (./crypto/node.ts, or ./crypto/web.ts in browser bundles).
 */
import { fromHex, toHex, utf8 } from './bytes.js';
import { sha256 as backendSha256, sha256Binary as backendSha256Binary } from './crypto/node.js';

/** SHA-256 of the concatenation of `parts`. */
export const sha256: (...parts: Uint8Array[]) => Uint8Array = backendSha256;

/** SHA-256 of a binary string (one character per byte), as a binary string of 32 characters. */
export const sha256Binary: (text: string) => string = backendSha256Binary;

/** SHA-256 of a string (UTF-8) or bytes, as lowercase hex. */
export function sha256Hex(text: string | Uint8Array): string {
  return toHex(backendSha256(typeof text === 'string' ? utf8(text) : text));
}

/** Lowercase hex of 32 bytes: the textual form of every hash in keyledger. */
export const HASH_HEX = /^[0-9a-f]{64}$/;

/** Parses a 64-character lowercase hex hash; throws `TypeError` if it is not one. */
export function hashFromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string' || !HASH_HEX.test(hex)) throw new TypeError('not a 32-byte lowercase hex hash');
  return fromHex(hex);
}
