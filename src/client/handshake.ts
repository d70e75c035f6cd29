/**
 * The client side of mutual authentication (docs/protocol.md "Phase 2", steps 3–4):
 * {@link answerChallenge} decrypts the challenge with KprivC, checks the server's signature against the
 * pinned server key (this is where the server authenticates itself), checks that the challenge is for
 * this hello, this identity and this key, then signs the transcript with RS and a fresh RC;
 * {@link verifyFinished} checks the server's key confirmation. A failure is the server's verdict only
 * when it rests on what the server signed or sealed for this login; any other is an unverified
 * answer, after which the next server is asked (unverified-answer.ts).
 */
import type * as openpgp from 'openpgp';
import type { Static } from 'typebox';
import { fromUtf8, toBase64url, toHex } from '../protocol/bytes.js';
import { randomBytes } from '../protocol/crypto/node.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { openWire, PlainType, readPlaintext, readWireHeader } from '../protocol/frame-wire.js';
import { sha256 } from '../protocol/hash.js';
import { deriveSessionKeys, type SessionKeys } from '../protocol/key-schedule.js';
import { check } from '../protocol/schemas/check.js';
import {
  Challenge,
  ChallengePayload as ChallengePayloadSchema,
  Finished as FinishedSchema,
} from '../protocol/schemas/login.js';
import {
  type ChallengePayload,
  hashOf,
  hashText,
  loginTranscript,
  statementBytes,
} from '../protocol/statements.js';
import { type EphemeralKey, sharedSecret } from '../protocol/x25519.js';
import type { ClientKey } from './client-key.js';
import { serverVerdict, unverifiedAnswer } from './unverified-answer.js';

/** Options of {@link answerChallenge}. */
export interface AnswerChallengeOptions {
  challenge: unknown;
  hello: { type: 'hello'; v: 1; id: string; ephemeral: string };
  ephemeral: EphemeralKey;
  key: ClientKey;
  serverKey: openpgp.PublicKey;
  serverFingerprint: string;
  chain: string;
  now: number;
}

/** Answers a challenge; returns the response to send and what to keep for the finished check. */
export async function answerChallenge(o: AnswerChallengeOptions): Promise<{
  response: { type: 'response'; challengeId: string; rs: string; rc: string; signature: string };
  transcriptHash: Uint8Array;
  keys: SessionKeys;
}> {
  // Until the challenge is shown signed by the accepted server key and bound to this login (our
  // hello's hash, this challenge id, not expired), nothing in it is the server's word: anyone on the
  // path can send junk, sign with another key or replay a genuine challenge of an earlier login.
  // Those failures are unverified answers (unverified-answer.ts); the next server is asked.
  const unbound = (err: KlError) => unverifiedAnswer(err);
  let msg: Static<typeof Challenge>;
  let plain: Uint8Array;
  try {
    msg = check(Challenge, o.challenge, 'KL_PROTOCOL', 'challenge');
    // Decrypt with KprivC and require KprivS's signature (docs/protocol.md "Phase 2", step 3).
    plain = await o.key.decryptVerified(msg.message, o.serverKey, new Date(o.now));
  } catch (err) {
    throw isKlError(err) ? unbound(err) : err;
  }
  let payload: ChallengePayload;
  try {
    payload = check(ChallengePayloadSchema, JSON.parse(fromUtf8(plain)), 'KL_PROTOCOL', 'challenge');
  } catch {
    throw unbound(new KlError('KL_PROTOCOL', 'the challenge does not hold a valid statement'));
  }
  const notOurs = (why: string) => new KlError('KL_PROTOCOL', `the challenge is not for this login: ${why}`);
  if (payload.type !== 'keyledger/challenge' || payload.v !== 1)
    throw unbound(notOurs('wrong statement type'));
  if (payload.helloHash !== hashOf(o.hello)) throw unbound(notOurs('another hello'));
  if (payload.challengeId !== msg.challengeId) throw unbound(notOurs('challenge id mismatch'));
  if (payload.expiresAt <= o.now) throw unbound(new KlError('KL_CHALLENGE_EXPIRED', 'the challenge expired'));
  // Signed by the server and bound to this login: what it says is the server's verdict.
  const verdict = (why: string) => serverVerdict(notOurs(why));
  if (payload.chain !== o.chain) throw verdict('another ledger');
  if (payload.server !== o.serverFingerprint) throw verdict('another server key');
  if (payload.id !== o.hello.id) throw verdict('another identity');
  if (payload.fingerprint !== o.key.fingerprint)
    throw verdict('encrypted to another key than ours (the ledger holds a different key)');
  const rc = toBase64url(randomBytes(32));
  const transcript = loginTranscript({
    chain: o.chain,
    id: o.hello.id,
    fingerprint: o.key.fingerprint,
    server: o.serverFingerprint,
    challengeId: payload.challengeId,
    rs: payload.rs,
    rc,
    clientEphemeral: o.ephemeral.publicKey,
    serverEphemeral: payload.serverEphemeral,
    helloHash: payload.helloHash,
    challengeHash: hashText(msg.message),
  });

  const bytes = statementBytes(transcript);
  const signature = await o.key.signDetached(bytes, new Date(o.now));
  const transcriptHash = sha256(bytes);
  const secret = sharedSecret(o.ephemeral.privateKey, payload.serverEphemeral);
  const keys = deriveSessionKeys(secret, transcriptHash);
  secret.fill(0);
  return {
    response: { type: 'response', challengeId: payload.challengeId, rs: payload.rs, rc, signature },
    transcriptHash,
    keys,
  };
}

/** The server's key confirmation, decrypted and checked. */
export interface Finished {
  verified: true;
  sessionId: string;
  expiresAt: number;
  idleTimeoutMs: number;
}

/**
 * Checks the finished frame, the first binary message of the session (docs/protocol.md "Session
 * frame wire format v2"): server → client, epoch 0, seq 0, it must decrypt under the new
 * server→client key (the server derived the same keys) and name our transcript and its session.
 * A frame that does not open is an unverified answer (anyone can send junk); one that opens but
 * names another handshake was sealed by the server: a verdict (unverified-answer.ts).
 * @throws KlError `KL_AUTH_FAILED`
 */
export function verifyFinished({
  frame,
  keys,
  transcriptHash,
}: {
  frame: Uint8Array;
  keys: SessionKeys;
  transcriptHash: Uint8Array;
}): Finished {
  let sid: string;
  let plain: {
    type: 'finished';
    sessionId: string;
    expiresAt: number;
    idleTimeoutMs: number;
    transcriptHash: string;
  };
  try {
    const header = readWireHeader(frame);
    if (header.dir !== 's2c' || header.epoch !== 0 || header.seq !== 0)
      throw new Error('not the first frame');
    sid = toBase64url(header.handle);
    const p = readPlaintext(openWire(keys.s2cKey, keys.s2cIv, frame, 0));
    if (p.type !== PlainType.json) throw new Error('not a message');
    plain = check(FinishedSchema, JSON.parse(p.json), 'KL_AUTH_FAILED');
  } catch {
    throw unverifiedAnswer(new KlError('KL_AUTH_FAILED', 'the server did not confirm the session keys'));
  }
  if (
    plain.type !== 'finished' ||
    plain.sessionId !== sid ||
    plain.transcriptHash !== toHex(transcriptHash)
  ) {
    throw serverVerdict(new KlError('KL_AUTH_FAILED', 'the server confirmed another handshake'));
  }
  return {
    verified: true,
    sessionId: sid,
    expiresAt: plain.expiresAt,
    idleTimeoutMs: plain.idleTimeoutMs,
  };
}
