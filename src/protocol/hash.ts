/**
 * Hash helpers. SHA-256 everywhere (RFC 6962 trees, transaction ids, block hashes, state tree).
 * Kept in one module so that a browser build can swap the implementation without touching callers.
 */
import { createHash } from 'node:crypto';

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** SHA-256 of a UTF-8 string, as lowercase hex. */
export function sha256Hex(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Lowercase hex of 32 bytes: the textual form of every hash in keyledger. */
export const HASH_HEX = /^[0-9a-f]{64}$/;

/** Parses a 64-character lowercase hex hash; throws `TypeError` if it is not one. */
export function hashFromHex(hex: string): Buffer {
  if (typeof hex !== 'string' || !HASH_HEX.test(hex)) throw new TypeError('not a 32-byte lowercase hex hash');
  return Buffer.from(hex, 'hex');
}
