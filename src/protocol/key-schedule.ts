/**
 * The session key schedule (DESIGN phase 2 step 4): HKDF-SHA256 over the X25519 shared secret,
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
  /** Proves knowledge of the session when resuming on a new connection (issue 4). */
  resumeKey: Buffer;
}

const LABEL = 'keyledger/v1 ';

function expand(ikm: Buffer, salt: Buffer, label: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(LABEL + label, 'utf8'), length));
}

/** Derives the session keys from the ECDH secret and the transcript hash. */
export function deriveSessionKeys(sharedSecret: Buffer, transcriptHash: Buffer): SessionKeys {
  return {
    c2sKey: expand(sharedSecret, transcriptHash, 'c2s key', 32),
    c2sIv: expand(sharedSecret, transcriptHash, 'c2s iv', 12),
    s2cKey: expand(sharedSecret, transcriptHash, 's2c key', 32),
    s2cIv: expand(sharedSecret, transcriptHash, 's2c iv', 12),
    resumeKey: expand(sharedSecret, transcriptHash, 'resume', 32),
  };
}

/** Overwrites every key with zeros (keys live in memory only and die with the session). */
export function wipeSessionKeys(keys: SessionKeys): void {
  for (const k of Object.values(keys) as Buffer[]) k.fill(0);
}
