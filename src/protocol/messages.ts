/**
 * Wire limits, and the schemas of the HTTP route bodies under the names the server's routes use
 * (Fastify validates bodies against them at the boundary). Every wire schema lives in ./schemas/:
 * every string and array is bounded and unknown fields are refused.
 */
import { EnrollEmailBody, RegisterBeginBody, RegisterCompleteBody } from './schemas/http.js';

export { MAX_SEALED_PROOF } from './schemas/statements.js';

/** POST /v1/register/begin */
export const REGISTER_BEGIN_BODY = RegisterBeginBody;
/** POST /v1/register/complete (docs/protocol.md "Phase 1", step 4). */
export const REGISTER_COMPLETE_BODY = RegisterCompleteBody;
/** POST /v1/enroll/email */
export const ENROLL_EMAIL_BODY = EnrollEmailBody;

/** Largest WebSocket message accepted, bytes. */
export const MAX_WS_MESSAGE = 160 * 1024;
/** Largest HTTP body accepted, bytes. */
export const MAX_HTTP_BODY = 64 * 1024;
