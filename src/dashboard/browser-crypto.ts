/**
 * The part of `node:crypto` the ledger's verifiers use, for the browser bundle: SHA-256
 * (`createHash`) and Ed25519 verification (`createPublicKey` of an SPKI key, `verify`), backed by
 * @noble/hashes and @noble/curves (audited, synchronous — the verifiers are synchronous). Key
 * generation and signing are not available in the page.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { sha256 } from '@noble/hashes/sha256';

const SPKI_ED25519_PREFIX = '302a300506032b6570032100';

/** `createHash('sha256')`: update(...) then digest() or digest('hex'). */
export function createHash(algorithm: string) {
  if (algorithm !== 'sha256') throw new Error(`only sha256 is available in the browser, not ${algorithm}`);
  const h = sha256.create();
  const api = {
    update(data: Uint8Array | string) {
      h.update(typeof data === 'string' ? new TextEncoder().encode(data) : data);
      return api;
    },
    digest(encoding?: 'hex') {
      const out = Buffer.from(h.digest());
      return encoding === 'hex' ? out.toString('hex') : out;
    },
  };
  return api;
}

/** An Ed25519 public key from its SPKI DER form (what signing-keys.ts builds). */
export function createPublicKey(o: { key: Uint8Array; format: 'der'; type: 'spki' }) {
  const der = Buffer.from(o.key);
  if (der.length !== 44 || der.subarray(0, 12).toString('hex') !== SPKI_ED25519_PREFIX)
    throw new Error('only Ed25519 SPKI keys are supported');
  return { type: 'public', asymmetricKeyType: 'ed25519', raw: der.subarray(12) };
}

/** `verify(null, data, key, signature)` for Ed25519. */
export function verify(
  _algorithm: null,
  data: Uint8Array,
  key: { raw: Uint8Array },
  signature: Uint8Array,
): boolean {
  return ed25519.verify(signature, data, key.raw);
}

function unavailable(): never {
  throw new Error('not available in the browser: the page only verifies');
}
export const createPrivateKey = unavailable;
export const generateKeyPairSync = unavailable;
export const sign = unavailable;
export const randomBytes = unavailable;
export const timingSafeEqual = unavailable;
