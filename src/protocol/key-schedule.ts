/**
 * The session key schedule (docs/protocol.md "Phase 2", step 4): HKDF-SHA256 over the X25519 shared secret,
 * salted with the transcript hash, one labelled output per purpose and direction. Binding the salt
 * to the transcript means a session's keys exist only for that exact handshake.
 */
import { hkdfSync } from 'node:crypto';

/** Keys of one session epoch. Never logged, never written to disk. */
export interface SessionKeys {
  /** Client → server AES-256-GCM key and IV base. */
  c2sKey: Buffer;
  c2sIv: Buffer;
  /** Server → client AES-256-GCM key and IV base. */
  s2cKey: Buffer;
  s2cIv: Buffer;
  /** Proves knowledge of the session to resume it on a new connection (docs/protocol.md "Phases 3 and 4"). */
  resumeKey: Buffer;
}

const LABEL = 'keyledger/v1 ';

function expand(ikm: Buffer, salt: Buffer, label: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(LABEL + label, 'utf8'), length));
}

const KEY_LAYOUT = [
  ['c2sKey', 'c2s key', 32],
  ['c2sIv', 'c2s iv', 12],
  ['s2cKey', 's2c key', 32],
  ['s2cIv', 's2c iv', 12],
  ['resumeKey', 'resume', 32],
] as const;

/**
 * Derives the session keys from the ECDH secret and the transcript hash: one HKDF-SHA256 expansion
 * per key and label. The five keys are views of one buffer of their own (not Node's shared pool):
 * one allocation per session instead of five, and one `fill(0)` wipes them all.
 */
export function deriveSessionKeys(sharedSecret: Buffer, transcriptHash: Buffer): SessionKeys {
  const store = Buffer.alloc(KEY_LAYOUT.reduce((n, [, , len]) => n + len, 0));
  const keys: Partial<SessionKeys> = {};
  let offset = 0;
  for (const [name, label, length] of KEY_LAYOUT) {
    const k = expand(sharedSecret, transcriptHash, label, length);
    k.copy(store, offset);
    k.fill(0);
    keys[name] = store.subarray(offset, offset + length);
    offset += length;
  }
  return keys as SessionKeys;
}

/** Overwrites every key with zeros (keys live in memory only and die with the session). */
export function wipeSessionKeys(keys: SessionKeys): void {
  for (const k of Object.values(keys) as Buffer[]) k.fill(0);
}
