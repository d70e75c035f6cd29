/**
 * Field schemas the wire messages share: bounded strings with their exact formats, bounded integers.
 * Every string has a length bound and every integer a range (docs/protocol.md "Messages").
 */
import { Type } from 'typebox';
import { MAX_IDENTITY_LENGTH, MAX_NAME_LENGTH } from '../identity.js';

/** Latest time accepted, milliseconds since the epoch (the largest valid JavaScript date). */
export const MAX_TIME = 8.64e15;

/** Unpadded base64url of exactly `bytes` bytes (RFC 4648 §5). */
export const B64url = (bytes: number) => {
  const n = Math.ceil((bytes * 4) / 3);
  return Type.String({ maxLength: n, pattern: `^[A-Za-z0-9_-]{${n}}$` });
};

/** A 32-byte value, base64url (X25519 public keys, random nonces and key-confirmation values). */
export const B64url32 = B64url(32);
/** A 16-byte id, base64url (session ids, challenge ids, resumption nonces). */
export const Id16 = B64url(16);
/** SHA-256 in lowercase hex (chain ids, block and transaction hashes). */
export const Hash = Type.String({ maxLength: 64, pattern: '^[0-9a-f]{64}$' });
/** An OpenPGP v4 (40 hex) or v6 (64 hex) fingerprint, lowercase. */
export const Fingerprint = Type.String({ maxLength: 64, pattern: '^([0-9a-f]{40}|[0-9a-f]{64})$' });
/** An identity as sent (canonicalised by the server: docs/protocol.md "Identities"). */
export const Identity = Type.String({ minLength: 3, maxLength: MAX_IDENTITY_LENGTH });
/** A person's display name. */
export const DisplayName = Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH });
/**
 * The name a person gives one of their devices (docs/ledger.md "Devices"): a letter or digit, then
 * letters, digits, spaces, dots, dashes and underscores; at most 40 characters, and not 40 hex digits.
 */
export const DeviceName = Type.String({
  maxLength: 40,
  // Never 40 hex digits: a name must not read as a key's fingerprint.
  pattern: '^(?![0-9A-Fa-f]{40}$)[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$',
});
/** A time, milliseconds since the epoch. */
export const Time = Type.Integer({ minimum: 0, maximum: MAX_TIME });
/** A count or height from 0 up to the largest safe integer. */
export const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** A block height (the first block is 1). */
export const Height = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** Longest armored OpenPGP public key accepted, characters. */
export const MAX_ARMORED_KEY = 32 * 1024;
/** Longest armored OpenPGP signature accepted, characters. */
export const MAX_ARMORED_SIGNATURE = 8 * 1024;
/** An armored OpenPGP public key (checked as OpenPGP later). */
export const ArmoredKey = Type.String({ minLength: 1, maxLength: MAX_ARMORED_KEY });
/** An armored OpenPGP detached signature (checked as OpenPGP later). */
export const ArmoredSignature = Type.String({ minLength: 1, maxLength: MAX_ARMORED_SIGNATURE });
