/**
 * Registration (docs/protocol.md "Phase 1"): identity verification, proof of possession of KprivC,
 * key policy, then KeyRegistered on the ledger, answered only after the ledger committed it, with the
 * server's public key and a receipt the client verifies.
 */
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { isKlError, KlError } from '../protocol/errors.js';
import type { IdentityProofPayload } from '../protocol/statements.js';
import type { IdentityProofs } from './identity-proofs.js';
import type { RateLimiter } from './rate-limiter.js';
import { RegistrationNonces } from './registration-nonces.js';
import {
  createRegistration,
  type RegistrationBegun,
  type RegistrationRequest,
  verifyRegistration,
} from './registration-protocol.js';
import type { ServerKey } from './server-key.js';

export {
  MAX_CLOCK_SKEW_MS,
  type RegistrationBegun,
  type RegistrationRequest,
} from './registration-protocol.js';

/**
 * Limits of registration (docs/protocol.md "Rate limits"). None is charged by a request that proved
 * nothing about the identity: wrong codes are charged to their source and, for the guessable 8-digit
 * emailed codes, to a global budget; `perIdentity` only once the identity proof verified.
 */
export interface RegistrationLimits {
  /** Wrong codes per source address (invitations and emailed codes). */
  wrongCodePerSource: RateLimiter;
  /** Wrong emailed codes for the whole server: bounds guessing from many addresses. */
  wrongEmailCodeGlobal: RateLimiter;
  /** Registrations per identity whose identity proof verified. */
  perIdentity: RateLimiter;
}

/** Answer of register/complete: what the client must verify and keep. */
export interface RegistrationResult {
  id: string;
  name: string;
  fingerprint: string;
  algorithm: string;
  server: { fingerprint: string; publicKey: string };
  receipt: TransactionReceipt;
}

/** Options of {@link RegistrationService}. */
export interface RegistrationServiceOptions {
  ledger: Ledger;
  serverKey: ServerKey;
  proofs: IdentityProofs;
  now: () => number;
  nonceTtlMs?: number;
  /** Most spent, unexpired nonces remembered (registration-nonces.ts). */
  maxSpentNonces?: number;
  limits?: RegistrationLimits;
}

/** The server side of registration. */
export class RegistrationService {
  private readonly nonces: RegistrationNonces;
  private readonly inFlight = new Set<string>();

  constructor(private readonly o: RegistrationServiceOptions) {
    this.nonces = new RegistrationNonces({
      ...(o.nonceTtlMs !== undefined ? { ttlMs: o.nonceTtlMs } : {}),
      ...(o.maxSpentNonces !== undefined ? { maxSpent: o.maxSpentNonces } : {}),
    });
  }

  /** docs/protocol.md "Phase 1", step 2: a fresh single-use nonce bound to the identity; the server key. */
  begin(idInput: unknown): RegistrationBegun {
    const { ledger, serverKey } = this.o;
    return createRegistration({
      id: idInput,
      chain: ledger.chainId,
      serverKey,
      nonces: this.nonces,
      now: this.o.now(),
    });
  }

  /**
   * docs/protocol.md "Phase 1", step 4. `source` is the requester's address (after the proxy trust list),
   * which wrong codes are charged to.
   */
  async complete(req: RegistrationRequest, source = 'unknown'): Promise<RegistrationResult> {
    const now = this.o.now();
    // A spent nonce is refused before any signature work.
    const nonce = (req as { statement?: { nonce?: unknown } } | null)?.statement?.nonce;
    if (typeof nonce === 'string') this.nonces.refuseSpent(nonce);
    const v = await verifyRegistration({
      request: req,
      chain: this.o.ledger.chainId,
      serverKey: this.o.serverKey,
      nonces: this.nonces,
      now,
    });
    // Spent only now, by a statement its key signed: a stranger's junk cannot burn a user's nonce.
    this.nonces.spend(v.nonce, v.nonceExpiresAt, now);
    const { id, name, proof } = v;
    const earlier = await this.earlierRegistration(id, v.fingerprint);
    if (earlier) return this.result(id, name, v, earlier);
    this.checkCode(id, proof, source, now);
    this.o.limits?.perIdentity.take(id);
    if (this.inFlight.has(id))
      throw new KlError('KL_IDENTITY_TAKEN', 'a registration of this identity is already in progress');
    this.inFlight.add(id);
    try {
      // docs/protocol.md "Phase 1", step 4: store KpubC on the ledger and wait for its confirmation.
      // The device name comes from the statement the key signed, so nobody on the way can rename it.
      const receipt = await this.o.ledger.submit({
        type: 'KeyRegistered',
        body: {
          id,
          name,
          fingerprint: v.fingerprint,
          publicKey: v.armored,
          algorithm: v.algorithm,
          ...(v.device !== undefined ? { device: v.device } : {}),
        },
      });
      this.o.proofs.consume(id, proof.method, proof.code, this.o.now());
      return this.result(id, name, v, receipt);
    } finally {
      this.inFlight.delete(id);
    }
  }

  /**
   * What the ledger already holds for `id`. This very key: the receipt of its registration, for a
   * retry after a lost answer (the server died between the ledger commit and the reply) — the identity
   * was proven when the key was written, and the statement just proved possession with a fresh
   * nonce, so registration is safe to retry. Another active key: `KL_IDENTITY_TAKEN` naming it (the
   * ledger is public, GET /v1/ledger/keys/:id, so this tells an attacker nothing and tells a raced
   * user what happened).
   */
  private async earlierRegistration(id: string, fingerprint: string): Promise<TransactionReceipt | null> {
    const record = await this.o.ledger.getKeyRecord(id).then(
      (r) => r.record,
      (err: unknown) => {
        if (isKlError(err) && err.code === 'KL_IDENTITY_UNKNOWN') return null; // no blocks yet
        throw err;
      },
    );
    if (record?.status !== 'active') return null;
    if (record.fingerprint === fingerprint) {
      const receipt = await this.o.ledger.getTransaction(record.registered.txid);
      if (receipt.envelope.tx.type === 'KeyRegistered') return receipt;
    }
    throw new KlError(
      'KL_IDENTITY_TAKEN',
      `${id} is already registered on the ledger with another key (${record.fingerprint})`,
      { fingerprint: record.fingerprint, height: record.registered.height },
    );
  }

  /**
   * Checks the code. Wrong codes are counted against their source address and, for emailed codes,
   * against the server-wide budget — never against the identity, so nobody can void or block another
   * person's code by guessing (docs/protocol.md "Rate limits").
   */
  private checkCode(id: string, proof: IdentityProofPayload, source: string, now: number): void {
    const limits = this.o.limits;
    const budgets: Array<[RateLimiter, string]> = limits
      ? [
          [limits.wrongCodePerSource, source],
          ...(proof.method === 'email' ? [[limits.wrongEmailCodeGlobal, '*'] as [RateLimiter, string]] : []),
        ]
      : [];
    for (const [limiter, key] of budgets) limiter.check(key);
    try {
      this.o.proofs.check(id, proof.method, proof.code, now);
    } catch (err) {
      if (isKlError(err) && err.code === 'KL_IDENTITY_PROOF_INVALID')
        for (const [limiter, key] of budgets) limiter.spend(key);
      throw err;
    }
  }

  /** docs/protocol.md "Phase 1", steps 4–5: the server's key and the acknowledgment (with its proof). */
  private result(
    id: string,
    name: string,
    accepted: { fingerprint: string; algorithm: string },
    receipt: TransactionReceipt,
  ): RegistrationResult {
    return {
      id,
      name,
      fingerprint: accepted.fingerprint,
      algorithm: accepted.algorithm,
      server: { fingerprint: this.o.serverKey.fingerprint, publicKey: this.o.serverKey.armoredPublicKey },
      receipt,
    };
  }
}
