/**
 * Session frame wire format v2 (docs/protocol.md "Session frame wire format v2"): every sealed frame
 * of an established session travels as one binary WebSocket message,
 *
 *   version (1) ‖ direction (1) ‖ session handle (16) ‖ epoch (u32 BE) ‖ seq (u64 BE) ‖ ct ‖ tag (16)
 *
 * The 30-byte header is the AEAD's associated data verbatim; AES-256-GCM with the direction's key and
 * the 96-bit nonce IV XOR seq (right-aligned, as in v1), so no nonce repeats within a key's life as
 * long as seq strictly increases, which the receiver enforces. No JSON, no base64 per frame.
 *
 * Inside the AEAD the plaintext starts with a one-byte type: a JSON message (control, requests,
 * replies), or application data sent without an answer expected, as raw bytes or UTF-8 text.
 * Decoding is strict and cheap before any crypto: exact header length, known version and direction,
 * sizes capped at {@link MAX_FRAME_PLAINTEXT}. Pure: no I/O.
 */
import {
  allocBytes,
  concatBytes,
  fromBase64url,
  fromUtf8,
  readU32BE,
  readU64BE,
  toBase64url,
  utf8,
  writeU32BE,
  writeU64BE,
} from './bytes.js';
import { aesGcmOpen, aesGcmSeal } from './crypto/node.js';
import { KlError } from './errors.js';

/** Direction of a frame. */
export type Direction = 'c2s' | 's2c';

/** Largest plaintext per frame. */
export const MAX_FRAME_PLAINTEXT = 96 * 1024;

/** The version byte of this wire format. */
export const WIRE_VERSION = 2;
/** Bytes of the header: version, direction, session handle, epoch, seq. */
export const WIRE_HEADER_LENGTH = 30;
/** Bytes of the session handle: the session id's 16 raw bytes (the id is their base64url). */
export const SESSION_HANDLE_LENGTH = 16;
/** Bytes of the GCM tag after the ciphertext. */
export const WIRE_TAG_LENGTH = 16;
/** Largest epoch a header may carry (as the v1 frame schema). */
export const MAX_WIRE_EPOCH = 1_000_000;
/** Largest frame on the wire: header, the largest plaintext, tag. */
export const MAX_WIRE_FRAME = WIRE_HEADER_LENGTH + MAX_FRAME_PLAINTEXT + WIRE_TAG_LENGTH;

/** The direction byte of the header. */
const DIR_BYTE: Record<Direction, number> = { c2s: 0x01, s2c: 0x02 };

/** The first byte of a sealed plaintext: what the rest is. */
export const PlainType = {
  /** A JSON message (UTF-8): control, requests, replies, receipts, alerts. */
  json: 0x00,
  /** Application data as raw bytes (`{ t: 'data', body: Uint8Array }`, no answer expected). */
  bytes: 0x01,
  /** Application data as UTF-8 text (`{ t: 'data', body: string }`, no answer expected). */
  text: 0x02,
} as const;

/** A frame's header, read from the wire. */
export interface WireHeader {
  dir: Direction;
  /** A view of the 16 handle bytes inside the frame. */
  handle: Uint8Array;
  epoch: number;
  seq: number;
}

/** A frame's 96-bit nonce: the direction's IV XOR the sequence number, right-aligned (both formats). */
export function frameNonce(iv: Uint8Array, seq: number): Uint8Array {
  const n = allocBytes(12);
  n.set(iv);
  // seq is a safe integer (< 2^53): its 64-bit big-endian form is hi (21 bits) ‖ lo (32 bits).
  const hi = Math.floor(seq / 0x100000000);
  const lo = seq >>> 0;
  n[4]! ^= hi >>> 24;
  n[5]! ^= (hi >>> 16) & 0xff;
  n[6]! ^= (hi >>> 8) & 0xff;
  n[7]! ^= hi & 0xff;
  n[8]! ^= lo >>> 24;
  n[9]! ^= (lo >>> 16) & 0xff;
  n[10]! ^= (lo >>> 8) & 0xff;
  n[11]! ^= lo & 0xff;
  return n;
}

/** Writes the header at the start of `out` (epoch and seq already checked). */
function writeHeader(out: Uint8Array, dir: Direction, handle: Uint8Array, epoch: number, seq: number): void {
  out[0] = WIRE_VERSION;
  out[1] = DIR_BYTE[dir];
  out.set(handle, 2);
  writeU32BE(out, epoch, 18);
  writeU64BE(out, seq, 22);
}

/** The 16 raw bytes of a session id (the base64url of 16 bytes, as Id16). */
export function sessionHandle(sid: string): Uint8Array {
  // 22 characters are exactly 16 bytes; the canonical round trip makes the last character's 4
  // spare bits zero, so one handle has one id (as signing-keys.ts does for signatures).
  const raw = /^[A-Za-z0-9_-]{22}$/.test(sid) ? fromBase64url(sid) : null;
  if (!raw || raw.length !== SESSION_HANDLE_LENGTH || toBase64url(raw) !== sid)
    throw new KlError('KL_PROTOCOL', 'not a session id');
  return raw;
}

/** Options of {@link sealWire}. */
export interface SealWireOptions {
  key: Uint8Array;
  iv: Uint8Array;
  /** The session handle ({@link sessionHandle} of the session id). */
  handle: Uint8Array;
  epoch: number;
  seq: number;
  dir: Direction;
  /** The sealed plaintext: type byte first ({@link PlainType}). */
  plaintext: Uint8Array;
}

/**
 * Seals one frame: the bytes of the binary WebSocket message (header ‖ ciphertext ‖ tag), in one
 * allocation besides the cipher's own output.
 */
export function sealWire({ key, iv, handle, epoch, seq, dir, plaintext }: SealWireOptions): Uint8Array {
  if (plaintext.length > MAX_FRAME_PLAINTEXT)
    throw new KlError('KL_TOO_LARGE', `a frame carries at most ${MAX_FRAME_PLAINTEXT} bytes`);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new KlError('KL_PROTOCOL', 'sequence number out of range');
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_WIRE_EPOCH)
    throw new KlError('KL_PROTOCOL', 'epoch out of range');
  if (handle.length !== SESSION_HANDLE_LENGTH) throw new KlError('KL_PROTOCOL', 'not a session handle');
  const header = allocBytes(WIRE_HEADER_LENGTH);
  writeHeader(header, dir, handle, epoch, seq);
  // The header is the associated data and the message's first bytes: one allocation for the message.
  return aesGcmSeal(key, frameNonce(iv, seq), header, plaintext, header);
}

/**
 * Reads and checks a frame's header, before any crypto: the exact header and tag fit, the version
 * is {@link WIRE_VERSION}, the direction byte is known, the size is capped, the epoch and seq are in range.
 * @throws KlError `KL_FRAME_REJECTED` when it is not a v2 frame
 */
export function readWireHeader(frame: Uint8Array): WireHeader {
  if (!(frame instanceof Uint8Array) || frame.length < WIRE_HEADER_LENGTH + WIRE_TAG_LENGTH)
    throw new KlError('KL_FRAME_REJECTED', 'frame too short');
  if (frame.length > MAX_WIRE_FRAME) throw new KlError('KL_FRAME_REJECTED', 'frame too large');
  if (frame[0] !== WIRE_VERSION) throw new KlError('KL_FRAME_REJECTED', 'unknown frame version');
  const d = frame[1];
  const dir: Direction | null = d === DIR_BYTE.c2s ? 'c2s' : d === DIR_BYTE.s2c ? 's2c' : null;
  if (!dir) throw new KlError('KL_FRAME_REJECTED', 'unknown frame direction');
  const epoch = readU32BE(frame, 18);
  if (epoch > MAX_WIRE_EPOCH) throw new KlError('KL_FRAME_REJECTED', 'epoch out of range');
  if (readU32BE(frame, 22) > 0x1fffff) throw new KlError('KL_FRAME_REJECTED', 'sequence number out of range');
  return { dir, handle: frame.subarray(2, 18), epoch, seq: readU64BE(frame, 22) };
}

/**
 * Decrypts and authenticates one frame whose header {@link readWireHeader} read; the header bytes
 * are the associated data. Sequence, epoch, direction and handle checks are the receiver's job.
 * @throws KlError `KL_DECRYPTION_FAILED` (generic) when the frame is forged or damaged
 */
export function openWire(key: Uint8Array, iv: Uint8Array, frame: Uint8Array, seq: number): Uint8Array {
  const plain = aesGcmOpen(
    key,
    frameNonce(iv, seq),
    frame.subarray(0, WIRE_HEADER_LENGTH),
    frame.subarray(WIRE_HEADER_LENGTH),
  );
  if (!plain) throw new KlError('KL_DECRYPTION_FAILED', 'frame could not be authenticated');
  return plain;
}

/** The sealed plaintext of a JSON message. */
export function jsonPlaintext(json: string): Uint8Array {
  return typed(PlainType.json, utf8(json));
}

/** `type` ‖ `body`. */
function typed(type: number, body: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(type), body);
}

const encoder = new TextEncoder();

/** The sealed plaintext of application data: raw bytes or UTF-8 text. */
export function dataPlaintext(body: Uint8Array | string): Uint8Array {
  if (typeof body === 'string') {
    // One pass and one allocation when the text is ASCII (its UTF-8 is as long as the string);
    // otherwise encoded apart and copied.
    const out = allocBytes(1 + body.length);
    out[0] = PlainType.text;
    if (encoder.encodeInto(body, out.subarray(1)).read === body.length) return out;
    return typed(PlainType.text, utf8(body));
  }
  return typed(PlainType.bytes, body);
}

/** What a sealed plaintext holds. */
export type Plain =
  | { type: typeof PlainType.json; json: string }
  | { type: typeof PlainType.bytes; body: Uint8Array }
  | { type: typeof PlainType.text; body: string };

/**
 * Splits a sealed plaintext by its type byte.
 * @throws KlError `KL_PROTOCOL` for an empty plaintext or an unknown type
 */
export function readPlaintext(plain: Uint8Array): Plain {
  if (plain.length === 0) throw new KlError('KL_PROTOCOL', 'frame does not hold a message');
  switch (plain[0]) {
    case PlainType.json:
      return { type: PlainType.json, json: fromUtf8(plain.subarray(1)) };
    case PlainType.bytes:
      return { type: PlainType.bytes, body: plain.subarray(1) };
    case PlainType.text:
      return { type: PlainType.text, body: fromUtf8(plain.subarray(1)) };
    default:
      throw new KlError('KL_PROTOCOL', 'frame does not hold a message');
  }
}
