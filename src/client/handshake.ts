/**
 * The client side of mutual authentication (docs/protocol.md "Phase 2", steps 3–4):
 * {@link answerChallenge} decrypts the challenge with KprivC, checks the server's signature against the
 * pinned server key (this is where the server authenticates itself), checks that the challenge is for
 * this hello, this identity and this key, then signs the transcript with RS and a fresh RC;
 * {@link verifyFinished} checks the server's key confirmation.
 */
import type * as openpgp from 'openpgp';
import { fromUtf8, toBase64url, toHex } from '../protocol/bytes.js';
import { randomBytes } from '../protocol/crypto/node.js';
import { KlError } from '../protocol/errors.js';
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
  const msg = check(Challenge, o.challenge, 'KL_PROTOCOL', 'challenge');
  // Decrypt with KprivC and require KprivS's signature (docs/protocol.md "Phase 2", step 3).
  const plain = await o.key.decryptVerified(msg.message, o.serverKey, new Date(o.now));
  let payload: ChallengePayload;
  try {
    payload = check(ChallengePayloadSchema, JSON.parse(fromUtf8(plain)), 'KL_PROTOCOL', 'challenge');
  } catch {
    throw new KlError('KL_PROTOCOL', 'the challenge does not hold a valid statement');
  }
  const fail = (why: string) => new KlError('KL_PROTOCOL', `the challenge is not for this login: ${why}`);
  if (payload.type !== 'keyledger/challenge' || payload.v !== 1) throw fail('wrong statement type');
  if (payload.chain !== o.chain) throw fail('another ledger');
  if (payload.server !== o.serverFingerprint) throw fail('another server key');
  if (payload.id !== o.hello.id) throw fail('another identity');
  if (payload.fingerprint !== o.key.fingerprint)
    throw fail('encrypted to another key than ours (the ledger holds a different key)');
  if (payload.helloHash !== hashOf(o.hello)) throw fail('another hello');
  if (payload.challengeId !== msg.challengeId) throw fail('challenge id mismatch');
  if (payload.expiresAt <= o.now) throw new KlError('KL_CHALLENGE_EXPIRED', 'the challenge expired');
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
    throw new KlError('KL_AUTH_FAILED', 'the server did not confirm the session keys');
  }
  if (
    plain.type !== 'finished' ||
    plain.sessionId !== sid ||
    plain.transcriptHash !== toHex(transcriptHash)
  ) {
    throw new KlError('KL_AUTH_FAILED', 'the server confirmed another handshake');
  }
  return {
    verified: true,
    sessionId: sid,
    expiresAt: plain.expiresAt,
    idleTimeoutMs: plain.idleTimeoutMs,
  };
}
