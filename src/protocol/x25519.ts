/**
 * Ephemeral X25519 keys for the handshake's ECDH (node:crypto). Public keys travel as 32 raw bytes,
 * base64url.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { KlError } from './errors.js';

const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** base64url of 32 bytes. */
export const X25519_PUBLIC_B64 = /^[A-Za-z0-9_-]{43}$/;

/** An ephemeral X25519 key pair. */
export interface EphemeralKey {
  privateKey: KeyObject;
  /** Raw public key, base64url. */
  publicKey: string;
}

/**
 * Makes a fresh ephemeral key pair. `fixedPrivate` (32 raw bytes, RFC 7748 §5) replaces the random
 * draw: only for test vectors (test/vectors/keyledger-v1.json), never in the protocol.
 */
export function generateEphemeral(fixedPrivate?: Uint8Array): EphemeralKey {
  let privateKey: KeyObject;
  let publicKey: KeyObject;
  if (fixedPrivate) {
    if (fixedPrivate.length !== 32) throw new KlError('KL_PROTOCOL', 'an X25519 private key is 32 bytes');
    privateKey = createPrivateKey({
      key: Buffer.concat([PKCS8_X25519_PREFIX, fixedPrivate]),
      format: 'der',
      type: 'pkcs8',
    });
    publicKey = createPublicKey(privateKey);
  } else ({ privateKey, publicKey } = generateKeyPairSync('x25519'));
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: der.subarray(der.length - 32).toString('base64url') };
}

/**
 * X25519(own private, peer public). Refuses malformed keys and the all-zero shared secret of
 * low-order points (RFC 7748 §6.1).
 * @throws KlError `KL_PROTOCOL`
 */
export function sharedSecret(own: KeyObject, peerPublicB64: string): Buffer {
  if (typeof peerPublicB64 !== 'string' || !X25519_PUBLIC_B64.test(peerPublicB64)) {
    throw new KlError('KL_PROTOCOL', 'ephemeral key must be 32 bytes, base64url');
  }
  let shared: Buffer;
  try {
    const peer = createPublicKey({
      key: Buffer.concat([SPKI_X25519_PREFIX, Buffer.from(peerPublicB64, 'base64url')]),
      format: 'der',
      type: 'spki',
    });
    shared = diffieHellman({ privateKey: own, publicKey: peer });
  } catch {
    throw new KlError('KL_PROTOCOL', 'ephemeral key is not a valid X25519 key');
  }
  if (shared.every((b) => b === 0)) throw new KlError('KL_PROTOCOL', 'ephemeral key is a low-order point');
  return shared;
}
