/**
 * Generates test/vectors/keyledger-v1.json, keyledger's protocol test vectors (docs/protocol.md
 * "Test vectors"). Run ONCE, by hand, when the vectors are first made or the protocol version
 * changes; the tests never run it, they check the committed file against the code:
 *
 *   node --import tsx test/vectors/generate.ts > test/vectors/keyledger-v1.json
 *
 * A change of the session frame wire format only rewrites what derives from fixed or committed
 * inputs (the `frames-v2` group and `resume.firstFrame.wire`), leaving the rest of the committed
 * file (its OpenPGP keys and messages) as it is:
 *
 *   node --import tsx test/vectors/generate.ts --update-frames test/vectors/keyledger-v1.json
 *
 * Every value the protocol draws at random (X25519 ephemerals, RS, RC, nonces, session id) is fixed
 * here. What OpenPGP.js draws and cannot be told (the session key and ECDH ephemeral of an encrypted
 * message, the salt notation OpenPGP.js adds to every signature) is generated once and committed as
 * an input; its check is to decrypt or verify it. Test keys are fresh Ed25519/Cv25519 v4 keys with a
 * fixed creation time, committed unencrypted: they protect nothing.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import * as openpgp from 'openpgp';
import { generateKeyPair } from '../../src/pgp/key-pair.js';
import { encryptAndSign, signDetached } from '../../src/pgp/messages.js';
import { sealTo } from '../../src/pgp/sealed.js';
import { fromUtf8, toHex } from '../../src/protocol/bytes.js';
import { canonicalize } from '../../src/protocol/canonical-json.js';
import { Channel } from '../../src/protocol/channel.js';
import { encodeFrame, type Frame, sealFrame } from '../../src/protocol/frame.js';
import {
  dataPlaintext,
  jsonPlaintext,
  sealWire,
  sessionHandle,
  WIRE_HEADER_LENGTH,
  WIRE_TAG_LENGTH,
  WIRE_VERSION,
} from '../../src/protocol/frame-wire.js';
import { sha256 } from '../../src/protocol/hash.js';
import { deriveSessionKeys, type SessionKeys } from '../../src/protocol/key-schedule.js';
import { resumeProof } from '../../src/protocol/resume.js';
import {
  type ChallengePayload,
  hashOf,
  hashText,
  identityProofPayload,
  loginTranscript,
  type RegistrationStatement,
  statementBytes,
} from '../../src/protocol/statements.js';
import { generateEphemeral, sharedSecret } from '../../src/protocol/x25519.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
/** n bytes counting up from `start` (fixed "random" bytes anyone can rebuild). */
const counting = (n: number, start: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff));
const keysHex = (k: SessionKeys) => ({
  c2sKey: hex(k.c2sKey),
  c2sIv: hex(k.c2sIv),
  s2cKey: hex(k.s2cKey),
  s2cIv: hex(k.s2cIv),
  resumeKey: hex(k.resumeKey),
});
const copyKeys = (k: SessionKeys): SessionKeys => ({
  c2sKey: Buffer.from(k.c2sKey),
  c2sIv: Buffer.from(k.c2sIv),
  s2cKey: Buffer.from(k.s2cKey),
  s2cIv: Buffer.from(k.s2cIv),
  resumeKey: Buffer.from(k.resumeKey),
});
function nonceOf(iv: Buffer, seq: number): string {
  const n = Buffer.from(iv);
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(seq));
  for (let i = 0; i < 8; i++) n[4 + i]! ^= s[i]!;
  return hex(n);
}
function flipBit(b64url: string, byte: number, bit: number): string {
  const raw = Buffer.from(b64url, 'base64url');
  const at = byte < 0 ? raw.length + byte : byte;
  raw[at]! ^= 1 << bit;
  return raw.toString('base64url');
}

const CREATED = new Date(Date.UTC(2026, 0, 1, 0, 0, 0));
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

/** The v1 (JSON text) frame group: since format 2 only the login's `finished` frame has this form. */
const FRAMES_V1_DESCRIPTION =
  'Frame wire format v1 (JSON text), kept for the login\'s finished frame; every frame after it is v2 (frames-v2). AES-256-GCM; nonce = iv XOR (seq as 64-bit big-endian, right-aligned in the 12 bytes); AAD = JCS({sid, epoch, seq, dir}); ct = base64url(ciphertext || 16-byte tag); the frame is the JSON text {"type":"frame","sid","epoch","seq","ct"}.';

/** The format of the vectors file: 2 adds the binary session frames (`frames-v2`, `resume.firstFrame.wire`). */
const FORMAT = 2;

/**
 * Session frame wire format v2 (docs/protocol.md "Session frame wire format v2"): fixed key, IV and
 * session id; each positive case is the exact bytes of the binary WebSocket message.
 */
function framesV2() {
  const key = counting(32, 0x00);
  const iv = counting(12, 0xa0);
  const sid = b64(counting(16, 0x40));
  const handle = sessionHandle(sid);
  const cases = [
    {
      epoch: 0,
      seq: 0,
      dir: 'c2s' as const,
      kind: 'json',
      plaintext: jsonPlaintext('{"t":"data","id":1,"body":"hello"}'),
    },
    {
      epoch: 3,
      seq: 1,
      dir: 's2c' as const,
      kind: 'json',
      plaintext: jsonPlaintext('{"t":"reply","re":1,"body":{"ok":true}}'),
    },
    {
      epoch: 7,
      seq: 2 ** 40 + 5,
      dir: 'c2s' as const,
      kind: 'text',
      plaintext: dataPlaintext('héllo, wörld'),
    },
    {
      epoch: 1_000_000,
      seq: 2,
      dir: 's2c' as const,
      kind: 'bytes',
      plaintext: dataPlaintext(counting(40, 0xf0)),
    },
  ];
  const positive = cases.map((c) => {
    const frame = Buffer.from(sealWire({ key, iv, handle, ...c }));
    return {
      epoch: c.epoch,
      seq: c.seq,
      dir: c.dir,
      kind: c.kind,
      plaintext: hex(c.plaintext),
      nonce: nonceOf(iv, c.seq),
      header: hex(frame.subarray(0, WIRE_HEADER_LENGTH)),
      frame: hex(frame),
    };
  });
  const base = Buffer.from(positive[1]!.frame, 'hex');
  const changed = (f: (b: Buffer) => void) => {
    const b = Buffer.from(base);
    f(b);
    return hex(b);
  };
  const neg = (description: string, frame: string, error: string) => ({
    description,
    dir: 's2c',
    frame,
    error,
  });
  const forged = 'KL_DECRYPTION_FAILED';
  const malformed = 'KL_FRAME_REJECTED';
  return {
    description:
      'Session frame wire format v2: one binary WebSocket message = header (30 bytes: version 0x02, direction 0x01 c2s / 0x02 s2c, session handle = the 16 raw bytes of the session id, epoch u32 BE, seq u64 BE) || AES-256-GCM ciphertext || 16-byte tag. AAD = the header bytes verbatim; nonce = iv XOR (seq as 64-bit big-endian, right-aligned in the 12 bytes). The sealed plaintext starts with a type byte: 0x00 JSON message, 0x01 application data (bytes), 0x02 application data (UTF-8 text). Negative cases: KL_FRAME_REJECTED is refused before any crypto, KL_DECRYPTION_FAILED fails the tag.',
    section: 'docs/protocol.md § "Session frame wire format v2"',
    version: WIRE_VERSION,
    key: hex(key),
    iv: hex(iv),
    sid,
    handle: hex(handle),
    positive,
    negative: [
      neg(
        'one bit of the ciphertext flipped',
        changed((b) => (b[WIRE_HEADER_LENGTH]! ^= 0x01)),
        forged,
      ),
      neg(
        'one bit of the tag flipped',
        changed((b) => (b[b.length - 1]! ^= 0x80)),
        forged,
      ),
      neg(
        'another epoch in the header (the AAD changes)',
        changed((b) => b.writeUInt32BE(4, 18)),
        forged,
      ),
      neg(
        'another sequence number (nonce and AAD change)',
        changed((b) => (b[29]! ^= 0x01)),
        forged,
      ),
      neg(
        'another session handle',
        changed((b) => (b[2]! ^= 0x01)),
        forged,
      ),
      neg(
        'the direction byte changed (c2s instead of s2c)',
        changed((b) => (b[1] = 0x01)),
        forged,
      ),
      neg('truncated below header and tag', hex(base.subarray(0, WIRE_HEADER_LENGTH + 15)), malformed),
      neg('a short header', hex(base.subarray(0, 29)), malformed),
      neg(
        'an unknown version byte (1)',
        changed((b) => (b[0] = 0x01)),
        malformed,
      ),
      neg(
        'an unknown direction byte (3)',
        changed((b) => (b[1] = 0x03)),
        malformed,
      ),
      neg(
        'an epoch above 1,000,000',
        changed((b) => b.writeUInt32BE(1_000_001, 18)),
        malformed,
      ),
      neg(
        'a sequence number above 2^53 - 1',
        changed((b) => (b[22] = 0x00 | 0x20)),
        malformed,
      ),
      {
        // Given as the header and the length to zero-pad it to (not 96 KiB of hex).
        ...neg('larger than header + 96 KiB + tag', hex(base.subarray(0, WIRE_HEADER_LENGTH)), malformed),
        padTo: WIRE_HEADER_LENGTH + 96 * 1024 + WIRE_TAG_LENGTH + 1,
      },
    ],
  };
}

/**
 * The first frame the server seals after a resumption (epoch 1, seq 0) as v2 wire bytes, from the
 * handshake's keys and transcript hash: the same state `resume` starts from.
 */
function resumedWire(o: {
  keys: SessionKeys;
  transcriptHash: Uint8Array;
  sid: string;
  clientNonce: string;
  serverNonce: string;
  message: { t: 'data'; body: string };
}): string {
  const channel = new Channel({
    role: 'server',
    sid: o.sid,
    keys: copyKeys(o.keys),
    chain: o.transcriptHash,
    nextSendSeq: 1,
    now: () => NOW,
  });
  channel.resume(o.clientNonce, o.serverNonce, 0);
  return hex(channel.seal(o.message));
}

/**
 * The `finished` frame in wire format v2 (server → client, epoch 0, seq 0, a JSON plaintext of the
 * finished message's JCS), and the same with one bit of its ciphertext flipped.
 */
function finishedWire(keys: SessionKeys, sid: string, finishedJcs: string) {
  const wire = Buffer.from(
    sealWire({
      key: keys.s2cKey,
      iv: keys.s2cIv,
      handle: sessionHandle(sid),
      epoch: 0,
      seq: 0,
      dir: 's2c',
      plaintext: jsonPlaintext(finishedJcs),
    }),
  );
  const flipped = Buffer.from(wire);
  flipped[WIRE_HEADER_LENGTH + 5]! ^= 0x04;
  return {
    finishedWire: hex(wire),
    finishedWireNegative: {
      description: 'the v2 finished frame with one bit flipped: the client refuses the key confirmation',
      frame: hex(flipped),
      error: 'KL_AUTH_FAILED',
    },
  };
}

/** `--update-frames FILE`: rewrites the v2 frame vectors of a committed file in place. */
function updateFrames(file: string): void {
  const v = JSON.parse(readFileSync(file, 'utf8'));
  const k = v.handshake.keys;
  const keys: SessionKeys = {
    c2sKey: Buffer.from(k.c2sKey, 'hex'),
    c2sIv: Buffer.from(k.c2sIv, 'hex'),
    s2cKey: Buffer.from(k.s2cKey, 'hex'),
    s2cIv: Buffer.from(k.s2cIv, 'hex'),
    resumeKey: Buffer.from(k.resumeKey, 'hex'),
  };
  // Key order kept as generated: `format` after `section`, the new group right after `frames`.
  const ordered: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(v)) {
    if (name === 'format' || name === 'frames-v2') continue;
    ordered[name] = value;
    if (name === 'section') ordered.format = FORMAT;
    if (name === 'frames') {
      (value as { description: string }).description = FRAMES_V1_DESCRIPTION;
      ordered['frames-v2'] = framesV2();
    }
  }
  const r = ordered.resume as {
    sid: string;
    clientNonce: string;
    serverNonce: string;
    firstFrame: Record<string, unknown>;
  };
  r.firstFrame.wire = resumedWire({
    keys,
    transcriptHash: Buffer.from(v.handshake.transcriptHash, 'hex'),
    sid: r.sid,
    clientNonce: r.clientNonce,
    serverNonce: r.serverNonce,
    message: r.firstFrame.message as { t: 'data'; body: string },
  });
  const h = ordered.handshake as Record<string, unknown> & {
    finished: { sessionId: string };
    finishedJcs: string;
  };
  const fw = finishedWire(keys, h.finished.sessionId, h.finishedJcs);
  const handshake: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(h)) {
    if (name === 'finishedWire' || name === 'finishedWireNegative') continue;
    handshake[name] = value;
    if (name === 'finishedFrame') Object.assign(handshake, fw);
  }
  ordered.handshake = handshake;
  writeFileSync(file, `${JSON.stringify(ordered, null, 2)}\n`);
}

async function main() {
  // --- Fixed OpenPGP keys (made once; committed armored, unencrypted). ---
  const client = await generateKeyPair({ id: 'alice@example.org', name: 'Alice', date: CREATED });
  const server = await generateKeyPair({
    id: 'server@keyledger.test',
    name: 'keyledger server',
    date: CREATED,
  });
  const clientPriv = await openpgp.readPrivateKey({ armoredKey: client.privateKey });
  const serverPriv = await openpgp.readPrivateKey({ armoredKey: server.privateKey });
  const chain = toHex(sha256(Buffer.from('keyledger test vector genesis', 'utf8')));

  // --- 1. Key schedule: X25519 (RFC 7748 §6.1 keys) → HKDF-SHA256 → session keys. ---
  const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  const bob = Buffer.from('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex');
  const ea = generateEphemeral(alice);
  const eb = generateEphemeral(bob);
  const ksSecret = sharedSecret(ea.privateKey, eb.publicKey);
  const ksTranscript = sha256(Buffer.from('keyledger key schedule vector', 'utf8'));
  const keySchedule = {
    description:
      'X25519(client private, server public) = X25519(server private, client public) (RFC 7748 §6.1 keys); session keys = HKDF-SHA256(ikm = shared secret, salt = transcript hash, info = "keyledger/v1 " + label) per key: "c2s key" 32, "c2s iv" 12, "s2c key" 32, "s2c iv" 12, "resume" 32 bytes.',
    section:
      'docs/protocol.md § "Phase 2 — mutual authentication", step 4 (key schedule); RFC 7748 §6.1; RFC 5869',
    clientPrivate: hex(alice),
    serverPrivate: hex(bob),
    clientPublic: ea.publicKey,
    serverPublic: eb.publicKey,
    sharedSecret: hex(ksSecret),
    transcriptHash: hex(ksTranscript),
    keys: keysHex(deriveSessionKeys(ksSecret, ksTranscript)),
    negative: [
      {
        description: 'a low-order peer public key (all zero) gives the all-zero secret: refused',
        peerPublic: b64(Buffer.alloc(32)),
        error: 'KL_PROTOCOL',
      },
      {
        description: 'a peer public key that is not 32 bytes base64url: refused',
        peerPublic: b64(Buffer.alloc(31)),
        error: 'KL_PROTOCOL',
      },
    ],
  };

  // --- 2. Frame sealing. ---
  const fKey = counting(32, 0x00);
  const fIv = counting(12, 0xa0);
  const fSid = b64(counting(16, 0x40));
  const frameCases = [
    { epoch: 0, seq: 0, dir: 'c2s' as const, plaintext: '{"t":"data","id":1,"body":"hello"}' },
    { epoch: 3, seq: 1, dir: 's2c' as const, plaintext: '{"t":"reply","re":1,"body":{"ok":true}}' },
    { epoch: 7, seq: 2 ** 40 + 5, dir: 'c2s' as const, plaintext: '' },
  ];
  const positive = frameCases.map((c) => {
    const frame = sealFrame({
      key: fKey,
      iv: fIv,
      sid: fSid,
      ...c,
      plaintext: Buffer.from(c.plaintext, 'utf8'),
    });
    return {
      ...c,
      nonce: nonceOf(fIv, c.seq),
      aad: canonicalize({ sid: fSid, epoch: c.epoch, seq: c.seq, dir: c.dir }),
      frame: encodeFrame(frame),
    };
  });
  const base = JSON.parse(positive[1]!.frame) as Frame;
  const neg = (description: string, frame: Frame, dir: 'c2s' | 's2c' = 's2c') => ({
    description,
    dir,
    frame: encodeFrame(frame),
    error: 'KL_DECRYPTION_FAILED',
  });
  const frames = {
    description: FRAMES_V1_DESCRIPTION,
    section: 'docs/protocol.md § "Phases 3 and 4 — the session" (frames) and § "Phase 2", step 4 (AEAD)',
    key: hex(fKey),
    iv: hex(fIv),
    sid: fSid,
    positive,
    negative: [
      neg('one bit of the ciphertext flipped', { ...base, ct: flipBit(base.ct, 0, 0) }),
      neg('one bit of the tag flipped', { ...base, ct: flipBit(base.ct, -1, 7) }),
      neg('another epoch in the header (the AAD changes)', { ...base, epoch: base.epoch + 1 }),
      neg('another sequence number (nonce and AAD change)', { ...base, seq: base.seq + 1 }),
      neg('another session id', { ...base, sid: b64(counting(16, 0x41)) }),
      neg('opened as the other direction (c2s instead of s2c)', base, 'c2s'),
      neg('truncated below the tag length', { ...base, ct: base.ct.slice(0, 20) }),
    ],
  };

  // --- 3. Full handshake with fixed randomness, and 4. the statements it signs. ---
  const clientEph = generateEphemeral(counting(32, 0x10));
  const serverEph = generateEphemeral(counting(32, 0x30));
  const hello = { type: 'hello' as const, v: 1 as const, id: client.id, ephemeral: clientEph.publicKey };
  const challengeId = b64(counting(16, 0x50));
  const rs = b64(counting(32, 0x60));
  const rc = b64(counting(32, 0x80));
  const payload: ChallengePayload = {
    type: 'keyledger/challenge',
    v: 1,
    chain,
    challengeId,
    rs,
    serverEphemeral: serverEph.publicKey,
    id: client.id,
    fingerprint: client.fingerprint,
    server: server.fingerprint,
    expiresAt: NOW + 60_000,
    helloHash: hashOf(hello),
  };
  const challengeMessage = await encryptAndSign(
    statementBytes(payload),
    await openpgp.readKey({ armoredKey: client.publicKey }),
    serverPriv,
    new Date(NOW),
  );
  const transcript = loginTranscript({
    chain,
    id: client.id,
    fingerprint: client.fingerprint,
    server: server.fingerprint,
    challengeId,
    rs,
    rc,
    clientEphemeral: clientEph.publicKey,
    serverEphemeral: serverEph.publicKey,
    helloHash: payload.helloHash,
    challengeHash: hashText(challengeMessage),
  });
  const transcriptBytes = statementBytes(transcript);
  const transcriptSignature = await signDetached(transcriptBytes, clientPriv, new Date(NOW + 1000));
  const transcriptHash = sha256(transcriptBytes);
  const hsSecret = sharedSecret(clientEph.privateKey, serverEph.publicKey);
  const hsKeys = deriveSessionKeys(hsSecret, transcriptHash);
  const sessionId = b64(counting(16, 0xc0));
  const finished = {
    type: 'finished',
    sessionId,
    expiresAt: NOW + 3_600_000,
    idleTimeoutMs: 900_000,
    transcriptHash: hex(transcriptHash),
  };
  const finishedFrame = sealFrame({
    key: hsKeys.s2cKey,
    iv: hsKeys.s2cIv,
    sid: sessionId,
    epoch: 0,
    seq: 0,
    dir: 's2c',
    plaintext: Buffer.from(canonicalize(finished), 'utf8'),
  });
  const handshake = {
    description:
      'hello → challenge (encrypted to KpubC, signed by KprivS; fixed as input) → response (signature over the login transcript; fixed as input) → session keys → finished frame (s2c, epoch 0, seq 0, plaintext JCS of the finished message). Ephemeral privates, challengeId, RS, RC and the session id are fixed.',
    section: 'docs/protocol.md § "Phase 2 — mutual authentication", steps 1–4',
    now: NOW,
    chain,
    clientEphemeralPrivate: hex(counting(32, 0x10)),
    serverEphemeralPrivate: hex(counting(32, 0x30)),
    hello,
    helloJcs: canonicalize(hello),
    helloHash: payload.helloHash,
    challengePayload: payload,
    challengePayloadJcs: fromUtf8(statementBytes(payload)),
    challenge: { type: 'challenge', challengeId, message: challengeMessage },
    challengeHash: transcript.challengeHash,
    rc,
    transcriptJcs: fromUtf8(transcriptBytes),
    transcriptHash: hex(transcriptHash),
    response: { type: 'response', challengeId, rs, rc, signature: transcriptSignature },
    sharedSecret: hex(hsSecret),
    keys: keysHex(hsKeys),
    finished,
    finishedJcs: canonicalize(finished),
    finishedFrame: encodeFrame(finishedFrame),
    ...finishedWire(hsKeys, sessionId, canonicalize(finished)),
    negative: [
      {
        description: 'the transcript with one changed field (RC): the response signature does not verify',
        field: 'rc',
        value: b64(counting(32, 0x81)),
        error: 'KL_SIGNATURE_INVALID',
      },
      {
        description: 'the challenge payload with one changed field: its bytes and the transcript change',
        field: 'expiresAt',
        value: NOW + 60_001,
        error: 'bytes differ',
      },
      {
        description: 'the finished frame with one bit flipped: the client refuses the key confirmation',
        frame: encodeFrame({ ...finishedFrame, ct: flipBit(finishedFrame.ct, 5, 2) }),
        error: 'KL_AUTH_FAILED',
      },
    ],
  };

  // Registration statement (phase 1): the sealed identity proof is OpenPGP.js's randomness, fixed.
  const regBase: Omit<RegistrationStatement, 'proof'> = {
    type: 'keyledger/register',
    v: 2,
    chain,
    id: client.id,
    name: 'Alice',
    fingerprint: client.fingerprint,
    nonce: b64(counting(32, 0xe0)),
    server: server.fingerprint,
    time: NOW,
  };
  const idProof = identityProofPayload(regBase, { method: 'invite', code: 'KL-7Q4M-X2PD' });
  const sealed = await sealTo(
    statementBytes(idProof),
    await openpgp.readKey({ armoredKey: server.publicKey }),
    new Date(NOW),
  );
  const registration: RegistrationStatement = { ...regBase, proof: { method: 'invite', sealed } };
  const regBytes = statementBytes(registration);
  const regSignature = await signDetached(regBytes, clientPriv, new Date(NOW));
  const statements = {
    description:
      'The exact bytes that are signed: JCS (RFC 8785) of the statement object, UTF-8. OpenPGP detached signatures (binary, type 0x00) over them; OpenPGP.js salts each signature (a random notation), so the signatures are inputs to verify, not outputs to reproduce.',
    section: 'docs/protocol.md § "Phase 1 — registration" and § "Phase 2 — mutual authentication", step 3',
    registration: {
      statement: registration,
      jcs: fromUtf8(regBytes),
      sha256: hex(sha256(regBytes)),
      signature: regSignature,
      identityProof: idProof,
      identityProofJcs: canonicalize(idProof),
      negative: [
        { description: 'name changed', field: 'name', value: 'Mallory', error: 'KL_SIGNATURE_INVALID' },
        {
          description: 'nonce changed',
          field: 'nonce',
          value: b64(counting(32, 0xe1)),
          error: 'KL_SIGNATURE_INVALID',
        },
        { description: 'time changed by 1 ms', field: 'time', value: NOW + 1, error: 'KL_SIGNATURE_INVALID' },
      ],
    },
    login: {
      section: 'docs/protocol.md § "Phase 2 — mutual authentication", step 3',
      transcript,
      jcs: fromUtf8(transcriptBytes),
      sha256: hex(transcriptHash),
      signature: transcriptSignature,
      negative: [
        {
          description: 'serverEphemeral changed',
          field: 'serverEphemeral',
          value: clientEph.publicKey,
          error: 'KL_SIGNATURE_INVALID',
        },
        {
          description: 'challengeHash changed',
          field: 'challengeHash',
          value: hex(sha256(Buffer.from('x'))),
          error: 'KL_SIGNATURE_INVALID',
        },
      ],
    },
  };

  // --- 5. Resume proof and the keys of the epoch it opens. ---
  const clientNonce = b64(counting(16, 0x20));
  const serverNonce = b64(counting(16, 0x70));
  const proof = resumeProof(hsKeys.resumeKey, { sid: sessionId, epoch: 0, clientNonce, serverNonce });
  const nextChain = sha256(
    transcriptHash,
    Buffer.from(
      canonicalize({
        sid: sessionId,
        epoch: 1,
        clientEphemeral: `resume:${clientNonce}`,
        serverEphemeral: `resume:${serverNonce}`,
      }),
      'utf8',
    ),
  );
  const nextKeys = deriveSessionKeys(Buffer.from(hsKeys.resumeKey), nextChain);
  const firstMessage = { t: 'data' as const, body: 'resumed' };
  // The v1 JSON form of the same frame (the schema tests use it as a well-formed v1 frame).
  const resumedFrame = sealFrame({
    key: nextKeys.s2cKey,
    iv: nextKeys.s2cIv,
    sid: sessionId,
    epoch: 1,
    seq: 0,
    dir: 's2c',
    plaintext: Buffer.from(JSON.stringify(firstMessage), 'utf8'),
  });
  const resume = {
    description:
      'proof = base64url(HMAC-SHA256(resumeKey of epoch E, JCS({type:"keyledger/resume", v:1, sid, epoch:E, clientNonce, serverNonce}))). Epoch E+1: chain = SHA-256(chain || JCS({sid, epoch:E+1, clientEphemeral:"resume:"+clientNonce, serverEphemeral:"resume:"+serverNonce})), keys = HKDF(ikm = resumeKey of E, salt = that chain); sequence numbers restart at 0. Inputs are the handshake session (its resume key, session id and transcript hash).',
    section: 'docs/protocol.md § "Phases 3 and 4 — the session", Resumption',
    resumeKey: hex(hsKeys.resumeKey),
    sid: sessionId,
    epoch: 0,
    clientNonce,
    serverNonce,
    statementJcs: canonicalize({
      type: 'keyledger/resume',
      v: 1,
      sid: sessionId,
      epoch: 0,
      clientNonce,
      serverNonce,
    }),
    proof,
    chainBefore: hex(transcriptHash),
    nextChain: hex(nextChain),
    nextKeys: keysHex(nextKeys),
    firstFrame: {
      message: firstMessage,
      frame: encodeFrame(resumedFrame),
      wire: resumedWire({
        keys: hsKeys,
        transcriptHash,
        sid: sessionId,
        clientNonce,
        serverNonce,
        message: firstMessage,
      }),
    },
    negative: [
      { description: 'proof checked for another session', field: 'sid', value: b64(counting(16, 0xc1)) },
      { description: 'proof checked for another epoch', field: 'epoch', value: 1 },
      { description: 'nonces swapped', field: 'swap', value: null },
      {
        description: 'proof under another resume key (another session)',
        field: 'resumeKey',
        value: hex(counting(32, 0x01)),
      },
    ],
  };

  const out = {
    name: 'keyledger protocol test vectors, version 1',
    description:
      'Fixed inputs and expected outputs of keyledger/v1 (docs/protocol.md "Test vectors"). Binary values are lowercase hex unless named as base64url (wire form). Generated once by test/vectors/generate.ts; checked by test/protocol-vectors.test.ts.',
    section: 'docs/protocol.md § "Test vectors"',
    keys: {
      description:
        'Test keys (v4, Ed25519 + Cv25519, created at the fixed time). Unencrypted on purpose: test only.',
      created: CREATED.toISOString(),
      client: {
        id: client.id,
        fingerprint: client.fingerprint,
        privateKey: client.privateKey,
        publicKey: client.publicKey,
      },
      server: {
        id: server.id,
        fingerprint: server.fingerprint,
        privateKey: server.privateKey,
        publicKey: server.publicKey,
      },
    },
    format: FORMAT,
    keySchedule,
    frames,
    'frames-v2': framesV2(),
    statements,
    handshake,
    resume,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

const update = process.argv.indexOf('--update-frames');
if (update >= 0) updateFrames(process.argv[update + 1] ?? 'test/vectors/keyledger-v1.json');
else await main();
