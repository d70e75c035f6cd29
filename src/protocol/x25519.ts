/**
 * Ephemeral X25519 keys for the handshake's ECDH (RFC 7748), on the crypto backend. Public keys
 * travel as 32 raw bytes, base64url.
 */
import { fromBase64url, toBase64url } from './bytes.js';
import { type PrivateKeyHandle, x25519KeyPair, x25519SharedSecret } from './crypto/node.js';
import { KlError } from './errors.js';

/** base64url of 32 bytes. */
export const X25519_PUBLIC_B64 = /^[A-Za-z0-9_-]{43}$/;

/** An ephemeral X25519 key pair. */
export interface EphemeralKey {
  /** The private half, held by the crypto backend. */
  privateKey: PrivateKeyHandle;
  /** Raw public key, base64url. */
  publicKey: string;
}

/**
 * Makes a fresh ephemeral key pair. `fixedPrivate` (32 raw bytes, RFC 7748 §5) replaces the random
 * draw: only for test vectors (test/vectors/keyledger-v1.json), never in the protocol.
 */
export function generateEphemeral(fixedPrivate?: Uint8Array): EphemeralKey {
  if (fixedPrivate && fixedPrivate.length !== 32)
    throw new KlError('KL_PROTOCOL', 'an X25519 private key is 32 bytes');
  const { privateKey, publicKey } = x25519KeyPair(fixedPrivate);
  return { privateKey, publicKey: toBase64url(publicKey) };
}

/**
 * X25519(own private, peer public). Refuses malformed keys and the all-zero shared secret of
 * low-order points (RFC 7748 §6.1).
 * @throws KlError `KL_PROTOCOL`
 */
export function sharedSecret(own: PrivateKeyHandle, peerPublicB64: string): Uint8Array {
  if (typeof peerPublicB64 !== 'string' || !X25519_PUBLIC_B64.test(peerPublicB64)) {
    throw new KlError('KL_PROTOCOL', 'ephemeral key must be 32 bytes, base64url');
  }
  let shared: Uint8Array;
  try {
    shared = x25519SharedSecret(own, fromBase64url(peerPublicB64));
  } catch {
    throw new KlError('KL_PROTOCOL', 'ephemeral key is not a valid X25519 key');
  }
  return shared;
}
