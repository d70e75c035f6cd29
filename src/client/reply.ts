/**
 * Every server reply is checked against its schema (protocol/schemas/) before the client reads a
 * field of it: a malformed reply becomes a typed error saying which answer and which field, never a
 * TypeError further on. The server is not trusted to be well-behaved; a proxy may have rewritten it.
 */
import type { Static, TSchema } from 'typebox';
import { type ErrorCode, isKlError, KlError } from '../protocol/errors.js';
import { check } from '../protocol/schemas/check.js';
import { unverifiedAnswer } from './unverified-answer.js';

/**
 * `answer` checked against `schema`, typed by it.
 * @param what the request it answers, e.g. "GET /v1/info".
 * @throws KlError `code` ("the server's answer to GET /v1/info is malformed: reply.chain has the wrong format").
 */
export function checkReply<S extends TSchema>(
  schema: S,
  answer: unknown,
  code: ErrorCode,
  what: string,
): Static<S> {
  try {
    return check(schema, answer, code, 'reply');
  } catch (err) {
    if (!isKlError(err)) throw err;
    // A malformed answer proves nothing about the ledger (a proxy may have written it): unverified.
    throw unverifiedAnswer(
      new KlError(code, `the server's answer to ${what} is malformed: ${err.message}`, {
        ...err.details,
      }),
    );
  }
}
