/**
 * Ed25519 keys of ledger participants (validators sign blocks, registrars sign transactions), with
 * node:crypto. These are ledger keys, not OpenPGP keys: they never leave the data directory except
 * as public keys in the genesis or in governance transactions.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { sha256 } from '../protocol/hash.js';

/** Raw Ed25519 public keys are 32 bytes; base64url without padding is 43 characters. */
export const PUBLIC_KEY_B64 = /^[A-Za-z0-9_-]{43}$/;
/** Key ids are the first 16 bytes of SHA-256(raw public key), hex. */
export const KEY_ID = /^[0-9a-f]{32}$/;
/** Ed25519 signatures are 64 bytes; base64url without padding is 86 characters. */
export const SIGNATURE_B64 = /^[A-Za-z0-9_-]{86}$/;

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A public Ed25519 key as it appears in the genesis and in transactions. */
export interface PublicKeyInfo {
  /** Key id: hex of the first 16 bytes of SHA-256(raw public key). */
  keyId: string;
  /** Raw 32-byte public key, base64url. */
  publicKey: string;
}

/** An Ed25519 key pair that can sign. The private half stays inside the KeyObject. */
export class SigningKey implements PublicKeyInfo {
  readonly keyId: string;
  readonly publicKey: string;

  private constructor(private readonly privateKey: KeyObject) {
    const raw = rawPublicKey(createPublicKey(privateKey));
    this.publicKey = raw.toString('base64url');
    this.keyId = keyIdOf(raw);
  }

  /** Makes a fresh key pair. */
  static generate(): SigningKey {
    return new SigningKey(generateKeyPairSync('ed25519').privateKey);
  }

  /** Loads a key from PKCS#8 DER bytes. */
  static fromPkcs8(der: Buffer): SigningKey {
    return new SigningKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  }

  /** PKCS#8 DER of the private key (to be encrypted before it touches disk). */
  exportPkcs8(): Buffer {
    return this.privateKey.export({ format: 'der', type: 'pkcs8' });
  }

  /** Signs `domain ‖ message` and returns the signature as base64url. */
  sign(domain: string, message: Uint8Array): string {
    return sign(null, Buffer.concat([Buffer.from(domain, 'utf8'), message]), this.privateKey).toString(
      'base64url',
    );
  }

  /** The public half. */
  info(): PublicKeyInfo {
    return { keyId: this.keyId, publicKey: this.publicKey };
  }
}

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

/** Key id of a raw public key. */
export function keyIdOf(raw: Uint8Array): string {
  return sha256(raw).subarray(0, 16).toString('hex');
}

const keyCache = new Map<string, KeyObject>();

function publicKeyObject(publicKeyB64: string): KeyObject | null {
  let key = keyCache.get(publicKeyB64);
  if (key) return key;
  if (!PUBLIC_KEY_B64.test(publicKeyB64)) return null;
  const raw = Buffer.from(publicKeyB64, 'base64url');
  if (raw.length !== 32) return null;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
  if (keyCache.size > 1024) keyCache.clear();
  keyCache.set(publicKeyB64, key);
  return key;
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
  if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) return false;
  const key = publicKeyObject(publicKeyB64);
  if (!key) return false;
  try {
    return verify(
      null,
      Buffer.concat([Buffer.from(domain, 'utf8'), message]),
      key,
      Buffer.from(signature, 'base64url'),
    );
  } catch {
    return false;
  }
}

/** True when `info.keyId` really is the id of `info.publicKey`. */
export function keyIdMatches(info: PublicKeyInfo): boolean {
  if (!PUBLIC_KEY_B64.test(info.publicKey)) return false;
  return keyIdOf(Buffer.from(info.publicKey, 'base64url')) === info.keyId;
}
