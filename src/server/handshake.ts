/**
 * The server side of mutual authentication (docs/protocol.md "Phase 2"), as a pair of functions:
 * {@link createChallenge} answers a hello, {@link verifyChallengeResponse} checks the answer and
 * derives the session keys. Neither does I/O beyond reading the ledger; the socket handler calls them.
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type * as openpgp from 'openpgp';
import { activeDevice, activeDevices } from '../ledger/devices.js';
import type { Ledger } from '../ledger/ledger.js';
import type { KeyRecord } from '../ledger/state-machine.js';
import { encryptAndSign, readPublicKey, verifyDetached } from '../pgp/messages.js';
import { KlError } from '../protocol/errors.js';
import { sha256 } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { deriveSessionKeys, type SessionKeys } from '../protocol/key-schedule.js';
import { check } from '../protocol/schemas/check.js';
import { ChallengeResponse, Hello } from '../protocol/schemas/login.js';
import {
  type ChallengePayload,
  hashOf,
  hashText,
  loginTranscript,
  statementBytes,
} from '../protocol/statements.js';
import { type EphemeralKey, generateEphemeral, sharedSecret } from '../protocol/x25519.js';
import type { ServerKey } from './server-key.js';

/** The client's first message, and its answer to a challenge (types of their wire schemas). */
export type { ChallengeResponse, Hello };

/** What the server keeps between challenge and response. Single use. */
export interface PendingChallenge {
  challengeId: string;
  id: string;
  fingerprint: string;
  rs: Buffer;
  ephemeral: EphemeralKey;
  clientEphemeral: string;
  helloHash: string;
  challengeHash: string;
  expiresAt: number;
}

/**
 * Parsed client keys, keyed by the armored text read from the ledger *now*: the cache saves parsing,
 * it never decides which key is current.
 */
export class ParsedKeyCache {
  private readonly map = new Map<string, openpgp.PublicKey>();
  constructor(private readonly max = 10_000) {}

  async get(armored: string): Promise<openpgp.PublicKey> {
    const hit = this.map.get(armored);
    if (hit) return hit;
    const key = await readPublicKey(armored);
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(armored, key);
    return key;
  }
}

/** Reads the identity's record from the ledger and requires it to be active. */
async function activeRecord(ledger: Ledger, id: string): Promise<KeyRecord> {
  const { record } = await ledger.getKeyRecord(id).catch((err: unknown) => {
    if (err instanceof KlError && err.code === 'KL_IDENTITY_UNKNOWN') return { record: null };
    throw err;
  });
  // An unknown identity gets the same answer as a failed signature: no enumeration through login.
  if (!record) throw new KlError('KL_AUTH_FAILED', 'authentication failed');
  if (record.status !== 'active')
    throw new KlError('KL_KEY_REVOKED', 'the key of this identity is revoked: register a new key');
  return record;
}

/** Options of {@link createChallenge}. */
export interface CreateChallengeOptions {
  hello: Hello;
  ledger: Ledger;
  serverKey: ServerKey;
  keys: ParsedKeyCache;
  now: number;
  ttlMs: number;
}

/**
 * docs/protocol.md "Phase 2", steps 1–2: reads KpubC from the ledger (must be active), draws RS and a server
 * ephemeral key, and returns the challenge encrypted to KpubC and signed by KprivS.
 */
export async function createChallenge({
  hello,
  ledger,
  serverKey,
  keys,
  now,
  ttlMs,
}: CreateChallengeOptions): Promise<{
  message: { type: 'challenge'; challengeId: string; message: string };
  pending: PendingChallenge;
}> {
  // The pair is public (keyledger/server): a caller's own transport may hand over anything.
  check(Hello, hello, 'KL_PROTOCOL', 'hello');
  const id = canonicalIdentity(hello.id);
  if (id !== hello.id) throw new KlError('KL_PROTOCOL', 'hello must carry the identity in canonical form');
  const record = await activeRecord(ledger, id);
  // The device the hello names, or the record's first key for a client older than devices; a key
  // that is not an active device gets the answer an unknown identity gets.
  const device =
    hello.fingerprint === undefined ? activeDevices(record)[0] : activeDevice(record, hello.fingerprint);
  if (!device) throw new KlError('KL_AUTH_FAILED', 'authentication failed');
  const clientKey = await keys.get(device.publicKey);
  const challengeId = randomBytes(16).toString('base64url');
  const rs = randomBytes(32);
  const ephemeral = generateEphemeral();
  const helloHash = hashOf(hello);
  const payload: ChallengePayload = {
    type: 'keyledger/challenge',
    v: 1,
    chain: ledger.chainId,
    challengeId,
    rs: rs.toString('base64url'),
    serverEphemeral: ephemeral.publicKey,
    id,
    fingerprint: device.fingerprint,
    server: serverKey.fingerprint,
    expiresAt: now + ttlMs,
    helloHash,
  };
  const armored = await encryptAndSign(
    statementBytes(payload),
    clientKey,
    serverKey.privateKey,
    new Date(now),
  );
  return {
    message: { type: 'challenge', challengeId, message: armored },
    pending: {
      challengeId,
      id,
      fingerprint: device.fingerprint,
      rs,
      ephemeral,
      clientEphemeral: hello.ephemeral,
      helloHash,
      challengeHash: hashText(armored),
      expiresAt: now + ttlMs,
    },
  };
}

/** Options of {@link verifyChallengeResponse}. */
export interface VerifyChallengeResponseOptions {
  pending: PendingChallenge;
  response: ChallengeResponse;
  ledger: Ledger;
  serverKey: ServerKey;
  keys: ParsedKeyCache;
  now: number;
}

/** A verified login: what the server must store for the session. */
export interface VerifiedLogin {
  verified: true;
  id: string;
  fingerprint: string;
  transcriptHash: Buffer;
  keys: SessionKeys;
}

/**
 * docs/protocol.md "Phase 2", step 4: the challenge must be the pending one and unexpired, RS must match
 * (constant time), the client's signature over the transcript must verify with the key the ledger holds *now*
 * (a revocation between hello and response counts), then the session keys are derived from the ECDH
 * secret salted with the transcript hash. The caller has already removed `pending` (single use).
 * @throws KlError `KL_CHALLENGE_EXPIRED`, `KL_CHALLENGE_UNKNOWN`, `KL_AUTH_FAILED`, `KL_KEY_REVOKED`
 */
export async function verifyChallengeResponse({
  pending,
  response,
  ledger,
  serverKey,
  keys,
  now,
}: VerifyChallengeResponseOptions): Promise<VerifiedLogin> {
  check(ChallengeResponse, response, 'KL_PROTOCOL', 'response');
  if (response.challengeId !== pending.challengeId)
    throw new KlError('KL_CHALLENGE_UNKNOWN', 'this is not the challenge that was sent');
  if (now >= pending.expiresAt)
    throw new KlError('KL_CHALLENGE_EXPIRED', 'the challenge expired: log in again');
  const rs = Buffer.from(response.rs, 'base64url');
  if (rs.length !== 32 || !timingSafeEqual(rs, pending.rs))
    throw new KlError('KL_AUTH_FAILED', 'authentication failed');
  const record = await activeRecord(ledger, pending.id);
  // The device must still be active now: a revocation between hello and response counts.
  const device = activeDevice(record, pending.fingerprint);
  if (!device) throw new KlError('KL_AUTH_FAILED', 'authentication failed');
  const transcript = loginTranscript({
    chain: ledger.chainId,
    id: pending.id,
    fingerprint: pending.fingerprint,
    server: serverKey.fingerprint,
    challengeId: pending.challengeId,
    rs: response.rs,
    rc: response.rc,
    clientEphemeral: pending.clientEphemeral,
    serverEphemeral: pending.ephemeral.publicKey,
    helloHash: pending.helloHash,
    challengeHash: pending.challengeHash,
  });

  const bytes = statementBytes(transcript);
  try {
    await verifyDetached({
      data: bytes,
      armoredSignature: response.signature,
      key: await keys.get(device.publicKey),
      now: new Date(now),
      maxSkewMs: 5 * 60_000,
    });
  } catch {
    throw new KlError('KL_AUTH_FAILED', 'authentication failed');
  }
  const transcriptHash = Buffer.from(sha256(bytes));
  const secret = sharedSecret(pending.ephemeral.privateKey, pending.clientEphemeral);
  const sessionKeys = deriveSessionKeys(secret, transcriptHash);
  secret.fill(0);
  return {
    verified: true,
    id: pending.id,
    fingerprint: pending.fingerprint,
    transcriptHash,
    keys: sessionKeys,
  };
}
