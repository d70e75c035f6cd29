/**
 * The paper form of a recovery key (docs/protocol.md "Recovery"): what a person writes down or prints
 * and types back on a new device. It holds the key's Ed25519 seed and creation time (the key is
 * rebuilt from them, pgp/recovery-key.ts), in four lines of 16 Crockford base32 characters, each
 * line with a check character that covers the line and its number, and a checksum over the whole.
 * A mistyped character is named by its line; the letters I, L and O read as 1, 1 and 0. Pure: no I/O.
 */
import { concatBytes } from './bytes.js';
import { KlError } from './errors.js';
import { sha256 } from './hash.js';

/** What the paper form holds. */
export interface PaperKey {
  /** The Ed25519 seed (32 bytes). */
  seed: Uint8Array;
  /** The key's creation time, seconds since the epoch (part of its fingerprint). */
  created: number;
}

const VERSION = 1;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LINES = 4;
const LINE_CHARS = 16;
/** version (1) + created (4) + seed (32) + checksum (3): 40 bytes, 64 characters. */
const PAYLOAD_BYTES = 40;

const unreadable = (why: string) => new KlError('KL_RECOVERY_KEY_UNREADABLE', why);

function checksum(body: Uint8Array): Uint8Array {
  return sha256(new TextEncoder().encode('keyledger/paper-key'), body).subarray(0, 3);
}

function lineCheck(index: number, chars: string): string {
  const digest = sha256(new TextEncoder().encode(`${index}:${chars}`));
  return ALPHABET[digest[0]! % 32]!;
}

function toBase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return out; // 40 bytes are 320 bits: no partial character
}

function fromBase32(text: string): Uint8Array {
  const bytes: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const char of text) {
    buffer = (buffer << 5) | ALPHABET.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((buffer >> bits) & 255);
    }
    buffer &= (1 << bits) - 1;
  }
  return Uint8Array.from(bytes);
}

/** The paper form of `key`: four lines such as `1: 4K2M 9QXD 0TZB HR7E  W`. */
export function encodePaperKey(key: PaperKey): string[] {
  if (key.seed.length !== 32 || !Number.isInteger(key.created) || key.created < 0 || key.created > 0xffffffff)
    throw new KlError('KL_BAD_INPUT', 'a paper key holds a 32-byte seed and a creation time in seconds');
  const created = new Uint8Array(4);
  new DataView(created.buffer).setUint32(0, key.created);
  const body = concatBytes(Uint8Array.of(VERSION), created, key.seed);
  const chars = toBase32(concatBytes(body, checksum(body)));
  return Array.from({ length: LINES }, (_, i) => {
    const line = chars.slice(i * LINE_CHARS, (i + 1) * LINE_CHARS);
    const groups = line.match(/.{4}/g)!.join(' ');
    return `${i + 1}: ${groups}  ${lineCheck(i + 1, line)}`;
  });
}

/** Reads what a person typed: upper or lower case, any spaces or dashes, with or without line numbers. */
function normalizedLines(text: string): string[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s*\d\s*[:.)]/, ''))
    .map((l) => l.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0'))
    .filter((l) => l.length > 0);
  // All on one line: cut it into lines again.
  if (lines.length === 1 && lines[0]!.length === LINES * (LINE_CHARS + 1))
    return lines[0]!.match(new RegExp(`.{${LINE_CHARS + 1}}`, 'g'))!;
  return lines;
}

/**
 * The key a paper form holds.
 * @throws KlError `KL_RECOVERY_KEY_UNREADABLE` naming the line that does not check, or what is wrong
 */
export function decodePaperKey(text: string): PaperKey {
  const lines = normalizedLines(text);
  if (lines.length !== LINES)
    throw unreadable(`a paper recovery key has ${LINES} lines; this has ${lines.length}`);
  let chars = '';
  for (const [i, line] of lines.entries()) {
    if (line.length !== LINE_CHARS + 1 || [...line].some((c) => !ALPHABET.includes(c)))
      throw unreadable(
        `line ${i + 1} must be ${LINE_CHARS} characters and a check character, from 0-9 and A-Z without U`,
      );
    const data = line.slice(0, LINE_CHARS);
    if (lineCheck(i + 1, data) !== line[LINE_CHARS])
      throw unreadable(
        `line ${i + 1} does not check: a character on it is mistyped (or the lines are out of order)`,
      );
    chars += data;
  }
  const bytes = fromBase32(chars);
  const body = bytes.subarray(0, PAYLOAD_BYTES - 3);
  const sum = checksum(body);
  if (bytes.length !== PAYLOAD_BYTES || sum.some((b, i) => b !== bytes[PAYLOAD_BYTES - 3 + i]))
    throw unreadable('the paper key does not check as a whole: a character is mistyped');
  if (body[0] !== VERSION)
    throw unreadable(`this paper key is of version ${body[0]}, not one this program reads`);
  return {
    created: new DataView(body.buffer, body.byteOffset + 1, 4).getUint32(0),
    seed: Uint8Array.from(body.subarray(5, 37)),
  };
}
