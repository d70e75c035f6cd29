/**
 * An attacker's tests of the native OpenPGP path (docs/protocol.md "The native OpenPGP path") and of
 * the block queue's per-transaction wait: keys and signatures built packet by packet (RFC 9580 §5.2,
 * §5.5), small-order Ed25519 and X25519 points (RFC 7748 §6.1, RFC 8032 §5.1.7), and what the server
 * does with them.
 */
import assert from 'node:assert/strict';
import { createHash, sign as cryptoSign, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { BlockQueue, type Pending } from '../src/ledger/block-queue.js';
import { acceptPublicKey } from '../src/pgp/key-policy.js';
import { decryptAndVerify, encryptAndSign, readPublicKey, verifyDetached } from '../src/pgp/messages.js';
import { nativeView } from '../src/pgp/native/keys.js';
import { nativeCheckSignature, readNativeSignature } from '../src/pgp/native/operations.js';
import {
  armor,
  dearmor,
  readMpi,
  readPackets,
  uint32,
  writeMpi,
  writePacket,
} from '../src/pgp/native/packets.js';
import { concatBytes } from '../src/protocol/bytes.js';
import { isKlError } from '../src/protocol/errors.js';
import { generateEphemeral } from '../src/protocol/x25519.js';
import { rawSocket } from './support/raw-socket.js';
import { testServer } from './support/server.js';
import { fixtureKey, KEYS_CREATED } from './vectors/native-pgp-generate.js';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const CREATED = NOW - 24 * 3_600_000;

const OID_ED25519 = Uint8Array.from(Buffer.from('092b06010401da470f01', 'hex'));
const OID_CV25519 = Uint8Array.from(Buffer.from('0a2b060104019755010501', 'hex'));
/** The neutral element of edwards25519 (y = 1), a small-order point (RFC 8032 §5.1.2 encoding). */
const ED_IDENTITY = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));

const sha = (name: string, ...parts: Uint8Array[]) => {
  const h = createHash(name);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);

/** A v4 key packet body (RFC 9580 §5.5.2) and its fingerprint / key ID. */
function keyBody(algorithm: number, created: number, params: Uint8Array) {
  const body = concatBytes(
    Uint8Array.of(4),
    uint32(Math.floor(created / 1000)),
    Uint8Array.of(algorithm),
    params,
  );
  const fingerprint = sha('sha1', Uint8Array.of(0x99), u16(body.length), body);
  return { body, fingerprint, keyId: fingerprint.subarray(12) };
}

/** An Ed25519 (EdDSA legacy) key packet body with raw public key `a`. */
const edKey = (a: Uint8Array, created = CREATED) =>
  keyBody(22, created, concatBytes(OID_ED25519, writeMpi(concatBytes(Uint8Array.of(0x40), a))));

/** A Cv25519 (ECDH) key packet body with raw public key `u` (KDF SHA2-256 / AES-128). */
const cvKey = (u: Uint8Array, created = CREATED) =>
  keyBody(
    18,
    created,
    concatBytes(OID_CV25519, writeMpi(concatBytes(Uint8Array.of(0x40), u)), Uint8Array.of(3, 1, 8, 7)),
  );

/** A subpacket (RFC 9580 §5.2.3.7) of `type` with `body` (one-octet length). */
const sub = (type: number, body: Uint8Array) => concatBytes(Uint8Array.of(body.length + 1, type), body);

/**
 * A v4 EdDSA-legacy signature packet body of `type` over `toHash` (RFC 9580 §5.2.4), by the key with
 * `fingerprint`, whose R ‖ S is what `sign` answers for the digest (the forgery R = identity, S = 0
 * for a small-order key).
 */
function sigBody(o: {
  type: number;
  toHash: Uint8Array;
  fingerprint: Uint8Array;
  created: number;
  hashedExtra?: Uint8Array;
  unhashedExtra?: Uint8Array;
  sign: (digest: Uint8Array) => Uint8Array;
}): Uint8Array {
  const hashedSubs = concatBytes(
    sub(2, uint32(Math.floor(o.created / 1000))),
    sub(33, concatBytes(Uint8Array.of(4), o.fingerprint)),
    o.hashedExtra ?? new Uint8Array(),
  );
  const hashedPart = concatBytes(Uint8Array.of(4, o.type, 22, 10), u16(hashedSubs.length), hashedSubs);
  const digest = sha('sha512', o.toHash, hashedPart, Uint8Array.of(4, 0xff), uint32(hashedPart.length));
  const rs = o.sign(digest);
  const unhashed = concatBytes(sub(16, o.fingerprint.subarray(12)), o.unhashedExtra ?? new Uint8Array());
  return concatBytes(
    hashedPart,
    u16(unhashed.length),
    unhashed,
    digest.subarray(0, 2),
    writeMpi(rs.subarray(0, 32)),
    writeMpi(rs.subarray(32)),
  );
}

/** The encoding of the base point B of edwards25519 (RFC 8032 §5.1). */
const ED_BASE = Uint8Array.from(Buffer.from(`58${'66'.repeat(31)}`, 'hex'));
/**
 * A signature the identity key "makes" on any digest with no secret: R = [1]B, S = 1, since
 * [S]B = R + [k]A holds for A = identity whatever k (RFC 8032 §5.1.7).
 */
const forge = () => concatBytes(ED_BASE, Uint8Array.of(1, ...new Uint8Array(31)));

const keyHash = (body: Uint8Array) => concatBytes(Uint8Array.of(0x99), u16(body.length), body);

/**
 * A public key whose primary is `primary` (signing with `signPrimary`), one user ID, and one Cv25519
 * encryption subkey `enc` bound by the primary: every self-signature made by `signPrimary`.
 */
function buildKey(o: {
  primary: ReturnType<typeof edKey>;
  signPrimary: (digest: Uint8Array) => Uint8Array;
  enc: ReturnType<typeof cvKey>;
  /** Key flags of the primary (RFC 9580 §5.2.3.29); default certify + sign. */
  primaryFlags?: number;
  /** A direct-key self-signature (0x1F) setting this key expiration time, seconds (RFC 9580 §5.2.3.13). */
  directKeyExpiry?: number;
}): string {
  const uid = new TextEncoder().encode('Mallory <mallory@example.com>');
  const cert = sigBody({
    type: 0x13,
    toHash: concatBytes(keyHash(o.primary.body), Uint8Array.of(0xb4), uint32(uid.length), uid),
    fingerprint: o.primary.fingerprint,
    created: CREATED,
    hashedExtra: sub(27, Uint8Array.of(o.primaryFlags ?? 0x03)),
    sign: o.signPrimary,
  });
  const binding = sigBody({
    type: 0x18,
    toHash: concatBytes(keyHash(o.primary.body), keyHash(o.enc.body)),
    fingerprint: o.primary.fingerprint,
    created: CREATED,
    hashedExtra: sub(27, Uint8Array.of(0x0c)),
    sign: o.signPrimary,
  });
  const direct =
    o.directKeyExpiry === undefined
      ? new Uint8Array()
      : writePacket(
          2,
          sigBody({
            type: 0x1f,
            toHash: keyHash(o.primary.body),
            fingerprint: o.primary.fingerprint,
            created: CREATED,
            hashedExtra: sub(9, uint32(o.directKeyExpiry)),
            sign: o.signPrimary,
          }),
        );
  const bytes = concatBytes(
    writePacket(6, o.primary.body),
    direct,
    writePacket(13, uid),
    writePacket(2, cert),
    writePacket(14, o.enc.body),
    writePacket(2, binding),
  );
  return openpgp.armor(openpgp.enums.armor.publicKey, bytes);
}

/** A fresh real X25519 public key (raw). */
function x25519Public(): Uint8Array {
  const { publicKey } = generateKeyPairSync('x25519');
  return new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(12));
}

/** A fresh Ed25519 key pair: raw public key and a signer of digests. */
function edPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(12));
  return { raw, sign: (digest: Uint8Array) => new Uint8Array(cryptoSign(null, digest, privateKey)) };
}

/** An armored detached binary-document signature over `data` (RFC 9580 §5.2.1.1). */
function detached(o: {
  data: Uint8Array;
  fingerprint: Uint8Array;
  created: number;
  sign: (digest: Uint8Array) => Uint8Array;
  unhashedExtra?: Uint8Array;
}): string {
  return armor('SIGNATURE', writePacket(2, sigBody({ type: 0x00, toHash: o.data, ...o })));
}

/** A non-critical private-use subpacket (RFC 9580 §5.2.3.7: types 100–110) OpenPGP.js ignores unhashed. */
const PRIVATE_SUBPACKET = sub(101, Uint8Array.of(0x6b, 0x6c));

/** What a promise settles to: the value, or the error's KL code (or the error itself, untyped). */
async function outcome<T>(p: Promise<T>): Promise<{ ok: T } | { code: string } | { untyped: unknown }> {
  try {
    return { ok: await p };
  } catch (err) {
    return isKlError(err) ? { code: err.code } : { untyped: err };
  }
}

describe('small-order keys: anyone can sign for an Ed25519 key at the identity point', () => {
  const primary = edKey(ED_IDENTITY);
  const armored = buildKey({ primary, signPrimary: forge, enc: cvKey(x25519Public()) });
  const data = new TextEncoder().encode(
    '{"type":"keyledger/login-transcript","anything":"the forger likes"}',
  );

  it('the key policy refuses it (registration is the one door to the ledger)', async () => {
    const result = await outcome(acceptPublicKey(armored, new Date(NOW)).then((a) => a.fingerprint));
    assert.ok(
      !('ok' in result),
      'acceptPublicKey accepted a key whose every self-signature is the forgery R = B, S = 1 (A = identity)',
    );
    assert.deepEqual(result, { code: 'KL_KEY_POLICY' });
  });

  it('a forged signature is refused whichever path reads it (native, or OpenPGP.js after one extra unhashed subpacket)', async () => {
    const key = await readPublicKey(armored);
    const made = NOW - 60_000;
    const nativeShape = detached({ data, fingerprint: primary.fingerprint, created: made, sign: forge });
    const fallbackShape = detached({
      data,
      fingerprint: primary.fingerprint,
      created: made,
      sign: forge,
      unhashedExtra: PRIVATE_SUBPACKET,
    });
    const verify = (armoredSignature: string) =>
      outcome(verifyDetached({ data, armoredSignature, key, now: new Date(NOW), maxSkewMs: 5 * 60_000 }));
    // The native path's backend refuses small-order keys (src/protocol/crypto/node.ts).
    assert.deepEqual(await verify(nativeShape), { code: 'KL_SIGNATURE_INVALID' });
    // The same forgery, one unhashed private subpacket longer: the native reader leaves it to OpenPGP.js.
    const fallback = await verify(fallbackShape);
    assert.deepEqual(
      fallback,
      { code: 'KL_SIGNATURE_INVALID' },
      `OpenPGP.js accepted a forgery the native path refused: ${JSON.stringify(fallback)}`,
    );
  });
});

describe('low-order X25519 encryption subkeys', () => {
  const ed = edPair();
  const armored = buildKey({ primary: edKey(ed.raw), signPrimary: ed.sign, enc: cvKey(new Uint8Array(32)) });

  it('the key policy refuses a Cv25519 subkey at u = 0 (no shared secret with anyone)', async () => {
    const result = await outcome(acceptPublicKey(armored, new Date(NOW)).then((a) => a.fingerprint));
    assert.deepEqual(result, { code: 'KL_KEY_POLICY' });
  });

  it("the server's challenge to such a key fails with a typed error, not an internal one", async () => {
    const key = await readPublicKey(armored);
    const { privateKey: server } = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ name: 'server' }],
      date: new Date(CREATED),
      format: 'object',
    });
    // createChallenge (src/server/handshake.ts) calls exactly this on every hello for the identity.
    const result = await outcome(encryptAndSign(new Uint8Array(32), key, server, new Date(NOW)));
    assert.ok(
      'code' in result,
      `encryptAndSign threw an untyped error (a KL_INTERNAL and a stack trace in the log per hello): ${String((result as { untyped?: unknown }).untyped)}`,
    );
  });
});

describe('low-order X25519 encryption subkeys: the real server', () => {
  it('a hello for an identity whose key has one is refused with a typed code, not KL_INTERNAL', async () => {
    const ed = edPair();
    const primary = edKey(ed.raw, Date.now() - 3_600_000);
    const armored = buildKey({
      primary,
      signPrimary: ed.sign,
      enc: cvKey(new Uint8Array(32), Date.now() - 3_600_000),
    });
    const server = await testServer();
    try {
      // Registration now refuses such a key (above); one already on the ledger (registered before the
      // rule, or written by another registrar) is written here directly.
      const key = await readPublicKey(armored);
      const id = 'lowordersubkey@example.org';
      await server.ledger.submit({
        type: 'KeyRegistered',
        body: {
          id,
          name: 'Mallory',
          fingerprint: key.getFingerprint(),
          publicKey: key.armor(),
          algorithm: 'ed25519',
        },
      });
      const sock = await rawSocket(server.wsUrl);
      // Anyone may say hello for the identity: no key is needed for that.
      sock.send({ type: 'hello', v: 1, id, ephemeral: generateEphemeral().publicKey });
      const answer = (await sock.next()) as { type: string; code?: string };
      sock.ws.close();
      assert.equal(answer.type, 'error');
      assert.notEqual(answer.code, 'KL_INTERNAL', 'an untyped error from encryptAndSign reached the client');
    } finally {
      await server.close();
    }
  });
});

describe("the native key view's caches", () => {
  it('signatures naming random issuer key IDs do not grow the view of a cached key without bound', async () => {
    const ed = edPair();
    const armored = buildKey({ primary: edKey(ed.raw), signPrimary: ed.sign, enc: cvKey(x25519Public()) });
    // The server's ParsedKeyCache keeps one parsed key per ledger key version, and its view with it.
    const key = await readPublicKey(armored);
    const data = new TextEncoder().encode('statement');
    for (let i = 0; i < 300; i++) {
      const stranger = edPair();
      const fingerprint = new Uint8Array(createHash('sha1').update(stranger.raw).digest());
      const armoredSignature = detached({ data, fingerprint, created: NOW - 1000, sign: stranger.sign });
      const result = await outcome(verifyDetached({ data, armoredSignature, key, now: new Date(NOW) }));
      assert.deepEqual(result, { code: 'KL_SIGNATURE_INVALID' });
    }
    const view = nativeView(key) as unknown as { verifying: Map<string, unknown> };
    assert.ok(
      view.verifying.size <= 16,
      `the view holds ${view.verifying.size} verdicts for a key of 2 key packets`,
    );
  });
});

describe('held: inputs the native path refuses as OpenPGP.js does', () => {
  it('a signature by a primary key without the sign flag is refused (OpenPGP.js judges the key)', async () => {
    const ed = edPair();
    const primary = edKey(ed.raw);
    const armored = buildKey({
      primary,
      signPrimary: ed.sign,
      enc: cvKey(x25519Public()),
      primaryFlags: 0x01,
    });
    const key = await readPublicKey(armored);
    const data = new TextEncoder().encode('data');
    const armoredSignature = detached({
      data,
      fingerprint: primary.fingerprint,
      created: NOW - 1000,
      sign: ed.sign,
    });
    assert.deepEqual(await outcome(verifyDetached({ data, armoredSignature, key, now: new Date(NOW) })), {
      code: 'KL_SIGNATURE_INVALID',
    });
    assert.equal(
      await nativeCheckSignature(readNativeSignature(armoredSignature)!, data, key, NOW),
      undefined,
    );
  });

  it('a key expiry set only by a direct-key signature ends a cached verdict (the view collects its event)', async () => {
    const ed = edPair();
    const primary = edKey(ed.raw);
    const armored = buildKey({
      primary,
      signPrimary: ed.sign,
      enc: cvKey(x25519Public()),
      directKeyExpiry: 7200,
    });
    const key = await readPublicKey(armored);
    const data = new TextEncoder().encode('data');
    const at = async (t: number) => {
      const armoredSignature = detached({
        data,
        fingerprint: primary.fingerprint,
        created: t,
        sign: ed.sign,
      });
      const verify = (k: openpgp.PublicKey) =>
        outcome(verifyDetached({ data, armoredSignature, key: k, now: new Date(t) }).then(() => 'valid'));
      // The same parsed key throughout (its view caches verdicts), and a fresh parse for OpenPGP.js's own view.
      return { cached: await verify(key), fresh: await verify(await readPublicKey(armored)) };
    };
    for (const t of [CREATED + 1_800_000, CREATED + 3_600_000, CREATED + 7_201_000, CREATED + 10_800_000]) {
      const { cached, fresh } = await at(t);
      assert.deepEqual(cached, fresh, `at key creation + ${(t - CREATED) / 1000} s`);
      assert.deepEqual(cached, t < CREATED + 7_200_000 ? { ok: 'valid' } : { code: 'KL_SIGNATURE_INVALID' });
    }
  });

  it('a PKESK whose ephemeral point is of low order: a typed, generic refusal on the client', async () => {
    const [alice, bob] = await Promise.all([fixtureKey('alice'), fixtureKey('bob')]);
    const at = KEYS_CREATED + 3_600_000;
    const armored = await encryptAndSign(
      new TextEncoder().encode('challenge'),
      bob.toPublic(),
      alice,
      new Date(at),
    );
    const [pkesk, seipd] = readPackets(dearmor(armored, 'MESSAGE')!, 2)!;
    assert.ok(pkesk && seipd);
    const ephemeral = readMpi(pkesk.body, 10)!;
    for (const u of [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))]) {
      const body = concatBytes(
        pkesk.body.subarray(0, 10),
        writeMpi(concatBytes(Uint8Array.of(0x40), u)),
        pkesk.body.subarray(ephemeral.next),
      );
      const tampered = armor('MESSAGE', concatBytes(writePacket(1, body), writePacket(18, seipd.body)));
      assert.deepEqual(await outcome(decryptAndVerify(tampered, bob, alice.toPublic(), new Date(at))), {
        code: 'KL_DECRYPTION_FAILED',
      });
    }
  });
});

describe('the block queue (src/ledger/block-queue.ts)', () => {
  const pending = (i: number, maxWaitMs: number, settled: string[]): Pending => ({
    envelope: {} as Pending['envelope'],
    txid: String(i),
    text: '',
    local: true,
    since: performance.now(),
    maxWaitMs,
    resolve: () => settled.push(String(i)),
    reject: () => settled.push(`!${i}`),
  });
  const timers = () =>
    process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;

  it('flushAll (ledger close) writes everything, in order, and leaves no timer behind', () => {
    const written: string[][] = [];
    const settled: string[] = [];
    const queue = new BlockQueue({
      batchWaitMs: 0,
      maxBlockTxs: 1,
      write: (batch) => {
        written.push(batch.map((p) => p.txid));
        for (const p of batch) p.resolve({} as never);
      },
    });
    const before = timers();
    for (let i = 0; i < 3; i++) queue.push(pending(i, 5_000, settled));
    queue.flushAll();
    assert.deepEqual(written, [['0'], ['1'], ['2']]);
    assert.deepEqual(settled, ['0', '1', '2']);
    assert.equal(
      timers(),
      before,
      'a flush timer outlived flushAll: it keeps the process up for up to maxWaitMs',
    );
  });

  it('a transaction that may wait long is not starved by a stream of pressed ones (FIFO blocks)', async () => {
    const written: string[][] = [];
    const settled: string[] = [];
    const queue = new BlockQueue({
      batchWaitMs: 0,
      maxBlockTxs: 2,
      write: (batch) => {
        written.push(batch.map((p) => p.txid));
        for (const p of batch) p.resolve({} as never);
      },
    });
    queue.push(pending(0, 50, settled));
    for (let i = 1; i <= 5; i++) queue.push(pending(i, 0, settled));
    // Pressed transactions are written on the next turns, well before the patient one's 50 ms.
    const start = performance.now();
    while (settled.length < 6 && performance.now() - start < 45) await new Promise((r) => setImmediate(r));
    assert.deepEqual(written[0], ['0', '1']);
    assert.deepEqual(settled, ['0', '1', '2', '3', '4', '5']);
    queue.flushAll();
  });
});
