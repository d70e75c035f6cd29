/**
 * Registration nonces without server state until they are used (docs/protocol.md "Phase 1", step 2).
 * A nonce is 32 bytes: its expiry (8 bytes, big-endian ms), 8 random bytes and the first 16 bytes of
 * HMAC-SHA256(key, identity ‖ expiry ‖ random) under a key that lives in memory only. register/begin
 * therefore stores nothing, so a flood of begins from anywhere cannot fill a table and lock
 * everyone out; a nonce is recorded as spent only by a complete request whose statement signature
 * verified, and remembered until it expires (single use).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KlError } from '../protocol/errors.js';

/** Options of {@link RegistrationNonces}. */
export interface RegistrationNoncesOptions {
  /** How long a nonce is valid, ms (default 5 minutes). */
  ttlMs?: number;
  /** Most spent, unexpired nonces remembered; beyond it completes are refused until some expire. */
  maxSpent?: number;
}

const invalid = () =>
  new KlError(
    'KL_NONCE_INVALID',
    'the registration nonce is unknown, used or expired: start again with register/begin',
  );

/** Mints and checks registration nonces. */
export class RegistrationNonces {
  /** The MAC key of this server's nonces (memory only). */
  readonly key = randomBytes(32);
  /** How long a nonce is valid, ms. */
  readonly ttlMs: number;
  private readonly spent = new Map<string, number>();
  private readonly maxSpent: number;

  constructor(options: RegistrationNoncesOptions = {}) {
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.maxSpent = options.maxSpent ?? 100_000;
  }

  /** A fresh nonce bound to `id` (canonical), valid until the returned `expiresAt`. */
  issue(id: string, now: number): { nonce: string; expiresAt: number } {
    return mintNonce({ key: this.key, id, now, ttlMs: this.ttlMs });
  }

  /**
   * Checks that `nonce` was issued for `id`, is unexpired and unspent; takes nothing.
   * @throws KlError `KL_NONCE_INVALID`
   */
  check(nonce: string, id: string, now: number): { expiresAt: number } {
    this.refuseSpent(nonce);
    return checkNonce({ key: this.key, nonce, id, now, ttlMs: this.ttlMs });
  }

  /** @throws KlError `KL_NONCE_INVALID` when `nonce` was spent already. */
  refuseSpent(nonce: string): void {
    if (this.spent.has(nonce)) throw invalid();
  }

  /**
   * Spends `nonce` (after the statement that carries it verified): from now on it is refused.
   * @throws KlError `KL_NONCE_INVALID` if it was spent meanwhile; `KL_RATE_LIMITED` if too many
   *   nonces are spent and unexpired (the table is full).
   */
  spend(nonce: string, expiresAt: number, now: number): void {
    if (this.spent.has(nonce)) throw invalid();
    if (this.spent.size >= this.maxSpent) {
      for (const [n, at] of this.spent) if (at <= now) this.spent.delete(n);
      if (this.spent.size >= this.maxSpent)
        throw new KlError('KL_RATE_LIMITED', 'too many registrations in progress: try again shortly');
    }
    this.spent.set(nonce, expiresAt);
  }
}

/** What {@link mintNonce} and {@link checkNonce} take. */
export interface NonceKey {
  /** The server's nonce MAC key. */
  key: Uint8Array;
  /** How long a nonce is valid, ms. */
  ttlMs: number;
}

function nonceMac(key: Uint8Array, id: string, head: Buffer): Buffer {
  return createHmac('sha256', key)
    .update('keyledger/register-nonce\n')
    .update(id)
    .update('\n')
    .update(head)
    .digest()
    .subarray(0, 16);
}

/** A fresh nonce bound to `id` (canonical), valid until the returned `expiresAt`; stores nothing. */
export function mintNonce(o: NonceKey & { id: string; now: number }): { nonce: string; expiresAt: number } {
  const expiresAt = o.now + o.ttlMs;
  const head = Buffer.alloc(16);
  head.writeBigUInt64BE(BigInt(expiresAt), 0);
  randomBytes(8).copy(head, 8);
  return { nonce: Buffer.concat([head, nonceMac(o.key, o.id, head)]).toString('base64url'), expiresAt };
}

/**
 * Checks that `nonce` was minted under `key` for `id` and is unexpired (whether it was spent is the
 * caller's state).
 * @throws KlError `KL_NONCE_INVALID`
 */
export function checkNonce(o: NonceKey & { nonce: string; id: string; now: number }): { expiresAt: number } {
  const raw = Buffer.from(o.nonce, 'base64url');
  if (raw.length !== 32 || raw.toString('base64url') !== o.nonce) throw invalid();
  const head = raw.subarray(0, 16);
  if (!timingSafeEqual(raw.subarray(16), nonceMac(o.key, o.id, head))) throw invalid();
  const expiresAt = Number(head.readBigUInt64BE(0));
  if (expiresAt <= o.now || expiresAt > o.now + o.ttlMs) throw invalid();
  return { expiresAt };
}
