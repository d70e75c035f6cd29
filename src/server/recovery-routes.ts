/**
 * The open route of recovery (docs/protocol.md "Recovery"): a new device, holding the identity's
 * recovery key, takes the identity over (transaction Recovered): every device is revoked, the new
 * one enrolled, the next recovery key set. The request is charged to its source address only (naming
 * an identity proves nothing), every failure before the ledger's own rules answers one generic
 * refusal, and the operator is alerted of each recovery.
 */
import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { type AcceptedKey, acceptPublicKey, type KeyPurpose } from '../pgp/key-policy.js';
import { readPublicKey, verifyDetached } from '../pgp/messages.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { check } from '../protocol/schemas/check.js';
import { RecoveryBody } from '../protocol/schemas/recovery.js';
import { RecoveryStatementSchema } from '../protocol/schemas/statements.js';
import { type RecoveryStatement, statementBytes } from '../protocol/statements.js';
import type { Alert } from './alert-log.js';
import type { AuditWriter } from './audit.js';
import { sourceKey } from './client-address.js';
import type { RateLimiter } from './rate-limiter.js';
import { STATEMENT_SKEW_MS } from './session-statement.js';

/** What the recovery route needs. */
export interface RecoveryRoutesContext {
  ledger: Ledger;
  chain: string;
  /** Recoveries per source address, and server-wide. */
  limits: { perIp: RateLimiter; global: RateLimiter };
  audit: AuditWriter;
  alert: (alert: Alert) => void;
  now: () => number;
  log: (line: string) => void;
}

/** The one answer to a recovery that does not hold, whatever part failed. */
const invalidRecovery = () =>
  new KlError('KL_RECOVERY_INVALID', 'the recovery is not valid for this identity and recovery key');

function parseStatement(text: string, chain: string, now: number): RecoveryStatement {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is not JSON');
  }
  const statement = check(RecoveryStatementSchema, value, 'KL_STATEMENT_INVALID', 'statement');
  if (statement.chain !== chain)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is for another ledger');
  if (canonicalIdentity(statement.id) !== statement.id)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement must carry the identity in canonical form');
  if (Math.abs(statement.time - now) > STATEMENT_SKEW_MS)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is too old or too far in the future');
  if (statement.fingerprint === statement.nextRecovery)
    throw new KlError('KL_STATEMENT_INVALID', 'the new device key and the next recovery key must differ');
  return statement;
}

/**
 * Checks a recovery: the statement, the recovery key's signature against the recovery key the
 * ledger holds for the identity now, then the new device's key and the next recovery key (the key
 * policy, the statement's fingerprints, each one's signature).
 * @throws KlError `KL_STATEMENT_INVALID`, `KL_RECOVERY_INVALID`, `KL_KEY_*`, `KL_SIGNATURE_INVALID`
 */
export async function checkRecovery(
  ledger: Ledger,
  body: RecoveryBody,
  now: number,
): Promise<{ statement: RecoveryStatement; device: AcceptedKey; next: AcceptedKey }> {
  const statement = parseStatement(body.statement, ledger.chainId, now);
  const data = statementBytes(statement);
  const verify = (armoredSignature: string, key: Parameters<typeof verifyDetached>[0]['key']) =>
    verifyDetached({ data, armoredSignature, key, now: new Date(now), maxSkewMs: STATEMENT_SKEW_MS });
  const recovery = (await ledger.getKeyRecord(statement.id)).record?.recovery;
  if (recovery?.fingerprint !== statement.recovery) throw invalidRecovery();
  try {
    await verify(body.signature, await readPublicKey(recovery.publicKey));
  } catch (err) {
    if (isKlError(err, 'KL_STORAGE_UNAVAILABLE')) throw err;
    throw invalidRecovery();
  }
  const accepted = async (part: RecoveryBody['device'], fingerprint: string, purpose: KeyPurpose) => {
    const key = await acceptPublicKey(part.publicKey, new Date(now), purpose);
    if (key.fingerprint !== fingerprint)
      throw new KlError('KL_STATEMENT_INVALID', 'the statement names another key');
    await verify(part.signature, key.key);
    return key;
  };
  const device = await accepted(body.device, statement.fingerprint, 'device');
  const next = await accepted(body.nextRecovery, statement.nextRecovery, 'recovery');
  return { statement, device, next };
}

async function recover(
  ctx: RecoveryRoutesContext,
  body: RecoveryBody,
): Promise<{ statement: RecoveryStatement; receipt: TransactionReceipt }> {
  const { statement, device, next } = await checkRecovery(ctx.ledger, body, ctx.now());
  const part = (key: AcceptedKey, signature: string) => ({
    fingerprint: key.fingerprint,
    publicKey: key.armored,
    algorithm: key.algorithm,
    signature,
  });
  const receipt = await ctx.ledger.submit({
    type: 'Recovered',
    body: {
      id: statement.id,
      recovery: statement.recovery,
      signature: body.signature,
      time: statement.time,
      device: { ...part(device, body.device.signature), name: statement.name },
      nextRecovery: part(next, body.nextRecovery.signature),
    },
  });
  return { statement, receipt };
}

/** POST /v1/recover. */
export function registerRecoveryRoutes(app: FastifyInstance, ctx: RecoveryRoutesContext): void {
  app.post<{ Body: RecoveryBody }>(
    '/v1/recover',
    {
      schema: {
        summary:
          'Recovers an identity on a new device with its recovery key: every device is revoked, the new one enrolled',
        tags: ['recovery'],
        body: RecoveryBody,
      },
    },
    async (req, reply) => {
      ctx.limits.perIp.take(sourceKey(req.ip));
      ctx.limits.global.take('*');
      const { statement, receipt } = await recover(ctx, req.body);
      const { id, name, fingerprint } = statement;
      const detail = `${id} recovered with its recovery key on a new device ${name} (${fingerprint.slice(-16)}) from ${req.ip}: every other device was revoked`;
      ctx.alert({ at: ctx.now(), kind: 'recovery', id, sessionId: '', detail });
      ctx.audit('recovered', id, { device: fingerprint });
      ctx.log(`recovery: ${detail}`);
      return reply.status(201).send({ receipt });
    },
  );
}
