/**
 * Ed25519 keys of ledger participants (validators sign blocks, registrars sign transactions), with
 * the crypto backend (src/protocol/crypto/). These are ledger keys, not OpenPGP keys: they never leave the data directory except
 * as public keys in the genesis or in governance transactions.
 */
import { concatBytes, fromBase64url, toBase64url, toHex, utf8 } from '../protocol/bytes.js';
import {
  ed25519FromPkcs8,
  ed25519KeyPair,
  ed25519Sign,
  ed25519ToPkcs8,
  ed25519Verify,
  type PrivateKeyHandle,
} from '../protocol/crypto/node.js';
import { sha256 } from '../protocol/hash.js';

/** Raw Ed25519 public keys are 32 bytes; base64url without padding is 43 characters. */
export const PUBLIC_KEY_B64 = /^[A-Za-z0-9_-]{43}$/;
/** Key ids are the first 16 bytes of SHA-256(raw public key), hex. */
export const KEY_ID = /^[0-9a-f]{32}$/;
/** Ed25519 signatures are 64 bytes; base64url without padding is 86 characters. */
export const SIGNATURE_B64 = /^[A-Za-z0-9_-]{86}$/;

/** A public Ed25519 key as it appears in the genesis and in transactions. */
export interface PublicKeyInfo {
  /** Key id: hex of the first 16 bytes of SHA-256(raw public key). */
  keyId: string;
  /** Raw 32-byte public key, base64url. */
  publicKey: string;
}

/** An Ed25519 key pair that can sign. The private half stays inside the backend's handle. */
export class SigningKey implements PublicKeyInfo {
  readonly keyId: string;
  readonly publicKey: string;

  private constructor(
    private readonly privateKey: PrivateKeyHandle,
    raw: Uint8Array,
  ) {
    this.publicKey = toBase64url(raw);
    this.keyId = keyIdOf(raw);
  }

  /** Makes a fresh key pair. */
  static generate(): SigningKey {
    const { privateKey, publicKey } = ed25519KeyPair();
    return new SigningKey(privateKey, publicKey);
  }

  /** Loads a key from PKCS#8 DER bytes (RFC 8410 §7). */
  static fromPkcs8(der: Uint8Array): SigningKey {
    const { privateKey, publicKey } = ed25519FromPkcs8(der);
    return new SigningKey(privateKey, publicKey);
  }

  /** PKCS#8 DER of the private key (to be encrypted before it touches disk). */
  exportPkcs8(): Uint8Array {
    return ed25519ToPkcs8(this.privateKey);
  }

  /** Signs `domain ‖ message` and returns the signature as base64url. */
  sign(domain: string, message: Uint8Array): string {
    return toBase64url(ed25519Sign(this.privateKey, concatBytes(utf8(domain), message)));
  }

  /** The public half. */
  info(): PublicKeyInfo {
    return { keyId: this.keyId, publicKey: this.publicKey };
  }
}

/** Key id of a raw public key. */
export function keyIdOf(raw: Uint8Array): string {
  return toHex(sha256(raw).subarray(0, 16));
}

/** Verifies an Ed25519 signature (base64url) over `domain ‖ message`. Never throws. */
export function verifySignature(
  publicKeyB64: string,
  domain: string,
  message: Uint8Array,
  signature: string,
): boolean {
  if (typeof signature !== 'string' || !SIGNATURE_B64.test(signature)) return false;
  // Only the canonical encoding: the last base64url character carries 2 unused bits, and a signature
  // written with other values there decodes to the same bytes — the same transaction under a new txid
  // (a replay). Found by the random-mutation test.
  const sig = fromBase64url(signature);
  if (toBase64url(sig) !== signature) return false;
  if (typeof publicKeyB64 !== 'string' || !PUBLIC_KEY_B64.test(publicKeyB64)) return false;
  return ed25519Verify(fromBase64url(publicKeyB64), concatBytes(utf8(domain), message), sig);
}

/** True when `info.keyId` really is the id of `info.publicKey`. */
export function keyIdMatches(info: PublicKeyInfo): boolean {
  if (!PUBLIC_KEY_B64.test(info.publicKey)) return false;
  return keyIdOf(fromBase64url(info.publicKey)) === info.keyId;
}
