/**
 * Schemas of recovery (docs/protocol.md "Recovery"): the body of POST /v1/recover and its answer.
 * The statements themselves are in statements.ts (schemas) and protocol/statements.ts (types).
 */
import { type Static, Type } from 'typebox';
import { ArmoredKey, ArmoredSignature } from './fields.js';
import { ReceiptSchema } from './ledger.js';

const closed = { additionalProperties: false } as const;

/** Longest recovery statement accepted, as JSON text. */
export const MAX_RECOVERY_STATEMENT = 1024;

/** A key that comes with a recovery and its signature over the statement. */
const KeyWithSignature = Type.Object({ publicKey: ArmoredKey, signature: ArmoredSignature }, closed);

/**
 * POST /v1/recover: the RecoveryStatement as JSON text, the recovery key's signature over it, and
 * the new device's key and the next recovery key, each with its own signature over it.
 */
export const RecoveryBody = Type.Object(
  {
    statement: Type.String({ minLength: 2, maxLength: MAX_RECOVERY_STATEMENT }),
    signature: ArmoredSignature,
    device: KeyWithSignature,
    nextRecovery: KeyWithSignature,
  },
  closed,
);
/** A recovery as sent. */
export type RecoveryBody = Static<typeof RecoveryBody>;

/** POST /v1/recover, answered: the receipt of the Recovered transaction. */
export const RecoveryReply = Type.Object({ receipt: ReceiptSchema }, closed);
