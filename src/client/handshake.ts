/**
 * The client side of mutual authentication (docs/protocol.md "Phase 2", steps 3–4):
 * {@link answerChallenge} decrypts the challenge with KprivC, checks the server's signature against the
 * pinned server key (this is where the server authenticates itself), checks that the challenge is for
 * this hello, this identity and this key, then signs the transcript with RS and a fresh RC;
 * {@link verifyFinished} checks the server's key confirmation.
 */
import { randomBytes } from 'node:crypto';
import type * as openpgp from 'openpgp';
import { KlError } from '../protocol/errors.js';
import { type Frame, openFrame } from '../protocol/frame.js';
import { sha256 } from '../protocol/hash.js';
import { MAX_IDENTITY_LENGTH } from '../protocol/identity.js';
import { deriveSessionKeys, type SessionKeys } from '../protocol/key-schedule.js';
import { CHALLENGE_SHAPE } from '../protocol/messages.js';
import { checkShape, type ObjectShape } from '../protocol/shape.js';
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

const B64URL_32 = { type: 'string', max: 43, pattern: /^[A-Za-z0-9_-]{43}$/ } as const;
const HEX_FINGERPRINT = { type: 'string', max: 64, pattern: /^[0-9a-f]{40}([0-9a-f]{24})?$/ } as const;

/** The statement inside a challenge (statements.ts ChallengePayload), as the client accepts it. */
const CHALLENGE_PAYLOAD_SHAPE: ObjectShape = {
  type: { type: 'string', max: 19, enum: ['keyledger/challenge'] },
  v: { type: 'integer', min: 1, max: 1 },
  chain: { type: 'string', max: 64, pattern: /^[0-9a-f]{64}$/ },
  challengeId: { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ },
  rs: B64URL_32,
  serverEphemeral: B64URL_32,
  id: { type: 'string', max: MAX_IDENTITY_LENGTH },
  fingerprint: HEX_FINGERPRINT,
  server: HEX_FINGERPRINT,
  expiresAt: { type: 'integer', min: 0, max: 8.64e15 },
  helloHash: { type: 'string', max: 64, pattern: /^[0-9a-f]{64}$/ },
};

/** The server's key confirmation inside the first sealed frame. */
const FINISHED_SHAPE: ObjectShape = {
  type: { type: 'string', max: 8, enum: ['finished'] },
  sessionId: { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ },
  expiresAt: { type: 'integer', min: 0, max: 8.64e15 },
  idleTimeoutMs: { type: 'integer', min: 0, max: 8.64e15 },
  transcriptHash: { type: 'string', max: 64, pattern: /^[0-9a-f]{64}$/ },
};

/** Answers a challenge; returns the response to send and what to keep for the finished check. */
export async function answerChallenge(o: AnswerChallengeOptions): Promise<{
  response: { type: 'response'; challengeId: string; rs: string; rc: string; signature: string };
  transcriptHash: Buffer;
  keys: SessionKeys;
}> {
  const msg = checkShape<{ type: 'challenge'; challengeId: string; message: string }>(
    o.challenge,
    CHALLENGE_SHAPE,
    'KL_PROTOCOL',
    'challenge',
  );
  // Decrypt with KprivC and require KprivS's signature (docs/protocol.md "Phase 2", step 3).
  const plain = await o.key.decryptVerified(msg.message, o.serverKey, new Date(o.now));
  let payload: ChallengePayload;
  try {
    payload = checkShape<ChallengePayload>(
      JSON.parse(Buffer.from(plain).toString('utf8')),
      CHALLENGE_PAYLOAD_SHAPE,
      'KL_PROTOCOL',
      'challenge',
    );
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
  const rc = randomBytes(32).toString('base64url');
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
 * Checks the finished frame: it must decrypt under the new server→client key (the server derived
 * the same keys) and name our transcript.
 * @throws KlError `KL_AUTH_FAILED`
 */
export function verifyFinished({
  frame,
  keys,
  transcriptHash,
}: {
  frame: unknown;
  keys: SessionKeys;
  transcriptHash: Buffer;
}): Finished {
  const f = frame as Frame;
  if (
    f?.type !== 'frame' ||
    typeof f.sid !== 'string' ||
    f.epoch !== 0 ||
    f.seq !== 0 ||
    typeof f.ct !== 'string'
  ) {
    throw new KlError('KL_AUTH_FAILED', 'the server did not confirm the session keys');
  }
  let plain: {
    type: 'finished';
    sessionId: string;
    expiresAt: number;
    idleTimeoutMs: number;
    transcriptHash: string;
  };
  try {
    plain = checkShape(
      JSON.parse(openFrame({ key: keys.s2cKey, iv: keys.s2cIv, dir: 's2c', frame: f }).toString('utf8')),
      FINISHED_SHAPE,
      'KL_AUTH_FAILED',
    );
  } catch {
    throw new KlError('KL_AUTH_FAILED', 'the server did not confirm the session keys');
  }
  if (
    plain.type !== 'finished' ||
    plain.sessionId !== f.sid ||
    plain.transcriptHash !== transcriptHash.toString('hex')
  ) {
    throw new KlError('KL_AUTH_FAILED', 'the server confirmed another handshake');
  }
  return {
    verified: true,
    sessionId: f.sid,
    expiresAt: plain.expiresAt,
    idleTimeoutMs: plain.idleTimeoutMs,
  };
}
