/**
 * Registration (docs/protocol.md "Phase 1"): identity verification, proof of possession of KprivC,
 * key policy, then KeyRegistered on the ledger, answered only after the ledger committed it, with the
 * server's public key and a receipt the client verifies.
 */
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { acceptPublicKey } from '../pgp/key-policy.js';
import { verifyDetached } from '../pgp/messages.js';
import { openSealed } from '../pgp/sealed.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { canonicalDisplayName, canonicalIdentity } from '../protocol/identity.js';
import { checkShape } from '../protocol/shape.js';
import {
  IDENTITY_PROOF_SHAPE,
  type IdentityProofPayload,
  type RegistrationStatement,
  statementBytes,
} from '../protocol/statements.js';
import type { IdentityProofs } from './identity-proofs.js';
import type { RateLimiter } from './rate-limiter.js';
import { RegistrationNonces } from './registration-nonces.js';
import type { ServerKey } from './server-key.js';

/** How far a client's clock may be from the server's. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Answer of register/begin. */
export interface RegistrationBegun {
  nonce: string;
  expiresAt: number;
  chain: string;
  server: { fingerprint: string; publicKey: string };
}

/** Body of register/complete. */
export interface RegistrationRequest {
  statement: RegistrationStatement;
  signature: string;
  publicKey: string;
}

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
    const id = canonicalIdentity(idInput);
    const { nonce, expiresAt } = this.nonces.issue(id, this.o.now());
    return {
      nonce,
      expiresAt,
      chain: this.o.ledger.chainId,
      server: { fingerprint: this.o.serverKey.fingerprint, publicKey: this.o.serverKey.armoredPublicKey },
    };
  }

  /**
   * docs/protocol.md "Phase 1", step 4. `source` is the requester's address (after the proxy trust list),
   * which wrong codes are charged to.
   */
  async complete(req: RegistrationRequest, source = 'unknown'): Promise<RegistrationResult> {
    const now = this.o.now();
    const s = req.statement;
    const { id, name, nonceExpiresAt } = this.checkStatement(s, now);
    const accepted = await acceptPublicKey(req.publicKey, new Date(now));
    if (accepted.fingerprint !== s.fingerprint)
      throw new KlError('KL_STATEMENT_INVALID', 'the statement names another key than the one sent');
    // Proof of possession: the statement (with the server's nonce and the sealed identity proof)
    // signed by the key being registered.
    await verifyDetached({
      data: statementBytes(s),
      armoredSignature: req.signature,
      key: accepted.key,
      now: new Date(now),
      maxSkewMs: MAX_CLOCK_SKEW_MS,
    });
    // Spent only now, by a statement its key signed: a stranger's junk cannot burn a user's nonce.
    this.nonces.spend(s.nonce, nonceExpiresAt, now);

    const earlier = await this.earlierRegistration(id, accepted.fingerprint);
    if (earlier) return this.result(id, name, accepted, earlier);

    const proof = await this.openProof(s, now);
    this.checkCode(id, proof, source, now);
    this.o.limits?.perIdentity.take(id);
    if (this.inFlight.has(id))
      throw new KlError('KL_IDENTITY_TAKEN', 'a registration of this identity is already in progress');
    this.inFlight.add(id);
    try {
      // docs/protocol.md "Phase 1", step 4: store KpubC on the ledger and wait for its confirmation.
      const receipt = await this.o.ledger.submit({
        type: 'KeyRegistered',
        body: {
          id,
          name,
          fingerprint: accepted.fingerprint,
          publicKey: accepted.armored,
          algorithm: accepted.algorithm,
        },
      });
      this.o.proofs.consume(id, proof.method, proof.code, this.o.now());
      return this.result(id, name, accepted, receipt);
    } finally {
      this.inFlight.delete(id);
    }
  }

  /**
   * The statement's own checks (docs/protocol.md "Phase 1", step 4): canonical identity and name, this
   * ledger and server key, the nonce (issued for this identity, unexpired, unspent) and the time.
   */
  private checkStatement(
    s: RegistrationStatement,
    now: number,
  ): { id: string; name: string; nonceExpiresAt: number } {
    const id = canonicalIdentity(s.id);
    if (id !== s.id)
      throw new KlError(
        'KL_STATEMENT_INVALID',
        'the statement must carry the identity in canonical form (lower case)',
      );
    const name = canonicalDisplayName(s.name);
    if (name !== s.name)
      throw new KlError('KL_STATEMENT_INVALID', 'the statement must carry the name in canonical form');
    if (s.chain !== this.o.ledger.chainId)
      throw new KlError('KL_STATEMENT_INVALID', 'the statement names another ledger');
    if (s.server !== this.o.serverKey.fingerprint)
      throw new KlError('KL_STATEMENT_INVALID', 'the statement names another server key');
    const { expiresAt } = this.nonces.check(s.nonce, id, now);
    if (Math.abs(s.time - now) > MAX_CLOCK_SKEW_MS)
      throw new KlError('KL_STATEMENT_INVALID', 'the statement time is too far from the server clock');
    return { id, name, nonceExpiresAt: expiresAt };
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
   * Opens the sealed identity proof and checks that it was made for this very statement (identity,
   * key, nonce, server, ledger, method): a sealed proof copied from another registration is refused.
   */
  private async openProof(s: RegistrationStatement, now: number): Promise<IdentityProofPayload> {
    const invalid = () =>
      new KlError(
        'KL_IDENTITY_PROOF_INVALID',
        'the invitation or verification code is not valid for this identity',
      );
    let payload: IdentityProofPayload;
    try {
      const bytes = await openSealed(s.proof.sealed, this.o.serverKey.privateKey, new Date(now));
      payload = checkShape<IdentityProofPayload>(
        JSON.parse(Buffer.from(bytes).toString('utf8')),
        IDENTITY_PROOF_SHAPE,
        'KL_IDENTITY_PROOF_INVALID',
      );
    } catch (err) {
      if (isKlError(err) && err.code === 'KL_STORAGE_UNAVAILABLE') throw err;
      throw invalid();
    }
    const bound =
      payload.chain === s.chain &&
      payload.id === s.id &&
      payload.fingerprint === s.fingerprint &&
      payload.nonce === s.nonce &&
      payload.server === s.server &&
      payload.method === s.proof.method;
    if (!bound) throw invalid();
    return payload;
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
