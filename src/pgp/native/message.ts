/**
 * Signed-and-encrypted messages of the native profile (docs/protocol.md "The native OpenPGP path"):
 * a v3 PKESK to a Cv25519 key (RFC 9580 §5.1, §11.5) and a SEIPD v1 packet (§5.13.1) holding a
 * one-pass signature, a binary literal and an EdDSA-legacy signature (§5.4, §5.9, §5.2). Exactly that
 * shape is read back; anything else is left to OpenPGP.js.
 */
import { concatBytes, toHex } from '../../protocol/bytes.js';
import {
  type PrivateKeyHandle,
  randomBytes,
  x25519KeyPair,
  x25519SharedSecret,
} from '../../protocol/crypto/node.js';
import type { NativeKeyPacket, NativeSecretKey } from './keys.js';
import { type Packet, readMpi, readPackets, uint32, writeMpi, writePacket } from './packets.js';
import { aesCfbDecrypt, aesCfbEncrypt, aesKeyUnwrap, aesKeyWrap, digest } from './primitives.js';
import {
  ALGO_EDDSA_LEGACY,
  makeSignature,
  type NativeSignature,
  parseSignature,
  SIG_BINARY,
  SIGN_HASH,
} from './signature.js';

const TAG_PKESK = 1;
const TAG_SIGNATURE = 2;
const TAG_ONE_PASS = 4;
const TAG_LITERAL = 11;
const TAG_SEIPD = 18;
const ALGO_ECDH = 18;
/** AES-256: the cipher of every message the native path makes. */
const AES256 = 9;
/**
 * Key sizes of the session-key ciphers read natively, by OpenPGP id (RFC 9580 §9.3): AES-128 and
 * AES-256, which OpenPGP.js accepts whatever the key prefers. (AES-192 it takes only where the key
 * lists it: left to OpenPGP.js.) The key-wrap KEK may be any AES size (RFC 9580 §11.5).
 */
const SESSION_KEY_BYTES: Readonly<Record<number, number>> = { 7: 16, 9: 32 };
const KEK_BYTES: Readonly<Record<number, number>> = { 7: 16, 8: 24, 9: 32 };
/** The modification detection code packet header (tag 19, 20 bytes; RFC 9580 §5.13.1). */
const MDC_HEADER = Uint8Array.of(0xd3, 0x14);
const ANONYMOUS_SENDER = new TextEncoder().encode('Anonymous Sender    ');
const CV25519_OID = Uint8Array.of(10, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01);

/** The KDF of RFC 9580 §11.5: the key-wrap key for shared secret `zb` and recipient `key`. */
function kek(zb: Uint8Array, key: NativeKeyPacket): Uint8Array | undefined {
  const kdf = key.kdf!;
  const param = concatBytes(
    CV25519_OID,
    Uint8Array.of(ALGO_ECDH),
    kdf.params,
    ANONYMOUS_SENDER,
    key.fingerprint,
  );
  const hash = digest(kdf.hash, [uint32(1), zb, param]);
  return hash?.subarray(0, KEK_BYTES[kdf.cipher]);
}

/** The two-octet checksum of a session key (RFC 9580 §5.1.3). */
function checksum(key: Uint8Array): Uint8Array {
  let sum = 0;
  for (const byte of key) sum = (sum + byte) & 0xffff;
  return Uint8Array.of(sum >> 8, sum & 0xff);
}

/** Fixed randomness, for known-answer vectors only. */
export interface NativeEncryptRandomness {
  sessionKey: Uint8Array;
  /** The 16 random octets of the SEIPD prefix. */
  prefix: Uint8Array;
  /** The ephemeral X25519 private key (32 bytes, RFC 7748 byte order). */
  ephemeral: Uint8Array;
}

/** Options of {@link encryptAndSignNative}. */
export interface NativeEncryptOptions {
  data: Uint8Array;
  recipient: NativeKeyPacket;
  /** Who signs inside the encryption; none: the message holds the literal alone (a sealed message). */
  signer?: NativeSecretKey;
  /** Signature and literal-data time, ms. */
  created: number;
  randomness?: NativeEncryptRandomness;
}

/**
 * `data` signed by `signer` (if given) and encrypted to `recipient` (AES-256), as binary packets:
 * PKESK v3 and SEIPD v1 around [one-pass signature, literal, signature] or the literal alone.
 */
export function encryptAndSignNative({
  data,
  recipient,
  signer,
  created,
  randomness,
}: NativeEncryptOptions): Uint8Array {
  const sessionKey = randomness?.sessionKey ?? randomBytes(32);
  const prefix = randomness?.prefix ?? randomBytes(16);
  const literal = writePacket(
    TAG_LITERAL,
    concatBytes(Uint8Array.of(0x62, 0), uint32(Math.floor(created / 1000)), data),
  );
  const inner = signer
    ? [
        writePacket(
          TAG_ONE_PASS,
          concatBytes(
            Uint8Array.of(3, SIG_BINARY, SIGN_HASH, ALGO_EDDSA_LEGACY),
            signer.keyId,
            Uint8Array.of(1),
          ),
        ),
        literal,
        writePacket(TAG_SIGNATURE, makeSignature(data, signer, created)),
      ]
    : [literal];
  const plain = concatBytes(prefix, prefix.subarray(14, 16), ...inner, MDC_HEADER);
  const seipd = concatBytes(
    Uint8Array.of(1),
    aesCfbEncrypt(sessionKey, concatBytes(plain, digest(2, [plain])!)),
  );

  const ephemeral = x25519KeyPair(randomness?.ephemeral);
  const zb = x25519SharedSecret(ephemeral.privateKey, recipient.publicKey);
  const message = concatBytes(Uint8Array.of(AES256), sessionKey, checksum(sessionKey));
  const padding = 8 - (message.length % 8);
  const wrapped = aesKeyWrap(
    kek(zb, recipient)!,
    concatBytes(message, new Uint8Array(padding).fill(padding)),
  );
  const pkesk = concatBytes(
    Uint8Array.of(3),
    recipient.keyId,
    Uint8Array.of(ALGO_ECDH),
    writeMpi(concatBytes(Uint8Array.of(0x40), ephemeral.publicKey)),
    Uint8Array.of(wrapped.length),
    wrapped,
  );
  return concatBytes(writePacket(TAG_PKESK, pkesk), writePacket(TAG_SEIPD, seipd));
}

/** A message read up to its signature: what is left to check once the signer's key is known. */
export interface NativeOpenedMessage {
  data: Uint8Array;
  /** The signature of a signed message; absent for a sealed one (the literal alone). */
  signature?: NativeSignature;
}

/** The recipient key ID of a message of the native shape, or `undefined` if it is not one. */
export function messageRecipient(message: Uint8Array): string | undefined {
  const packets = readPackets(message, 2);
  if (packets?.length !== 2 || packets[0]!.tag !== TAG_PKESK || packets[1]!.tag !== TAG_SEIPD)
    return undefined;
  const pkesk = packets[0]!.body;
  if (pkesk.length < 10 || pkesk[0] !== 3 || pkesk[9] !== ALGO_ECDH) return undefined;
  const keyId = pkesk.subarray(1, 9);
  if (keyId.every((byte) => byte === 0)) return undefined;
  return toHex(keyId);
}

/** Decrypts the session key of a v3 PKESK body; `null` when it does not decrypt, `undefined` outside the shape. */
function unwrapSessionKey(
  pkesk: Uint8Array,
  key: NativeSecretKey,
): { algorithm: number; key: Uint8Array } | null | undefined {
  const ephemeral = readMpi(pkesk, 10);
  if (ephemeral?.value.length !== 33 || ephemeral.value[0] !== 0x40) return undefined;
  const wrappedLength = pkesk[ephemeral.next];
  if (wrappedLength === undefined || ephemeral.next + 1 + wrappedLength !== pkesk.length) return undefined;
  const wrapped = pkesk.subarray(ephemeral.next + 1);
  let zb: Uint8Array;
  try {
    zb = x25519SharedSecret(key.secret as PrivateKeyHandle, ephemeral.value.subarray(1));
  } catch {
    return null;
  }
  const wrapKey = kek(zb, key);
  const unwrapped = wrapKey && aesKeyUnwrap(wrapKey, wrapped);
  if (!unwrapped || unwrapped.length < 8) return null;
  // PKCS#5 padding (RFC 9580 §11.5), then algorithm ‖ key ‖ checksum.
  const pad = unwrapped[unwrapped.length - 1]!;
  if (
    pad < 1 ||
    pad > unwrapped.length ||
    unwrapped.subarray(unwrapped.length - pad).some((byte) => byte !== pad)
  )
    return null;
  // Longer padding than PKCS#5 to 8 bytes makes is still read by OpenPGP.js: let it decide.
  if (pad > 8) return undefined;
  const body = unwrapped.subarray(0, unwrapped.length - pad);
  const size = SESSION_KEY_BYTES[body[0]!];
  if (size === undefined) return body.length >= 3 ? undefined : null;
  if (body.length !== 1 + size + 2) return null;
  const sessionKey = body.subarray(1, 1 + size);
  const sum = checksum(sessionKey);
  if (sum[0] !== body[1 + size] || sum[1] !== body[2 + size]) return null;
  return { algorithm: body[0]!, key: sessionKey };
}

/** The literal data of a binary literal packet body (RFC 9580 §5.9), or `undefined`. */
function literalData(body: Uint8Array): Uint8Array | undefined {
  if (body.length < 6 || body[0] !== 0x62) return undefined;
  const nameLength = body[1]!;
  return body.length < 2 + nameLength + 4 ? undefined : body.subarray(2 + nameLength + 4);
}

/** The packets inside a SEIPD plaintext: [literal] or [one-pass signature, literal, signature]. */
function readInner(packets: Uint8Array): NativeOpenedMessage | undefined {
  const inner = readPackets(packets, 3);
  if (inner?.length === 1) {
    const data = inner[0]!.tag === TAG_LITERAL ? literalData(inner[0]!.body) : undefined;
    return data && { data };
  }
  if (inner?.length !== 3) return undefined;
  const [onePass, literal, signaturePacket] = inner as [Packet, Packet, Packet];
  if (onePass.tag !== TAG_ONE_PASS || literal.tag !== TAG_LITERAL || signaturePacket.tag !== TAG_SIGNATURE)
    return undefined;
  const signature = parseSignature(signaturePacket.body);
  if (!signature || signature.type !== SIG_BINARY) return undefined;
  // The one-pass packet must announce exactly the signature that follows (RFC 9580 §5.4).
  const ops = onePass.body;
  if (
    ops.length !== 13 ||
    ops[0] !== 3 ||
    ops[1] !== signature.type ||
    ops[2] !== signature.hashAlgorithm ||
    ops[3] !== ALGO_EDDSA_LEGACY ||
    ops[12] !== 1 ||
    toHex(ops.subarray(4, 12)) !== signature.issuerKeyIdHex
  )
    return undefined;
  const data = literalData(literal.body);
  return data && { data, signature };
}

/**
 * Decrypts a message of the native shape with `key` (whose key ID the PKESK names) and reads it up to
 * its signature, if it has one. `null`: it does not decrypt or its integrity check fails (a definite
 * failure); `undefined`: outside the native shape (leave it to OpenPGP.js).
 */
export function openNativeMessage(
  message: Uint8Array,
  key: NativeSecretKey,
): NativeOpenedMessage | null | undefined {
  const packets = readPackets(message, 2);
  if (packets?.length !== 2) return undefined;
  const [pkesk, seipd] = [packets[0]!.body, packets[1]!.body];
  // Version 1, the 18-byte prefix (AES: 16 + 2) and the 22-byte modification detection code.
  if (seipd.length < 1 + 18 + 22 || seipd[0] !== 1) return undefined;
  const session = unwrapSessionKey(pkesk, key);
  if (!session) return session;
  const plain = aesCfbDecrypt(session.key, seipd.subarray(1));
  const mdcAt = plain.length - 22;
  const expected = digest(2, [plain.subarray(0, mdcAt + 2)])!;
  const tag = plain.subarray(mdcAt);
  let same = tag[0] === MDC_HEADER[0] && tag[1] === MDC_HEADER[1] ? 0 : 1;
  for (let i = 0; i < 20; i++) same |= expected[i]! ^ tag[2 + i]!;
  if (same !== 0) return null;
  return readInner(plain.subarray(18, mdcAt));
}
