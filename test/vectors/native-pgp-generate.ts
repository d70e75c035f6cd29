/**
 * Generates test/vectors/native-pgp.json, the known-answer vectors of the native OpenPGP path
 * (docs/protocol.md "The native OpenPGP path"), from the fixed keys in test/fixtures/native-pgp/.
 * Run by hand, never by the tests (test/native-pgp.test.ts recomputes every positive vector from
 * its inputs and compares bytes, and decrypts / verifies it with OpenPGP.js):
 *
 *   node --import tsx test/vectors/native-pgp-generate.ts keys   # once: makes the fixture keys
 *   node --import tsx test/vectors/native-pgp-generate.ts > test/vectors/native-pgp.json
 *
 * The fixture keys are fresh v4 keys with a fixed creation time, committed unencrypted: they protect
 * nothing. Everything the native path draws at random (session key, SEIPD prefix, ephemeral X25519
 * key) is fixed here; Ed25519 signatures are deterministic (RFC 8032 §5.1.6).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as openpgp from 'openpgp';
import { PGP_CONFIG } from '../../src/pgp/config.js';
import { nativeView } from '../../src/pgp/native/keys.js';
import { encryptAndSignNative } from '../../src/pgp/native/message.js';
import { readPackets, writePacket } from '../../src/pgp/native/packets.js';
import { aesCfbDecrypt, aesCfbEncrypt, digest } from '../../src/pgp/native/primitives.js';
import { makeSignature } from '../../src/pgp/native/signature.js';
import { concatBytes } from '../../src/protocol/bytes.js';

const FIXTURES = new URL('../fixtures/native-pgp/', import.meta.url);
/** Creation time of every fixture key. */
export const KEYS_CREATED = Date.UTC(2026, 0, 1, 0, 0, 0);
/** Time of every vector's signature and literal data. */
export const VECTORS_CREATED = Date.UTC(2026, 0, 1, 12, 0, 0);

/** The fixture key files: name → what it is. */
export const FIXTURE_KEYS = {
  alice: 'Ed25519 primary (sign, certify) + Cv25519 subkey (SHA2-256/AES-128 KDF): the signer',
  bob: 'Ed25519 primary + Cv25519 subkey (SHA2-256/AES-128 KDF): the recipient',
  carol: 'Ed25519 primary + Cv25519 subkey: a third party (wrong recipient)',
  kdf512: 'Ed25519 primary + Cv25519 subkey whose KDF parameters are SHA2-512/AES-256',
  rsa: 'RSA-3072 primary + RSA-3072 encryption subkey: outside the native profile',
} as const;
export type FixtureName = keyof typeof FIXTURE_KEYS;

/** Reads a fixture private key. */
export async function fixtureKey(name: FixtureName): Promise<openpgp.PrivateKey> {
  const armoredKey = readFileSync(new URL(`${name}.asc`, FIXTURES), 'utf8');
  return openpgp.readPrivateKey({ armoredKey, config: PGP_CONFIG });
}

/** n bytes counting up from `start` (fixed "random" bytes anyone can rebuild). */
export const counting = (n: number, start: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

async function makeKey(name: FixtureName): Promise<string> {
  const date = new Date(KEYS_CREATED);
  const userIDs = [{ name, email: `${name}@native-pgp.test` }];
  const config = { v6Keys: false, aeadProtect: false };
  if (name === 'rsa') {
    const { privateKey } = await openpgp.generateKey({ type: 'rsa', rsaBits: 3072, userIDs, date, config });
    return privateKey;
  }
  const { privateKey } = await openpgp.generateKey({ type: 'ecc', userIDs, date, format: 'object', config });
  if (name !== 'kdf512') return privateKey.armor();
  // RFC 9580 §11.5: the KDF parameters are part of the key packet, so the fingerprint changes and the
  // subkey binding must be made again (reformatKey re-signs every binding over the packets as they are).
  const subkey = privateKey.subkeys[0]!.keyPacket as openpgp.SecretSubkeyPacket & {
    publicParams: { kdfParams: { hash: number; cipher: number } };
    computeFingerprintAndKeyID(): Promise<void>;
  };
  subkey.publicParams.kdfParams.hash = openpgp.enums.hash.sha512;
  subkey.publicParams.kdfParams.cipher = openpgp.enums.symmetric.aes256;
  await subkey.computeFingerprintAndKeyID();
  const reformatted = await openpgp.reformatKey({ privateKey, userIDs, date, format: 'object', config });
  return reformatted.privateKey.armor();
}

/** The fixed randomness of vector `index`. */
export function vectorRandomness(index: number) {
  return {
    sessionKey: counting(32, 0x10 + index),
    prefix: counting(16, 0x80 + index),
    ephemeral: counting(32, 0x40 + index),
  };
}

/** Payloads: empty, short, and lengths across the packet-length encodings (RFC 9580 §4.2.1). */
export const VECTOR_PAYLOADS: readonly { description: string; data: Uint8Array; recipient: FixtureName }[] = [
  { description: 'empty data', data: new Uint8Array(0), recipient: 'bob' },
  {
    description: '"hello" (one-octet packet lengths)',
    data: new TextEncoder().encode('hello'),
    recipient: 'bob',
  },
  { description: '200 bytes (two-octet lengths)', data: counting(200, 7), recipient: 'bob' },
  { description: '8400 bytes (five-octet SEIPD length)', data: counting(8400, 3), recipient: 'bob' },
  {
    description: '"hello" to a Cv25519 subkey with SHA2-512/AES-256 KDF parameters',
    data: new TextEncoder().encode('hello'),
    recipient: 'kdf512',
  },
];

/** Flips bit 0 of byte `at` (negative: from the end). */
function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const i = at < 0 ? out.length + at : at;
  out[i] = out[i]! ^ 1;
  return out;
}

/**
 * `message` with the last octet of the inner signature packet (the low octet of S) flipped and the
 * SEIPD re-encrypted under the same session key with a correct MDC (RFC 9580 §5.13.1): only the
 * signature is wrong.
 */
export function tamperInnerSignature(message: Uint8Array, sessionKey: Uint8Array): Uint8Array {
  const [pkesk, seipd] = readPackets(message, 2)!;
  const plain = aesCfbDecrypt(sessionKey, seipd!.body.subarray(1));
  const mdcAt = plain.length - 22;
  const body = flip(plain.subarray(0, mdcAt), -1);
  const withMdcHeader = concatBytes(body, Uint8Array.of(0xd3, 0x14));
  const sealed = concatBytes(withMdcHeader, digest(2, [withMdcHeader])!);
  return concatBytes(
    writePacket(1, pkesk!.body),
    writePacket(18, concatBytes(Uint8Array.of(1), aesCfbEncrypt(sessionKey, sealed))),
  );
}

async function vectors() {
  const keys = Object.fromEntries(
    await Promise.all(Object.keys(FIXTURE_KEYS).map(async (n) => [n, await fixtureKey(n as FixtureName)])),
  ) as Record<FixtureName, openpgp.PrivateKey>;
  const signer = (await nativeView(keys.alice).signingKey(VECTORS_CREATED))!;
  const messages = [];
  for (const [index, payload] of VECTOR_PAYLOADS.entries()) {
    const recipientKey = (await nativeView(keys[payload.recipient].toPublic()).encryptionKey(
      VECTORS_CREATED,
    ))!;
    const randomness = vectorRandomness(index);
    const message = encryptAndSignNative({
      data: payload.data,
      recipient: recipientKey,
      signer,
      created: VECTORS_CREATED,
      randomness,
    });
    const packets = readPackets(message, 2)!;
    messages.push({
      description: `sign (alice) then encrypt to ${payload.recipient}: ${payload.description}`,
      signer: 'alice',
      recipient: payload.recipient,
      data: hex(payload.data),
      created: new Date(VECTORS_CREATED).toISOString(),
      randomness: {
        sessionKey: hex(randomness.sessionKey),
        prefix: hex(randomness.prefix),
        ephemeral: hex(randomness.ephemeral),
      },
      message: hex(message),
      negative: [
        {
          description: 'last ciphertext octet flipped (the MDC no longer matches)',
          message: hex(flip(message, -1)),
          decryptWith: payload.recipient,
        },
        {
          description: 'first octet of the wrapped session key flipped (AES key unwrap fails)',
          message: hex(flip(message, 2 + packets[0]!.body.length - 40)),
          decryptWith: payload.recipient,
        },
        {
          description: 'inner signature octet flipped, MDC recomputed under the same session key',
          message: hex(tamperInnerSignature(message, randomness.sessionKey)),
          decryptWith: payload.recipient,
        },
        {
          description: 'decrypted by a key that is not the recipient (carol)',
          message: hex(message),
          decryptWith: 'carol',
        },
      ],
    });
  }
  const sealed = [];
  for (const [index, payload] of VECTOR_PAYLOADS.slice(0, 3).entries()) {
    const recipientKey = (await nativeView(keys.bob.toPublic()).encryptionKey(VECTORS_CREATED))!;
    const randomness = vectorRandomness(0x20 + index);
    const message = encryptAndSignNative({
      data: payload.data,
      recipient: recipientKey,
      created: VECTORS_CREATED,
      randomness,
    });
    sealed.push({
      description: `sealed (encrypted, not signed) to bob: ${payload.description}`,
      recipient: 'bob',
      data: hex(payload.data),
      created: new Date(VECTORS_CREATED).toISOString(),
      randomness: {
        sessionKey: hex(randomness.sessionKey),
        prefix: hex(randomness.prefix),
        ephemeral: hex(randomness.ephemeral),
      },
      message: hex(message),
      negative: [
        {
          description: 'last ciphertext octet flipped (the MDC no longer matches)',
          message: hex(flip(message, -1)),
          decryptWith: 'bob',
        },
        {
          description: 'decrypted by a key that is not the recipient (carol)',
          message: hex(message),
          decryptWith: 'carol',
        },
      ],
    });
  }
  const signatures = [];
  for (const payload of VECTOR_PAYLOADS.slice(0, 3)) {
    const packet = writePacket(2, makeSignature(payload.data, signer, VECTORS_CREATED));
    signatures.push({
      description: `detached binary signature by alice: ${payload.description}`,
      signer: 'alice',
      data: hex(payload.data),
      created: new Date(VECTORS_CREATED).toISOString(),
      signature: hex(packet),
      negative: [
        {
          description: 'last octet of S flipped',
          signature: hex(flip(packet, -1)),
          data: hex(payload.data),
          verifyWith: 'alice',
        },
        {
          description: 'data extended by one octet',
          signature: hex(packet),
          data: hex(concatBytes(payload.data, Uint8Array.of(0))),
          verifyWith: 'alice',
        },
        {
          description: 'checked against another key (carol)',
          signature: hex(packet),
          data: hex(payload.data),
          verifyWith: 'carol',
        },
      ],
    });
  }
  return {
    name: 'keyledger native OpenPGP path',
    description:
      'Known-answer vectors of src/pgp/native: v3 PKESK to Cv25519 + SEIPD v1 (one-pass signature, binary literal, v4 EdDSA-legacy signature, SHA2-512) with fixed session key, prefix and ephemeral key; sealed messages (the literal alone, src/pgp/sealed.ts); and detached signatures. Hex of binary packets. Keys: test/fixtures/native-pgp/<name>.asc.',
    section: 'docs/protocol.md "The native OpenPGP path"; RFC 9580 §5.1, §5.2, §5.13.1, §11.5',
    keys: FIXTURE_KEYS,
    messages,
    sealed,
    signatures,
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  if (process.argv[2] === 'keys') {
    for (const name of Object.keys(FIXTURE_KEYS) as FixtureName[])
      writeFileSync(new URL(`${name}.asc`, FIXTURES), await makeKey(name));
  } else {
    process.stdout.write(`${JSON.stringify(await vectors(), null, 2)}\n`);
  }
}
