/**
 * The AEAD frame codec, wire format v1 (docs/protocol.md "Phases 3 and 4"): a JSON text frame whose
 * { sid, epoch, seq, dir } is the header and, as JCS, the associated data; AES-256-GCM with the
 * direction's key; the 96-bit nonce is the direction's IV XOR the 64-bit sequence number
 * (right-aligned), so no nonce repeats within a key's life as long as seq strictly increases, which
 * the receiver enforces. GCM's tag is the per-message MAC. No longer sent: every frame, the login's
 * `finished` included, is binary, wire format v2 (frame-wire.ts); kept for the v1 test vectors.
 */
import { fromBase64url, toBase64url } from './bytes.js';
import { canonicalBytes } from './canonical-json.js';
import { aesGcmOpen, aesGcmSeal } from './crypto/node.js';
import { KlError } from './errors.js';
import { type Direction, MAX_FRAME_PLAINTEXT, frameNonce as nonce } from './frame-wire.js';

export type { Direction } from './frame-wire.js';
export { MAX_FRAME_PLAINTEXT } from './frame-wire.js';

/** A frame as it travels (JSON text over the WebSocket). */
export interface Frame {
  type: 'frame';
  sid: string;
  epoch: number;
  seq: number;
  /** Ciphertext followed by the 16-byte tag, base64url. */
  ct: string;
}

function aad(sid: string, epoch: number, seq: number, dir: Direction): Uint8Array {
  return canonicalBytes({ sid, epoch, seq, dir });
}

/** Options of {@link sealFrame}. */
export interface SealOptions {
  key: Uint8Array;
  iv: Uint8Array;
  sid: string;
  epoch: number;
  seq: number;
  dir: Direction;
  plaintext: Uint8Array;
}

/** Encrypts one frame. */
export function sealFrame({ key, iv, sid, epoch, seq, dir, plaintext }: SealOptions): Frame {
  if (plaintext.length > MAX_FRAME_PLAINTEXT)
    throw new KlError('KL_TOO_LARGE', `a frame carries at most ${MAX_FRAME_PLAINTEXT} bytes`);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new KlError('KL_PROTOCOL', 'sequence number out of range');
  const ct = aesGcmSeal(key, nonce(iv, seq), aad(sid, epoch, seq, dir), plaintext);
  return { type: 'frame', sid, epoch, seq, ct: toBase64url(ct) };
}

/**
 * The JSON text of a frame, as sent. Same text as `JSON.stringify(frame)` for every frame
 * {@link sealFrame} makes (sid and ct are base64url, epoch and seq integers: nothing to escape),
 * without re-scanning a 90 KB ciphertext string to escape it.
 */
export function encodeFrame(frame: Frame): string {
  return `{"type":"frame","sid":${JSON.stringify(frame.sid)},"epoch":${frame.epoch},"seq":${frame.seq},"ct":"${frame.ct}"}`;
}

/** Options of {@link openFrame}. */
export interface OpenOptions {
  key: Uint8Array;
  iv: Uint8Array;
  dir: Direction;
  frame: Frame;
}

/**
 * Decrypts and authenticates one frame. Sequence checks are the receiver's job.
 * @throws KlError `KL_DECRYPTION_FAILED` (generic) when the frame is forged or damaged.
 */
export function openFrame({ key, iv, dir, frame }: OpenOptions): Uint8Array {
  const raw = fromBase64url(frame.ct);
  const plain =
    raw.length < 16
      ? null
      : aesGcmOpen(key, nonce(iv, frame.seq), aad(frame.sid, frame.epoch, frame.seq, dir), raw);
  if (!plain) throw new KlError('KL_DECRYPTION_FAILED', 'frame could not be authenticated');
  return plain;
}
