/**
 * Byte helpers on `Uint8Array` (no `Buffer`), the same in Node and in browsers. The text codecs
 * (hex, base64url, UTF-8) and allocation come from the crypto backend (./crypto/node.ts in Node,
 * native and fast; ./crypto/web.ts in browsers) and behave identically on both. In Node the arrays
 * made here are `Buffer`s (a `Uint8Array` subclass), so Node callers keep `Buffer`'s methods.
 */
import {
  allocBytes as backendAlloc,
  concatBytes as backendConcat,
  copyBytes as backendCopy,
  base64urlDecode,
  base64urlEncode,
  binaryDecode,
  binaryEncode,
  hexDecode,
  hexEncode,
  utf8Decode,
  utf8Encode,
} from './crypto/node.js';

/** The concatenation of `parts`, in a new array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  return backendConcat(parts);
}

/**
 * Reads `stream` to its end, keeping at most `maxBytes`: past that it cancels the rest (never read)
 * and returns null. Errors of the stream are thrown as they come.
 */
export async function readBounded(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concatBytes(...chunks);
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
}

/** `n` zero bytes in memory of their own (not a shared pool: wiping them wipes nothing else). */
export const allocBytes: (n: number) => Uint8Array = backendAlloc;

/** A copy of `bytes` (not a view: writing to one leaves the other). */
export const copyBytes: (bytes: Uint8Array) => Uint8Array = backendCopy;

/** True when `a` and `b` hold the same bytes. Not constant-time: use `constantTimeEqual` for secrets. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic order of two byte strings (negative, 0, positive), as `Buffer.compare`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Bytes as a flat binary string: one character (0–255) per byte. */
export const toBinaryString: (bytes: Uint8Array) => string = binaryEncode;
/** A binary string (one character, 0–255, per byte) as bytes. */
export const fromBinaryString: (text: string) => Uint8Array = binaryDecode;

/** Lowercase hex of `bytes`. */
export const toHex: (bytes: Uint8Array) => string = hexEncode;
/** Bytes of a hex string (stops at the first pair that is not hex; validate the text first). */
export const fromHex: (text: string) => Uint8Array = hexDecode;
/** base64url without padding (RFC 4648 §5) of `bytes`. */
export const toBase64url: (bytes: Uint8Array) => string = base64urlEncode;
/** Bytes of a base64url string (lenient: validate the text first where it matters). */
export const fromBase64url: (text: string) => Uint8Array = base64urlDecode;
/** UTF-8 bytes of `text`. */
export const utf8: (text: string) => Uint8Array = utf8Encode;
/** The text of UTF-8 `bytes` (invalid sequences become U+FFFD). */
export const fromUtf8: (bytes: Uint8Array) => string = utf8Decode;

/** Reads a big-endian unsigned 32-bit integer at `offset`. */
export function readU32BE(bytes: Uint8Array, offset = 0): number {
  if (offset < 0 || offset + 4 > bytes.length) throw new RangeError('read past the end');
  return (
    ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>>
    0
  );
}

/** Writes `value` (0 ≤ value < 2³²) big-endian at `offset`. */
export function writeU32BE(bytes: Uint8Array, value: number, offset = 0): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError('not a u32');
  if (offset < 0 || offset + 4 > bytes.length) throw new RangeError('write past the end');
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}

/** Reads a big-endian unsigned 64-bit integer at `offset`; throws above `Number.MAX_SAFE_INTEGER`. */
export function readU64BE(bytes: Uint8Array, offset = 0): number {
  const hi = readU32BE(bytes, offset);
  const lo = readU32BE(bytes, offset + 4);
  if (hi > 0x1fffff) throw new RangeError('u64 above the safe integer range');
  return hi * 0x100000000 + lo;
}

/** Writes a safe non-negative integer as a big-endian unsigned 64-bit integer at `offset`. */
export function writeU64BE(bytes: Uint8Array, value: number, offset = 0): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('not a safe non-negative integer');
  writeU32BE(bytes, Math.floor(value / 0x100000000), offset);
  writeU32BE(bytes, value >>> 0, offset + 4);
}
