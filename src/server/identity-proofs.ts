/**
 * Identity verification before registration (docs/protocol.md "Phase 1", step 1): one-time
 * codes bound to an identity, stored hashed, expiring, single use. Two kinds:
 *   invite — issued by an admin (`keyledger admin invite`), 100 bits, shown once;
 *   email  — sent to the address itself, 8 digits; a new code leaves the earlier ones valid;
 *   device — issued by an admin (`keyledger admin invite --device`) for a further device of a
 *            registered identity (docs/protocol.md "Devices"), like an invite, with its issuer.
 * Wrong codes are not counted here: they are charged to their source address and a server-wide
 * budget (RegistrationService), so nobody can void another person's code by guessing.
 * Kept in DATA/server.sqlite (not on the ledger: they are operational secrets).
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { guardWrite } from '../ledger/storage-fault.js';
import { KlError } from '../protocol/errors.js';
import { sha256 } from '../protocol/hash.js';

/** Kinds of identity proof at registration. */
export type ProofMethod = 'invite' | 'email';
/** Every kind of code kept: the registration proofs, and invitations for a further device. */
type StoredMethod = ProofMethod | 'device';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Most unused emailed codes kept per address: a new one beyond this retires the oldest. */
export const MAX_LIVE_EMAIL_CODES = 3;

function codeHash(id: string, method: StoredMethod, code: string): Buffer {
  return Buffer.from(sha256(Buffer.from(`${method}\n${id}\n${normaliseCode(method, code)}`, 'utf8')));
}

function normaliseCode(method: StoredMethod, code: string): string {
  return method !== 'email'
    ? code
        .toUpperCase()
        .replace(/[^0-9A-Z]/g, '')
        .replace(/O/g, '0')
        .replace(/[IL]/g, '1')
    : code.trim();
}

/**
 * Brings a table written by an earlier version up to date, in place (columns older files lack):
 * version 2, who issued a device invitation (`issuer`); version 3, the key a device invitation was
 * taken for (`used_for`), so that the same key can ask again after a crash (docs/protocol.md
 * "Devices"). Rows written before keep NULL: an invitation taken then is taken for good.
 */
function migrate(db: Database.Database): void {
  const columns = db.prepare('PRAGMA table_info(identity_proofs)').all() as Array<{ name: string }>;
  const has = (name: string) => columns.some((c) => c.name === name);
  if (!has('issuer')) db.exec('ALTER TABLE identity_proofs ADD COLUMN issuer TEXT');
  if (!has('used_for')) db.exec('ALTER TABLE identity_proofs ADD COLUMN used_for TEXT');
}

/** A code that {@link IdentityProofs.check} accepted. */
export interface CheckedCode {
  /** Who issued it (a device invitation); null otherwise. */
  issuer: string | null;
  /** It was taken already, for the key the check named (`usedFor`): a retry of that key's request. */
  used: boolean;
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
        migrate(db);
        return db;
      } catch (err) {
        db.close();
        throw err;
      }
    });
  }

  /**
   * Issues an invitation code for `id` (canonical), valid until `expiresAt`. Returns the code (shown
   * once). With `device`, it invites a further device of a registered identity, approved by `issuer`.
   */
  issueInvite(id: string, now: number, expiresAt: number, device?: { issuer: string }): string {
    const raw = randomBytes(13); // 104 bits → 20 Crockford characters (100 used)
    let bits = 0n;
    for (const b of raw) bits = (bits << 8n) | BigInt(b);
    let chars = '';
    for (let i = 0; i < 20; i++) chars += CROCKFORD[Number((bits >> BigInt(5 * i)) & 31n)];
    const code = `KL-${chars.match(/.{4}/g)!.join('-')}`;
    guardWrite('the invitation', () =>
      this.db
        .prepare(
          'INSERT INTO identity_proofs(id, method, hash, created_at, expires_at, issuer) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(
          id,
          device ? 'device' : 'invite',
          codeHash(id, device ? 'device' : 'invite', code),
          now,
          expiresAt,
          device?.issuer ?? null,
        ),
    );
    return code;
  }

  /**
   * Issues an email code for `id`. Earlier unused codes stay valid until they expire or one of them is
   * used (a request by someone else must not void the code the mailbox owner just received); at
   * most {@link MAX_LIVE_EMAIL_CODES} are kept, the oldest retired first.
   */
  issueEmailCode(id: string, now: number, expiresAt: number): string {
    const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
    guardWrite('the email code', () =>
      this.db.transaction(() => {
        this.db
          .prepare(
            `DELETE FROM identity_proofs WHERE id = ? AND method = 'email' AND (expires_at <= ? OR used_at IS NOT NULL)`,
          )
          .run(id, now);
        // With 8 digits a new code can equal a live one: that row is replaced by the new one (a
        // duplicate key was a 500, found by fuzzing).
        const hash = codeHash(id, 'email', code);
        this.db
          .prepare(`DELETE FROM identity_proofs WHERE id = ? AND method = 'email' AND hash = ?`)
          .run(id, hash);
        this.db
          .prepare(
            `INSERT INTO identity_proofs(id, method, hash, created_at, expires_at) VALUES (?, 'email', ?, ?, ?)`,
          )
          .run(id, hash, now, expiresAt);
        this.db
          .prepare(
            `DELETE FROM identity_proofs WHERE id = ? AND method = 'email' AND rowid NOT IN (
               SELECT rowid FROM identity_proofs WHERE id = ? AND method = 'email' ORDER BY created_at DESC, rowid DESC LIMIT ?)`,
          )
          .run(id, id, MAX_LIVE_EMAIL_CODES);
      })(),
    );
    return code;
  }

  /** Unused, unexpired emailed codes for `id` (what the mailbox owner can still use). */
  liveEmailCodes(id: string, now: number): number {
    return (
      this.db
        .prepare(
          `SELECT count(*) AS n FROM identity_proofs WHERE id = ? AND method = 'email' AND used_at IS NULL AND expires_at > ?`,
        )
        .get(id, now) as { n: number }
    ).n;
  }

  /**
   * Checks a code without using it up (the registration may still fail later). With `usedFor` (a
   * key's fingerprint), a code already taken for that very key passes too, marked `used`: the
   * request that took it may have been cut off before its write (docs/protocol.md "Devices").
   * @throws KlError `KL_IDENTITY_PROOF_INVALID` — the same for unknown, wrong, used (for another key)
   *   and expired codes.
   */
  check(id: string, method: StoredMethod, code: string, now: number, usedFor?: string): CheckedCode {
    const invalid = new KlError(
      'KL_IDENTITY_PROOF_INVALID',
      'the invitation or verification code is not valid for this identity',
    );
    const rows = this.db
      .prepare(
        `SELECT hash, issuer, used_at IS NOT NULL AS used FROM identity_proofs
         WHERE id = ? AND method = ? AND expires_at > ? AND (used_at IS NULL OR used_for = ?)`,
      )
      .all(id, method, now, usedFor ?? null) as Array<{ hash: Buffer; issuer: string | null; used: number }>;
    const want = codeHash(id, method, code);
    const found = rows.find((r) => r.hash.length === want.length && timingSafeEqual(r.hash, want));
    if (found) return { issuer: found.issuer, used: found.used === 1 };
    throw invalid;
  }

  /**
   * Marks a code used (after the registration committed; before a device invitation's write, for
   * the key `usedFor`); the identity's other emailed codes go with it.
   */
  consume(id: string, method: StoredMethod, code: string, now: number, usedFor?: string): void {
    guardWrite('the use of the code', () =>
      this.db.transaction(() => {
        this.db
          .prepare(
            'UPDATE identity_proofs SET used_at = ?, used_for = ? WHERE id = ? AND method = ? AND hash = ? AND used_at IS NULL',
          )
          .run(now, usedFor ?? null, id, method, codeHash(id, method, code));
        // A registration spends the identity's other emailed codes too; a device invitation does not.
        if (method === 'device') return;
        this.db
          .prepare(
            `UPDATE identity_proofs SET used_at = ? WHERE id = ? AND method = 'email' AND used_at IS NULL`,
          )
          .run(now, id);
      })(),
    );
  }

  /** Makes a code taken by {@link consume} usable again (what it was to approve was refused). */
  release(id: string, method: StoredMethod, code: string): void {
    guardWrite('the release of the code', () =>
      this.db
        .prepare(
          'UPDATE identity_proofs SET used_at = NULL, used_for = NULL WHERE id = ? AND method = ? AND hash = ?',
        )
        .run(id, method, codeHash(id, method, code)),
    );
  }

  close(): void {
    this.db.close();
  }
}
