/**
 * The contract both crypto backends meet (node.ts on node:crypto, web.ts on @noble/* and
 * `crypto.getRandomValues`). Every function is synchronous and takes and returns `Uint8Array`.
 * Bundlers pick web.ts through the package.json `browser` map; Node and TypeScript see node.ts.
 */

declare const PRIVATE_KEY: unique symbol;

/**
 * A private key held by the backend (Node: a `KeyObject`; web: the raw seed). Opaque to callers so
 * that the Node backend never has to expose the private bytes.
 */
export interface PrivateKeyHandle {
  readonly [PRIVATE_KEY]: 'x25519' | 'ed25519';
}

/** A key pair: the private half as a handle, the public half as its 32 raw bytes (RFC 7748, RFC 8032). */
export interface KeyPair {
  privateKey: PrivateKeyHandle;
  publicKey: Uint8Array;
}

/** The functions of a crypto backend. */
export interface CryptoBackend {
  /** SHA-256 (FIPS 180-4) of the concatenation of `parts`. */
  sha256(...parts: Uint8Array[]): Uint8Array;
  /**
   * SHA-256 of a binary string (one byte per character, 0–255), as a binary string of 32
   * characters: the state tree keeps its hashes so (a string costs a fraction of a byte array).
   */
  sha256Binary(text: string): string;
  /** HMAC-SHA256 (RFC 2104) of `data` under `key`. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-SHA256 extract-then-expand (RFC 5869 §2), `length` bytes. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /**
   * AES-256-GCM encryption (NIST SP 800-38D): ciphertext followed by the 16-byte tag. 12-byte nonce.
   * With `prefix`, the result is prefix ‖ ciphertext ‖ tag, in one allocation (a frame's header).
   */
  aesGcmSeal(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    prefix?: Uint8Array,
  ): Uint8Array;
  /** AES-256-GCM decryption of ciphertext ‖ tag; `null` when authentication fails. Never throws. */
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null;
  /** A fresh X25519 key pair, or the one of a fixed 32-byte private key (RFC 7748 §5; test vectors). */
  x25519KeyPair(fixedPrivate?: Uint8Array): KeyPair;
  /** X25519(private, peer public). Throws on a malformed key or an all-zero result (RFC 7748 §6.1). */
  x25519SharedSecret(privateKey: PrivateKeyHandle, peerPublic: Uint8Array): Uint8Array;
  /** A fresh Ed25519 key pair (RFC 8032 §5.1.5). */
  ed25519KeyPair(): KeyPair;
  /** An Ed25519 key from its PKCS#8 DER form (RFC 8410 §7). Throws if it is not one. */
  ed25519FromPkcs8(der: Uint8Array): KeyPair;
  /** The PKCS#8 DER form of an Ed25519 private key (RFC 8410 §7). */
  ed25519ToPkcs8(privateKey: PrivateKeyHandle): Uint8Array;
  /** Ed25519 signature (RFC 8032 §5.1.6), 64 bytes. */
  ed25519Sign(privateKey: PrivateKeyHandle, message: Uint8Array): Uint8Array;
  /**
   * Ed25519 verification (RFC 8032 §5.1.7, strict encodings) with a raw 32-byte public key or its
   * 44-byte SPKI DER form (RFC 8410 §4). Never throws: anything malformed is `false`.
   */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * True for a raw 32-byte Ed25519 public key a signature may ever be accepted under: a canonical
   * encoding (RFC 8032 §5.1.3) of a point not of small order (ed25519-encoding.ts). Under a
   * small-order key anyone can make signatures (R = identity, S = 0): such keys are refused before use.
   */
  ed25519PublicKeyAcceptable(publicKey: Uint8Array): boolean;
  /** `n` bytes from the platform's CSPRNG. */
  randomBytes(n: number): Uint8Array;
  /** Equality in time independent of the contents (lengths may differ: then `false`). */
  constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean;
  /**
   * `n` zero bytes in memory of their own (never a shared pool). Node: a `Buffer`, so that Node
   * callers of the library keep the `Buffer` methods they may use.
   */
  allocBytes(n: number): Uint8Array;
  /** A copy of `bytes` (not a view: writing to one leaves the other). Node: a `Buffer`. */
  copyBytes(bytes: Uint8Array): Uint8Array;
  /** The concatenation of `parts`, in a new array (Node: a `Buffer`). */
  concatBytes(parts: readonly Uint8Array[]): Uint8Array;
  /** base64url without padding (RFC 4648 §5). */
  base64urlEncode(bytes: Uint8Array): string;
  /**
   * Decodes base64url (also accepts the `+` `/` alphabet); like Node's `Buffer.from(s, 'base64url')`:
   * characters outside the alphabet are skipped, `=` ends the input, a lone trailing character is dropped.
   */
  base64urlDecode(text: string): Uint8Array;
  /** Lowercase hex. */
  hexEncode(bytes: Uint8Array): string;
  /** Decodes hex like Node's `Buffer.from(s, 'hex')`: stops at the first pair that is not hex. */
  hexDecode(text: string): Uint8Array;
  /** UTF-8 encoding (lone surrogates become U+FFFD). */
  utf8Encode(text: string): Uint8Array;
  /** UTF-8 decoding (invalid sequences become U+FFFD, WHATWG Encoding §4.1). */
  utf8Decode(bytes: Uint8Array): string;
  /** Bytes as a flat binary string, one character (0–255) per byte. */
  binaryEncode(bytes: Uint8Array): string;
  /** A binary string as bytes, one per character (its low 8 bits, like Node's `latin1`). */
  binaryDecode(text: string): Uint8Array;
}
