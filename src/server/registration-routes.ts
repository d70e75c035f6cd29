/**
 * The registration routes (docs/protocol.md "Phase 1"): an emailed code on request (step 1), then
 * register/begin (the nonce to sign) and register/complete (answered after the ledger commit).
 */
import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import { KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { formatInvitation } from '../protocol/invitation.js';
import { ENROLL_EMAIL_BODY, REGISTER_BEGIN_BODY, REGISTER_COMPLETE_BODY } from '../protocol/messages.js';
import type { AuditWriter } from './audit.js';
import { sourceKey } from './client-address.js';
import { type ServerEvent, withoutUrlSecrets } from './events.js';
import type { IdentityProofs } from './identity-proofs.js';
import type { CodeMailer } from './mailer.js';
import type { RateLimiters } from './rate-limits.js';
import type { RegistrationRequest, RegistrationService } from './registration.js';

/** What the registration routes need. */
export interface RegistrationRoutesContext {
  ledger: Ledger;
  registration: RegistrationService;
  proofs: IdentityProofs;
  limits: RateLimiters;
  /** Sends emailed codes; without it the email method is off. */
  mailer: CodeMailer | undefined;
  emailCodeTtlMs: number;
  audit: AuditWriter;
  emit: (event: ServerEvent) => void;
  now: () => number;
  log: (line: string) => void;
}

/** /v1/enroll/email, /v1/register/begin, /v1/register/complete. */
export function registerRegistrationRoutes(app: FastifyInstance, ctx: RegistrationRoutesContext): void {
  const { limits, now } = ctx;
  app.post<{ Body: { id: string } }>(
    '/v1/enroll/email',
    {
      schema: {
        summary: 'Emails a one-time registration code',
        tags: ['registration'],
        body: ENROLL_EMAIL_BODY,
      },
    },
    async (req, reply) => {
      if (!ctx.mailer)
        throw new KlError(
          'KL_EMAIL_UNAVAILABLE',
          'this server does not send verification emails: ask an admin for an invitation',
        );
      const id = canonicalIdentity(req.body.id);
      limits.registerPerIp.take(sourceKey(req.ip));
      // The mailbox is protected by a limit per address; when it is used up, codes were sent within
      // the last minutes and are still valid (earlier codes are never voided by a new request), so the
      // owner holds one: the answer says so instead of refusing.
      if (!limits.emailPerIdentity.available(id) && ctx.proofs.liveEmailCodes(id, now()) > 0)
        return reply.status(202).send({ sent: false, reason: 'recently-sent' });
      limits.emailPerIdentity.take(id);
      const expiresAt = now() + ctx.emailCodeTtlMs;
      const code = ctx.proofs.issueEmailCode(id, now(), expiresAt);
      try {
        await ctx.mailer.sendCode(id, formatInvitation(code, ctx.ledger.chainId), expiresAt);
      } catch (err) {
        // The person gets the generic KL_EMAIL_UNAVAILABLE; the operator's log gets why.
        const cause = (err as Error).cause;
        const why = String((cause as Error)?.message ?? cause ?? err).slice(0, 500);
        ctx.log(`email code not sent: ${withoutUrlSecrets(why)}`);
        throw err;
      }
      // Same answer whether or not the identity is registered: the mailbox owner is who learns the code.
      return reply.status(202).send({ sent: true, expiresAt });
    },
  );
  app.post<{ Body: { id: string } }>(
    '/v1/register/begin',
    {
      schema: {
        summary: 'Starts a registration: the nonce to sign',
        tags: ['registration'],
        body: REGISTER_BEGIN_BODY,
      },
    },
    async (req) => {
      limits.registerPerIp.take(sourceKey(req.ip));
      return ctx.registration.begin(req.body.id);
    },
  );
  app.post<{ Body: RegistrationRequest }>(
    '/v1/register/complete',
    {
      schema: {
        summary: 'Registers a key: proof of identity and of possession; answers after the ledger commit',
        tags: ['registration'],
        body: REGISTER_COMPLETE_BODY,
      },
    },
    async (req) => {
      limits.registerPerIp.take(sourceKey(req.ip));
      const result = await ctx.registration.complete(req.body, sourceKey(req.ip));
      ctx.audit('registration', result.id, { fingerprint: result.fingerprint });
      ctx.emit({ kind: 'registered', at: now(), id: result.id, fingerprint: result.fingerprint, ip: req.ip });
      return result;
    },
  );
}
