/**
 * The crypto backend for Node (see types.ts): node:crypto (OpenSSL) and `Buffer`, the fastest path
 * for the session channel's AES-GCM, HKDF, SHA-256 and Ed25519. The package.json `browser` map
 * replaces this file with web.ts in browser bundles. Values returned are `Buffer`s, typed as
 * `Uint8Array`.
 */
import { Buffer } from 'node:buffer';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  hash as nodeHash,
  randomBytes as nodeRandomBytes,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { ed25519EncodingAcceptable } from './ed25519-encoding.js';
import type { KeyPair, PrivateKeyHandle } from './types.js';

export type { CryptoBackend, KeyPair, PrivateKeyHandle } from './types.js';

/** Which backend this is (for tests and diagnostics). */
export const BACKEND = 'node';

// DER prefixes of the SPKI and PKCS#8 forms of 32-byte X25519 / Ed25519 keys (RFC 8410 §4, §7).
// Public keys cross the boundary as JWK (RFC 8037 §2) instead: OpenSSL 3's DER decoders and encoders
// cost ~10× an X25519 agreement on this kind of machine, its JWK path (raw bytes) a fraction of one.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function buf(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
const handle = (k: KeyObject) => k as unknown as PrivateKeyHandle;
const keyObject = (h: PrivateKeyHandle) => h as unknown as KeyObject;
/** The raw 32 bytes of an X25519 or Ed25519 public key (or of the public half of a private one). */
function rawPublic(k: KeyObject): Buffer {
  const publicKey = k.type === 'public' ? k : createPublicKey(k);
  return Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
}

/** A public KeyObject from 32 raw bytes (RFC 8037 §2 OKP JWK). */
function publicFromRaw(crv: 'X25519' | 'Ed25519', raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x: buf(raw).toString('base64url') }, format: 'jwk' });
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  // The one-shot crypto.hash (Node ≥ 20.12) skips the Hash object; the state and Merkle trees hash
  // a few small parts at a time, where the object costs more than the digest.
  if (oneShot) return oneShot('sha256', parts.length === 1 ? parts[0]! : Buffer.concat(parts), 'buffer');
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

const oneShot = typeof nodeHash === 'function' ? nodeHash : undefined;

/** SHA-256 of a binary string, as a binary string (see types.ts). */
export function sha256Binary(text: string): string {
  const data = Buffer.from(text, 'latin1');
  if (oneShot) return oneShot('sha256', data, 'binary');
  return createHash('sha256').update(data).digest('binary');
}

/** HMAC-SHA256 (RFC 2104). */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return createHmac('sha256', key).update(data).digest();
}

/** HKDF-SHA256 (RFC 5869). */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

/** AES-256-GCM: ciphertext ‖ 16-byte tag. */
export function aesGcmSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  prefix?: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const sealed = [cipher.update(plaintext), cipher.final(), cipher.getAuthTag()];
  return Buffer.concat(prefix ? [prefix, ...sealed] : sealed);
}

/** AES-256-GCM open of ciphertext ‖ tag; `null` if it does not authenticate. */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | null {
  if (sealed.length < 16) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plain = decipher.update(sealed.subarray(0, sealed.length - 16));
    // final() checks the tag (it throws when it fails); GCM has no block left to give back.
    const rest = decipher.final();
    return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
  } catch {
    return null;
  }
}

/** A fresh X25519 key pair, or the one of `fixedPrivate` (32 bytes). */
export function x25519KeyPair(fixedPrivate?: Uint8Array): KeyPair {
  if (!fixedPrivate) {
    const pair = generateKeyPairSync('x25519');
    return { privateKey: handle(pair.privateKey), publicKey: rawPublic(pair.publicKey) };
  }
  if (fixedPrivate.length !== 32) throw new TypeError('an X25519 private key is 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519, fixedPrivate]),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey: handle(privateKey), publicKey: rawPublic(privateKey) };
}

/** X25519 shared secret; throws on a malformed key or an all-zero result. */
export function x25519SharedSecret(privateKey: PrivateKeyHandle, peerPublic: Uint8Array): Uint8Array {
  if (peerPublic.length !== 32) throw new TypeError('an X25519 public key is 32 bytes');
  const peer = publicFromRaw('X25519', peerPublic);
  const shared = diffieHellman({ privateKey: keyObject(privateKey), publicKey: peer });
  if (shared.every((b) => b === 0)) throw new TypeError('X25519 with a low-order point');
  return shared;
}

/** A fresh Ed25519 key pair. */
export function ed25519KeyPair(): KeyPair {
  const pair = generateKeyPairSync('ed25519');
  return { privateKey: handle(pair.privateKey), publicKey: rawPublic(pair.publicKey) };
}

/** An Ed25519 key from PKCS#8 DER. */
export function ed25519FromPkcs8(der: Uint8Array): KeyPair {
  const privateKey = createPrivateKey({ key: buf(der), format: 'der', type: 'pkcs8' });
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('not an Ed25519 private key');
  return { privateKey: handle(privateKey), publicKey: rawPublic(privateKey) };
}

/** PKCS#8 DER of an Ed25519 private key. */
export function ed25519ToPkcs8(privateKey: PrivateKeyHandle): Uint8Array {
  return keyObject(privateKey).export({ format: 'der', type: 'pkcs8' });
}

/** Ed25519 signature, 64 bytes. */
export function ed25519Sign(privateKey: PrivateKeyHandle, message: Uint8Array): Uint8Array {
  return sign(null, message, keyObject(privateKey));
}

const verifyKeys = new Map<string, KeyObject>();

function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject | null {
  const raw = publicKey.length === 44 ? publicKey.subarray(12) : publicKey;
  if (raw.length !== 32) return null;
  if (publicKey.length === 44 && !buf(publicKey.subarray(0, 12)).equals(SPKI_ED25519)) return null;
  const id = buf(raw).toString('base64');
  let key = verifyKeys.get(id);
  if (key) return key;
  if (!ed25519EncodingAcceptable(raw)) return null;
  try {
    key = publicFromRaw('Ed25519', raw);
  } catch {
    return null;
  }
  // Ledgers have a handful of validators and registrars: a small cache saves the DER parse per check.
  if (verifyKeys.size > 1024) verifyKeys.clear();
  verifyKeys.set(id, key);
  return key;
}

/** A canonical, not small-order raw Ed25519 public key (see types.ts). */
export function ed25519PublicKeyAcceptable(publicKey: Uint8Array): boolean {
  return ed25519EncodingAcceptable(publicKey);
}

/** Ed25519 verification with a raw or SPKI public key; never throws. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const key = ed25519PublicKeyObject(publicKey);
  if (!key) return false;
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/** `n` random bytes (OpenSSL CSPRNG). */
export function randomBytes(n: number): Uint8Array {
  return nodeRandomBytes(n);
}

/** Constant-time equality (`false` on different lengths). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `n` zero bytes, unpooled. */
export function allocBytes(n: number): Uint8Array {
  return Buffer.alloc(n);
}

/** A copy (`Buffer.from`: small copies may share Node's pool, as `Buffer`s always have). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return Buffer.from(bytes);
}

/** Concatenation (a new `Buffer`). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** base64url without padding. */
export function base64urlEncode(bytes: Uint8Array): string {
  return buf(bytes).toString('base64url');
}

/** Lenient base64url decoding (see types.ts). */
export function base64urlDecode(text: string): Uint8Array {
  return Buffer.from(text, 'base64url');
}

/** Bytes as a binary string (see types.ts). */
export function binaryEncode(bytes: Uint8Array): string {
  return buf(bytes).toString('latin1');
}

/** A binary string as bytes (see types.ts). */
export function binaryDecode(text: string): Uint8Array {
  return Buffer.from(text, 'latin1');
}

/** Lowercase hex. */
export function hexEncode(bytes: Uint8Array): string {
  return buf(bytes).toString('hex');
}

/** Hex decoding, stopping at the first invalid pair. */
export function hexDecode(text: string): Uint8Array {
  return Buffer.from(text, 'hex');
}

/** UTF-8 encoding. */
export function utf8Encode(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

/** UTF-8 decoding with U+FFFD replacement. */
export function utf8Decode(bytes: Uint8Array): string {
  return buf(bytes).toString('utf8');
}
