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
  /** The key named is not an active device of the identity. */
  KL_DEVICE_UNKNOWN: 404,
  /** Another active device of the identity has this name. */
  KL_DEVICE_NAME_TAKEN: 409,
  /** The identity holds as many active devices as a record may. */
  KL_DEVICE_LIMIT: 409,
  /** Revoking the identity's only active device: that is revoking the identity (`revoke-key`, or an operator). */
  KL_LAST_DEVICE: 409,
  /** A device enrolment code that is unknown, used, expired or for another key (one answer for all). */
  KL_DEVICE_CODE_INVALID: 404,
  /**
   * A recovery that does not hold: the key is not the identity's recovery key, a signature fails,
   * or the identity cannot be recovered (one answer for all: docs/protocol.md "Recovery").
   */
  KL_RECOVERY_INVALID: 403,
  /** A recovery key file or paper form that cannot be read (a mistyped line, another kind of key). */
  KL_RECOVERY_KEY_UNREADABLE: 400,
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
  KL_LEDGER_CORRUPT: 503,
  /**
   * The server's ledger has not reached a block the client already saw (it follows a chain and is
   * catching up): retryable, on another server of the ledger or a moment later.
   */
  KL_LEDGER_BEHIND: 503,
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
  /** The client was not told which server to trust (no pin, no chain id) and did not accept first use. */
  KL_SERVER_UNPINNED: 400,
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
  /** A command needs an optional package that is not installed (the server's packages are optional peers). */
  KL_MISSING_PACKAGE: 500,
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

/** True when `code` is one of {@link ERROR_CODES}: own keys only, so `toString` or `__proto__` never pass. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** Longest message kept from an error a server sent. */
const MAX_WIRE_MESSAGE = 500;
/**
 * Characters a remote text must not bring to the terminal it is shown on: controls (C0, DEL, C1),
 * format characters (bidirectional overrides and marks, zero-width, soft hyphen, tags) and the line
 * and paragraph separators. Unicode categories Cc, Cf, Zl, Zp.
 */
export const UNSAFE_TEXT = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const DETAIL_KEY = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

/** A remote text made safe to show: control characters replaced, length bounded. */
export function wireText(text: string, max = MAX_WIRE_MESSAGE): string {
  return text.slice(0, max).replace(UNSAFE_TEXT, ' ');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** At most 16 flat details (short strings, finite numbers, booleans); anything else is dropped. */
function wireDetails(v: unknown): Record<string, unknown> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, item] of Object.entries(v)) {
    if (n >= 16 || !DETAIL_KEY.test(k)) continue;
    if (typeof item === 'string') out[k] = wireText(item, 200);
    else if ((typeof item === 'number' && Number.isFinite(item)) || typeof item === 'boolean') out[k] = item;
    else continue;
    n += 1;
  }
  return n > 0 ? out : undefined;
}

/** Options of {@link errorFromWire}. */
export interface WireErrorOptions {
  /**
   * False for an error that did not arrive authenticated: a plaintext `{ type: "error" }` on the login
   * or resume socket, which anyone on the path can forge (docs/protocol.md). Only its code is kept,
   * in a generic message marked as unverified, with `details.authenticated = false`; its text is
   * never shown as the server's word. Default true (an error inside a sealed frame, an HTTP answer).
   */
  authenticated?: boolean;
  /** Message when an authenticated error carries none. */
  message?: string;
}

/**
 * The one place where an error a server sent (`{ code, message, details? }`) becomes a
 * {@link KlError}: any value is accepted; a missing or unknown code becomes `fallback`; the message
 * is bounded and stripped of control characters; details are kept only when flat and small.
 */
export function errorFromWire(value: unknown, fallback: ErrorCode, o: WireErrorOptions = {}): KlError {
  const e = isRecord(value) ? value : {};
  const code = isErrorCode(e.code) ? e.code : fallback;
  if (o.authenticated === false) {
    return new KlError(
      code,
      `the connection was refused: ${code} (an unauthenticated answer: not verified)`,
      {
        authenticated: false,
      },
    );
  }
  const text = typeof e.message === 'string' ? wireText(e.message).trim() : '';
  return new KlError(code, text || o.message || 'the server refused the request', wireDetails(e.details));
}
