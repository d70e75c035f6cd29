/**
 * Identity canonicalisation (docs/protocol.md "Phase 1", step 2): an identity is an email address,
 * lower-cased, plus a display name. One identity must never be registrable twice under case or
 * Unicode variants, so every identity is put through {@link canonicalIdentity} before it is compared, stored
 * or signed.
 */
import { KlError } from './errors.js';

/** Longest identity accepted (RFC 5321 path limit). */
export const MAX_IDENTITY_LENGTH = 254;
/** Longest display name accepted. */
export const MAX_NAME_LENGTH = 128;

// A deliberately strict subset of RFC 5322 addr-spec: local part of atext and dots, a DNS domain.
const EMAIL =
  /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Returns the canonical form of an identity: Unicode NFKC, trimmed, lower-cased, and checked to be an
 * ASCII email address. Non-ASCII identities are refused rather than guessed at (homoglyphs).
 * @throws KlError `KL_BAD_INPUT` when the input is not an acceptable identity.
 */
export function canonicalIdentity(input: unknown): string {
  if (typeof input !== 'string') throw new KlError('KL_BAD_INPUT', 'identity must be a string');
  const id = input.normalize('NFKC').trim().toLowerCase();
  if (id.length === 0 || id.length > MAX_IDENTITY_LENGTH) {
    throw new KlError('KL_BAD_INPUT', `identity must be 1 to ${MAX_IDENTITY_LENGTH} characters`);
  }
  if (!EMAIL.test(id))
    throw new KlError('KL_BAD_INPUT', 'identity must be an email address such as alice@example.org');
  return id;
}

/** True when `id` is already in canonical form. */
export function isCanonicalIdentity(id: unknown): id is string {
  try {
    return canonicalIdentity(id) === id;
  } catch {
    return false;
  }
}

/**
 * Returns a display name fit to store: NFC, trimmed, no control characters, bounded length.
 * @throws KlError `KL_BAD_INPUT` otherwise.
 */
export function canonicalDisplayName(input: unknown): string {
  if (typeof input !== 'string') throw new KlError('KL_BAD_INPUT', 'name must be a string');
  const name = input.normalize('NFC').trim();
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new KlError('KL_BAD_INPUT', `name must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) {
    throw new KlError('KL_BAD_INPUT', 'name must not contain control characters');
  }
  return name;
}
