/**
 * Packet framing for the native OpenPGP path (docs/protocol.md "The native OpenPGP path"): a strict,
 * bounded reader of packet sequences (RFC 9580 §4.2: new and legacy headers, no partial or
 * indeterminate lengths), the new-format writer, MPIs (§3.2) and ASCII armor (§6.2). Every reader
 * answers `undefined` for anything outside what it accepts: the caller then hands the input to
 * OpenPGP.js, which decides.
 */
import { concatBytes, writeU32BE } from '../../protocol/bytes.js';
import { base64urlDecode, base64urlEncode } from '../../protocol/crypto/node.js';

/** One packet: its tag (RFC 9580 §5) and body. */
export interface Packet {
  tag: number;
  body: Uint8Array;
}

/** Reads `count` bytes at `offset` as a big-endian number, or `undefined` past the end. */
function readNumber(bytes: Uint8Array, offset: number, count: number): number | undefined {
  if (offset + count > bytes.length) return undefined;
  let value = 0;
  for (let i = 0; i < count; i++) value = value * 256 + bytes[offset + i]!;
  return value;
}

/** Reads one packet header at `offset`: tag, body start and body length. */
function readHeader(
  bytes: Uint8Array,
  offset: number,
): { tag: number; start: number; length: number } | undefined {
  const first = bytes[offset]!;
  if ((first & 0x80) === 0) return undefined;
  if (first & 0x40) {
    // New format (RFC 9580 §4.2.1): one, two or five length octets; 224..254 are partial lengths.
    const l0 = readNumber(bytes, offset + 1, 1);
    if (l0 === undefined) return undefined;
    if (l0 < 192) return { tag: first & 0x3f, start: offset + 2, length: l0 };
    if (l0 < 224) {
      const l1 = readNumber(bytes, offset + 2, 1);
      return l1 === undefined
        ? undefined
        : { tag: first & 0x3f, start: offset + 3, length: ((l0 - 192) << 8) + l1 + 192 };
    }
    if (l0 !== 255) return undefined;
    const length = readNumber(bytes, offset + 2, 4);
    return length === undefined ? undefined : { tag: first & 0x3f, start: offset + 6, length };
  }
  // Legacy format (RFC 9580 §4.2.2): length type 3 is the indeterminate length.
  const lengthType = first & 3;
  if (lengthType === 3) return undefined;
  const count = 1 << lengthType;
  const length = readNumber(bytes, offset + 1, count);
  return length === undefined ? undefined : { tag: (first >> 2) & 0x0f, start: offset + 1 + count, length };
}

/**
 * Splits `bytes` into packets; `undefined` for a malformed or partial-length header, a body running
 * past the end, or more than `maxPackets` packets.
 */
export function readPackets(bytes: Uint8Array, maxPackets: number): Packet[] | undefined {
  const packets: Packet[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (packets.length === maxPackets) return undefined;
    const header = readHeader(bytes, offset);
    if (!header || header.start + header.length > bytes.length) return undefined;
    packets.push({ tag: header.tag, body: bytes.subarray(header.start, header.start + header.length) });
    offset = header.start + header.length;
  }
  return packets;
}

/** The new-format length octets of a body of `length` bytes (RFC 9580 §4.2.1). */
function lengthOctets(length: number): Uint8Array {
  if (length < 192) return Uint8Array.of(length);
  if (length < 8384) return Uint8Array.of(((length - 192) >> 8) + 192, (length - 192) & 0xff);
  return concatBytes(Uint8Array.of(255), uint32(length));
}

/** A new-format packet (RFC 9580 §4.2.1) with tag `tag` and body `body`. */
export function writePacket(tag: number, body: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(0xc0 | tag), lengthOctets(body.length), body);
}

/** `value` (0 ≤ value < 2³²) as four big-endian octets. */
export function uint32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  writeU32BE(out, value);
  return out;
}

/** Reads an MPI (RFC 9580 §3.2) at `offset`: its value octets as written, and the offset after it. */
export function readMpi(bytes: Uint8Array, offset: number): { value: Uint8Array; next: number } | undefined {
  const bits = readNumber(bytes, offset, 2);
  if (bits === undefined) return undefined;
  const next = offset + 2 + ((bits + 7) >> 3);
  if (next > bytes.length) return undefined;
  return { value: bytes.subarray(offset + 2, next), next };
}

/** `value` (big-endian) as an MPI: leading zero octets stripped, the exact bit count in front. */
export function writeMpi(value: Uint8Array): Uint8Array {
  let start = 0;
  while (start < value.length && value[start] === 0) start++;
  const stripped = value.subarray(start);
  const bits = stripped.length === 0 ? 0 : (stripped.length - 1) * 8 + (32 - Math.clz32(stripped[0]!));
  return concatBytes(Uint8Array.of(bits >> 8, bits & 0xff), stripped);
}

/** `value` left-padded with zero octets to `length`; `undefined` if it is longer. */
export function leftPad(value: Uint8Array, length: number): Uint8Array | undefined {
  if (value.length > length) return undefined;
  const out = new Uint8Array(length);
  out.set(value, length - value.length);
  return out;
}

/** The armor kinds the native path writes. */
export type NativeArmorKind = 'MESSAGE' | 'SIGNATURE';
/** The armor kinds the native path reads (keys it only unwraps, for OpenPGP.js to parse). */
export type DearmorKind = NativeArmorKind | 'PUBLIC KEY BLOCK';

/** CRC-24 of RFC 9580 §6.1.1 (init 0xB704CE, generator 0x864CFB), one table lookup per byte. */
const CRC24_TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 16;
  for (let bit = 0; bit < 8; bit++) {
    crc <<= 1;
    if (crc & 0x1000000) crc ^= 0x864cfb;
  }
  return crc & 0xffffff;
});

function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const byte of data) crc = ((crc << 8) ^ CRC24_TABLE[((crc >> 16) ^ byte) & 0xff]!) & 0xffffff;
  return crc;
}

/** Standard base64 (RFC 4648 §4) with padding. */
function toBase64(bytes: Uint8Array): string {
  const text = base64urlEncode(bytes).replace(/-/g, '+').replace(/_/g, '/');
  return text + '='.repeat((4 - (text.length % 4)) % 4);
}

/**
 * ASCII armor (RFC 9580 §6.2) without armor headers, with the CRC-24 line: RFC 9580 §6.1 makes it
 * optional, but GnuPG 2.2 reads an unpadded body without it on into the END line. (OpenPGP.js's own
 * `armor` runs through web streams: ~20× the cost of this on a login's message.)
 */
export function armor(kind: NativeArmorKind, data: Uint8Array): string {
  // 60 characters a line, like OpenPGP.js: the same bytes armor the same way on both paths.
  const base64 = toBase64(data);
  let body = '';
  for (let i = 0; i < base64.length; i += 60) body += `${base64.slice(i, i + 60)}\n`;
  const checksum = toBase64(uint32(crc24(data)).subarray(1));
  return `-----BEGIN PGP ${kind}-----\n\n${body}=${checksum}\n-----END PGP ${kind}-----\n`;
}

/** One armored block in the plain form: BEGIN, blank line, base64 lines, optional checksum, END. */
const PLAIN_ARMOR =
  /^-----BEGIN PGP (MESSAGE|SIGNATURE|PUBLIC KEY BLOCK)-----[ \t]*\r?\n[ \t]*\r?\n((?:[A-Za-z0-9+/]+={0,2}[ \t]*\r?\n)+)(?:=[A-Za-z0-9+/]{4}[ \t]*\r?\n)?-----END PGP \1-----[ \t]*(?:\r?\n)?$/;

/**
 * The bytes of one armored block of `kind` in the plain form GnuPG, Sequoia and OpenPGP.js write:
 * BEGIN line, blank line (no armor headers), base64 lines, an optional checksum line (not checked,
 * like OpenPGP.js 6), END line, nothing before or after; `undefined` for anything else (OpenPGP.js
 * then reads it).
 */
export function dearmor(text: string, kind: DearmorKind): Uint8Array | undefined {
  const match = PLAIN_ARMOR.exec(text);
  if (!match || match[1] !== kind) return undefined;
  const body = match[2]!.replace(/[ \t\r\n]/g, '');
  if (body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return undefined;
  return base64urlDecode(body);
}
