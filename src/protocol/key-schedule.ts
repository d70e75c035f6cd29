/**
 * The session key schedule (docs/protocol.md "Phase 2", step 4): HKDF-SHA256 over the X25519 shared secret,
 * salted with the transcript hash, one labelled output per purpose and direction. Binding the salt
 * to the transcript means a session's keys exist only for that exact handshake.
 */
import { allocBytes, concatBytes, utf8 } from './bytes.js';
import { hmacSha256 } from './crypto/node.js';

/** Keys of one session epoch. Never logged, never written to disk. */
export interface SessionKeys {
  /** Client → server AES-256-GCM key and IV base. */
  c2sKey: Uint8Array;
  c2sIv: Uint8Array;
  /** Server → client AES-256-GCM key and IV base. */
  s2cKey: Uint8Array;
  s2cIv: Uint8Array;
  /** Proves knowledge of the session to resume it on a new connection (docs/protocol.md "Phases 3 and 4"). */
  resumeKey: Uint8Array;
}

const LABEL = 'keyledger/v1 ';

/**
 * HKDF-Expand (RFC 5869 §2.3) for outputs of at most one hash length, the only ones the schedule
 * needs: T(1) = HMAC(PRK, info ‖ 0x01), truncated. Together with one shared HKDF-Extract this gives
 * the bytes of a full HKDF per key for a sixth of the work (one extract instead of five).
 */
function expand(prk: Uint8Array, label: string, length: number): Uint8Array {
  return hmacSha256(prk, concatBytes(utf8(LABEL + label), Uint8Array.of(1))).subarray(0, length);
}

const KEY_LAYOUT = [
  ['c2sKey', 'c2s key', 32],
  ['c2sIv', 'c2s iv', 12],
  ['s2cKey', 's2c key', 32],
  ['s2cIv', 's2c iv', 12],
  ['resumeKey', 'resume', 32],
] as const;

/**
 * Derives the session keys from the ECDH secret and the transcript hash: HKDF-SHA256 (RFC 5869) with
 * one label per key. The five keys are views of one array of their own (not a shared pool):
 * one allocation per session instead of five, and one `fill(0)` wipes them all.
 */
export function deriveSessionKeys(sharedSecret: Uint8Array, transcriptHash: Uint8Array): SessionKeys {
  const store = allocBytes(KEY_LAYOUT.reduce((n, [, , len]) => n + len, 0));
  const keys: Partial<SessionKeys> = {};
  // HKDF-Extract (RFC 5869 §2.2): PRK = HMAC(salt, IKM).
  const prk = hmacSha256(transcriptHash, sharedSecret);
  let offset = 0;
  for (const [name, label, length] of KEY_LAYOUT) {
    const k = expand(prk, label, length);
    store.set(k, offset);
    k.fill(0);
    keys[name] = store.subarray(offset, offset + length);
    offset += length;
  }
  prk.fill(0);
  return keys as SessionKeys;
}

/** Overwrites every key with zeros (keys live in memory only and die with the session). */
export function wipeSessionKeys(keys: SessionKeys): void {
  for (const k of Object.values(keys) as Uint8Array[]) k.fill(0);
}
