/**
 * Session resumption proof (docs/protocol.md "Phases 3 and 4", Resumption): resumption on a new
 * connection proves possession of the session's resume key. HMAC-SHA256 under the resume key over the
 * canonical statement { type: "keyledger/resume", v: 1, sid, epoch, clientNonce, serverNonce }.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalize } from './canonical-json.js';
import type { ObjectShape } from './shape.js';

/** Computes the resume proof, base64url. */
export function resumeProof(
  resumeKey: Buffer,
  f: { sid: string; epoch: number; clientNonce: string; serverNonce: string },
): string {
  const statement = canonicalize({
    type: 'keyledger/resume',
    v: 1,
    sid: f.sid,
    epoch: f.epoch,
    clientNonce: f.clientNonce,
    serverNonce: f.serverNonce,
  });
  return createHmac('sha256', resumeKey).update(statement).digest('base64url');
}

/** Checks a resume proof in constant time. */
export function checkResumeProof(
  resumeKey: Buffer,
  f: { sid: string; epoch: number; clientNonce: string; serverNonce: string },
  proof: unknown,
): boolean {
  if (typeof proof !== 'string' || proof.length !== 43) return false;
  const want = Buffer.from(resumeProof(resumeKey, f), 'base64url');
  const got = Buffer.from(proof, 'base64url');
  return got.length === want.length && timingSafeEqual(got, want);
}

const NONCE = { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ } as const;
const EPOCH = { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER } as const;

/** WebSocket, server → client: the challenge of a resumption (plaintext, so checked field by field). */
export const RESUME_CHALLENGE_SHAPE: ObjectShape = {
  type: { type: 'string', max: 16, enum: ['resume-challenge'] },
  nonce: NONCE,
  epoch: EPOCH,
};

/** WebSocket, server → client: the resumption was accepted (plaintext; the first sealed frame confirms it). */
export const RESUMED_SHAPE: ObjectShape = {
  type: { type: 'string', max: 7, enum: ['resumed'] },
  epoch: EPOCH,
};
