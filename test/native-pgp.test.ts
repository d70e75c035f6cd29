/**
 * The native OpenPGP path (src/pgp/native, docs/protocol.md "The native OpenPGP path") as a
 * cryptographic component, in process, with OpenPGP.js as the oracle:
 * 1. differential properties (fast-check): native messages and signatures read by OpenPGP.js, and
 *    OpenPGP.js ones read natively; mutated messages and signatures (binary and armored text) get
 *    the same verdict natively and from OpenPGP.js; times around key, subkey and signature expiry;
 * 2. known-answer vectors (test/vectors/native-pgp.json, made by test/vectors/native-pgp-generate.ts
 *    from the keys in test/fixtures/native-pgp/) recomputed byte for byte, and their negatives;
 * 3. the primitives: RFC 3394 §4.1 through both forms, node and browser forms equal on random input;
 * 4. edge cases: MPIs with leading zero octets, a short Cv25519 secret, other KDF parameters, several
 *    and expired / revoked encryption subkeys, RSA keys.
 * Every disagreement is collected with its input and reported at once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import * as openpgp from 'openpgp';
import { checkArmor } from '../src/pgp/armor.js';
import { PGP_CONFIG, PGP_FULL_CONFIG } from '../src/pgp/config.js';
import { acceptPublicKey } from '../src/pgp/key-policy.js';
import {
  decryptAndVerify,
  encryptAndSign,
  readPublicKey,
  signDetached,
  verifyDetached,
} from '../src/pgp/messages.js';
import { type NativeSecretKey, nativeView } from '../src/pgp/native/keys.js';
import { encryptAndSignNative, messageRecipient } from '../src/pgp/native/message.js';
import {
  nativeCheckSignature,
  nativeDecryptAndVerify,
  nativeEncrypt,
  nativeSignDetached,
  readNativeSignature,
} from '../src/pgp/native/operations.js';
import {
  armor,
  dearmor,
  writeMpi as nativeMpi,
  readMpi,
  readPackets,
  writePacket,
} from '../src/pgp/native/packets.js';
import * as nodePrimitives from '../src/pgp/native/primitives.js';
import * as browserPrimitives from '../src/pgp/native/primitives-browser.js';
import { makeSignature, parseSignature } from '../src/pgp/native/signature.js';
import { concatBytes } from '../src/protocol/bytes.js';
import { ed25519Sign, x25519KeyPair, x25519SharedSecret } from '../src/protocol/crypto/node.js';
import { isKlError } from '../src/protocol/errors.js';
import {
  hex,
  nativeAgrees,
  nativeDecryptVerdict,
  nativeOpenSealedVerdict,
  nativeVerifiesAt,
  nativeVerifyVerdict,
  openpgpDecryptVerdict,
  openpgpOpenSealedVerdict,
  openpgpVerifiesAt,
  openpgpVerifyVerdict,
  publicDecryptVerdict,
  publicOpenSealedVerdict,
  publicVerifyVerdict,
  unhex,
} from './support/native-pgp-oracle.js';
import {
  counting,
  type FixtureName,
  fixtureKey,
  KEYS_CREATED,
  tamperInnerSignature,
  VECTORS_CREATED,
} from './vectors/native-pgp-generate.js';

const HOUR = 3_600_000;
const NOW = KEYS_CREATED + 24 * HOUR;
const SEED = Number(process.env.KEYLEDGER_NATIVE_PGP_SEED ?? Date.now() % 1_000_000);
const RUNS = Number(process.env.KEYLEDGER_NATIVE_PGP_RUNS ?? 100);
const fcOptions = (numRuns = RUNS) => ({ numRuns, seed: SEED, endOnFailure: true });

let alice: openpgp.PrivateKey;
let bob: openpgp.PrivateKey;
let carol: openpgp.PrivateKey;
before(async () => {
  [alice, bob, carol] = await Promise.all([fixtureKey('alice'), fixtureKey('bob'), fixtureKey('carol')]);
});

/** A disagreement, recorded with everything needed to replay it. */
interface Discrepancy {
  what: string;
  input: string;
  native?: string;
  public?: string;
  oracle: string;
}

function report(found: Discrepancy[]): void {
  if (found.length === 0) return;
  // verdicts first, the (long) input last
  const shown = found
    .slice(0, 8)
    .map(({ input, ...verdicts }) => `${JSON.stringify(verdicts)}\n  input: ${JSON.stringify(input)}`)
    .join('\n');
  assert.fail(`${found.length} disagreement(s) with OpenPGP.js (seed ${SEED}):\n${shown}`);
}

async function openpgpSign(data: Uint8Array, key: openpgp.PrivateKey, date: number): Promise<string> {
  return (await openpgp.sign({
    message: await openpgp.createMessage({ binary: data }),
    signingKeys: key,
    detached: true,
    format: 'armored',
    date: new Date(date),
    config: PGP_CONFIG,
  })) as string;
}

/** A message OpenPGP.js makes, as encryptAndSign's fallback does. */
async function openpgpEncrypt(
  data: Uint8Array,
  recipient: openpgp.PublicKey,
  signer: openpgp.PrivateKey,
  date: number,
): Promise<string> {
  return (await openpgp.encrypt({
    message: await openpgp.createMessage({ binary: data, format: 'binary' }),
    encryptionKeys: recipient,
    signingKeys: signer,
    format: 'armored',
    date: new Date(date),
    config: PGP_CONFIG,
  })) as string;
}

/**
 * A detached signature made by OpenPGP.js's own SignaturePacket with the given settings (the
 * signature expiration time subpacket, RFC 9580 §5.2.3.18, which `openpgp.sign` cannot set).
 */
async function packetSignature(
  data: Uint8Array,
  keyPacket: openpgp.SecretKeyPacket | openpgp.SecretSubkeyPacket,
  created: number,
  expiresSeconds: number,
): Promise<string> {
  const literal = new openpgp.LiteralDataPacket();
  (literal as unknown as { setBytes(b: Uint8Array, f: number): void }).setBytes(
    data,
    openpgp.enums.literal.binary,
  );
  const signature = new openpgp.SignaturePacket();
  signature.signatureType = openpgp.enums.signature.binary;
  signature.publicKeyAlgorithm = keyPacket.algorithm;
  signature.hashAlgorithm = openpgp.enums.hash.sha512;
  signature.issuerKeyID = keyPacket.getKeyID();
  signature.issuerFingerprint = keyPacket.getFingerprintBytes()!;
  signature.issuerKeyVersion = 4;
  signature.signatureExpirationTime = expiresSeconds;
  signature.signatureNeverExpires = expiresSeconds === 0;
  await (
    signature as unknown as {
      sign(k: unknown, d: unknown, t: Date, detached: boolean, c: openpgp.Config): Promise<void>;
    }
  ).sign(keyPacket, literal, new Date(created), true, PGP_FULL_CONFIG);
  const list = new openpgp.PacketList();
  list.push(signature);
  return openpgp.armor(openpgp.enums.armor.signature, list.write(), undefined, undefined, undefined, true);
}

/** A fresh key made by OpenPGP.js at `date` with the given subkey options. */
async function freshKey(
  name: string,
  options: { date?: number; keyExpirationTime?: number; subkeys?: openpgp.SubkeyOptions[] } = {},
): Promise<openpgp.PrivateKey> {
  const { privateKey } = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [{ name, email: `${name}@native-pgp.test` }],
    date: new Date(options.date ?? KEYS_CREATED),
    format: 'object',
    ...(options.keyExpirationTime ? { keyExpirationTime: options.keyExpirationTime } : {}),
    ...(options.subkeys ? { subkeys: options.subkeys } : {}),
    config: { v6Keys: false, aeadProtect: false },
  });
  return privateKey;
}

/** Key ID (hex) of the PKESK of an armored message. */
function pkeskKeyId(armored: string): string {
  return hex(readPackets(dearmor(armored, 'MESSAGE')!, 2)![0]!.body.subarray(1, 9));
}

const payload = fc.uint8Array({ minLength: 0, maxLength: 2000 });

/** readPublicKey's envelope check (src/pgp/armor.ts). */
function checkArmorForKey(armored: string): void {
  checkArmor(armored, 'PUBLIC KEY BLOCK', 'KL_KEY_MALFORMED', 'public key');
}

describe('native path vs OpenPGP.js: round trips (fast-check)', () => {
  it('native encryptAndSign → OpenPGP.js decrypts and verifies the signature', async () => {
    const found: Discrepancy[] = [];
    await fc.assert(
      fc.asyncProperty(payload, async (data) => {
        const armored = await nativeEncrypt(data, bob.toPublic(), alice, NOW);
        assert.ok(armored, 'the default profile takes the native path');
        const message = await openpgp.readMessage({ armoredMessage: armored, config: PGP_CONFIG });
        const result = await openpgp.decrypt({
          message,
          decryptionKeys: bob,
          verificationKeys: alice.toPublic(),
          expectSigned: true,
          format: 'binary',
          date: new Date(NOW),
          config: { ...PGP_CONFIG, allowUnauthenticatedMessages: false },
        });
        await result.signatures[0]!.verified;
        if (hex(result.data as Uint8Array) !== hex(data))
          found.push({
            what: 'native → OpenPGP.js data',
            input: armored,
            oracle: hex(result.data as Uint8Array),
          });
        assert.equal(result.signatures[0]!.keyID.toHex(), alice.getKeyID().toHex());
        // the native reader takes it back too
        const back = await nativeDecryptAndVerify(armored, bob, alice.toPublic(), NOW);
        assert.equal(back && hex(back), hex(data));
      }),
      fcOptions(),
    );
    report(found);
  });

  it('OpenPGP.js detached signatures are read natively and accepted (the native path, not a fallback)', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (data) => {
        const armored = await openpgpSign(data, alice, NOW);
        const signature = readNativeSignature(armored);
        assert.ok(signature, 'an OpenPGP.js signature (with its salt notation) is read natively');
        assert.equal(await nativeCheckSignature(signature, data, alice.toPublic(), NOW), true);
        assert.equal(
          await nativeCheckSignature(signature, Uint8Array.of(...data, 0), alice.toPublic(), NOW),
          false,
        );
        assert.equal(
          (
            await verifyDetached({
              data,
              armoredSignature: armored,
              key: alice.toPublic(),
              now: new Date(NOW),
            })
          ).getTime(),
          NOW,
        );
      }),
      fcOptions(),
    );
  });

  it('native detached signatures verify in OpenPGP.js', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (data) => {
        const armored = await nativeSignDetached(data, alice, NOW);
        assert.ok(armored);
        assert.equal(await openpgpVerifiesAt(armored, data, alice.toPublic(), NOW), true);
        assert.equal(
          await openpgpVerifiesAt(armored, Uint8Array.of(...data, 1), alice.toPublic(), NOW),
          false,
        );
      }),
      fcOptions(),
    );
  });

  it('OpenPGP.js encrypt+sign → nativeDecryptAndVerify returns the data (native path)', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (data) => {
        const armored = await openpgpEncrypt(data, bob.toPublic(), alice, NOW);
        const out = await nativeDecryptAndVerify(armored, bob, alice.toPublic(), NOW);
        assert.notEqual(out, undefined, 'an OpenPGP.js message of the default profile is read natively');
        assert.equal(out && hex(out), hex(data));
      }),
      fcOptions(),
    );
  });
});

/** A mutation of bytes or text, described for the report. */
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; bytes: Uint8Array }
  | { kind: 'set'; at: number; value: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('extend' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  },
);

function mutateBytes(bytes: Uint8Array, m: Mutation): Uint8Array {
  const out = Uint8Array.from(bytes);
  if (m.kind === 'extend') return Uint8Array.of(...bytes, ...m.bytes);
  if (bytes.length === 0) return out;
  const at = m.at % bytes.length;
  if (m.kind === 'truncate') return out.subarray(0, at);
  if (m.kind === 'flip') out[at] = out[at]! ^ (1 << m.bit);
  else out[at] = m.value;
  return out;
}

const TEXT_CHARS = [...'ABZaz09+/=-: \t\r\n\u00a0', 'é'];
function mutateText(text: string, m: Mutation): string {
  if (m.kind === 'extend') return text + [...m.bytes].map((b) => TEXT_CHARS[b % TEXT_CHARS.length]).join('');
  const at = m.at % text.length;
  if (m.kind === 'truncate') return text.slice(0, at) + text.slice(at + 1);
  const char =
    m.kind === 'flip'
      ? TEXT_CHARS[(m.at >> 4) % TEXT_CHARS.length]!
      : TEXT_CHARS[m.value % TEXT_CHARS.length]!;
  return m.kind === 'flip'
    ? text.slice(0, at) + char + text.slice(at + 1)
    : text.slice(0, at) + char + text.slice(at);
}

/** Mutations biased to the signature packet of a signed message's unhashed area and MPIs. */
describe('native path vs OpenPGP.js: mutated inputs get the same verdict', () => {
  const level = fc.constantFrom('binary' as const, 'text' as const);

  it('encrypted messages (native and OpenPGP.js made), mutated: same verdict as OpenPGP.js', async () => {
    const found: Discrepancy[] = [];
    let nativeDecided = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.boolean(),
        level,
        fc.array(mutation, { minLength: 1, maxLength: 2 }),
        async (data, byOpenpgp, lvl, mutations) => {
          const original = byOpenpgp
            ? await openpgpEncrypt(data, bob.toPublic(), alice, NOW - 60_000)
            : (await nativeEncrypt(data, bob.toPublic(), alice, NOW - 60_000))!;
          let armored: string;
          if (lvl === 'binary') {
            let bytes = dearmor(original, 'MESSAGE')!;
            for (const m of mutations) bytes = mutateBytes(bytes, m);
            armored = armor('MESSAGE', bytes);
          } else {
            armored = original;
            for (const m of mutations) armored = mutateText(armored, m);
          }
          const oracle = await openpgpDecryptVerdict(armored, bob, alice.toPublic(), NOW);
          const pub = await publicDecryptVerdict(armored, bob, alice.toPublic(), NOW);
          const native = await nativeDecryptVerdict(armored, bob, alice.toPublic(), NOW);
          if (native !== 'fallback') nativeDecided++;
          if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_DECRYPTION_FAILED'))
            found.push({
              what: `message ${lvl} ${JSON.stringify(mutations)}`,
              input: armored,
              native,
              public: pub,
              oracle,
            });
        },
      ),
      fcOptions(RUNS * 3),
    );
    assert.ok(nativeDecided > 0, 'some mutated messages are decided natively');
    report(found);
  });

  it('detached signatures (native and OpenPGP.js made), mutated: same verdict as OpenPGP.js', async () => {
    const found: Discrepancy[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.boolean(),
        level,
        fc.array(mutation, { minLength: 1, maxLength: 2 }),
        async (data, byOpenpgp, lvl, mutations) => {
          const original = byOpenpgp
            ? await openpgpSign(data, alice, NOW - 60_000)
            : (await nativeSignDetached(data, alice, NOW - 60_000))!;
          let armored: string;
          if (lvl === 'binary') {
            let bytes = dearmor(original, 'SIGNATURE')!;
            for (const m of mutations) bytes = mutateBytes(bytes, m);
            armored = armor('SIGNATURE', bytes);
          } else {
            armored = original;
            for (const m of mutations) armored = mutateText(armored, m);
          }
          const oracle = await openpgpVerifyVerdict(armored, data, alice.toPublic(), NOW);
          const pub = await publicVerifyVerdict(armored, data, alice.toPublic(), NOW);
          const native = await nativeVerifyVerdict(armored, data, alice.toPublic(), NOW);
          if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_SIGNATURE_INVALID'))
            found.push({
              what: `signature ${lvl} ${JSON.stringify(mutations)}`,
              input: `${hex(data)} ${armored}`,
              native,
              public: pub,
              oracle,
            });
        },
      ),
      fcOptions(RUNS * 4),
    );
    report(found);
  });

  it('armor variants (headers, line endings, wrapping, checksums, surrounding text): same verdict', async () => {
    /** Re-wraps the base64 body of `armored` with `width` characters per line. */
    const rewrap = (armored: string, width: number) => {
      const lines = armored.trimEnd().split('\n');
      const checksum = lines.at(-2)!.startsWith('=') ? lines.at(-2)! : undefined;
      const body = lines.slice(2, checksum ? -2 : -1).join('');
      const wrapped = body.match(new RegExp(`.{1,${width}}`, 'g'))!;
      return [lines[0], '', ...wrapped, ...(checksum ? [checksum] : []), lines.at(-1)].join('\n');
    };
    const variants: [string, (a: string) => string][] = [
      ['as made', (a) => a],
      [
        'Version and Comment headers',
        (a) => a.replace('-----\n\n', '-----\nVersion: x 1.0\nComment: hello\n\n'),
      ],
      ['an unknown header', (a) => a.replace('-----\n\n', '-----\nFoo: bar\n\n')],
      ['a malformed header line', (a) => a.replace('-----\n\n', '-----\nnot a header\n\n')],
      ['CRLF line endings', (a) => a.replace(/\n/g, '\r\n')],
      ['trailing spaces and tabs', (a) => a.replace(/\n/g, ' \t\n')],
      ['no checksum line', (a) => a.replace(/\n=[A-Za-z0-9+/]{4}\n/, '\n')],
      ['a wrong checksum', (a) => a.replace(/\n=[A-Za-z0-9+/]{4}\n/, '\n=AAAA\n')],
      ['a checksum line of 3 characters', (a) => a.replace(/\n=[A-Za-z0-9+/]{4}\n/, '\n=AAA\n')],
      ['wrapped at 76', (a) => rewrap(a, 76)],
      ['wrapped at 5', (a) => rewrap(a, 5)],
      ['one long line', (a) => rewrap(a, 100_000)],
      ['text before and after', (a) => `hello\n\n${a}\nbye\n`],
      ['no blank line after BEGIN', (a) => a.replace('-----\n\n', '-----\n')],
      ['two blank lines after BEGIN', (a) => a.replace('-----\n\n', '-----\n\n\n')],
      ['a blank line inside the body', (a) => a.replace(/\n([A-Za-z0-9+/]{20})/, '\n\n$1')],
      ['a space inside a body line', (a) => a.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1 ')],
      ['a leading space on a body line', (a) => a.replace(/\n([A-Za-z0-9+/]{10})/, '\n $1')],
      ['a NBSP "blank" line', (a) => a.replace('-----\n\n', '-----\n\u00a0\n')],
      ['URL-safe base64 characters', (a) => a.replace(/\+/g, '-').replace(/\//g, '_')],
      ['a stray = inside the body', (a) => a.replace(/\n([A-Za-z0-9+/]{8})/, '\n$1=')],
      ['an invalid character in the body', (a) => a.replace(/\n([A-Za-z0-9+/]{8})/, '\n$1*')],
      ['the body without padding', (a) => a.replace(/=+\n(=[A-Za-z0-9+/]{4}\n)?-----END/, '\n$1-----END')],
      ['CR-only line endings', (a) => a.replace(/\n/g, '\r')],
    ];
    const found: Discrepancy[] = [];
    for (const size of [0, 1, 2, 3, 100, 1000]) {
      const data = counting(size, size);
      const message = (await nativeEncrypt(data, bob.toPublic(), alice, NOW - 60_000))!;
      const signature = (await nativeSignDetached(data, alice, NOW - 60_000))!;
      const openpgpSignature = await openpgpSign(data, alice, NOW - 60_000);
      for (const [what, variant] of variants) {
        const m = variant(message);
        const m1 = await openpgpDecryptVerdict(m, bob, alice.toPublic(), NOW);
        const m2 = await publicDecryptVerdict(m, bob, alice.toPublic(), NOW);
        const m3 = await nativeDecryptVerdict(m, bob, alice.toPublic(), NOW);
        if (m2 !== m1 || !nativeAgrees(m3, m1, 'KL_DECRYPTION_FAILED'))
          found.push({ what: `message ${size} B, ${what}`, input: m, native: m3, public: m2, oracle: m1 });
        for (const sig of [signature, openpgpSignature]) {
          const s = variant(sig);
          const s1 = await openpgpVerifyVerdict(s, data, alice.toPublic(), NOW);
          const s2 = await publicVerifyVerdict(s, data, alice.toPublic(), NOW);
          const s3 = await nativeVerifyVerdict(s, data, alice.toPublic(), NOW);
          if (s2 !== s1 || !nativeAgrees(s3, s1, 'KL_SIGNATURE_INVALID'))
            found.push({
              what: `signature ${size} B, ${what}`,
              input: s,
              native: s3,
              public: s2,
              oracle: s1,
            });
        }
      }
    }
    report(found);
  });

  it('structural variants of a message (outer and inner packets re-sealed with a valid MDC): same verdict', async () => {
    const made = NOW - 60_000;
    const signer = (await nativeView(alice).signingKey(made))!;
    const carolSigner = (await nativeView(carol).signingKey(made))!;
    const toBob = (await nativeView(bob.toPublic()).encryptionKey(made))!;
    const toCarol = (await nativeView(carol.toPublic()).encryptionKey(made))!;
    const data = counting(300, 11);
    const randomness = { sessionKey: counting(32, 1), prefix: counting(16, 2), ephemeral: counting(32, 3) };
    const base = encryptAndSignNative({ data, recipient: toBob, signer, created: made, randomness });
    const [pkesk, seipd] = readPackets(base, 2)!;
    const carolPkesk = readPackets(
      encryptAndSignNative({ data, recipient: toCarol, signer, created: made, randomness }),
      2,
    )![0]!;
    const plain = nodePrimitives.aesCfbDecrypt(randomness.sessionKey, seipd!.body.subarray(1));
    const prefix = plain.subarray(0, 18);
    const [ops, literal, signature] = readPackets(plain.subarray(18, plain.length - 22), 3)!;
    const reseal = (inner: Uint8Array, outerPkesk = writePacket(1, pkesk!.body)) => {
      const body = concatBytes(prefix, inner, Uint8Array.of(0xd3, 0x14));
      const sealed = concatBytes(body, nodePrimitives.digest(2, [body])!);
      return concatBytes(
        outerPkesk,
        writePacket(
          18,
          concatBytes(Uint8Array.of(1), nodePrimitives.aesCfbEncrypt(randomness.sessionKey, sealed)),
        ),
      );
    };
    const legacy = (tag: number, body: Uint8Array) =>
      concatBytes(Uint8Array.of(0x80 | (tag << 2) | 1, body.length >> 8, body.length & 0xff), body);
    const opsBody = (type: number, keyId: Uint8Array, last: number) =>
      Uint8Array.of(3, type, 10, 22, ...keyId, last);
    const lit = (format: number, name: string, date: number, bytes: Uint8Array) =>
      writePacket(
        11,
        concatBytes(Uint8Array.of(format, name.length), new TextEncoder().encode(name), u32(date), bytes),
      );
    const sig = (type = 0, by = signer, at = made, over = data) =>
      writePacket(2, makeSignature(over, by, at, type));
    const O = writePacket(4, ops!.body);
    const L = writePacket(11, literal!.body);
    const S = writePacket(2, signature!.body);
    const variants: [string, Uint8Array][] = [
      ['as made', base],
      ['re-sealed unchanged', reseal(concatBytes(O, L, S))],
      ['literal format t', reseal(concatBytes(O, lit(0x74, '', made / 1000, data), S))],
      ['literal format u', reseal(concatBytes(O, lit(0x75, '', made / 1000, data), S))],
      [
        'literal with a file name and another date',
        reseal(concatBytes(O, lit(0x62, 'x.bin', 12345, data), S)),
      ],
      ['one-pass "not last" flag', reseal(concatBytes(writePacket(4, opsBody(0, signer.keyId, 0)), L, S))],
      [
        'one-pass names another key',
        reseal(concatBytes(writePacket(4, opsBody(0, carolSigner.keyId, 1)), L, S)),
      ],
      ['no one-pass signature', reseal(concatBytes(L, S))],
      ['signature before the literal', reseal(concatBytes(S, L))],
      [
        'two one-pass signatures and signatures',
        reseal(concatBytes(writePacket(4, opsBody(0, signer.keyId, 0)), O, L, S, S)),
      ],
      [
        'a padding packet after the signature',
        reseal(concatBytes(O, L, S, writePacket(21, new Uint8Array(8)))),
      ],
      [
        'a marker packet first inside',
        reseal(concatBytes(writePacket(10, Uint8Array.of(0x50, 0x47, 0x50)), O, L, S)),
      ],
      [
        'legacy headers inside',
        reseal(concatBytes(legacy(4, ops!.body), legacy(11, literal!.body), legacy(2, signature!.body))),
      ],
      [
        'signed by carol',
        reseal(concatBytes(writePacket(4, opsBody(0, carolSigner.keyId, 1)), L, sig(0, carolSigner))),
      ],
      ['a text signature', reseal(concatBytes(writePacket(4, opsBody(1, signer.keyId, 1)), L, sig(1)))],
      ['signed an hour after now', reseal(concatBytes(O, L, sig(0, signer, NOW + HOUR)))],
      ['signed before the key existed', reseal(concatBytes(O, L, sig(0, signer, KEYS_CREATED - HOUR)))],
      ['signature over other data', reseal(concatBytes(O, L, sig(0, signer, made, Uint8Array.of(1))))],
      ['an uncompressed "compressed" packet', reseal(writePacket(8, concatBytes(Uint8Array.of(0), O, L, S)))],
      ['the literal cut short', reseal(concatBytes(O, writePacket(11, literal!.body.subarray(0, 5)), S))],
      ['the literal alone (sealed)', reseal(L)],
      ['the literal alone, format t', reseal(lit(0x74, '', made / 1000, data))],
      ['two literals', reseal(concatBytes(L, L))],
      ['the literal and a padding packet', reseal(concatBytes(L, writePacket(21, new Uint8Array(3))))],
      ['the literal and a signature', reseal(concatBytes(L, S))],
      ['nothing inside', reseal(new Uint8Array(0))],
      [
        'a marker packet before the PKESK',
        concatBytes(writePacket(10, Uint8Array.of(0x50, 0x47, 0x50)), base),
      ],
      ['a padding packet after the SEIPD', concatBytes(base, writePacket(21, new Uint8Array(4)))],
      ['a second PKESK (to carol, same session key)', concatBytes(writePacket(1, carolPkesk.body), base)],
      ['the PKESK to carol only', concatBytes(writePacket(1, carolPkesk.body), writePacket(18, seipd!.body))],
      [
        'a wildcard key ID in the PKESK',
        concatBytes(
          writePacket(1, Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0, 0, ...pkesk!.body.subarray(9))),
          writePacket(18, seipd!.body),
        ),
      ],
      ['a legacy-header PKESK', concatBytes(legacy(1, pkesk!.body), writePacket(18, seipd!.body))],
      ['SEIPD before PKESK', concatBytes(writePacket(18, seipd!.body), writePacket(1, pkesk!.body))],
      [
        "a PKESK naming bob's primary key",
        concatBytes(
          writePacket(1, Uint8Array.of(3, ...unhex(bob.getKeyID().toHex()), ...pkesk!.body.subarray(9))),
          writePacket(18, seipd!.body),
        ),
      ],
    ];
    const found: Discrepancy[] = [];
    const decidedBy = new Map<string, string>();
    for (const [what, bytes] of variants) {
      const armored = armor('MESSAGE', bytes);
      for (const [decryptor, name] of [
        [bob, 'bob'],
        [carol, 'carol'],
      ] as const) {
        const oracle = await openpgpDecryptVerdict(armored, decryptor, alice.toPublic(), NOW);
        const pub = await publicDecryptVerdict(armored, decryptor, alice.toPublic(), NOW);
        const native = await nativeDecryptVerdict(armored, decryptor, alice.toPublic(), NOW);
        decidedBy.set(`${what} (${name})`, `${native.slice(0, 12)} / ${oracle.slice(0, 12)}`);
        if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_DECRYPTION_FAILED'))
          found.push({ what: `${what}, decrypted by ${name}`, input: armored, native, public: pub, oracle });
        const sealedOracle = await openpgpOpenSealedVerdict(armored, decryptor, NOW);
        const sealedPub = await publicOpenSealedVerdict(armored, decryptor, NOW);
        const sealedNative = await nativeOpenSealedVerdict(armored, decryptor);
        if (sealedPub !== sealedOracle || !nativeAgrees(sealedNative, sealedOracle, 'KL_DECRYPTION_FAILED'))
          found.push({
            what: `openSealed: ${what}, by ${name}`,
            input: armored,
            native: sealedNative,
            public: sealedPub,
            oracle: sealedOracle,
          });
      }
    }
    assert.equal(
      decidedBy.get('re-sealed unchanged (bob)'),
      `ok:${hex(data).slice(0, 9)} / ok:${hex(data).slice(0, 9)}`,
    );
    report(found);
  });

  it('PKESK variants (padding, session-key algorithm and size, checksum) wrapped for real: same verdict', async () => {
    const made = NOW - 60_000;
    const signer = (await nativeView(alice).signingKey(made))!;
    const recipient = (await nativeView(bob.toPublic()).encryptionKey(made))!;
    const data = counting(100, 4);
    // the inner packets of a native message, re-sealed under any session key
    const inner = (() => {
      const randomness = { sessionKey: counting(32, 1), prefix: counting(16, 2), ephemeral: counting(32, 3) };
      const base = encryptAndSignNative({ data, recipient, signer, created: made, randomness });
      const plain = nodePrimitives.aesCfbDecrypt(
        randomness.sessionKey,
        readPackets(base, 2)![1]!.body.subarray(1),
      );
      return plain.subarray(0, plain.length - 22);
    })();
    const seipd = (key: Uint8Array) => {
      const body = concatBytes(inner, Uint8Array.of(0xd3, 0x14));
      return writePacket(
        18,
        concatBytes(
          Uint8Array.of(1),
          nodePrimitives.aesCfbEncrypt(key, concatBytes(body, nodePrimitives.digest(2, [body])!)),
        ),
      );
    };
    /** A v3 PKESK to bob wrapping `m` exactly as given (RFC 9580 §11.5 KDF, RFC 3394 wrap). */
    /** `lowOrder`: an ephemeral point of small order (RFC 7748 §6.1), so the shared secret is all zero. */
    const pkesk = (m: Uint8Array, lowOrder?: Uint8Array) => {
      const ephemeral = lowOrder ? { publicKey: lowOrder } : x25519KeyPair(counting(32, 77));
      const zb = lowOrder
        ? new Uint8Array(32)
        : x25519SharedSecret((ephemeral as ReturnType<typeof x25519KeyPair>).privateKey, recipient.publicKey);
      const param = concatBytes(
        Uint8Array.of(10, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01, 18),
        recipient.kdf!.params,
        new TextEncoder().encode('Anonymous Sender    '),
        recipient.fingerprint,
      );
      const kek = nodePrimitives.digest(8, [u32(1), zb, param])!.subarray(0, 16);
      const wrapped = nodePrimitives.aesKeyWrap(kek, m);
      return writePacket(
        1,
        concatBytes(
          Uint8Array.of(3),
          recipient.keyId,
          Uint8Array.of(18),
          nativeMpi(Uint8Array.of(0x40, ...ephemeral.publicKey)),
          Uint8Array.of(wrapped.length),
          wrapped,
        ),
      );
    };
    const sum = (key: Uint8Array) => {
      const total = key.reduce((a, b) => (a + b) & 0xffff, 0);
      return Uint8Array.of(total >> 8, total & 0xff);
    };
    const pad = (m: Uint8Array, n: number) => concatBytes(m, new Uint8Array(n).fill(n));
    const k32 = counting(32, 50);
    const k16 = counting(16, 60);
    const k24 = counting(24, 70);
    const variants: [string, Uint8Array][] = [
      [
        'AES-256, padded 5 (as made)',
        concatBytes(pkesk(pad(Uint8Array.of(9, ...k32, ...sum(k32)), 5)), seipd(k32)),
      ],
      [
        'AES-256, padded 13 (PKCS#5 pad above 8)',
        concatBytes(pkesk(pad(Uint8Array.of(9, ...k32, ...sum(k32)), 13)), seipd(k32)),
      ],
      ['AES-256, padded 21', concatBytes(pkesk(pad(Uint8Array.of(9, ...k32, ...sum(k32)), 21)), seipd(k32))],
      ['AES-128 session key', concatBytes(pkesk(pad(Uint8Array.of(7, ...k16, ...sum(k16)), 5)), seipd(k16))],
      ['AES-192 session key', concatBytes(pkesk(pad(Uint8Array.of(8, ...k24, ...sum(k24)), 5)), seipd(k24))],
      [
        'AES-256 id with a 16-byte key',
        concatBytes(pkesk(pad(Uint8Array.of(9, ...k16, ...sum(k16)), 5)), seipd(k16)),
      ],
      [
        'AES-128 id with a 32-byte key',
        concatBytes(pkesk(pad(Uint8Array.of(7, ...k32, ...sum(k32)), 5)), seipd(k32)),
      ],
      ['a wrong checksum', concatBytes(pkesk(pad(Uint8Array.of(9, ...k32, 0, 0), 5)), seipd(k32))],
      [
        'a bad pad octet',
        concatBytes(pkesk(Uint8Array.of(9, ...k32, ...sum(k32), 5, 5, 5, 5, 4)), seipd(k32)),
      ],
      [
        'Twofish id (10) with a 32-byte key',
        concatBytes(pkesk(pad(Uint8Array.of(10, ...k32, ...sum(k32)), 5)), seipd(k32)),
      ],
      ['unknown id (100)', concatBytes(pkesk(pad(Uint8Array.of(100, ...k32, ...sum(k32)), 5)), seipd(k32))],
      [
        'a low-order ephemeral (u = 0), wrapped under the all-zero secret',
        concatBytes(pkesk(pad(Uint8Array.of(9, ...k32, ...sum(k32)), 5), new Uint8Array(32)), seipd(k32)),
      ],
      [
        'a low-order ephemeral (u = 1), wrapped under the all-zero secret',
        concatBytes(
          pkesk(pad(Uint8Array.of(9, ...k32, ...sum(k32)), 5), Uint8Array.of(1, ...new Uint8Array(31))),
          seipd(k32),
        ),
      ],
      [
        'the SEIPD under another key',
        concatBytes(pkesk(pad(Uint8Array.of(9, ...k32, ...sum(k32)), 5)), seipd(counting(32, 51))),
      ],
    ];
    const found: Discrepancy[] = [];
    const seen = new Map<string, string>();
    for (const [what, bytes] of variants) {
      const armored = armor('MESSAGE', bytes);
      const oracle = await openpgpDecryptVerdict(armored, bob, alice.toPublic(), NOW);
      const pub = await publicDecryptVerdict(armored, bob, alice.toPublic(), NOW);
      const native = await nativeDecryptVerdict(armored, bob, alice.toPublic(), NOW);
      seen.set(what, `${native.slice(0, 12)} / ${oracle.slice(0, 12)}`);
      if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_DECRYPTION_FAILED'))
        found.push({ what, input: armored, native, public: pub, oracle });
      // the same PKESK opened by openSealed (sealed.ts), which takes the same unwrap
      const sealedOracle = await openpgpOpenSealedVerdict(armored, bob, NOW);
      const sealedPub = await publicOpenSealedVerdict(armored, bob, NOW);
      const sealedNative = await nativeOpenSealedVerdict(armored, bob);
      if (sealedPub !== sealedOracle || !nativeAgrees(sealedNative, sealedOracle, 'KL_DECRYPTION_FAILED'))
        found.push({
          what: `openSealed: ${what}`,
          input: armored,
          native: sealedNative,
          public: sealedPub,
          oracle: sealedOracle,
        });
    }
    assert.equal(
      seen.get('AES-256, padded 5 (as made)'),
      `ok:${hex(data).slice(0, 9)} / ok:${hex(data).slice(0, 9)}`,
    );
    report(found);
  });

  it('every single-bit flip of one native and one OpenPGP.js signature packet: same verdict', async () => {
    const data = counting(64, 9);
    const found: Discrepancy[] = [];
    for (const original of [
      await nativeSignDetached(data, alice, NOW - 60_000),
      await openpgpSign(data, alice, NOW - 60_000),
    ]) {
      const bytes = dearmor(original!, 'SIGNATURE')!;
      for (let at = 0; at < bytes.length; at++) {
        for (let bit = 0; bit < 8; bit++) {
          const armored = armor('SIGNATURE', mutateBytes(bytes, { kind: 'flip', at, bit }));
          const oracle = await openpgpVerifyVerdict(armored, data, alice.toPublic(), NOW);
          const pub = await publicVerifyVerdict(armored, data, alice.toPublic(), NOW);
          const native = await nativeVerifyVerdict(armored, data, alice.toPublic(), NOW);
          if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_SIGNATURE_INVALID'))
            found.push({ what: `flip byte ${at} bit ${bit}`, input: armored, native, public: pub, oracle });
        }
      }
    }
    report(found);
  });

  it('every single-bit flip of the PKESK and packet headers of a native message: same verdict', async () => {
    const data = counting(40, 1);
    const original = (await nativeEncrypt(data, bob.toPublic(), alice, NOW - 60_000))!;
    const bytes = dearmor(original, 'MESSAGE')!;
    const pkeskEnd = 2 + readPackets(bytes, 2)![0]!.body.length;
    const found: Discrepancy[] = [];
    // PKESK (header + body), the SEIPD header and version octet, and the last two octets (MDC).
    const positions = [
      ...Array.from({ length: pkeskEnd + 3 }, (_, i) => i),
      bytes.length - 2,
      bytes.length - 1,
    ];
    for (const at of positions) {
      for (let bit = 0; bit < 8; bit++) {
        const armored = armor('MESSAGE', mutateBytes(bytes, { kind: 'flip', at, bit }));
        const oracle = await openpgpDecryptVerdict(armored, bob, alice.toPublic(), NOW);
        const pub = await publicDecryptVerdict(armored, bob, alice.toPublic(), NOW);
        const native = await nativeDecryptVerdict(armored, bob, alice.toPublic(), NOW);
        if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_DECRYPTION_FAILED'))
          found.push({ what: `flip byte ${at} bit ${bit}`, input: armored, native, public: pub, oracle });
      }
    }
    report(found);
  });
});

/** One subpacket of a crafted signature (RFC 9580 §5.2.3.7). */
interface CraftedSubpacket {
  type: number;
  critical: boolean;
  body: Uint8Array;
  /** Write the length in the five-octet form (legal, not minimal). */
  longLength: boolean;
  hashed: boolean;
}

const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

function subpacketBytes(sub: CraftedSubpacket): Uint8Array {
  const content = Uint8Array.of(sub.type | (sub.critical ? 0x80 : 0), ...sub.body);
  const n = content.length;
  const length = sub.longLength
    ? Uint8Array.of(255, ...u32(n))
    : n < 192
      ? Uint8Array.of(n)
      : Uint8Array.of(((n - 192) >> 8) + 192, (n - 192) & 0xff);
  return Uint8Array.of(...length, ...content);
}

/** A notation (RFC 9580 §5.2.3.24), optionally with lengths that do not match its body. */
function notationBody(name: string, value: Uint8Array, humanReadable: boolean, skew: number): Uint8Array {
  const n = new TextEncoder().encode(name);
  return Uint8Array.of(
    humanReadable ? 0x80 : 0,
    0,
    0,
    0,
    (n.length + skew) >> 8,
    (n.length + skew) & 0xff,
    value.length >> 8,
    value.length & 0xff,
    ...n,
    ...value,
  );
}

/**
 * A v4 signature packet with the given subpackets, hash, type and MPI form, signed with the Ed25519
 * key of `signer` over `data` exactly as RFC 9580 §5.2.4 says, so that only the reading differs.
 */
function craftSignature(
  data: Uint8Array,
  signer: NativeSecretKey,
  o: {
    subpackets: CraftedSubpacket[];
    hash: number;
    type: number;
    /** Pad R to 33 octets / write S with a wrong bit count. */
    mpi: 'minimal' | 'padded' | 'wrongBits';
    left16: 'right' | 'wrong';
  },
): Uint8Array {
  const hashedSubs = concatBytes(...o.subpackets.filter((x) => x.hashed).map(subpacketBytes));
  const unhashedSubs = concatBytes(...o.subpackets.filter((x) => !x.hashed).map(subpacketBytes));
  const hashedPart = Uint8Array.of(
    4,
    o.type,
    22,
    o.hash,
    hashedSubs.length >> 8,
    hashedSubs.length & 0xff,
    ...hashedSubs,
  );
  const digestBytes =
    nodePrimitives.digest(o.hash, [data, hashedPart, Uint8Array.of(4, 0xff), u32(hashedPart.length)]) ??
    new Uint8Array(32);
  const rs = ed25519Sign(signer.secret, digestBytes);
  const r = rs.subarray(0, 32);
  const sv = rs.subarray(32);
  const mpi = (v: Uint8Array, form: typeof o.mpi) => {
    if (form === 'padded') return Uint8Array.of(1, 0, 0, ...v);
    const m = Uint8Array.from(nativeMpi(v));
    if (form === 'wrongBits') m[1] = m[1]! ^ 1;
    return m;
  };
  const left =
    o.left16 === 'right'
      ? digestBytes.subarray(0, 2)
      : Uint8Array.of(digestBytes[0]! ^ 0x80, digestBytes[1]!);
  return writePacket(
    2,
    concatBytes(
      hashedPart,
      Uint8Array.of(unhashedSubs.length >> 8, unhashedSubs.length & 0xff),
      unhashedSubs,
      left,
      mpi(r, o.mpi),
      mpi(sv, o.mpi === 'padded' ? 'minimal' : o.mpi),
    ),
  );
}

describe('native path vs OpenPGP.js: crafted signatures (every subpacket mix the reader might meet)', () => {
  it('properly signed packets with random subpackets, hashes, types and MPI forms: same verdict', async () => {
    const signer = (await nativeView(alice).signingKey(NOW - HOUR))!;
    const fpr = signer.fingerprint;
    const other = (await nativeView(carol).signingKey(NOW - HOUR))!;
    const created = (NOW - HOUR) / 1000;
    const sub = (type: number, body: fc.Arbitrary<Uint8Array>) =>
      fc.record({
        type: fc.constant(type),
        critical: fc.boolean(),
        body,
        longLength: fc.boolean(),
        hashed: fc.boolean(),
      });
    const bytes = (...options: Uint8Array[]) => fc.constantFrom(...options);
    const subpacket: fc.Arbitrary<CraftedSubpacket> = fc.oneof(
      sub(2, bytes(u32(created), u32(created + 7200), u32(0), Uint8Array.of(1, 2, 3))),
      sub(3, bytes(u32(0), u32(1), u32(60), u32(0xffffffff), Uint8Array.of(0, 1))),
      sub(16, bytes(signer.keyId, other.keyId, new Uint8Array(8), signer.keyId.subarray(1))),
      sub(
        33,
        bytes(
          Uint8Array.of(4, ...fpr),
          Uint8Array.of(4, ...other.fingerprint),
          Uint8Array.of(5, ...fpr, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
          Uint8Array.of(4, ...fpr.subarray(1)),
        ),
      ),
      sub(
        20,
        fc
          .record({
            name: fc.constantFrom('salt@notations.openpgpjs.org', 'x@example.org', 'é@example.org', ''),
            value: fc.uint8Array({ maxLength: 20 }),
            human: fc.boolean(),
            skew: fc.constantFrom(0, 0, 0, 1, -1, 300),
          })
          .map((n) => notationBody(n.name, n.value, n.human, n.skew)),
      ),
      sub(20, fc.uint8Array({ maxLength: 7 })),
      sub(
        fc.sample(fc.constantFrom(4, 5, 7, 9, 11, 21, 25, 26, 28, 30, 35, 40, 100, 110), 1)[0]!,
        fc.uint8Array({ maxLength: 6 }),
      ),
      sub(0, fc.uint8Array({ maxLength: 3 })),
    );
    const base: CraftedSubpacket[] = [
      { type: 2, critical: false, body: u32(created), longLength: false, hashed: true },
      { type: 33, critical: false, body: Uint8Array.of(4, ...fpr), longLength: false, hashed: true },
      { type: 16, critical: false, body: signer.keyId, longLength: false, hashed: false },
    ];
    const found: Discrepancy[] = [];
    let nativeDecided = 0;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 64 }),
        fc.oneof({ weight: 3, arbitrary: fc.constant(base) }, { weight: 1, arbitrary: fc.subarray(base) }),
        fc.oneof(
          { weight: 1, arbitrary: fc.constant([]) },
          { weight: 2, arbitrary: fc.array(subpacket, { minLength: 1, maxLength: 2 }) },
        ),
        fc.constantFrom(10, 10, 10, 8, 9, 11, 12, 14, 2, 3, 1, 13),
        fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0x10),
        fc.constantFrom(
          ...([
            'minimal',
            'minimal',
            'minimal',
            'minimal',
            'minimal',
            'minimal',
            'padded',
            'wrongBits',
          ] as const),
        ),
        fc.constantFrom('right' as const, 'right' as const, 'right' as const, 'wrong' as const),
        fc.nat(),
        async (data, kept, extra, hash, type, mpi, left16, position) => {
          const subpackets = [...kept];
          for (const x of extra) subpackets.splice(position % (subpackets.length + 1), 0, x);
          const packet = craftSignature(data, signer, { subpackets, hash, type, mpi, left16 });
          const armored = armor('SIGNATURE', packet);
          const oracle = await openpgpVerifyVerdict(armored, data, alice.toPublic(), NOW);
          const pub = await publicVerifyVerdict(armored, data, alice.toPublic(), NOW);
          const native = await nativeVerifyVerdict(armored, data, alice.toPublic(), NOW);
          if (native !== 'fallback') nativeDecided++;
          if (oracle.startsWith('ok:')) accepted++;
          if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_SIGNATURE_INVALID'))
            found.push({
              what: `crafted signature over ${hex(data)}`,
              input: hex(packet),
              native,
              public: pub,
              oracle,
            });
        },
      ),
      fcOptions(RUNS * 10),
    );
    assert.ok(
      nativeDecided > RUNS && accepted > RUNS / 2,
      `${nativeDecided} decided natively, ${accepted} accepted`,
    );
    report(found);
  });
});

describe('sealed messages (sealTo / openSealed: encrypted, not signed)', () => {
  async function openpgpSeal(data: Uint8Array, recipient: openpgp.PublicKey, date: number): Promise<string> {
    return (await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: data, format: 'binary' }),
      encryptionKeys: recipient,
      format: 'armored',
      date: new Date(date),
      config: PGP_CONFIG,
    })) as string;
  }

  it('native seals open in OpenPGP.js, OpenPGP.js seals open natively (not a fallback)', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (data) => {
        const sealed = (await nativeEncrypt(data, bob.toPublic(), undefined, NOW))!;
        assert.ok(sealed, 'the default profile takes the native path');
        assert.equal(await openpgpOpenSealedVerdict(sealed, bob, NOW), `ok:${hex(data)}`);
        assert.equal(await nativeOpenSealedVerdict(sealed, bob), `ok:${hex(data)}`);
        const byOpenpgp = await openpgpSeal(data, bob.toPublic(), NOW);
        assert.equal(await nativeOpenSealedVerdict(byOpenpgp, bob), `ok:${hex(data)}`);
        // a sealed message is not a signed one: decryptAndVerify refuses it on both paths
        assert.equal(await publicDecryptVerdict(sealed, bob, alice.toPublic(), NOW), 'KL_DECRYPTION_FAILED');
        assert.equal(await nativeDecryptVerdict(sealed, bob, alice.toPublic(), NOW), 'fallback');
      }),
      fcOptions(RUNS / 2),
    );
  });

  it('sealed, signed and OpenPGP.js messages, mutated, opened by openSealed: same verdict as OpenPGP.js', async () => {
    const found: Discrepancy[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.constantFrom('native sealed', 'native signed', 'openpgp sealed', 'openpgp signed'),
        fc.constantFrom('binary' as const, 'text' as const),
        fc.array(mutation, { minLength: 0, maxLength: 2 }),
        async (data, kind, lvl, mutations) => {
          const original =
            kind === 'native sealed'
              ? (await nativeEncrypt(data, bob.toPublic(), undefined, NOW - 60_000))!
              : kind === 'native signed'
                ? (await nativeEncrypt(data, bob.toPublic(), alice, NOW - 60_000))!
                : kind === 'openpgp sealed'
                  ? await openpgpSeal(data, bob.toPublic(), NOW - 60_000)
                  : await openpgpEncrypt(data, bob.toPublic(), alice, NOW - 60_000);
          let armored: string;
          if (lvl === 'binary') {
            let bytes = dearmor(original, 'MESSAGE')!;
            for (const m of mutations) bytes = mutateBytes(bytes, m);
            armored = armor('MESSAGE', bytes);
          } else {
            armored = original;
            for (const m of mutations) armored = mutateText(armored, m);
          }
          const oracle = await openpgpOpenSealedVerdict(armored, bob, NOW);
          const pub = await publicOpenSealedVerdict(armored, bob, NOW);
          const native = await nativeOpenSealedVerdict(armored, bob);
          if (pub !== oracle || !nativeAgrees(native, oracle, 'KL_DECRYPTION_FAILED'))
            found.push({
              what: `${kind} ${lvl} ${JSON.stringify(mutations)}`,
              input: armored,
              native,
              public: pub,
              oracle,
            });
        },
      ),
      fcOptions(RUNS * 2),
    );
    report(found);
  });

  it('more than 4096 bytes sealed: refused as too long on both paths', async () => {
    for (const size of [4096, 4097, 6000]) {
      const data = counting(size, 1);
      const sealed = (await nativeEncrypt(data, bob.toPublic(), undefined, NOW))!;
      const expected = size > 4096 ? 'KL_MESSAGE_MALFORMED' : `ok:${hex(data)}`;
      assert.equal(await openpgpOpenSealedVerdict(sealed, bob, NOW), expected);
      assert.equal(await publicOpenSealedVerdict(sealed, bob, NOW), expected);
    }
  });
});

describe('public keys read through the native armor reader (readPublicKey / readArmoredKey)', () => {
  it('armor variants of a key: the same key, or the same refusal, as OpenPGP.js reading the armor itself', async () => {
    const found: Discrepancy[] = [];
    const variantsOf = (a: string): [string, string][] => [
      ['as made', a],
      ['CRLF', a.replace(/\n/g, '\r\n')],
      ['trailing spaces', a.replace(/\n/g, '  \n')],
      ['Comment header', a.replace('-----\n\n', '-----\nComment: x\n\n')],
      ['no checksum', a.replace(/\n=[A-Za-z0-9+/]{4}\n/, '\n')],
      ['wrong checksum', a.replace(/\n=[A-Za-z0-9+/]{4}\n/, '\n=AAAA\n')],
      ['text around', `before\n${a}after\n`],
      ['no final newline', a.trimEnd()],
      ['one long line', a.replace(/([A-Za-z0-9+/=])\n(?=[A-Za-z0-9+/])/g, '$1')],
      ['a space in the body', a.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1 ')],
      ['a body line with a tab before', a.replace(/\n([A-Za-z0-9+/]{10})/, '\n\t$1')],
      ['an extra blank line', a.replace('-----\n\n', '-----\n\n\n')],
      ['truncated body', a.replace(/\n[A-Za-z0-9+/]{20}/, '\n')],
      ['a body character changed', a.replace(/\n([A-Za-z0-9+/]{30})[A-Za-z]/, '\n$1+')],
      ['the private key armor', a.replace(/PUBLIC KEY BLOCK/g, 'PRIVATE KEY BLOCK')],
    ];
    for (const key of [alice.toPublic(), await fixtureKey('rsa'), await fixtureKey('kdf512')]) {
      for (const [what, armored] of variantsOf(key.armor())) {
        const ours = await readPublicKey(armored).then(
          (k) => `ok:${k.getFingerprint()}:${hex(k.toPacketList().write())}`,
          (e) => (isKlError(e) ? e.code : `throw:${(e as Error).message}`),
        );
        let oracle: string;
        try {
          checkArmorForKey(armored);
          const k = await openpgp.readKey({ armoredKey: armored, config: PGP_CONFIG });
          const pub = k.isPrivate() ? (k as openpgp.PrivateKey).toPublic() : k;
          oracle = `ok:${pub.getFingerprint()}:${hex(pub.toPacketList().write())}`;
        } catch (e) {
          oracle = isKlError(e) ? e.code : 'KL_KEY_MALFORMED';
        }
        if (ours !== oracle)
          found.push({ what: `${key.getFingerprint()} ${what}`, input: armored, public: ours, oracle });
      }
    }
    report(found);
  });
});

describe('native path vs OpenPGP.js: times', () => {
  it('signatures in the future, at the key creation second, before the key, and expired keys', async () => {
    const expiring = await freshKey('expiring', { keyExpirationTime: 3600 });
    const data = counting(32, 5);
    const found: Discrepancy[] = [];
    const signer = (await nativeView(expiring).signingKey(KEYS_CREATED + 1800_000))!;
    const decided = new Set<boolean>();
    const times = [
      KEYS_CREATED - 1000,
      KEYS_CREATED - 1,
      KEYS_CREATED,
      KEYS_CREATED + 1,
      KEYS_CREATED + 999,
      KEYS_CREATED + 1000,
      KEYS_CREATED + 1800_000,
      KEYS_CREATED + HOUR - 1001,
      KEYS_CREATED + HOUR - 1000,
      KEYS_CREATED + HOUR - 1,
      KEYS_CREATED + HOUR,
      KEYS_CREATED + HOUR + 1,
      KEYS_CREATED + HOUR + 1000,
      KEYS_CREATED + 2 * HOUR,
    ];
    for (const created of times) {
      // Crafted natively at any time (the key material is the same), so that OpenPGP.js judges
      // signatures it would not make itself.
      const armored = armor('SIGNATURE', writePacket(2, makeSignature(data, signer, created)));
      for (const at of [...times, KEYS_CREATED + 10 * HOUR]) {
        const oracle = await openpgpVerifiesAt(armored, data, expiring.toPublic(), at);
        const native = await nativeVerifiesAt(armored, data, expiring.toPublic(), at);
        if (native !== undefined) decided.add(native);
        if (native !== undefined && native !== oracle)
          found.push({
            what: `made ${created - KEYS_CREATED} ms after key creation, checked at +${at - KEYS_CREATED}`,
            input: armored,
            native: String(native),
            oracle: String(oracle),
          });
        const pub = await publicVerifyVerdict(armored, data, expiring.toPublic(), at);
        const oraclePublic = await openpgpVerifyVerdict(armored, data, expiring.toPublic(), at);
        if (pub !== oraclePublic)
          found.push({
            what: `verifyDetached: made +${created - KEYS_CREATED}, now +${at - KEYS_CREATED}`,
            input: armored,
            public: pub,
            oracle: oraclePublic,
          });
      }
      // signing at that time: signDetached (native first) vs OpenPGP.js
      const signed = await signDetached(data, expiring, new Date(created)).then(
        (s) => `ok:${readNativeSignature(s)?.created ?? 'openpgp'}`,
        (e) => (isKlError(e) ? e.code : 'throw'),
      );
      const oracleSigned = await openpgpSign(data, expiring, created).then(
        (s) => `ok:${readNativeSignature(s)?.created ?? 'openpgp'}`,
        () => 'throw',
      );
      if (signed !== oracleSigned)
        found.push({
          what: `signDetached at +${created - KEYS_CREATED}`,
          input: '',
          public: signed,
          oracle: oracleSigned,
        });
    }
    assert.deepEqual([...decided].sort(), [false, true], 'the native path decided both ways');
    report(found);
  });

  it('the key-validity cache: random order of signature times and check times agrees with OpenPGP.js', async () => {
    const key = await freshKey('cached', {
      keyExpirationTime: 4 * 3600,
      subkeys: [{ sign: true, keyExpirationTime: 3600 }, {}],
    });
    const pub = key.toPublic();
    const subkeyMaterial = (await nativeView(key).signingKey(KEYS_CREATED + 5000))!;
    assert.equal(
      subkeyMaterial.keyIdHex,
      key.subkeys[0]!.getKeyID().toHex(),
      'the signing subkey signs first',
    );
    const primaryMaterial = (await nativeView(key).signingKey(KEYS_CREATED + 2 * HOUR))!;
    assert.equal(
      primaryMaterial.keyIdHex,
      key.getKeyID().toHex(),
      'the primary signs once the subkey expired',
    );
    const events = [0, HOUR, 4 * HOUR].map((e) => KEYS_CREATED + e);
    const around = events.flatMap((e) => [-2000, -1000, -1, 0, 1, 999, 1000, 1001, 1500].map((d) => e + d));
    const found: Discrepancy[] = [];
    const signatures = new Map<string, string>();
    const decided = new Set<boolean>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...around),
        fc.constantFrom(...around),
        fc.boolean(),
        async (created, at, bySubkey) => {
          const material = bySubkey ? subkeyMaterial : primaryMaterial;
          let armored = signatures.get(`${created} ${bySubkey}`);
          if (!armored) {
            armored = armor('SIGNATURE', writePacket(2, makeSignature(Uint8Array.of(7), material, created)));
            signatures.set(`${created} ${bySubkey}`, armored);
          }
          const oracle = await openpgpVerifiesAt(armored, Uint8Array.of(7), pub, at);
          const native = await nativeVerifiesAt(armored, Uint8Array.of(7), pub, at);
          if (native !== undefined) decided.add(native);
          if (native !== undefined && native !== oracle)
            found.push({
              what: `made by ${material.keyIdHex} +${created - KEYS_CREATED}, checked at +${at - KEYS_CREATED}`,
              input: armored,
              native: String(native),
              oracle: String(oracle),
            });
        },
      ),
      fcOptions(RUNS * 4),
    );
    // and which key signs when: the signing subkey while it is valid, then OpenPGP.js's choice
    for (const at of around.filter((t) => t >= KEYS_CREATED)) {
      const signed = await signDetached(Uint8Array.of(1), key, new Date(at)).then(
        (s) => `ok:${readNativeSignature(s)?.issuerKeyIdHex ?? 'openpgp'}`,
        () => 'throw',
      );
      const oracle = await openpgp
        .sign({
          message: await openpgp.createMessage({ binary: Uint8Array.of(1) }),
          signingKeys: key,
          detached: true,
          date: new Date(at),
          config: PGP_CONFIG,
        })
        .then(
          async (s) =>
            `ok:${(await openpgp.readSignature({ armoredSignature: s as string })).getSigningKeyIDs()[0]!.toHex()}`,
          () => 'throw',
        );
      if (
        signed.startsWith('ok:') && oracle.startsWith('ok:')
          ? signed.replace('openpgp', oracle.slice(3)) !== oracle
          : signed !== oracle
      )
        found.push({ what: `signing key at +${at - KEYS_CREATED}`, input: '', public: signed, oracle });
    }
    assert.deepEqual([...decided].sort(), [false, true], 'the native path decided both ways');
    report(found);
  });

  it('revoked keys (soft: key retired; hard: no reason) and revoked signing subkeys: same verdict at every time', async () => {
    const found: Discrepancy[] = [];
    const decided = new Set<boolean>();
    const revokedAt = KEYS_CREATED + 2 * HOUR;
    const retired = { flag: openpgp.enums.reasonForRevocation.keyRetired, string: 'retired' };
    const noReason = { flag: openpgp.enums.reasonForRevocation.noReason, string: '' };
    // [what, the revoked key, the same key before revocation (its signing material)]
    const keys: [string, openpgp.PrivateKey, NativeSecretKey][] = [];
    for (const [name, reason] of [
      ['retired', retired],
      ['hard', noReason],
    ] as const) {
      const key = await freshKey(`revoked-${name}`);
      const signer = (await nativeView(key).signingKey(KEYS_CREATED + HOUR))!;
      const revoked = await openpgp.revokeKey({
        key,
        reasonForRevocation: reason,
        date: new Date(revokedAt),
        format: 'object',
        config: { v6Keys: false },
      });
      keys.push([`primary ${name}`, revoked.privateKey as openpgp.PrivateKey, signer]);
    }
    const withSub = await freshKey('revoked-sub', { subkeys: [{ sign: true }, {}] });
    const subSigner = (await nativeView(withSub).signingKey(KEYS_CREATED + HOUR))!;
    assert.equal(subSigner.keyIdHex, withSub.subkeys[0]!.getKeyID().toHex());
    withSub.subkeys[0] = await withSub.subkeys[0]!.revoke(
      withSub.keyPacket as openpgp.SecretKeyPacket,
      retired,
      new Date(revokedAt),
    );
    keys.push([
      'signing subkey retired',
      await openpgp.readPrivateKey({ armoredKey: withSub.armor() }),
      subSigner,
    ]);
    for (const [what, key, material] of keys) {
      // every signature is crafted with the key material, whatever OpenPGP.js would sign with then
      const pub = (await openpgp.readKey({ armoredKey: key.toPublic().armor() })) as openpgp.PublicKey;
      for (const created of [
        KEYS_CREATED + HOUR,
        revokedAt - 1000,
        revokedAt,
        revokedAt + 500,
        revokedAt + 1000,
        revokedAt + HOUR,
      ]) {
        const armored = armor(
          'SIGNATURE',
          writePacket(2, makeSignature(Uint8Array.of(3), material, created)),
        );
        for (const at of [created, revokedAt + 2 * HOUR]) {
          const oracle = await openpgpVerifiesAt(armored, Uint8Array.of(3), pub, at);
          const native = await nativeVerifiesAt(armored, Uint8Array.of(3), pub, at);
          if (native !== undefined) decided.add(native);
          if (native !== undefined && native !== oracle)
            found.push({
              what: `${what}: made +${created - KEYS_CREATED}, checked at +${at - KEYS_CREATED}`,
              input: armored,
              native: String(native),
              oracle: String(oracle),
            });
        }
      }
    }
    assert.ok(decided.has(true), 'the native path accepted signatures of the still-valid key');
    report(found);
  });

  it('signature expiration time subpacket: expired signatures agree with OpenPGP.js', async () => {
    const data = counting(16, 3);
    const made = KEYS_CREATED + HOUR;
    const found: Discrepancy[] = [];
    for (const expires of [1, 60, 3600]) {
      const armored = await packetSignature(data, alice.keyPacket as openpgp.SecretKeyPacket, made, expires);
      const native = readNativeSignature(armored);
      assert.ok(native, 'a signature with an expiration time is read natively');
      assert.equal(native.expires, made + expires * 1000);
      for (const at of [
        made,
        made + expires * 1000 - 1,
        made + expires * 1000 - 1000,
        made + expires * 1000,
        made + expires * 1000 + 1,
        made + 10 * expires * 1000,
      ]) {
        const oracle = await openpgpVerifiesAt(armored, data, alice.toPublic(), at);
        const nat = await nativeVerifiesAt(armored, data, alice.toPublic(), at);
        assert.notEqual(nat, undefined);
        if (nat !== oracle)
          found.push({
            what: `expires ${expires}s, checked at +${at - made} ms`,
            input: armored,
            native: String(nat),
            oracle: String(oracle),
          });
        const pub = await publicVerifyVerdict(armored, data, alice.toPublic(), at);
        const oraclePublic = await openpgpVerifyVerdict(armored, data, alice.toPublic(), at);
        if (pub !== oraclePublic)
          found.push({
            what: `verifyDetached expires ${expires}s at +${at - made}`,
            input: armored,
            public: pub,
            oracle: oraclePublic,
          });
      }
    }
    report(found);
  });

  it('encryption after the encryption subkey expired: native never uses it, same outcome as OpenPGP.js', async () => {
    const key = await freshKey('subexp', { subkeys: [{ keyExpirationTime: 3600 }] });
    for (const at of [
      KEYS_CREATED + 1800_000,
      KEYS_CREATED + HOUR - 1,
      KEYS_CREATED + HOUR,
      KEYS_CREATED + 2 * HOUR,
    ]) {
      const oracle = await openpgpEncrypt(Uint8Array.of(1), key.toPublic(), alice, at).then(
        (m) => `ok:${pkeskKeyId(m)}`,
        () => 'throw',
      );
      const native = await nativeEncrypt(Uint8Array.of(1), key.toPublic(), alice, at);
      const pub = await encryptAndSign(Uint8Array.of(1), key.toPublic(), alice, new Date(at)).then(
        (m) => `ok:${pkeskKeyId(m)}`,
        () => 'throw',
      );
      assert.equal(pub, oracle, `encryptAndSign at +${at - KEYS_CREATED}`);
      if (native !== undefined) assert.equal(`ok:${pkeskKeyId(native)}`, oracle);
    }
  });
});

interface MessageVector {
  description: string;
  signer: FixtureName;
  recipient: FixtureName;
  data: string;
  created: string;
  randomness: { sessionKey: string; prefix: string; ephemeral: string };
  message: string;
  negative: { description: string; message: string; decryptWith: FixtureName }[];
}
interface SignatureVector {
  description: string;
  signer: FixtureName;
  data: string;
  created: string;
  signature: string;
  negative: { description: string; signature: string; data: string; verifyWith: FixtureName }[];
}

describe('known-answer vectors (test/vectors/native-pgp.json)', () => {
  const vectors = JSON.parse(readFileSync(new URL('./vectors/native-pgp.json', import.meta.url), 'utf8')) as {
    messages: MessageVector[];
    sealed: Omit<MessageVector, 'signer'>[];
    signatures: SignatureVector[];
  };
  const keys = new Map<FixtureName, openpgp.PrivateKey>();
  const key = async (name: FixtureName) => {
    if (!keys.has(name)) keys.set(name, await fixtureKey(name));
    return keys.get(name)!;
  };

  for (const v of vectors.messages) {
    it(`message: ${v.description}`, async () => {
      const created = Date.parse(v.created);
      assert.equal(created, VECTORS_CREATED);
      const signer = (await nativeView(await key(v.signer)).signingKey(created))!;
      const recipient = (await nativeView((await key(v.recipient)).toPublic()).encryptionKey(created))!;
      assert.ok(signer && recipient);
      const bytes = encryptAndSignNative({
        data: unhex(v.data),
        recipient,
        signer,
        created,
        randomness: {
          sessionKey: unhex(v.randomness.sessionKey),
          prefix: unhex(v.randomness.prefix),
          ephemeral: unhex(v.randomness.ephemeral),
        },
      });
      assert.equal(hex(bytes), v.message);
      const armored = armor('MESSAGE', bytes);
      const now = created + 60_000;
      // OpenPGP.js decrypts and verifies the committed bytes; so do the native and public functions.
      const oracle = await openpgpDecryptVerdict(
        armored,
        await key(v.recipient),
        (await key(v.signer)).toPublic(),
        now,
      );
      assert.equal(oracle, `ok:${v.data}`);
      assert.equal(
        await nativeDecryptVerdict(armored, await key(v.recipient), (await key(v.signer)).toPublic(), now),
        `ok:${v.data}`,
      );
      assert.equal(
        await publicDecryptVerdict(armored, await key(v.recipient), (await key(v.signer)).toPublic(), now),
        `ok:${v.data}`,
      );
      // the tampered inner signature vector is rebuilt from the positive one
      assert.equal(
        hex(tamperInnerSignature(bytes, unhex(v.randomness.sessionKey))),
        v.negative.find((n) => n.description.startsWith('inner'))!.message,
      );
      for (const n of v.negative) {
        const tampered = armor('MESSAGE', unhex(n.message));
        const decryptor = await key(n.decryptWith);
        const signerPublic = (await key(v.signer)).toPublic();
        assert.equal(
          await openpgpDecryptVerdict(tampered, decryptor, signerPublic, now),
          'KL_DECRYPTION_FAILED',
          n.description,
        );
        assert.equal(
          await publicDecryptVerdict(tampered, decryptor, signerPublic, now),
          'KL_DECRYPTION_FAILED',
          n.description,
        );
        const native = await nativeDecryptVerdict(tampered, decryptor, signerPublic, now);
        assert.equal(native, n.decryptWith === v.recipient ? 'reject' : 'fallback', n.description);
      }
    });
  }

  for (const v of vectors.sealed) {
    it(`sealed: ${v.description}`, async () => {
      const created = Date.parse(v.created);
      const recipient = (await nativeView((await key(v.recipient)).toPublic()).encryptionKey(created))!;
      const bytes = encryptAndSignNative({
        data: unhex(v.data),
        recipient,
        created,
        randomness: {
          sessionKey: unhex(v.randomness.sessionKey),
          prefix: unhex(v.randomness.prefix),
          ephemeral: unhex(v.randomness.ephemeral),
        },
      });
      assert.equal(hex(bytes), v.message);
      const armored = armor('MESSAGE', bytes);
      const now = created + 60_000;
      assert.equal(await openpgpOpenSealedVerdict(armored, await key(v.recipient), now), `ok:${v.data}`);
      assert.equal(await nativeOpenSealedVerdict(armored, await key(v.recipient)), `ok:${v.data}`);
      assert.equal(await publicOpenSealedVerdict(armored, await key(v.recipient), now), `ok:${v.data}`);
      for (const n of v.negative) {
        const tampered = armor('MESSAGE', unhex(n.message));
        const decryptor = await key(n.decryptWith);
        assert.equal(
          await openpgpOpenSealedVerdict(tampered, decryptor, now),
          'KL_DECRYPTION_FAILED',
          n.description,
        );
        assert.equal(
          await publicOpenSealedVerdict(tampered, decryptor, now),
          'KL_DECRYPTION_FAILED',
          n.description,
        );
        const native = await nativeOpenSealedVerdict(tampered, decryptor);
        assert.equal(native, n.decryptWith === v.recipient ? 'reject' : 'fallback', n.description);
      }
    });
  }

  for (const v of vectors.signatures) {
    it(`signature: ${v.description}`, async () => {
      const created = Date.parse(v.created);
      const signer = (await nativeView(await key(v.signer)).signingKey(created))!;
      const packet = writePacket(2, makeSignature(unhex(v.data), signer, created));
      assert.equal(hex(packet), v.signature);
      const armored = armor('SIGNATURE', packet);
      assert.equal(armored, await nativeSignDetached(unhex(v.data), await key(v.signer), created));
      const pub = (await key(v.signer)).toPublic();
      assert.equal(await openpgpVerifiesAt(armored, unhex(v.data), pub, created + 1000), true);
      assert.equal(await nativeVerifyVerdict(armored, unhex(v.data), pub, created + 1000), `ok:${created}`);
      for (const n of v.negative) {
        const tampered = armor('SIGNATURE', unhex(n.signature));
        const verifier = (await key(n.verifyWith)).toPublic();
        assert.equal(
          await openpgpVerifyVerdict(tampered, unhex(n.data), verifier, created + 1000),
          'KL_SIGNATURE_INVALID',
          n.description,
        );
        assert.equal(
          await publicVerifyVerdict(tampered, unhex(n.data), verifier, created + 1000),
          'KL_SIGNATURE_INVALID',
          n.description,
        );
        const native = await nativeVerifyVerdict(tampered, unhex(n.data), verifier, created + 1000);
        assert.equal(native, n.verifyWith === v.signer ? 'reject' : 'fallback', n.description);
      }
    });
  }
});

describe('primitives: node and browser forms', () => {
  const forms = [
    ['node', nodePrimitives],
    ['browser', browserPrimitives],
  ] as const;

  for (const [name, p] of forms) {
    it(`RFC 3394 §4.1 key-wrap vector (${name})`, () => {
      const kek = unhex('000102030405060708090a0b0c0d0e0f');
      const data = unhex('00112233445566778899aabbccddeeff');
      const wrapped = p.aesKeyWrap(kek, data);
      assert.equal(hex(wrapped), '1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5');
      assert.equal(hex(p.aesKeyUnwrap(kek, wrapped)!), hex(data));
      const bad = Uint8Array.from(wrapped);
      bad[5] = bad[5]! ^ 1;
      assert.equal(p.aesKeyUnwrap(kek, bad), undefined);
      assert.equal(p.aesKeyUnwrap(kek, wrapped.subarray(0, 16)), undefined);
    });
  }

  it('AES-CFB, key wrap and digests: node form = browser form on random input', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 24, 32),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 0, maxLength: 1000 }),
        fc.constantFrom(2, 8, 9, 10, 11, 12, 14, 1, 3, 13),
        fc.integer({ min: 2, max: 8 }),
        (keyLength, keyBytes, data, hash, blocks) => {
          const key = keyBytes.subarray(0, keyLength);
          const c1 = nodePrimitives.aesCfbEncrypt(key, data);
          assert.equal(hex(c1), hex(browserPrimitives.aesCfbEncrypt(key, data)));
          assert.equal(hex(nodePrimitives.aesCfbDecrypt(key, c1)), hex(data));
          assert.equal(hex(browserPrimitives.aesCfbDecrypt(key, c1)), hex(data));
          const d1 = nodePrimitives.digest(hash, [data, key]);
          const d2 = browserPrimitives.digest(hash, [data, key]);
          assert.equal(d1 && hex(d1), d2 && hex(d2));
          const plain = data.length >= blocks * 8 ? data.subarray(0, blocks * 8) : undefined;
          if (plain) {
            const w = nodePrimitives.aesKeyWrap(key, plain);
            assert.equal(hex(w), hex(browserPrimitives.aesKeyWrap(key, plain)));
            assert.equal(hex(browserPrimitives.aesKeyUnwrap(key, w)!), hex(plain));
          }
        },
      ),
      fcOptions(200),
    );
  });
});

/**
 * A v4 key whose Ed25519 point is the identity (y = 1, a point of small order) with a Cv25519
 * encryption subkey, every self-signature forged without any private key: R = B, S = 1 satisfies
 * S·B = R + k·A for every k when A is the identity (RFC 8032 §5.1.7 without the small-order check).
 */
function smallOrderKey(created: number) {
  const A = new Uint8Array(32);
  A[0] = 1;
  const R = unhex('5866666666666666666666666666666666666666666666666666666666666666');
  const S = new Uint8Array(32);
  S[0] = 1;
  const seconds = Math.floor(created / 1000);
  const keyBody = concatBytes(
    Uint8Array.of(4, ...u32(seconds), 22, 9, 0x2b, 6, 1, 4, 1, 0xda, 0x47, 0x0f, 1),
    nativeMpi(Uint8Array.of(0x40, ...A)),
  );
  const framed = (tag: number, body: Uint8Array) =>
    concatBytes(Uint8Array.of(tag, body.length >> 8, body.length & 0xff), body);
  const fpr = nodePrimitives.digest(2, [framed(0x99, keyBody)])!;
  const keyId = fpr.subarray(12);
  /** A forged v4 signature of `type` over `prefix` (RFC 9580 §5.2.4), made at `at` (s). */
  const forge = (type: number, prefix: Uint8Array, at: number, extra: Uint8Array[] = []) => {
    const hashedSubs = concatBytes(Uint8Array.of(5, 2, ...u32(at), 22, 33, 4), fpr, ...extra);
    const hashedPart = Uint8Array.of(4, type, 22, 10, 0, hashedSubs.length, ...hashedSubs);
    const h = nodePrimitives.digest(10, [
      prefix,
      hashedPart,
      Uint8Array.of(4, 0xff),
      u32(hashedPart.length),
    ])!;
    return writePacket(
      2,
      concatBytes(
        hashedPart,
        Uint8Array.of(0, 10, 9, 16),
        keyId,
        h.subarray(0, 2),
        nativeMpi(R),
        nativeMpi(S),
      ),
    );
  };
  const uid = new TextEncoder().encode('nobody <nobody@native-pgp.test>');
  const subBody = concatBytes(
    Uint8Array.of(4, ...u32(seconds), 18, 10, 0x2b, 6, 1, 4, 1, 0x97, 0x55, 1, 5, 1),
    nativeMpi(Uint8Array.of(0x40, ...counting(32, 9))),
    Uint8Array.of(3, 1, 8, 7),
  );
  const certified = concatBytes(framed(0x99, keyBody), Uint8Array.of(0xb4, ...u32(uid.length)), uid);
  const bound = concatBytes(framed(0x99, keyBody), framed(0x99, subBody));
  const key = concatBytes(
    writePacket(6, keyBody),
    writePacket(13, uid),
    forge(0x13, certified, seconds, [Uint8Array.of(2, 27, 3)]),
    writePacket(14, subBody),
    forge(0x18, bound, seconds, [Uint8Array.of(2, 27, 0x0c)]),
  );
  return {
    armoredKey: openpgp.armor(openpgp.enums.armor.publicKey, key),
    /** A forged detached signature over `data` made at `at` (ms), with extra hashed subpackets. */
    sign: (data: Uint8Array, at: number, extra: Uint8Array[] = []) =>
      armor('SIGNATURE', forge(0, data, Math.floor(at / 1000), extra)),
  };
}

describe('an Ed25519 key of small order (the identity point, signatures forged without a private key)', () => {
  const created = KEYS_CREATED;
  const now = created + 24 * HOUR;
  const data = new TextEncoder().encode('anything at all');
  const signersUid = concatBytes(Uint8Array.of(4, 28), new TextEncoder().encode('abc'));

  it('OpenPGP.js accepts the forged signatures; the native path refuses them (native stricter than the oracle)', async () => {
    const forged = smallOrderKey(created);
    const key = await readPublicKey(forged.armoredKey);
    const signature = forged.sign(data, created + HOUR);
    assert.equal(await openpgpVerifiesAt(signature, data, key, now), true, 'OpenPGP.js (OpenSSL) accepts');
    assert.equal(
      await nativeVerifiesAt(signature, data, key, now),
      false,
      'the native backend refuses small-order keys',
    );
    assert.equal(await publicVerifyVerdict(signature, data, key, now), 'KL_SIGNATURE_INVALID');
  });

  it('the key policy refuses such a key, and forged signatures under one already held are refused by every route of verifyDetached', async () => {
    const forged = smallOrderKey(created);
    const policy = await acceptPublicKey(forged.armoredKey, new Date(now)).then(
      () => 'accepted',
      (e) => (isKlError(e) ? e.code : `throw:${(e as Error).message}`),
    );
    assert.equal(policy, 'KL_KEY_POLICY');
    const key = await readPublicKey(forged.armoredKey);
    const routes: [string, string][] = [
      ['native', forged.sign(data, created + HOUR)],
      ['within a second of the key creation', forged.sign(data, created)],
      ["with a signer's user ID subpacket", forged.sign(data, created + HOUR, [signersUid])],
    ];
    const verdicts = [];
    for (const [route, signature] of routes)
      verdicts.push(`${route}: ${await publicVerifyVerdict(signature, data, key, now)}`);
    assert.deepEqual(
      verdicts,
      routes.map(([route]) => `${route}: KL_SIGNATURE_INVALID`),
    );
  });
});

describe('edge cases', () => {
  it('MPI R or S with leading zero octets: native and OpenPGP.js signatures, both ways', async () => {
    const found = { r: [] as string[], s: [] as string[] };
    const signer = (await nativeView(alice).signingKey(NOW))!;
    for (let i = 0; i < 20_000 && (found.r.length < 2 || found.s.length < 2); i++) {
      const data = Uint8Array.of(i >> 8, i & 0xff);
      const body = makeSignature(data, signer, NOW);
      const sig = parseSignature(body)!;
      const which = sig.rs[0] === 0 ? 'r' : sig.rs[32] === 0 ? 's' : undefined;
      if (!which || found[which].length >= 2) continue;
      const armored = armor('SIGNATURE', writePacket(2, body));
      // the MPIs are written without their leading zero octets (RFC 9580 §3.2)
      const hashedLength = sig.hashed.length - 6;
      const mpisAt = hashedLength + 2 + ((body[hashedLength]! << 8) | body[hashedLength + 1]!) + 2;
      const r = readMpi(body, mpisAt)!;
      const s = readMpi(body, r.next)!;
      assert.equal(s.next, body.length);
      assert.ok(r.value.length + s.value.length < 64);
      assert.equal(
        await openpgpVerifiesAt(armored, data, alice.toPublic(), NOW),
        true,
        `OpenPGP.js reads a short ${which}`,
      );
      assert.equal(await nativeVerifiesAt(armored, data, alice.toPublic(), NOW), true);
      found[which].push(armored);
    }
    assert.ok(found.r.length >= 1 && found.s.length >= 1, 'found signatures with a short R and a short S');
    // and OpenPGP.js-made ones with a short R or S are read natively
    let openpgpShort = 0;
    for (let i = 0; i < 3000 && openpgpShort < 1; i++) {
      const data = Uint8Array.of(1, i >> 8, i & 0xff);
      const armored = await openpgpSign(data, alice, NOW);
      const sig = readNativeSignature(armored)!;
      if (sig.rs[0] !== 0 && sig.rs[32] !== 0) continue;
      openpgpShort++;
      assert.equal(await nativeCheckSignature(sig, data, alice.toPublic(), NOW), true);
    }
    assert.equal(openpgpShort, 1, 'OpenPGP.js made a signature with a short R or S');
  });

  it('a Cv25519 secret whose MPI is shorter than 32 octets decrypts natively and in OpenPGP.js', async () => {
    // X25519 clamps the scalar (RFC 7748 §5): the big-endian MPI's first octet is clamped-scalar[31],
    // 0x40..0x7f. When it is exactly 0x40, storing 0x00 instead gives the same key with a 31-octet MPI.
    let key: openpgp.PrivateKey | undefined;
    for (let i = 0; i < 2000 && !key; i++) {
      const candidate = await freshKey(`short${i}`);
      const d = (candidate.subkeys[0]!.keyPacket as unknown as { privateParams: { d: Uint8Array } })
        .privateParams.d;
      if (d[0] !== 0x40) continue;
      d[0] = 0;
      key = await openpgp.readPrivateKey({ armoredKey: candidate.armor(), config: PGP_CONFIG });
    }
    assert.ok(key, 'found a key with the clamped top octet 0x40');
    const stored = (key.subkeys[0]!.keyPacket as unknown as { privateParams: { d: Uint8Array } })
      .privateParams.d;
    assert.ok(stored.length === 32 ? stored[0] === 0 : stored.length < 32, 'the secret MPI is short');
    const data = counting(100, 2);
    const native = (await nativeEncrypt(data, key.toPublic(), alice, NOW))!;
    assert.equal(await openpgpDecryptVerdict(native, key, alice.toPublic(), NOW), `ok:${hex(data)}`);
    assert.equal(await nativeDecryptVerdict(native, key, alice.toPublic(), NOW), `ok:${hex(data)}`);
    const byOpenpgp = await openpgpEncrypt(data, key.toPublic(), alice, NOW);
    assert.equal(await nativeDecryptVerdict(byOpenpgp, key, alice.toPublic(), NOW), `ok:${hex(data)}`);
  });

  it('an Ed25519 seed whose MPI has a leading zero octet signs natively', async () => {
    let key: openpgp.PrivateKey | undefined;
    for (let i = 0; i < 3000 && !key; i++) {
      const candidate = await freshKey(`seed${i}`);
      const seed = (candidate.keyPacket as unknown as { privateParams: { seed: Uint8Array } }).privateParams
        .seed;
      if (seed[0] === 0)
        key = await openpgp.readPrivateKey({ armoredKey: candidate.armor(), config: PGP_CONFIG });
    }
    assert.ok(key, 'found a key whose seed starts with 0x00');
    const armored = await nativeSignDetached(Uint8Array.of(4), key, NOW);
    assert.ok(armored, 'the native path signs with it');
    assert.equal(await openpgpVerifiesAt(armored, Uint8Array.of(4), key.toPublic(), NOW), true);
  });

  it('a Cv25519 subkey with SHA2-512/AES-256 KDF parameters: native encryption decrypts in OpenPGP.js, and back', async () => {
    const key = await fixtureKey('kdf512');
    const kdf = (
      key.subkeys[0]!.keyPacket as unknown as {
        publicParams: { kdfParams: { hash: number; cipher: number } };
      }
    ).publicParams.kdfParams;
    assert.deepEqual([kdf.hash, kdf.cipher], [10, 9]);
    const view = await nativeView(key.toPublic()).encryptionKey(NOW);
    assert.deepEqual(view?.kdf && [...view.kdf.params], [3, 1, 10, 9]);
    await fc.assert(
      fc.asyncProperty(payload, async (data) => {
        const native = (await nativeEncrypt(data, key.toPublic(), alice, NOW))!;
        assert.equal(await openpgpDecryptVerdict(native, key, alice.toPublic(), NOW), `ok:${hex(data)}`);
        const byOpenpgp = await openpgpEncrypt(data, key.toPublic(), alice, NOW);
        assert.equal(await nativeDecryptVerdict(byOpenpgp, key, alice.toPublic(), NOW), `ok:${hex(data)}`);
      }),
      fcOptions(10),
    );
  });

  it('several encryption subkeys: the PKESK names the key OpenPGP.js picks', async () => {
    const two = await freshKey('two', { subkeys: [{}, {}] });
    const later = await (await freshKey('later')).addSubkey({ date: new Date(KEYS_CREATED + HOUR) });
    for (const key of [two, later, await openpgp.readPrivateKey({ armoredKey: later.armor() })]) {
      for (const at of [KEYS_CREATED + 1800_000, KEYS_CREATED + 2 * HOUR]) {
        const expected = (await key.getEncryptionKey(undefined, new Date(at), undefined, PGP_FULL_CONFIG))
          .getKeyID()
          .toHex();
        const native = (await nativeEncrypt(Uint8Array.of(1), key.toPublic(), alice, at))!;
        assert.equal(pkeskKeyId(native), expected, `at +${at - KEYS_CREATED}`);
        assert.equal(await openpgpDecryptVerdict(native, key, alice.toPublic(), at), 'ok:01');
        assert.equal(await nativeDecryptVerdict(native, key, alice.toPublic(), at), 'ok:01');
      }
    }
  });

  it('an expired or revoked encryption subkey is never used: the valid one, or a fallback', async () => {
    const expiredFirst = await freshKey('expfirst', { subkeys: [{ keyExpirationTime: 3600 }, {}] });
    const expiredSecond = await freshKey('expsecond', { subkeys: [{}, { keyExpirationTime: 3600 }] });
    const revoke = async (name: string, which: number[]) => {
      const key = await freshKey(name, { subkeys: [{}, {}] });
      for (const i of which)
        key.subkeys[i] = await key.subkeys[i]!.revoke(
          key.keyPacket as openpgp.SecretKeyPacket,
          undefined,
          new Date(KEYS_CREATED + HOUR),
        );
      return openpgp.readPrivateKey({ armoredKey: key.armor() });
    };
    const keys = [
      expiredFirst,
      expiredSecond,
      await revoke('revfirst', [0]),
      await revoke('revsecond', [1]),
      await revoke('revboth', [0, 1]),
    ];
    for (const key of keys) {
      for (const at of [KEYS_CREATED + 1800_000, KEYS_CREATED + 2 * HOUR]) {
        const oracle = await key.getEncryptionKey(undefined, new Date(at), undefined, PGP_FULL_CONFIG).then(
          (k) => k.getKeyID().toHex(),
          () => 'none',
        );
        const native = await nativeEncrypt(Uint8Array.of(1), key.toPublic(), alice, at);
        if (native !== undefined) assert.equal(pkeskKeyId(native), oracle, `at +${at - KEYS_CREATED}`);
        else assert.equal(oracle, 'none', 'native falls back only when OpenPGP.js has no key either');
        const pub = await encryptAndSign(Uint8Array.of(1), key.toPublic(), alice, new Date(at)).then(
          (m) => pkeskKeyId(m),
          () => 'none',
        );
        assert.equal(pub, oracle);
      }
    }
  });

  it('a signer with a signing subkey (as sq and PGPainless make keys): the subkey signs, both ways', async () => {
    const signer = await freshKey('subsigner', { subkeys: [{ sign: true }, {}] });
    const subkeyId = signer.subkeys[0]!.getKeyID().toHex();
    const data = counting(77, 7);
    const message = (await nativeEncrypt(data, bob.toPublic(), signer, NOW))!;
    assert.ok(message);
    assert.equal(await openpgpDecryptVerdict(message, bob, signer.toPublic(), NOW + 1000), `ok:${hex(data)}`);
    assert.equal(await nativeDecryptVerdict(message, bob, signer.toPublic(), NOW + 1000), `ok:${hex(data)}`);
    const byOpenpgp = await openpgpEncrypt(data, bob.toPublic(), signer, NOW);
    assert.equal(
      await nativeDecryptVerdict(byOpenpgp, bob, signer.toPublic(), NOW + 1000),
      `ok:${hex(data)}`,
    );
    const signature = (await nativeSignDetached(data, signer, NOW))!;
    assert.equal(readNativeSignature(signature)?.issuerKeyIdHex, subkeyId);
    assert.equal(await openpgpVerifiesAt(signature, data, signer.toPublic(), NOW + 1000), true);
    const openpgpSignature = await openpgpSign(data, signer, NOW);
    assert.equal(readNativeSignature(openpgpSignature)?.issuerKeyIdHex, subkeyId);
    assert.equal(await nativeVerifiesAt(openpgpSignature, data, signer.toPublic(), NOW + 1000), true);
    // a signature by the subkey checked against another key falls back, and OpenPGP.js refuses it
    assert.equal(await nativeVerifyVerdict(signature, data, alice.toPublic(), NOW + 1000), 'fallback');
    assert.equal(
      await publicVerifyVerdict(signature, data, alice.toPublic(), NOW + 1000),
      'KL_SIGNATURE_INVALID',
    );
  });

  it('RSA keys fall back to OpenPGP.js, with the same result', async () => {
    const rsa = await fixtureKey('rsa');
    const data = counting(50, 0);
    assert.equal(await nativeEncrypt(data, rsa.toPublic(), alice, NOW), undefined);
    assert.equal(await nativeEncrypt(data, bob.toPublic(), rsa, NOW), undefined);
    assert.equal(await nativeSignDetached(data, rsa, NOW), undefined);
    const toRsa = await encryptAndSign(data, rsa.toPublic(), alice, new Date(NOW));
    assert.equal(messageRecipient(dearmor(toRsa, 'MESSAGE')!), undefined);
    assert.equal(await nativeDecryptVerdict(toRsa, rsa, alice.toPublic(), NOW), 'fallback');
    assert.equal(await publicDecryptVerdict(toRsa, rsa, alice.toPublic(), NOW), `ok:${hex(data)}`);
    const fromRsa = await encryptAndSign(data, bob.toPublic(), rsa, new Date(NOW));
    assert.equal(await nativeDecryptVerdict(fromRsa, bob, rsa.toPublic(), NOW), 'fallback');
    assert.equal(await publicDecryptVerdict(fromRsa, bob, rsa.toPublic(), NOW), `ok:${hex(data)}`);
    assert.equal(await openpgpDecryptVerdict(fromRsa, bob, rsa.toPublic(), NOW), `ok:${hex(data)}`);
    const signature = await signDetached(data, rsa, new Date(NOW));
    assert.equal(await nativeVerifyVerdict(signature, data, rsa.toPublic(), NOW), 'fallback');
    assert.equal(await publicVerifyVerdict(signature, data, rsa.toPublic(), NOW), `ok:${NOW}`);
    await assert.rejects(
      decryptAndVerify(toRsa, bob, alice.toPublic(), new Date(NOW)),
      (e) => isKlError(e) && e.code === 'KL_DECRYPTION_FAILED',
    );
  });
});
