/**
 * Session resumption proof (DESIGN "Resumption on a new connection proves possession of the
 * session's resume key"): HMAC-SHA256 under the resume key over the canonical statement
 * { type: "keyledger/resume", v: 1, sid, epoch, clientNonce, serverNonce }.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalize } from './canonical-json.js';

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
