/**
 * v4 EdDSA-legacy signatures over binary data (RFC 9580 §5.2.3, §5.2.4; algorithm 22 with Ed25519),
 * made and checked on the crypto backend: {@link parseSignature} reads a signature packet body
 * strictly (anything it does not fully understand is left to OpenPGP.js), {@link checkSignature}
 * does the cryptographic check, {@link makeSignature} writes one.
 */
import { concatBytes, readU32BE, toHex } from '../../protocol/bytes.js';
import { ed25519Sign, ed25519Verify } from '../../protocol/crypto/node.js';
import type { NativeKeyPacket, NativeSecretKey } from './keys.js';
import { leftPad, readMpi, uint32, writeMpi } from './packets.js';
import { digest } from './primitives.js';

/** Signature type "binary document" (RFC 9580 §5.2.1.1). */
export const SIG_BINARY = 0x00;
/** Public-key algorithm EdDSA legacy (RFC 9580 §9.1). */
export const ALGO_EDDSA_LEGACY = 22;
/** The hash the native path signs with: SHA2-512, as OpenPGP.js and GnuPG do for Ed25519 keys. */
export const SIGN_HASH = 10;
/** Hashes of at least 256 bits (RFC 9580 §5.2.3.3 requires them for EdDSA): SHA2-256/384/512, SHA3-256/512. */
const STRONG_HASHES = new Set([8, 9, 10, 12, 14]);

/** Subpacket types (RFC 9580 §5.2.3.7). */
const SUB_CREATED = 2;
const SUB_EXPIRES = 3;
const SUB_ISSUER = 16;
const SUB_NOTATION = 20;
const SUB_ISSUER_FPR = 33;

/** A signature packet the native path understands completely. */
export interface NativeSignature {
  type: number;
  hashAlgorithm: number;
  /** Creation time, ms (a whole second). */
  created: number;
  /** Expiry, ms, or `Infinity`. */
  expires: number;
  /** The issuer's key ID as lower-case hex (from the key ID or fingerprint subpacket). */
  issuerKeyIdHex: string;
  /** The issuer's fingerprint, if named. */
  issuerFingerprintHex?: string;
  /** The hashed part of the body (version through hashed subpackets) and its trailer. */
  hashed: Uint8Array;
  left16: Uint8Array;
  /** R ‖ S, 64 bytes. */
  rs: Uint8Array;
}

interface Subpacket {
  type: number;
  critical: boolean;
  body: Uint8Array;
}

/** Reads a subpacket area (RFC 9580 §5.2.3.7); `undefined` if malformed. */
function readSubpackets(area: Uint8Array): Subpacket[] | undefined {
  const out: Subpacket[] = [];
  let offset = 0;
  while (offset < area.length) {
    const l0 = area[offset]!;
    let length: number;
    let start: number;
    if (l0 < 192) {
      length = l0;
      start = offset + 1;
    } else if (l0 < 255) {
      if (offset + 1 >= area.length) return undefined;
      length = ((l0 - 192) << 8) + area[offset + 1]! + 192;
      start = offset + 2;
    } else {
      if (offset + 5 > area.length) return undefined;
      length = readU32BE(area, offset + 1);
      start = offset + 5;
    }
    if (length < 1 || start + length > area.length) return undefined;
    out.push({
      type: area[start]! & 0x7f,
      critical: (area[start]! & 0x80) !== 0,
      body: area.subarray(start + 1, start + length),
    });
    offset = start + length;
  }
  return out;
}

/** A non-critical notation (RFC 9580 §5.2.3.24) is ignored by OpenPGP.js, GnuPG and Sequoia alike. */
function isIgnorableNotation(sub: Subpacket): boolean {
  return sub.type === SUB_NOTATION && !sub.critical && sub.body.length >= 8;
}

/**
 * Reads a v4 EdDSA-legacy signature packet body whose subpackets are only a creation time, an optional
 * expiry, issuer key ID / fingerprint and non-critical notations, each at most once. `undefined` for
 * anything else (OpenPGP.js then decides).
 */
export function parseSignature(body: Uint8Array): NativeSignature | undefined {
  if (body.length < 6 || body[0] !== 4 || body[2] !== ALGO_EDDSA_LEGACY) return undefined;
  const hashedLength = (body[4]! << 8) | body[5]!;
  const unhashedAt = 6 + hashedLength;
  if (unhashedAt + 2 > body.length) return undefined;
  const unhashedLength = (body[unhashedAt]! << 8) | body[unhashedAt + 1]!;
  const leftAt = unhashedAt + 2 + unhashedLength;
  if (leftAt + 2 > body.length) return undefined;
  const hashedSubs = readSubpackets(body.subarray(6, unhashedAt));
  const unhashedSubs = readSubpackets(body.subarray(unhashedAt + 2, leftAt));
  if (!hashedSubs || !unhashedSubs) return undefined;
  const seen = new Set<number>();
  let created: number | undefined;
  let expires = Number.POSITIVE_INFINITY;
  let issuer: string | undefined;
  let fingerprint: string | undefined;
  for (const [area, hashed] of [
    [hashedSubs, true],
    [unhashedSubs, false],
  ] as const) {
    for (const sub of area) {
      if (isIgnorableNotation(sub)) continue;
      if (seen.has(sub.type)) return undefined;
      seen.add(sub.type);
      if (sub.type === SUB_CREATED && hashed && sub.body.length === 4) {
        created = readU32BE(sub.body) * 1000;
      } else if (sub.type === SUB_EXPIRES && hashed && sub.body.length === 4) {
        const seconds = readU32BE(sub.body);
        if (seconds !== 0) expires = seconds * 1000;
      } else if (sub.type === SUB_ISSUER && sub.body.length === 8) {
        issuer = toHex(sub.body);
      } else if (sub.type === SUB_ISSUER_FPR && sub.body.length === 21 && sub.body[0] === 4) {
        fingerprint = toHex(sub.body.subarray(1));
      } else {
        return undefined;
      }
    }
  }
  if (created === undefined) return undefined;
  if (issuer === undefined && fingerprint === undefined) return undefined;
  if (issuer !== undefined && fingerprint !== undefined && !fingerprint.endsWith(issuer)) return undefined;
  const r = readMpi(body, leftAt + 2);
  const s = r && readMpi(body, r.next);
  if (!r || !s || s.next !== body.length) return undefined;
  const rPadded = leftPad(r.value, 32);
  const sPadded = leftPad(s.value, 32);
  if (!rPadded || !sPadded) return undefined;
  const hashedPart = body.subarray(0, unhashedAt);
  return {
    type: body[1]!,
    hashAlgorithm: body[3]!,
    created,
    expires: created + expires,
    issuerKeyIdHex: issuer ?? fingerprint!.slice(-16),
    ...(fingerprint === undefined ? {} : { issuerFingerprintHex: fingerprint }),
    hashed: concatBytes(hashedPart, Uint8Array.of(4, 0xff), uint32(hashedPart.length)),
    left16: body.subarray(leftAt, leftAt + 2),
    rs: concatBytes(rPadded, sPadded),
  };
}

/**
 * The cryptographic check of `signature` over `data` by `key` (RFC 9580 §5.2.4): a hash of at least
 * 256 bits, the left 16 bits, Ed25519 over the digest. Time and key validity are the caller's.
 */
export function checkSignature(signature: NativeSignature, data: Uint8Array, key: NativeKeyPacket): boolean {
  if (key.kind !== 'ed25519' || signature.issuerKeyIdHex !== key.keyIdHex) return false;
  if (
    signature.issuerFingerprintHex !== undefined &&
    signature.issuerFingerprintHex !== toHex(key.fingerprint)
  )
    return false;
  if (!STRONG_HASHES.has(signature.hashAlgorithm)) return false;
  const hash = digest(signature.hashAlgorithm, [data, signature.hashed]);
  if (!hash || hash[0] !== signature.left16[0] || hash[1] !== signature.left16[1]) return false;
  return ed25519Verify(key.publicKey, hash, signature.rs);
}

/**
 * A v4 EdDSA-legacy signature packet body of `type` over `data`, made at `created` (ms) by `key`:
 * hashed creation time and issuer fingerprint, unhashed issuer key ID (RFC 9580 §5.2.3.7), SHA2-512.
 */
export function makeSignature(
  data: Uint8Array,
  key: NativeSecretKey,
  created: number,
  type = SIG_BINARY,
): Uint8Array {
  const hashedSubs = concatBytes(
    Uint8Array.of(5, SUB_CREATED),
    uint32(Math.floor(created / 1000)),
    Uint8Array.of(22, SUB_ISSUER_FPR, 4),
    key.fingerprint,
  );
  const hashedPart = concatBytes(
    Uint8Array.of(4, type, ALGO_EDDSA_LEGACY, SIGN_HASH, 0, hashedSubs.length),
    hashedSubs,
  );
  const hash = digest(SIGN_HASH, [data, hashedPart, Uint8Array.of(4, 0xff), uint32(hashedPart.length)])!;
  const rs = ed25519Sign(key.secret, hash);
  return concatBytes(
    hashedPart,
    Uint8Array.of(0, 10, 9, SUB_ISSUER),
    key.keyId,
    hash.subarray(0, 2),
    writeMpi(rs.subarray(0, 32)),
    writeMpi(rs.subarray(32)),
  );
}
