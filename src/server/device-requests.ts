/**
 * Pending device requests (docs/protocol.md "Devices"): a new device's signed request to join an
 * identity, waiting for an active device of that identity to approve it by its short code. Memory
 * only, bounded: each request expires after its time to live, at most `maxPending` wait at once and
 * at most `maxPerSource` from one source address. A code is single use: claimed by one approval,
 * released only when that approval failed on the approver's side (its own signature), settled
 * (added or refused) otherwise. Nothing here is keyed on an identity a request merely names, so
 * nobody can use up anybody's budget by naming them.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { normalizeDeviceCode } from '../protocol/device-check.js';
import { KlError } from '../protocol/errors.js';
import type { DeviceAdditionStatement } from '../protocol/statements.js';

/** How long a result stays readable at least, once settled, ms. */
const RESULT_KEPT_MS = 60_000;

/** Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or retyped stays the same. */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** What an approval of the request needs, all checked when it arrived. */
export interface DeviceRequestData {
  statement: DeviceAdditionStatement;
  /** The new key, armored as accepted by the key policy. */
  publicKey: string;
  algorithm: string;
  /** The new key's detached signature over the statement. */
  signature: string;
  /** The requester's source key (client-address.ts `sourceKey`). */
  source: string;
}

/** Where a request stands. */
export type DeviceRequestState =
  | { status: 'pending' }
  | { status: 'approving' }
  | { status: 'added'; receipt: TransactionReceipt }
  | { status: 'refused'; error: { code: string; message: string } };

/** A stored request. */
export interface DeviceRequest extends DeviceRequestData {
  code: string;
  poll: string;
  expiresAt: number;
  state: DeviceRequestState;
}

/** Options of {@link DeviceRequests}. */
export interface DeviceRequestsOptions {
  now: () => number;
  /** How long a code is valid, ms (default 10 minutes). */
  ttlMs?: number;
  /** Most requests kept at once (default 10,000). */
  maxPending?: number;
  /** Most requests kept at once from one source (default 20). */
  maxPerSource?: number;
}

/** The one answer for a code that cannot be used, whatever the reason. */
export const invalidCode = () =>
  new KlError(
    'KL_DEVICE_CODE_INVALID',
    'no device request of this identity waits under this code (it may have expired or been used): ask for a new one on the new device',
  );

/** The pending device requests of one server. */
export class DeviceRequests {
  private readonly byCode = new Map<string, DeviceRequest>();
  private readonly byPoll = new Map<string, DeviceRequest>();
  private prunedAt = Number.NEGATIVE_INFINITY;
  readonly ttlMs: number;
  private readonly maxPending: number;
  private readonly maxPerSource: number;

  constructor(private readonly options: DeviceRequestsOptions) {
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.maxPending = options.maxPending ?? 10_000;
    this.maxPerSource = options.maxPerSource ?? 20;
  }

  /**
   * Stores a checked request; a pending request for the same key is replaced (its code no longer
   * works). @throws KlError `KL_RATE_LIMITED` when the table or the source's share is full.
   */
  add(data: DeviceRequestData): { code: string; poll: string; expiresAt: number } {
    this.prune();
    // A newer request for the same key replaces a pending one; the same request sent again (a replay)
    // or an older one does not, so whoever saw a request cannot void its code.
    for (const r of this.byCode.values()) {
      if (r.statement.fingerprint !== data.statement.fingerprint || r.state.status !== 'pending') continue;
      if (data.statement.time <= r.statement.time)
        throw new KlError(
          'KL_STATEMENT_INVALID',
          'a request of this key made at this time or later waits already',
        );
      this.drop(r);
    }
    let fromSource = 0;
    for (const r of this.byCode.values()) if (r.source === data.source) fromSource += 1;
    if (fromSource >= this.maxPerSource || this.byCode.size >= this.maxPending)
      throw new KlError(
        'KL_RATE_LIMITED',
        'too many device requests wait right now: try again in a few minutes',
      );
    let code: string;
    do code = newCode();
    while (this.byCode.has(code));
    const request: DeviceRequest = {
      ...data,
      code,
      poll: randomBytes(32).toString('base64url'),
      expiresAt: this.options.now() + this.ttlMs,
      state: { status: 'pending' },
    };
    this.byCode.set(code, request);
    this.byPoll.set(request.poll, request);
    return { code, poll: request.poll, expiresAt: request.expiresAt };
  }

  /** The request behind a poll token, while it lasts. */
  polled(poll: string): DeviceRequest | undefined {
    this.prune();
    const r = this.byPoll.get(poll);
    return r && (r.state.status === 'approving' || this.options.now() < r.expiresAt) ? r : undefined;
  }

  /** The pending request of identity `id` under `code`, or undefined (one answer for every reason). */
  pending(code: unknown, id: string): DeviceRequest | undefined {
    this.prune();
    const normal = normalizeDeviceCode(code);
    const r = normal === undefined ? undefined : this.byCode.get(normal);
    const live = r !== undefined && this.options.now() < r.expiresAt;
    return live && r.state.status === 'pending' && r.statement.id === id ? r : undefined;
  }

  /** Takes the pending request for one approval: no other approval can use it meanwhile. */
  claim(code: unknown, id: string): DeviceRequest | undefined {
    const r = this.pending(code, id);
    if (r) r.state = { status: 'approving' };
    return r;
  }

  /** The approval failed on the approver's side: the request waits again. */
  release(r: DeviceRequest): void {
    if (r.state.status === 'approving') r.state = { status: 'pending' };
  }

  /** The approval ended: the requester reads the result until the request expires. */
  settle(r: DeviceRequest, state: Extract<DeviceRequestState, { status: 'added' | 'refused' }>): void {
    r.state = state;
    // An approval that ended at the last moment still reaches a requester polling every second.
    r.expiresAt = Math.max(r.expiresAt, this.options.now() + RESULT_KEPT_MS);
  }

  /** Requests kept now. */
  get size(): number {
    return this.byCode.size;
  }

  private drop(r: DeviceRequest): void {
    this.byCode.delete(r.code);
    this.byPoll.delete(r.poll);
  }

  private prune(): void {
    const now = this.options.now();
    // At most once a second: a poll must not cost a walk over the whole table; what expired since is
    // refused by the lookups themselves (live).
    if (now - this.prunedAt < 1_000 && now >= this.prunedAt) return;
    this.prunedAt = now;
    // An approval under way is kept until it settles: its result must reach the requester.
    for (const r of this.byCode.values())
      if (now >= r.expiresAt && r.state.status !== 'approving') this.drop(r);
  }
}

function newCode(): string {
  let text = '';
  for (let i = 0; i < 8; i++) text += CROCKFORD[randomInt(32)];
  return `${text.slice(0, 4)}-${text.slice(4)}`;
}
