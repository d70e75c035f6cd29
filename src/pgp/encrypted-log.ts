/**
 * Encrypted logs (docs/protocol.md "Phases 3 and 4", Logs): logs are encrypted and stored securely.
 * Each log file starts with a header line holding a random 256-bit log key, OpenPGP-encrypted to the reader's
 * key (the operator's, or the user's own for client logs); every further line is one log line sealed with
 * AES-256-GCM under that key, the file id and line number as associated data, so lines cannot be
 * altered, reordered or moved between files unnoticed. The log key lives in memory only while the
 * writer runs.
 *
 *   line 0: {"v":1,"type":"keyledger-log","fileId":"…","created":…,"recipient":"<fpr>","wrappedKey":"-----BEGIN PGP MESSAGE-----…"}
 *   line n: base64url(iv ‖ ciphertext ‖ tag)
 *
 * Written through {@link encryptedDestination}, the log is a pino destination: each plaintext line is
 * one pino record (`{"level":30,"time":"…","msg":"…"}`), which {@link readEncryptedLog} renders as
 * `time msg`, like the plain lines of older files.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import * as openpgp from 'openpgp';
import { KlError } from '../protocol/errors.js';
import { checkArmor } from './armor.js';
import { PGP_CONFIG } from './config.js';

interface LogHeader {
  v: 1;
  type: 'keyledger-log';
  fileId: string;
  created: number;
  recipient: string;
  wrappedKey: string;
}

function aad(fileId: string, line: number): Buffer {
  return Buffer.from(`keyledger-log\n${fileId}\n${line}`, 'utf8');
}

/** An append-only encrypted log file. */
export class EncryptedLog {
  private line = 0;
  /** Set when an append failed: the file may end in part of a line, cut off before the next one. */
  private torn = false;

  private constructor(
    readonly path: string,
    private readonly fileId: string,
    private readonly key: Buffer,
    /** Bytes in the file after the last complete line. */
    private size: number,
  ) {}

  /** Creates a new log file at `path` (mode 0600) whose key is wrapped to `recipient`. */
  static async create(path: string, recipient: openpgp.PublicKey, now = Date.now()): Promise<EncryptedLog> {
    const key = randomBytes(32);
    const fileId = randomBytes(12).toString('base64url');
    const wrappedKey = (await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: key }),
      encryptionKeys: recipient,
      format: 'armored',
      config: PGP_CONFIG,
    })) as string;
    const header: LogHeader = {
      v: 1,
      type: 'keyledger-log',
      fileId,
      created: now,
      recipient: recipient.getFingerprint(),
      wrappedKey,
    };
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const first = `${JSON.stringify(header)}\n`;
    try {
      writeFileSync(path, first, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
    } catch (err) {
      // No header cut short left behind (disk full); an existing file is never touched.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') rmSync(path, { force: true });
      throw err;
    }
    return new EncryptedLog(path, fileId, key, Buffer.byteLength(first));
  }

  /**
   * Appends one line (synchronously, so nothing is lost on a crash after the call returns). When it
   * throws (disk full, read-only), nothing counts as written: the next append first cuts off what
   * part of this line reached the file, so every line in the file stays whole and in sequence.
   */
  append(text: string): void {
    if (this.torn) {
      truncateSync(this.path, this.size);
      this.torn = false;
    }
    const n = this.line + 1;
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(aad(this.fileId, n));
    const sealed = Buffer.concat([iv, c.update(text, 'utf8'), c.final(), c.getAuthTag()]);
    const line = `${sealed.toString('base64url')}\n`;
    try {
      appendFileSync(this.path, line);
    } catch (err) {
      this.torn = true;
      throw err;
    }
    this.line = n;
    this.size += line.length; // base64url and a newline: one byte per character
  }

  /** Forgets the log key. */
  close(): void {
    this.key.fill(0);
  }
}

/** Options of {@link encryptedDestination}. */
export interface EncryptedDestinationOptions {
  /** Told of the first write that fails (later ones are only counted). */
  onFault?: (err: unknown) => void;
  /** Told how many lines were lost once the log can be written again. */
  onRecovery?: (lost: number) => void;
  /** The clock of the note on lost lines (ms). */
  now?: () => number;
}

/**
 * A pino destination (`pino(options, destination)`: an object with `write(line)`) that seals each
 * record pino writes into `log`, so nothing readable reaches disk. It never throws: a server must not
 * die, nor a session end, because its log cannot be written (disk full, read-only); the lines that
 * cannot be written are counted, and when the log can be written again a record says how many were
 * lost (docs/reliability.md "Disk full and read-only data directory").
 */
export function encryptedDestination(
  log: EncryptedLog,
  o: EncryptedDestinationOptions = {},
): { write(chunk: string): boolean } {
  const now = o.now ?? Date.now;
  let lost = 0;
  return {
    write(chunk) {
      const text = chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk;
      try {
        if (lost > 0) {
          const msg = `${lost} log line(s) lost: the log could not be written`;
          log.append(JSON.stringify({ level: 40, time: new Date(now()).toISOString(), msg }));
          o.onRecovery?.(lost);
          lost = 0;
        }
        log.append(text);
      } catch (err) {
        if (lost === 0) o.onFault?.(err);
        lost++;
      }
      return true;
    },
  };
}

/** A pino record as `time msg`; any other line as it is. */
function rendered(text: string): string {
  if (!text.startsWith('{')) return text;
  try {
    const r = JSON.parse(text) as { time?: unknown; msg?: unknown };
    if (typeof r.msg !== 'string') return text;
    const time = typeof r.time === 'number' ? new Date(r.time).toISOString() : r.time;
    return typeof time === 'string' ? `${time} ${r.msg}` : r.msg;
  } catch {
    return text;
  }
}

/** One decrypted line, or the reason it could not be read. */
export type LogLine = { line: number; text: string } | { line: number; error: string };

/**
 * Decrypts a log file with the reader's private key; pino records are rendered as `time msg`. Lines
 * that fail authentication are reported, not skipped silently.
 * @throws KlError `KL_DECRYPTION_FAILED` when the key cannot unwrap the log key.
 */
export async function readEncryptedLog(
  path: string,
  readerKey: openpgp.PrivateKey | openpgp.PrivateKey[],
): Promise<{ header: Omit<LogHeader, 'wrappedKey'>; lines: LogLine[] }> {
  const [first, ...rest] = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  let header: LogHeader;
  try {
    header = JSON.parse(first ?? '') as LogHeader;
    if (header.type !== 'keyledger-log' || header.v !== 1) throw new Error('not a log');
  } catch {
    throw new KlError('KL_MESSAGE_MALFORMED', `${path} is not a keyledger log file`);
  }
  if (typeof header.wrappedKey !== 'string')
    throw new KlError('KL_MESSAGE_MALFORMED', `${path} is not a keyledger log file`);
  checkArmor(header.wrappedKey, 'MESSAGE', 'KL_MESSAGE_MALFORMED', 'log key');
  let key: Buffer;
  try {
    const { data } = await openpgp.decrypt({
      message: await openpgp.readMessage({ armoredMessage: header.wrappedKey, config: PGP_CONFIG }),
      decryptionKeys: readerKey,
      format: 'binary',
      config: PGP_CONFIG,
    });
    key = Buffer.from(data as Uint8Array);
  } catch {
    throw new KlError(
      'KL_DECRYPTION_FAILED',
      'this key cannot open the log (it was written for another key)',
    );
  }
  const lines: LogLine[] = rest.map((b64, i) => {
    const n = i + 1;
    try {
      const raw = Buffer.from(b64, 'base64url');
      const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      d.setAAD(aad(header.fileId, n));
      d.setAuthTag(raw.subarray(raw.length - 16));
      const text = Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8');
      return { line: n, text: rendered(text) };
    } catch {
      return { line: n, error: 'line altered, moved or out of order' };
    }
  });
  key.fill(0);
  const { wrappedKey: _w, ...rest2 } = header;
  return { header: rest2, lines };
}
