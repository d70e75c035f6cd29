/**
 * Session resumption proof (docs/protocol.md "Phases 3 and 4", Resumption): resumption on a new
 * connection proves possession of the session's resume key. HMAC-SHA256 under the resume key over the
 * canonical statement { type: "keyledger/resume", v: 1, sid, epoch, clientNonce, serverNonce }.
 */
import { fromBase64url, toBase64url, utf8 } from './bytes.js';
import { canonicalize } from './canonical-json.js';
import { constantTimeEqual, hmacSha256 } from './crypto/node.js';

/** Computes the resume proof, base64url. */
export function resumeProof(
  resumeKey: Uint8Array,
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
  return toBase64url(hmacSha256(resumeKey, utf8(statement)));
}

/** Checks a resume proof in constant time. */
export function checkResumeProof(
  resumeKey: Uint8Array,
  f: { sid: string; epoch: number; clientNonce: string; serverNonce: string },
  proof: unknown,
): boolean {
  if (typeof proof !== 'string' || proof.length !== 43) return false;
  const want = fromBase64url(resumeProof(resumeKey, f));
  const got = fromBase64url(proof);
  return constantTimeEqual(got, want);
}
