/**
 * The crypto backend for browsers (see types.ts): @noble/hashes, @noble/curves and @noble/ciphers
 * (audited, synchronous, pure JavaScript) and `crypto.getRandomValues`. No Node built-ins, no
 * `Buffer`. Bundlers use this file in place of node.ts through the package.json `browser` map.
 */
import { gcm } from '@noble/ciphers/aes';
import { ed25519, x25519 } from '@noble/curves/ed25519';
import { hkdf } from '@noble/hashes/hkdf';
import { hmac } from '@noble/hashes/hmac';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2';
import { ed25519EncodingAcceptable } from './ed25519-encoding.js';
import type { KeyPair, PrivateKeyHandle } from './types.js';

export type { CryptoBackend, KeyPair, PrivateKeyHandle } from './types.js';

/** Which backend this is (for tests and diagnostics). */
export const BACKEND = 'web';

// DER prefixes of the SPKI and PKCS#8 forms of 32-byte Ed25519 keys (RFC 8410 §4, §7).
const SPKI_ED25519 = hexDecode('302a300506032b6570032100');
const PKCS8_ED25519 = hexDecode('302e020100300506032b657004220420');

/** The private seed behind a handle (this backend keeps it as bytes). */
interface SeedKey {
  kind: 'x25519' | 'ed25519';
  seed: Uint8Array;
}
const handle = (kind: SeedKey['kind'], seed: Uint8Array) =>
  ({ kind, seed: Uint8Array.from(seed) }) as SeedKey as unknown as PrivateKeyHandle;
function seedOf(h: PrivateKeyHandle, kind: SeedKey['kind']): Uint8Array {
  const k = h as unknown as SeedKey;
  if (k?.kind !== kind || !(k.seed instanceof Uint8Array)) throw new TypeError(`not an ${kind} private key`);
  return k.seed;
}
function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = nobleSha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** SHA-256 of a binary string, as a binary string (see types.ts). */
export function sha256Binary(text: string): string {
  return String.fromCharCode(...nobleSha256(binaryDecode(text)));
}

/** HMAC-SHA256 (RFC 2104). */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, data);
}

/** HKDF-SHA256 (RFC 5869). */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdf(nobleSha256, ikm, salt, info, length);
}

/** AES-256-GCM: ciphertext ‖ 16-byte tag. */
export function aesGcmSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  prefix?: Uint8Array,
): Uint8Array {
  if (key.length !== 32) throw new TypeError('an AES-256 key is 32 bytes');
  const sealed = gcm(key, nonce, aad).encrypt(plaintext);
  if (!prefix) return sealed;
  const out = new Uint8Array(prefix.length + sealed.length);
  out.set(prefix);
  out.set(sealed, prefix.length);
  return out;
}

/** AES-256-GCM open of ciphertext ‖ tag; `null` if it does not authenticate. */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | null {
  if (sealed.length < 16 || key.length !== 32) return null;
  try {
    return gcm(key, nonce, aad).decrypt(sealed);
  } catch {
    return null;
  }
}

/** A fresh X25519 key pair, or the one of `fixedPrivate` (32 bytes). */
export function x25519KeyPair(fixedPrivate?: Uint8Array): KeyPair {
  if (fixedPrivate && fixedPrivate.length !== 32) throw new TypeError('an X25519 private key is 32 bytes');
  const seed = fixedPrivate ?? randomBytes(32);
  return { privateKey: handle('x25519', seed), publicKey: x25519.getPublicKey(seed) };
}

/** X25519 shared secret; throws on a malformed key or an all-zero result. */
export function x25519SharedSecret(privateKey: PrivateKeyHandle, peerPublic: Uint8Array): Uint8Array {
  if (peerPublic.length !== 32) throw new TypeError('an X25519 public key is 32 bytes');
  const shared = x25519.getSharedSecret(seedOf(privateKey, 'x25519'), peerPublic);
  if (shared.every((b) => b === 0)) throw new TypeError('X25519 with a low-order point');
  return shared;
}

/** A fresh Ed25519 key pair. */
export function ed25519KeyPair(): KeyPair {
  const seed = randomBytes(32);
  return { privateKey: handle('ed25519', seed), publicKey: ed25519.getPublicKey(seed) };
}

/** An Ed25519 key from PKCS#8 DER (the 48-byte form without the optional public key). */
export function ed25519FromPkcs8(der: Uint8Array): KeyPair {
  if (der.length !== 48 || !same(der.subarray(0, 16), PKCS8_ED25519))
    throw new TypeError('not an Ed25519 private key');
  const seed = der.subarray(16);
  return { privateKey: handle('ed25519', seed), publicKey: ed25519.getPublicKey(seed) };
}

/** PKCS#8 DER of an Ed25519 private key. */
export function ed25519ToPkcs8(privateKey: PrivateKeyHandle): Uint8Array {
  return concat([PKCS8_ED25519, seedOf(privateKey, 'ed25519')]);
}

/** Ed25519 signature, 64 bytes. */
export function ed25519Sign(privateKey: PrivateKeyHandle, message: Uint8Array): Uint8Array {
  return ed25519.sign(message, seedOf(privateKey, 'ed25519'));
}

/** Ed25519 verification with a raw or SPKI public key; strict RFC 8032 encodings; never throws. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  let raw = publicKey;
  if (publicKey.length === 44) {
    if (!same(publicKey.subarray(0, 12), SPKI_ED25519)) return false;
    raw = publicKey.subarray(12);
  }
  if (raw.length !== 32) return false;
  try {
    return ed25519.verify(signature, message, raw, { zip215: false });
  } catch {
    return false;
  }
}

/** A canonical, not small-order raw Ed25519 public key (see types.ts). */
export function ed25519PublicKeyAcceptable(publicKey: Uint8Array): boolean {
  return ed25519EncodingAcceptable(publicKey);
}

/** `n` random bytes (`crypto.getRandomValues`, at most 65536 bytes per call). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536)
    globalThis.crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  return out;
}

/** Constant-time equality (`false` on different lengths). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** `n` zero bytes. */
export function allocBytes(n: number): Uint8Array {
  return new Uint8Array(n);
}

/** A copy of `bytes`. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Concatenation, in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return concat(parts);
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUE[B64URL.charCodeAt(i)] = i;
B64_VALUE['+'.charCodeAt(0)] = 62;
B64_VALUE['/'.charCodeAt(0)] = 63;

/** base64url without padding. */
export function base64urlEncode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]! + B64URL[n & 63]!;
  }
  if (i + 1 === bytes.length) {
    const n = bytes[i]! << 16;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!;
  } else if (i + 2 === bytes.length) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]!;
  }
  return out;
}

/** Lenient base64url decoding, as Node's (see types.ts). */
export function base64urlDecode(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let n = 0;
  let bits = 0;
  let acc = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3d) break;
    const v = c < 128 ? B64_VALUE[c]! : -1;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Bytes as a binary string (see types.ts). */
export function binaryEncode(bytes: Uint8Array): string {
  // One call per chunk gives a flat string (a character at a time builds a chain of concatenations).
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x2000)
    text += String.fromCharCode(...bytes.subarray(i, i + 0x2000));
  return text;
}

/** A binary string as bytes (see types.ts). */
export function binaryDecode(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

/** Lowercase hex. */
export function hexEncode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!]!;
  return out;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Hex decoding, stopping at the first invalid pair (as Node's). */
export function hexDecode(text: string): Uint8Array {
  const out = new Uint8Array(text.length >> 1);
  let n = 0;
  for (; n < out.length; n++) {
    const hi = nibble(text.charCodeAt(2 * n));
    const lo = nibble(text.charCodeAt(2 * n + 1));
    if (hi < 0 || lo < 0) break;
    out[n] = (hi << 4) | lo;
  }
  return out.subarray(0, n);
}

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is data, as in Node's `toString('utf8')`.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** UTF-8 encoding. */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** UTF-8 decoding with U+FFFD replacement. */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
