/**
 * Wire messages: JSON schemas for the HTTP routes (Fastify validates bodies against them at the
 * boundary) and shapes for the WebSocket messages. Every string and array is bounded; unknown fields
 * are refused.
 */
import { MAX_IDENTITY_LENGTH, MAX_NAME_LENGTH } from './identity.js';
import type { ObjectShape } from './shape.js';

const b64url = (bytes: number) =>
  ({ type: 'string', pattern: `^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$` }) as const;

/** POST /v1/register/begin */
export const REGISTER_BEGIN_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', minLength: 3, maxLength: MAX_IDENTITY_LENGTH } },
} as const;

/** Longest armored sealed identity proof accepted (one PKESK and a short SEIPD; ~700 bytes in practice). */
export const MAX_SEALED_PROOF = 4096;

/** POST /v1/register/complete (docs/protocol.md "Phase 1", step 4). */
export const REGISTER_COMPLETE_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['statement', 'signature', 'publicKey'],
  properties: {
    statement: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'v', 'chain', 'id', 'name', 'fingerprint', 'nonce', 'server', 'time', 'proof'],
      properties: {
        type: { const: 'keyledger/register' },
        v: { const: 2 },
        chain: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        id: { type: 'string', minLength: 3, maxLength: MAX_IDENTITY_LENGTH },
        name: { type: 'string', minLength: 1, maxLength: MAX_NAME_LENGTH },
        fingerprint: { type: 'string', pattern: '^([0-9a-f]{40}|[0-9a-f]{64})$' },
        nonce: b64url(32),
        server: { type: 'string', pattern: '^([0-9a-f]{40}|[0-9a-f]{64})$' },
        time: { type: 'integer', minimum: 0, maximum: 8.64e15 },
        proof: {
          type: 'object',
          additionalProperties: false,
          required: ['method', 'sealed'],
          properties: {
            method: { enum: ['invite', 'email'] },
            sealed: { type: 'string', minLength: 1, maxLength: MAX_SEALED_PROOF },
          },
        },
      },
    },
    signature: { type: 'string', minLength: 1, maxLength: 8192 },
    publicKey: { type: 'string', minLength: 1, maxLength: 32768 },
  },
} as const;

/** POST /v1/enroll/email */
export const ENROLL_EMAIL_BODY = REGISTER_BEGIN_BODY;

/** WebSocket: the client's hello (docs/protocol.md "Phase 2", step 1). */
export const HELLO_SHAPE: ObjectShape = {
  type: { type: 'string', max: 5, enum: ['hello'] },
  v: { type: 'integer', min: 1, max: 1 },
  id: { type: 'string', max: MAX_IDENTITY_LENGTH },
  ephemeral: { type: 'string', max: 43, pattern: /^[A-Za-z0-9_-]{43}$/ },
};

/** WebSocket: the client's response to a challenge (docs/protocol.md "Phase 2", step 3). */
export const RESPONSE_SHAPE: ObjectShape = {
  type: { type: 'string', max: 8, enum: ['response'] },
  challengeId: { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ },
  rs: { type: 'string', max: 43, pattern: /^[A-Za-z0-9_-]{43}$/ },
  rc: { type: 'string', max: 43, pattern: /^[A-Za-z0-9_-]{43}$/ },
  signature: { type: 'string', max: 8192 },
};

/** WebSocket: the server's challenge. */
export const CHALLENGE_SHAPE: ObjectShape = {
  type: { type: 'string', max: 9, enum: ['challenge'] },
  challengeId: { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ },
  message: { type: 'string', max: 64 * 1024 },
};

/** WebSocket: an error, after which the server closes the connection. */
export const ERROR_SHAPE: ObjectShape = {
  type: { type: 'string', max: 5, enum: ['error'] },
  code: { type: 'string', max: 64 },
  message: { type: 'string', max: 1024 },
};

/** Largest WebSocket message accepted, bytes. */
export const MAX_WS_MESSAGE = 160 * 1024;
/** Largest HTTP body accepted, bytes. */
export const MAX_HTTP_BODY = 64 * 1024;
