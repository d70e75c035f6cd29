/**
 * The login socket's messages (docs/protocol.md "Phase 2", "Phases 3 and 4", "Resumption"), both
 * directions: hello → challenge → response → finished, the plaintext error, the session frame and the
 * resumption exchange. Also the statements that travel inside them once decrypted (the challenge
 * payload, the key confirmation). Types are derived from the schemas.
 */
import { type Static, Type } from 'typebox';
import { MAX_IDENTITY_LENGTH } from '../identity.js';
import { B64url32, Count, Fingerprint, Hash, Id16, MAX_ARMORED_SIGNATURE, MAX_TIME, Time } from './fields.js';

const closed = { additionalProperties: false } as const;

/** Client → server: the hello (docs/protocol.md "Phase 2", step 1). */
export const Hello = Type.Object(
  {
    type: Type.Literal('hello'),
    v: Type.Literal(1),
    id: Type.String({ maxLength: MAX_IDENTITY_LENGTH }),
    ephemeral: B64url32,
    /**
     * The device key to log in with (docs/protocol.md "Devices"): one of the identity's active keys.
     * Absent: the record's first key (clients older than devices).
     */
    fingerprint: Type.Optional(Fingerprint),
  },
  closed,
);
/** A hello. */
export type Hello = Static<typeof Hello>;

/** Server → client: the challenge, an OpenPGP message encrypted to the client key and signed by the server. */
export const Challenge = Type.Object(
  {
    type: Type.Literal('challenge'),
    challengeId: Id16,
    message: Type.String({ maxLength: 64 * 1024 }),
  },
  closed,
);
/** A challenge as sent. */
export type Challenge = Static<typeof Challenge>;

/** The statement inside a challenge, once decrypted (statements.ts `ChallengePayload`). */
export const ChallengePayload = Type.Object(
  {
    type: Type.Literal('keyledger/challenge'),
    v: Type.Literal(1),
    chain: Hash,
    challengeId: Id16,
    rs: B64url32,
    serverEphemeral: B64url32,
    id: Type.String({ maxLength: MAX_IDENTITY_LENGTH }),
    fingerprint: Fingerprint,
    server: Fingerprint,
    expiresAt: Time,
    helloHash: Hash,
  },
  closed,
);

/** Client → server: the response to a challenge (docs/protocol.md "Phase 2", step 3). */
export const ChallengeResponse = Type.Object(
  {
    type: Type.Literal('response'),
    challengeId: Id16,
    rs: B64url32,
    rc: B64url32,
    signature: Type.String({ maxLength: MAX_ARMORED_SIGNATURE }),
  },
  closed,
);
/** A response. */
export type ChallengeResponse = Static<typeof ChallengeResponse>;

/** Server → client, plaintext: an error, after which the server closes the connection. */
export const WireError = Type.Object(
  {
    type: Type.Literal('error'),
    code: Type.String({ maxLength: 64 }),
    message: Type.String({ maxLength: 1024 }),
  },
  closed,
);

/**
 * A sealed frame in wire format v1 (JSON text, docs/protocol.md "Phases 3 and 4"), no longer sent:
 * every frame is a binary message in wire format v2 (frame-wire.ts), which no JSON schema describes.
 */
export const FrameMessage = Type.Object(
  {
    type: Type.Literal('frame'),
    sid: Id16,
    epoch: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    seq: Count,
    // No pattern: a regex over 130 KB per frame costs more than the AEAD; a damaged ct fails its tag.
    ct: Type.String({ minLength: 22, maxLength: 140_000 }),
  },
  closed,
);

/** The server's key confirmation, inside the first sealed frame (docs/protocol.md "Phase 2", step 4). */
export const Finished = Type.Object(
  {
    type: Type.Literal('finished'),
    sessionId: Id16,
    expiresAt: Time,
    idleTimeoutMs: Type.Integer({ minimum: 0, maximum: MAX_TIME }),
    transcriptHash: Hash,
  },
  closed,
);

/** Client → server: resume a live session on a new connection (docs/protocol.md "Resumption"). */
export const Resume = Type.Object({ type: Type.Literal('resume'), sid: Id16, nonce: Id16 }, closed);

/** Server → client, plaintext: the resumption's challenge. */
export const ResumeChallenge = Type.Object(
  { type: Type.Literal('resume-challenge'), nonce: Id16, epoch: Count },
  closed,
);

/** Client → server: the proof of the session's resumption key. */
export const ResumeProof = Type.Object({ type: Type.Literal('resume-proof'), proof: B64url32 }, closed);

/** Server → client, plaintext: the resumption was accepted (the first sealed frame confirms it). */
export const Resumed = Type.Object({ type: Type.Literal('resumed'), epoch: Count }, closed);
