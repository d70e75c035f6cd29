/**
 * keyledger's own protocol test vectors (docs/protocol.md "Test vectors"): every group of
 * test/vectors/keyledger-v1.json is checked against the code in both directions where it applies —
 * the expected bytes are produced from the fixed inputs, and the given bytes are opened or verified —
 * and every negative vector is refused. The file is generated once by test/vectors/generate.ts; this
 * test never regenerates it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { OpenPgpClientKey } from '../src/client/client-key.js';
import { answerChallenge, verifyFinished } from '../src/client/handshake.js';
import { decryptAndVerify, verifyDetached } from '../src/pgp/messages.js';
import { openSealed } from '../src/pgp/sealed.js';
import { fromUtf8, toHex } from '../src/protocol/bytes.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { Channel } from '../src/protocol/channel.js';
import { isKlError } from '../src/protocol/errors.js';
import { encodeFrame, type Frame, openFrame, sealFrame } from '../src/protocol/frame.js';
import {
  jsonPlaintext,
  openWire,
  PlainType,
  readPlaintext,
  readWireHeader,
  sealWire,
  sessionHandle,
  WIRE_HEADER_LENGTH,
} from '../src/protocol/frame-wire.js';
import { sha256 } from '../src/protocol/hash.js';
import { deriveSessionKeys, type SessionKeys } from '../src/protocol/key-schedule.js';
import { checkResumeProof, resumeProof } from '../src/protocol/resume.js';
import {
  type ChallengePayload,
  hashOf,
  hashText,
  identityProofPayload,
  type LoginTranscript,
  loginTranscript,
  type RegistrationStatement,
  statementBytes,
} from '../src/protocol/statements.js';
import { generateEphemeral, sharedSecret } from '../src/protocol/x25519.js';

type HexKeys = Record<keyof SessionKeys, string>;
interface FieldChange {
  description: string;
  field: string;
  value: unknown;
  error?: string;
}
// biome-ignore lint/suspicious/noExplicitAny: the vector file is JSON; each group is typed where used.
const V: any = JSON.parse(readFileSync(new URL('./vectors/keyledger-v1.json', import.meta.url), 'utf8'));

const hex = (s: string) => Buffer.from(s, 'hex');
/** The published values of RFC 7748 §6.1. */
const RFC7748 = {
  alicePublic: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  bobPublic: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
};
const code = (c: string) => (e: unknown) => isKlError(e, c as never);
const keysHex = (k: SessionKeys): HexKeys => ({
  c2sKey: toHex(k.c2sKey),
  c2sIv: toHex(k.c2sIv),
  s2cKey: toHex(k.s2cKey),
  s2cIv: toHex(k.s2cIv),
  resumeKey: toHex(k.resumeKey),
});
const keysFrom = (k: HexKeys): SessionKeys => ({
  c2sKey: hex(k.c2sKey),
  c2sIv: hex(k.c2sIv),
  s2cKey: hex(k.s2cKey),
  s2cIv: hex(k.s2cIv),
  resumeKey: hex(k.resumeKey),
});

async function keys() {
  const c = V.keys.client;
  const s = V.keys.server;
  const clientPriv = await openpgp.readPrivateKey({ armoredKey: c.privateKey });
  const serverPriv = await openpgp.readPrivateKey({ armoredKey: s.privateKey });
  assert.equal(clientPriv.getFingerprint(), c.fingerprint);
  assert.equal(serverPriv.getFingerprint(), s.fingerprint);
  return {
    clientPriv,
    serverPriv,
    clientPub: await openpgp.readKey({ armoredKey: c.publicKey }),
    serverPub: await openpgp.readKey({ armoredKey: s.publicKey }),
  };
}

describe('protocol test vectors (test/vectors/keyledger-v1.json)', () => {
  it('names the docs section of every group', () => {
    for (const group of [V.keySchedule, V.frames, V.statements, V.handshake, V.resume])
      assert.match(group.section, /^docs\/protocol\.md § /);
    const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    assert.ok(/^## Test vectors$/m.test(doc), 'docs/protocol.md has a "Test vectors" section');
    assert.ok(doc.includes('test/vectors/keyledger-v1.json'), 'docs/protocol.md names the vector file');
  });

  it('key schedule: X25519 both ways, then HKDF-SHA256 into the five session keys', () => {
    const ks = V.keySchedule;
    // Anchored to RFC 7748 §6.1 (Alice's and Bob's keys), independently of the generator.
    assert.equal(Buffer.from(ks.clientPublic, 'base64url').toString('hex'), RFC7748.alicePublic);
    assert.equal(Buffer.from(ks.serverPublic, 'base64url').toString('hex'), RFC7748.bobPublic);
    assert.equal(ks.sharedSecret, RFC7748.shared);
    const client = generateEphemeral(hex(ks.clientPrivate));
    const server = generateEphemeral(hex(ks.serverPrivate));
    assert.equal(client.publicKey, ks.clientPublic);
    assert.equal(server.publicKey, ks.serverPublic);
    const secret = sharedSecret(client.privateKey, ks.serverPublic);
    assert.equal(toHex(secret), ks.sharedSecret);
    assert.equal(toHex(sharedSecret(server.privateKey, ks.clientPublic)), ks.sharedSecret);
    assert.deepEqual(keysHex(deriveSessionKeys(secret, hex(ks.transcriptHash))), ks.keys);
    // Another salt (transcript) gives other keys: the keys exist only for that handshake.
    const other = deriveSessionKeys(secret, sha256(hex(ks.transcriptHash)));
    assert.notEqual(toHex(other.c2sKey), ks.keys.c2sKey);
    for (const n of ks.negative as Array<{ peerPublic: string; error: string }>)
      assert.throws(() => sharedSecret(client.privateKey, n.peerPublic), code(n.error));
  });

  it('frames: exact sealed bytes from the fixed inputs; the given frames open', () => {
    const f = V.frames;
    const key = hex(f.key);
    const iv = hex(f.iv);
    for (const p of f.positive) {
      const sealed = sealFrame({
        key,
        iv,
        sid: f.sid,
        epoch: p.epoch,
        seq: p.seq,
        dir: p.dir,
        plaintext: Buffer.from(p.plaintext, 'utf8'),
      });
      assert.equal(encodeFrame(sealed), p.frame);
      assert.equal(JSON.stringify(sealed), p.frame);
      assert.equal(canonicalize({ sid: f.sid, epoch: p.epoch, seq: p.seq, dir: p.dir }), p.aad);
      // The nonce: iv XOR the 64-bit big-endian seq in the last 8 bytes.
      const nonce = Buffer.from(iv);
      const s = Buffer.alloc(8);
      s.writeBigUInt64BE(BigInt(p.seq));
      for (let i = 0; i < 8; i++) nonce[4 + i]! ^= s[i]!;
      assert.equal(nonce.toString('hex'), p.nonce);
      const opened = openFrame({ key, iv, dir: p.dir, frame: JSON.parse(p.frame) as Frame });
      assert.equal(fromUtf8(opened), p.plaintext);
    }
  });

  it('frames (negative): a flipped bit, another epoch, seq, session or direction, a truncated frame never open', () => {
    const f = V.frames;
    assert.ok(f.negative.length >= 7);
    for (const n of f.negative) {
      assert.throws(
        () => openFrame({ key: hex(f.key), iv: hex(f.iv), dir: n.dir, frame: JSON.parse(n.frame) as Frame }),
        code(n.error),
        n.description,
      );
    }
  });

  it('frames v2 (binary wire): exact message bytes from the fixed inputs; the given frames open', () => {
    const f = V['frames-v2'];
    assert.equal(V.format, 2);
    const key = hex(f.key);
    const iv = hex(f.iv);
    const handle = sessionHandle(f.sid);
    assert.equal(toHex(handle), f.handle);
    assert.equal(
      Buffer.from(f.sid, 'base64url').toString('hex'),
      f.handle,
      'the handle is the session id, raw',
    );
    assert.ok(f.positive.length >= 4);
    for (const p of f.positive) {
      const wire = sealWire({
        key,
        iv,
        handle,
        epoch: p.epoch,
        seq: p.seq,
        dir: p.dir,
        plaintext: hex(p.plaintext),
      });
      assert.equal(toHex(wire), p.frame);
      assert.equal(p.frame.slice(0, 2 * WIRE_HEADER_LENGTH), p.header);
      // The header: version 2, direction, handle, epoch (u32 BE), seq (u64 BE).
      const h = Buffer.from(p.header, 'hex');
      assert.deepEqual(
        [h[0], h[1], h.subarray(2, 18).toString('hex'), h.readUInt32BE(18), Number(h.readBigUInt64BE(22))],
        [2, p.dir === 'c2s' ? 1 : 2, f.handle, p.epoch, p.seq],
      );
      const nonce = Buffer.from(iv);
      const s = Buffer.alloc(8);
      s.writeBigUInt64BE(BigInt(p.seq));
      for (let i = 0; i < 8; i++) nonce[4 + i]! ^= s[i]!;
      assert.equal(nonce.toString('hex'), p.nonce);
      const given = hex(p.frame);
      const header = readWireHeader(given);
      assert.deepEqual(
        [header.dir, toHex(header.handle), header.epoch, header.seq],
        [p.dir, f.handle, p.epoch, p.seq],
      );
      const plain = openWire(key, iv, given, header.seq);
      assert.equal(toHex(plain), p.plaintext);
      assert.equal(readPlaintext(plain).type, { json: 0, bytes: 1, text: 2 }[p.kind as 'json']);
    }
  });

  it('frames v2 (negative): malformed headers are refused before any crypto; tampered frames never open', () => {
    const f = V['frames-v2'];
    assert.ok(f.negative.length >= 13);
    for (const n of f.negative as Array<{
      description: string;
      frame: string;
      error: string;
      padTo?: number;
    }>) {
      const given = Buffer.alloc(n.padTo ?? n.frame.length / 2);
      hex(n.frame).copy(given);
      assert.throws(
        () => {
          const header = readWireHeader(given);
          return openWire(hex(f.key), hex(f.iv), given, header.seq);
        },
        code(n.error),
        n.description,
      );
    }
  });

  it('registration statement: exact signed bytes; the fixed signature verifies; the sealed proof opens to its payload', async () => {
    const { clientPub, serverPriv } = await keys();
    const r = V.statements.registration;
    const st = r.statement as RegistrationStatement;
    const bytes = statementBytes(st);
    assert.equal(fromUtf8(bytes), r.jcs);
    assert.equal(toHex(sha256(bytes)), r.sha256);
    const { proof, ...base } = st;
    const payload = identityProofPayload(base, { method: proof.method, code: r.identityProof.code });
    assert.deepEqual(payload, r.identityProof);
    assert.equal(canonicalize(payload), r.identityProofJcs);
    const opened = await openSealed(proof.sealed, serverPriv, new Date(st.time));
    assert.equal(Buffer.from(opened).toString('utf8'), r.identityProofJcs);
    const now = new Date(st.time);
    await verifyDetached({
      data: bytes,
      armoredSignature: r.signature,
      key: clientPub,
      now,
      maxSkewMs: 300_000,
    });
    for (const n of r.negative as FieldChange[]) {
      const changed = statementBytes({ ...st, [n.field]: n.value } as RegistrationStatement);
      assert.notEqual(fromUtf8(changed), r.jcs, n.description);
      await assert.rejects(
        verifyDetached({ data: changed, armoredSignature: r.signature, key: clientPub, now }),
        code(n.error!),
        n.description,
      );
    }
  });

  it('login transcript: exact signed bytes and hash; the fixed signature verifies; one changed field does not', async () => {
    const { clientPub } = await keys();
    const l = V.statements.login;
    const { type: _t, v: _v, ...fields } = l.transcript as LoginTranscript;
    const t = loginTranscript(fields);
    const bytes = statementBytes(t);
    assert.equal(fromUtf8(bytes), l.jcs);
    assert.equal(toHex(sha256(bytes)), l.sha256);
    const now = new Date(V.handshake.now);
    await verifyDetached({
      data: bytes,
      armoredSignature: l.signature,
      key: clientPub,
      now,
      maxSkewMs: 300_000,
    });
    for (const n of [...l.negative, V.handshake.negative[0]] as FieldChange[]) {
      const changed = statementBytes(loginTranscript({ ...fields, [n.field]: n.value }));
      await assert.rejects(
        verifyDetached({ data: changed, armoredSignature: l.signature, key: clientPub, now }),
        code(n.error!),
        n.description,
      );
    }
  });

  it('full handshake with fixed randomness: hello, challenge, response, session keys and finished frame', async () => {
    const { clientPriv, serverPub } = await keys();
    const h = V.handshake;
    const clientEph = generateEphemeral(hex(h.clientEphemeralPrivate));
    const serverEph = generateEphemeral(hex(h.serverEphemeralPrivate));
    // 1. hello
    assert.equal(clientEph.publicKey, h.hello.ephemeral);
    assert.equal(canonicalize(h.hello), h.helloJcs);
    assert.equal(hashOf(h.hello), h.helloHash);
    // 2. challenge: payload bytes from the fixed inputs; the fixed message decrypts to them under
    // KprivC with KprivS's signature.
    const payload: ChallengePayload = {
      type: 'keyledger/challenge',
      v: 1,
      chain: h.chain,
      challengeId: h.challenge.challengeId,
      rs: h.response.rs,
      serverEphemeral: serverEph.publicKey,
      id: h.hello.id,
      fingerprint: V.keys.client.fingerprint,
      server: V.keys.server.fingerprint,
      expiresAt: h.challengePayload.expiresAt,
      helloHash: hashOf(h.hello),
    };
    assert.deepEqual(payload, h.challengePayload);
    assert.equal(fromUtf8(statementBytes(payload)), h.challengePayloadJcs);
    const plain = await decryptAndVerify(h.challenge.message, clientPriv, serverPub, new Date(h.now));
    assert.equal(Buffer.from(plain).toString('utf8'), h.challengePayloadJcs);
    assert.equal(hashText(h.challenge.message), h.challengeHash);
    // 3. response: the transcript both sides build, its hash, the fixed signature.
    const transcript = loginTranscript({
      chain: h.chain,
      id: h.hello.id,
      fingerprint: V.keys.client.fingerprint,
      server: V.keys.server.fingerprint,
      challengeId: payload.challengeId,
      rs: payload.rs,
      rc: h.rc,
      clientEphemeral: clientEph.publicKey,
      serverEphemeral: payload.serverEphemeral,
      helloHash: payload.helloHash,
      challengeHash: hashText(h.challenge.message),
    });
    const bytes = statementBytes(transcript);
    assert.equal(fromUtf8(bytes), h.transcriptJcs);
    assert.equal(fromUtf8(bytes), V.statements.login.jcs);
    const transcriptHash = sha256(bytes);
    assert.equal(toHex(transcriptHash), h.transcriptHash);
    await verifyDetached({
      data: bytes,
      armoredSignature: h.response.signature,
      key: clientPriv.toPublic(),
      now: new Date(h.now),
      maxSkewMs: 300_000,
    });
    // 4. session keys, from each side's ephemeral, and the finished frame.
    const clientSecret = sharedSecret(clientEph.privateKey, serverEph.publicKey);
    assert.equal(toHex(clientSecret), h.sharedSecret);
    assert.equal(toHex(sharedSecret(serverEph.privateKey, clientEph.publicKey)), h.sharedSecret);
    const sessionKeys = deriveSessionKeys(clientSecret, transcriptHash);
    assert.deepEqual(keysHex(sessionKeys), h.keys);
    assert.equal(canonicalize(h.finished), h.finishedJcs);
    assert.equal(h.finished.transcriptHash, h.transcriptHash);
    const frame = sealFrame({
      key: sessionKeys.s2cKey,
      iv: sessionKeys.s2cIv,
      sid: h.finished.sessionId,
      epoch: 0,
      seq: 0,
      dir: 's2c',
      plaintext: Buffer.from(h.finishedJcs, 'utf8'),
    });
    assert.equal(encodeFrame(frame), h.finishedFrame);
    // The v1 form still seals as committed, but the client no longer takes it as the confirmation.
    const bad = h.negative[2];
    for (const v1 of [h.finishedFrame, bad.frame])
      assert.throws(
        () => verifyFinished({ frame: Buffer.from(v1), keys: sessionKeys, transcriptHash }),
        code('KL_AUTH_FAILED'),
      );
    // The same key confirmation in wire format v2: the exact bytes; it opens to the finished JCS.
    const wire = sealWire({
      key: sessionKeys.s2cKey,
      iv: sessionKeys.s2cIv,
      handle: sessionHandle(h.finished.sessionId),
      epoch: 0,
      seq: 0,
      dir: 's2c',
      plaintext: jsonPlaintext(h.finishedJcs),
    });
    assert.equal(toHex(wire), h.finishedWire);
    const openedFinished = openWire(sessionKeys.s2cKey, sessionKeys.s2cIv, hex(h.finishedWire), 0);
    assert.deepEqual(readPlaintext(openedFinished), { type: PlainType.json, json: h.finishedJcs });
    assert.throws(
      () => openWire(sessionKeys.s2cKey, sessionKeys.s2cIv, hex(h.finishedWireNegative.frame), 0),
      code('KL_DECRYPTION_FAILED'),
    );
    // The client's own check of the key confirmation accepts it…
    const fin = verifyFinished({ frame: hex(h.finishedWire), keys: sessionKeys, transcriptHash });
    assert.equal(fin.sessionId, h.finished.sessionId);
    // …and refuses it with a flipped bit, for another transcript, or as another frame than s2c epoch 0 seq 0.
    assert.throws(
      () => verifyFinished({ frame: hex(h.finishedWireNegative.frame), keys: sessionKeys, transcriptHash }),
      code(h.finishedWireNegative.error),
    );
    assert.throws(
      () =>
        verifyFinished({
          frame: hex(h.finishedWire),
          keys: sessionKeys,
          transcriptHash: sha256(transcriptHash),
        }),
      code('KL_AUTH_FAILED'),
    );
    for (const [at, value] of [
      [1, 0x01],
      [21, 1],
      [29, 1],
    ] as const) {
      const moved = hex(h.finishedWire);
      moved[at] = value;
      assert.throws(
        () => verifyFinished({ frame: moved, keys: sessionKeys, transcriptHash }),
        code('KL_AUTH_FAILED'),
      );
    }
    // A changed challenge field changes the bytes the server signs.
    const ch = h.negative[1];
    assert.notEqual(fromUtf8(statementBytes({ ...payload, [ch.field]: ch.value })), h.challengePayloadJcs);
  });

  it("the client's answerChallenge accepts the fixed challenge and signs the same transcript (its own RC)", async () => {
    const { clientPriv, serverPub } = await keys();
    const h = V.handshake;
    const key = new OpenPgpClientKey(clientPriv);
    const base = {
      challenge: h.challenge,
      hello: h.hello,
      ephemeral: generateEphemeral(hex(h.clientEphemeralPrivate)),
      key,
      serverKey: serverPub,
      serverFingerprint: V.keys.server.fingerprint,
      chain: h.chain,
      now: h.now,
    };
    const answer = await answerChallenge(base);
    assert.equal(answer.response.challengeId, h.response.challengeId);
    assert.equal(answer.response.rs, h.response.rs);
    const { type: _t, v: _v, ...fields } = V.statements.login.transcript as LoginTranscript;
    const mine = statementBytes(loginTranscript({ ...fields, rc: answer.response.rc }));
    assert.equal(toHex(answer.transcriptHash), toHex(sha256(mine)));
    await verifyDetached({
      data: mine,
      armoredSignature: answer.response.signature,
      key: clientPriv.toPublic(),
      now: new Date(h.now),
    });
    // Another hello (another ephemeral) than the one the challenge names: refused.
    await assert.rejects(
      answerChallenge({ ...base, hello: { ...h.hello, ephemeral: h.challengePayload.serverEphemeral } }),
      code('KL_PROTOCOL'),
    );
  });

  it('resume proof: exact HMAC and next-epoch keys; the first frame of the new epoch opens on the client', () => {
    const r = V.resume;
    const h = V.handshake;
    const f = { sid: r.sid, epoch: r.epoch, clientNonce: r.clientNonce, serverNonce: r.serverNonce };
    assert.equal(r.resumeKey, h.keys.resumeKey);
    assert.equal(canonicalize({ type: 'keyledger/resume', v: 1, ...f }), r.statementJcs);
    assert.equal(resumeProof(hex(r.resumeKey), f), r.proof);
    assert.equal(checkResumeProof(hex(r.resumeKey), f, r.proof), true);
    const nextChain = sha256(
      hex(r.chainBefore),
      Buffer.from(
        canonicalize({
          sid: r.sid,
          epoch: r.epoch + 1,
          clientEphemeral: `resume:${r.clientNonce}`,
          serverEphemeral: `resume:${r.serverNonce}`,
        }),
        'utf8',
      ),
    );
    assert.equal(toHex(nextChain), r.nextChain);
    assert.deepEqual(keysHex(deriveSessionKeys(hex(r.resumeKey), nextChain)), r.nextKeys);
    // The channels do the same: the server's first frame of epoch 1 is the committed one, and the
    // client's side channel opens it.
    const server = new Channel({
      role: 'server',
      sid: r.sid,
      keys: keysFrom(h.keys),
      chain: hex(r.chainBefore),
      nextSendSeq: 1,
      now: () => h.now,
    });
    server.resume(r.clientNonce, r.serverNonce, r.epoch);
    assert.equal(toHex(server.resumeKey), r.nextKeys.resumeKey);
    assert.equal(toHex(server.seal(r.firstFrame.message)), r.firstFrame.wire);
    const client = new Channel({
      role: 'client',
      sid: r.sid,
      keys: keysFrom(h.keys),
      chain: hex(r.chainBefore),
      nextRecvSeq: 1,
      now: () => h.now,
    });
    // Not resumed: the epoch-1 frame is refused.
    assert.throws(() => client.open(hex(r.firstFrame.wire)), code('KL_PROTOCOL'));
    const next = client.resumed(r.clientNonce, r.serverNonce);
    assert.deepEqual(next.open(hex(r.firstFrame.wire)), r.firstFrame.message);
    // The v1 JSON form of the same message opens under the same keys with the v1 codec.
    const nk = keysFrom(r.nextKeys);
    const v1 = JSON.parse(r.firstFrame.frame) as Frame;
    assert.deepEqual(
      JSON.parse(fromUtf8(openFrame({ key: nk.s2cKey, iv: nk.s2cIv, dir: 's2c', frame: v1 }))),
      r.firstFrame.message,
    );
  });

  it('resume proof (negative): another session, epoch, nonce order or resume key does not verify', () => {
    const r = V.resume;
    const f = { sid: r.sid, epoch: r.epoch, clientNonce: r.clientNonce, serverNonce: r.serverNonce };
    for (const n of r.negative as FieldChange[]) {
      let key = hex(r.resumeKey);
      let g = { ...f };
      if (n.field === 'swap') g = { ...f, clientNonce: f.serverNonce, serverNonce: f.clientNonce };
      else if (n.field === 'resumeKey') key = hex(n.value as string);
      else g = { ...f, [n.field]: n.value };
      assert.equal(checkResumeProof(key, g, r.proof), false, n.description);
      assert.notEqual(resumeProof(key, g), r.proof, n.description);
    }
  });
});
