/**
 * A corpus of real wire messages (the committed protocol vectors) and mechanical tamperings of each
 * field (wrong type, oversize, missing, extra field), with the verdict `check` gives each: "ok" or
 * the refusal's message. Run as a script it prints the validation engine and the verdicts as JSON, so
 * a test can compare a process that may generate code (Ajv) with one that may not (TypeBox's
 * interpreter, as under a strict Content-Security-Policy).
 */
import { readFileSync } from 'node:fs';
import type { TSchema } from 'typebox';
import { check, VALIDATION_ENGINE } from '../../src/protocol/schemas/check.js';
import {
  Challenge,
  ChallengePayload,
  ChallengeResponse,
  Finished,
  FrameMessage,
  Hello,
} from '../../src/protocol/schemas/login.js';
import { ServerChannelMessage } from '../../src/protocol/schemas/session.js';
import { RegistrationStatementSchema } from '../../src/protocol/schemas/statements.js';
import { TX_BODY_SCHEMAS } from '../../src/protocol/schemas/transactions.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/keyledger-v1.json', import.meta.url), 'utf8'));

/** Each field of `value` replaced by a number, by an over-long string, removed; and an extra field. */
function tampered(schema: TSchema, value: Record<string, unknown>): unknown[] {
  const props = (schema as { properties?: Record<string, { maxLength?: number }> }).properties ?? {};
  const out: unknown[] = [value, { ...value, isAdmin: true }, null, [value]];
  for (const [k, p] of Object.entries(props)) {
    out.push({ ...value, [k]: 12345 }, { ...value, [k]: 'A'.repeat((p.maxLength ?? 10) + 1) });
    const { [k]: _dropped, ...without } = value;
    out.push(without);
  }
  return out;
}

/** The verdict on every case: "ok", or the message of the refusal. */
export function verdicts(): string[] {
  const h = vectors.handshake;
  const corpus: Array<[TSchema, unknown]> = [];
  const add = (schema: TSchema, value: Record<string, unknown>) => {
    for (const v of tampered(schema, value)) corpus.push([schema, v]);
  };
  add(Hello, h.hello);
  add(Challenge, h.challenge);
  add(ChallengePayload, h.challengePayload);
  add(ChallengeResponse, h.response);
  add(Finished, h.finished);
  add(FrameMessage, JSON.parse(vectors.frames.positive[0].frame));
  add(RegistrationStatementSchema, vectors.statements.registration.statement);
  corpus.push([Finished, { ...h.finished, expiresAt: -1 }], [Finished, { ...h.finished, expiresAt: 1.5 }]);
  corpus.push([TX_BODY_SCHEMAS.AuditEvent, { event: 'login', at: 1, detail: { nested: { deep: 1 } } }]);
  corpus.push([TX_BODY_SCHEMAS.AuditEvent, { event: 'login', at: 1, detail: { 'bad key': 1 } }]);
  corpus.push([
    TX_BODY_SCHEMAS.KeyRevoked,
    { id: 'a@b.org', fingerprint: 'a'.repeat(40), reason: 'x', by: 'owner' },
  ]);
  for (const m of [
    { t: 'reply', re: 1, body: 'x' },
    { t: 'reply', re: '1' },
    { t: 'alert', code: 'K' },
    null,
  ])
    corpus.push([ServerChannelMessage, m]);
  return corpus.map(([schema, value]) => {
    try {
      check(schema, value, 'KL_BAD_INPUT', 'msg');
      return 'ok';
    } catch (err) {
      return (err as Error).message;
    }
  });
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  process.stdout.write(JSON.stringify({ engine: VALIDATION_ENGINE, verdicts: verdicts() }));
}
