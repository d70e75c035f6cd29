/**
 * The AEAD frame codec (docs/protocol.md "Phases 3 and 4"): { sid, epoch, seq, dir } is the header and the
 * associated data; AES-256-GCM with the direction's key; the 96-bit nonce is the direction's IV
 * XOR the 64-bit sequence number (right-aligned), so no nonce repeats within a key's life as long as
 * seq strictly increases, which the receiver enforces. GCM's tag is the per-message MAC.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { canonicalBytes } from './canonical-json.js';
import { KlError } from './errors.js';

/** Direction of a frame. */
export type Direction = 'c2s' | 's2c';

/** A frame as it travels (JSON text over the WebSocket). */
export interface Frame {
  type: 'frame';
  sid: string;
  epoch: number;
  seq: number;
  /** Ciphertext followed by the 16-byte tag, base64url. */
  ct: string;
}

/** Largest plaintext per frame. */
export const MAX_FRAME_PLAINTEXT = 96 * 1024;

function nonce(iv: Buffer, seq: number): Buffer {
  const n = Buffer.from(iv);
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(seq));
  for (let i = 0; i < 8; i++) n[4 + i]! ^= s[i]!;
  return n;
}

function aad(sid: string, epoch: number, seq: number, dir: Direction): Buffer {
  return canonicalBytes({ sid, epoch, seq, dir });
}

/** Options of {@link sealFrame}. */
export interface SealOptions {
  key: Buffer;
  iv: Buffer;
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
  const cipher = createCipheriv('aes-256-gcm', key, nonce(iv, seq));
  cipher.setAAD(aad(sid, epoch, seq, dir));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { type: 'frame', sid, epoch, seq, ct: ct.toString('base64url') };
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
  key: Buffer;
  iv: Buffer;
  dir: Direction;
  frame: Frame;
}

/**
 * Decrypts and authenticates one frame. Sequence checks are the receiver's job.
 * @throws KlError `KL_DECRYPTION_FAILED` (generic) when the frame is forged or damaged.
 */
export function openFrame({ key, iv, dir, frame }: OpenOptions): Buffer {
  const raw = Buffer.from(frame.ct, 'base64url');
  if (raw.length < 16) throw new KlError('KL_DECRYPTION_FAILED', 'frame could not be authenticated');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce(iv, frame.seq));
    decipher.setAAD(aad(frame.sid, frame.epoch, frame.seq, dir));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]);
  } catch {
    throw new KlError('KL_DECRYPTION_FAILED', 'frame could not be authenticated');
  }
}
