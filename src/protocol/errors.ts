/**
 * Typed errors with stable codes. Every error that crosses a module boundary is a {@link KlError};
 * callers branch on `code`, never on `message`. Messages for failed signature or decryption checks
 * stay generic on purpose (they must not tell an attacker which part failed).
 */

/** Every stable error code keyledger emits, with the HTTP status a server maps it to. */
export const ERROR_CODES = {
  KL_BAD_INPUT: 400,
  KL_TX_MALFORMED: 400,
  KL_TX_TOO_LARGE: 413,
  KL_TX_BAD_SIGNATURE: 400,
  KL_TX_WRONG_CHAIN: 400,
  KL_TX_DUPLICATE: 409,
  KL_TX_CLOCK_SKEW: 400,
  KL_NOT_PERMITTED: 403,
  KL_QUORUM_NOT_MET: 403,
  KL_IDENTITY_TAKEN: 409,
  KL_IDENTITY_UNKNOWN: 404,
  KL_KEY_REVOKED: 409,
  KL_KEY_MISMATCH: 409,
  KL_KEY_IN_USE: 409,
  KL_GOVERNANCE_STALE: 409,
  KL_REGISTRAR_EXISTS: 409,
  KL_REGISTRAR_UNKNOWN: 404,
  KL_ROLE_EXISTS: 409,
  KL_ROLE_UNKNOWN: 404,
  KL_NOT_ADMIN: 403,
  KL_ADMIN_LINK_INVALID: 401,
  KL_CSRF: 403,
  KL_CONFIG_INVALID: 400,
  KL_TX_UNKNOWN: 404,
  KL_BLOCK_UNKNOWN: 404,
  KL_PROOF_INVALID: 400,
  KL_CHECKPOINT_INVALID: 400,
  KL_LEDGER_CLOSED: 503,
  KL_LEDGER_WRITE_FAILED: 503,
  KL_LEDGER_UNAVAILABLE: 503,
  KL_LEDGER_CORRUPT: 500,
  KL_STORAGE_UNAVAILABLE: 503,
  KL_DATA_DIR: 500,
  KL_PASSPHRASE_REQUIRED: 400,
  KL_PASSPHRASE_WRONG: 401,
  KL_KEY_MALFORMED: 400,
  KL_KEY_IS_PRIVATE: 422,
  KL_KEY_POLICY: 422,
  KL_SIGNATURE_INVALID: 401,
  KL_DECRYPTION_FAILED: 401,
  KL_MESSAGE_MALFORMED: 400,
  KL_NONCE_INVALID: 401,
  KL_STATEMENT_INVALID: 400,
  KL_IDENTITY_PROOF_INVALID: 401,
  KL_AUTH_FAILED: 401,
  KL_CHALLENGE_EXPIRED: 401,
  KL_CHALLENGE_UNKNOWN: 401,
  KL_SERVER_KEY_MISMATCH: 502,
  KL_RECEIPT_INVALID: 502,
  KL_RATE_LIMITED: 429,
  KL_TOO_LARGE: 413,
  KL_NOT_FOUND: 404,
  KL_EMAIL_UNAVAILABLE: 503,
  KL_NETWORK: 503,
  KL_PROTOCOL: 400,
  KL_NOT_REGISTERED: 400,
  KL_GPG_FAILED: 500,
  KL_INTERNAL: 500,
  KL_SESSION_EXPIRED: 401,
  KL_SESSION_REVOKED: 401,
  KL_SESSION_UNKNOWN: 401,
  KL_HIJACK_SUSPECTED: 401,
  KL_SERVER_SHUTDOWN: 503,
  KL_FRAME_REJECTED: 400,
} as const;

/** A stable error code string such as `KL_KEY_REVOKED`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error type of keyledger: a stable `code`, a human message and optional details. */
export class KlError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Extra, non-secret facts that help a person (field name, limit, height…). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KlError';
    this.code = code;
    this.details = details;
  }

  /** HTTP status that corresponds to this error's code. */
  get status(): number {
    return ERROR_CODES[this.code];
  }

  /** The wire form: `{ error: { code, message, details? } }`. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details ? { details: { ...this.details } } : {}),
      },
    };
  }
}

/** True when `err` is a {@link KlError}, optionally with the given code. */
export function isKlError(err: unknown, code?: ErrorCode): err is KlError {
  return err instanceof KlError && (code === undefined || err.code === code);
}
