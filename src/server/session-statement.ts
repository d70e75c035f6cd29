/**
 * A statement signed by a session's device and sent inside the session (docs/protocol.md "Phases 3
 * and 4", "Devices" and "Recovery": revoking or rotating a key, revoking a device, setting the
 * recovery key), parsed and bound to the session: for its identity and ledger, made within
 * {@link STATEMENT_SKEW_MS} of the server's clock.
 */
import type { Static } from 'typebox';
import { KlError } from '../protocol/errors.js';
import { check } from '../protocol/schemas/check.js';
import type {
  DeviceRevocationStatementSchema,
  RecoveryKeyStatementSchema,
  RevocationStatementSchema,
  RotationStatementSchema,
} from '../protocol/schemas/statements.js';

/** How far a signed statement's time may be from the server's clock. */
export const STATEMENT_SKEW_MS = 5 * 60_000;

/** The statement schemas a session accepts. */
type SessionStatementSchema =
  | typeof RevocationStatementSchema
  | typeof RotationStatementSchema
  | typeof DeviceRevocationStatementSchema
  | typeof RecoveryKeyStatementSchema;

/**
 * Parses `text` (JSON) against `schema` and checks it is for identity `id` on ledger `chain`, made
 * near `now`.
 * @throws KlError `KL_STATEMENT_INVALID`
 */
export function parseSessionStatement<S extends SessionStatementSchema>(
  text: unknown,
  schema: S,
  bound: { id: string; chain: string; now: number },
): Static<S> {
  let value: unknown;
  try {
    value = JSON.parse(String(text));
  } catch {
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is not JSON');
  }
  const statement = check(schema, value, 'KL_STATEMENT_INVALID', 'statement');
  if (statement.id !== bound.id || statement.chain !== bound.chain)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is not for this identity and ledger');
  if (Math.abs(statement.time - bound.now) > STATEMENT_SKEW_MS)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement is too old or too far in the future');
  return statement;
}
