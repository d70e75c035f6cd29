/**
 * Identity verification before registration (seed phase 1 step 2; DESIGN phase 1 step 1): one-time
 * codes bound to an identity, stored hashed, expiring, single use. Two kinds:
 *   invite — issued by an admin (`keyledger admin invite`), 100 bits, shown once;
 *   email  — sent to the address itself, 8 digits, at most 5 tries.
 * Kept in DATA/server.sqlite (not on the ledger: they are operational secrets).
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { guardWrite } from '../ledger/storage-fault.js';
import { KlError } from '../protocol/errors.js';
import { sha256 } from '../protocol/hash.js';

/** Kinds of identity proof. */
export type ProofMethod = 'invite' | 'email';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Most wrong tries an emailed code allows before it is void. */
export const MAX_EMAIL_ATTEMPTS = 5;

function codeHash(id: string, method: ProofMethod, code: string): Buffer {
  return sha256(Buffer.from(`${method}\n${id}\n${normaliseCode(method, code)}`, 'utf8'));
}

function normaliseCode(method: ProofMethod, code: string): string {
  return method === 'invite'
    ? code
        .toUpperCase()
        .replace(/[^0-9A-Z]/g, '')
        .replace(/O/g, '0')
        .replace(/[IL]/g, '1')
    : code.trim();
}

/** Store of identity proofs. */
export class IdentityProofs {
  /** The server's operational database (server.sqlite), shared with the demo service. */
  readonly db: Database.Database;

  constructor(dataDir: string) {
    const path = join(dataDir, 'server.sqlite');
    this.db = guardWrite('its operational database', () => {
      const db = new Database(path);
      try {
        chmodSync(path, 0o600); // -wal and -shm inherit this mode
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('busy_timeout = 5000');
        db.exec(`CREATE TABLE IF NOT EXISTS identity_proofs (
          id TEXT NOT NULL, method TEXT NOT NULL, hash BLOB NOT NULL, created_at INTEGER NOT NULL,
          expires_at INTEGER NOT NULL, used_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
          PRIMARY KEY (id, method, hash))`);
        return db;
      } catch (err) {
        db.close();
        throw err;
      }
    });
  }

  /** Issues an invitation code for `id` (canonical), valid until `expiresAt`. Returns the code (shown once). */
  issueInvite(id: string, now: number, expiresAt: number): string {
    const raw = randomBytes(13); // 104 bits → 20 Crockford characters (100 used)
    let bits = 0n;
    for (const b of raw) bits = (bits << 8n) | BigInt(b);
    let chars = '';
    for (let i = 0; i < 20; i++) chars += CROCKFORD[Number((bits >> BigInt(5 * i)) & 31n)];
    const code = `KL-${chars.match(/.{4}/g)!.join('-')}`;
    guardWrite('the invitation', () =>
      this.db
        .prepare(
          'INSERT INTO identity_proofs(id, method, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(id, 'invite', codeHash(id, 'invite', code), now, expiresAt),
    );
    return code;
  }

  /** Issues an email code for `id`; earlier unused email codes for it are voided. */
  issueEmailCode(id: string, now: number, expiresAt: number): string {
    const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
    guardWrite('the email code', () =>
      this.db.transaction(() => {
        // A new code supersedes every earlier one for this address. Deleting (not just marking them
        // used) keeps the table bounded and lets a new code equal an old one: with 8 digits that
        // happens, and a duplicate key was a 500 (found by fuzzing).
        this.db.prepare(`DELETE FROM identity_proofs WHERE id = ? AND method = 'email'`).run(id);
        this.db
          .prepare(
            'INSERT INTO identity_proofs(id, method, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
          )
          .run(id, 'email', codeHash(id, 'email', code), now, expiresAt);
      })(),
    );
    return code;
  }

  /**
   * Checks a code without using it up (the registration may still fail later).
   * @throws KlError `KL_IDENTITY_PROOF_INVALID` — the same for unknown, wrong, used and expired codes.
   */
  check(id: string, method: ProofMethod, code: string, now: number): void {
    const invalid = new KlError(
      'KL_IDENTITY_PROOF_INVALID',
      'the invitation or verification code is not valid for this identity',
    );
    const rows = this.db
      .prepare(
        'SELECT hash, expires_at, used_at, attempts FROM identity_proofs WHERE id = ? AND method = ? AND used_at IS NULL AND expires_at > ?',
      )
      .all(id, method, now) as Array<{
      hash: Buffer;
      expires_at: number;
      used_at: number | null;
      attempts: number;
    }>;
    const want = codeHash(id, method, code);
    const match = rows.find((r) => r.hash.length === want.length && timingSafeEqual(r.hash, want));
    if (match && (method === 'invite' || match.attempts < MAX_EMAIL_ATTEMPTS)) return;
    if (method === 'email') {
      // A wrong guess that cannot be counted is refused as a storage fault, not as a wrong code:
      // guesses must not go uncounted.
      guardWrite('the attempt count', () =>
        this.db
          .prepare(
            `UPDATE identity_proofs SET attempts = attempts + 1 WHERE id = ? AND method = 'email' AND used_at IS NULL`,
          )
          .run(id),
      );
    }
    throw invalid;
  }

  /** Marks a code used (after the registration committed). */
  consume(id: string, method: ProofMethod, code: string, now: number): void {
    guardWrite('the use of the code', () =>
      this.db
        .prepare(
          'UPDATE identity_proofs SET used_at = ? WHERE id = ? AND method = ? AND hash = ? AND used_at IS NULL',
        )
        .run(now, id, method, codeHash(id, method, code)),
    );
  }

  close(): void {
    this.db.close();
  }
}
