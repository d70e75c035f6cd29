/**
 * The four OpenPGP operations the protocol needs, over exact bytes (binary literal data, so GnuPG and
 * Sequoia produce and check the same signatures): detached sign / verify, and sign-then-encrypt /
 * decrypt-then-verify. Keys and messages of the default profile take the native path (native/, see
 * docs/protocol.md "The native OpenPGP path"); everything else goes to OpenPGP.js. Failures of
 * verification and decryption carry deliberately generic messages.
 */
import * as openpgp from 'openpgp';
import { ed25519PublicKeyAcceptable } from '../protocol/crypto/node.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { checkArmor } from './armor.js';
import { PGP_CONFIG } from './config.js';
import { curvePoint } from './native/keys.js';
import {
  nativeCheckSignature,
  nativeDecryptAndVerify,
  nativeEncrypt,
  nativeSignDetached,
  readNativeSignature,
} from './native/operations.js';
import { dearmor } from './native/packets.js';

/** Longest armored detached signature accepted. */
export const MAX_ARMORED_SIGNATURE = 8 * 1024;
/** Longest armored encrypted message accepted. */
export const MAX_ARMORED_MESSAGE = 64 * 1024;

/** Makes an armored detached signature of `data` with a decrypted private key. */
export async function signDetached(
  data: Uint8Array,
  signingKey: openpgp.PrivateKey,
  date?: Date,
): Promise<string> {
  const native = await nativeSignDetached(data, signingKey, (date ?? new Date()).getTime());
  if (native !== undefined) return native;
  const message = await openpgp.createMessage({ binary: data });
  return (await openpgp.sign({
    message,
    signingKeys: signingKey,
    detached: true,
    format: 'armored',
    config: PGP_CONFIG,
    ...(date ? { date } : {}),
  })) as string;
}

/** Options of {@link verifyDetached}. */
export interface VerifyDetachedOptions {
  data: Uint8Array;
  armoredSignature: unknown;
  key: openpgp.PublicKey;
  /** Verification time. */
  now: Date;
  /** If set, the signature must have been made within this many ms of `now` (either way). */
  maxSkewMs?: number;
}

/**
 * Verifies a detached signature over `data` by `key`. Returns the signature's creation time.
 * @throws KlError `KL_SIGNATURE_INVALID` (generic on purpose) or `KL_MESSAGE_MALFORMED`.
 */
export async function verifyDetached({
  data,
  armoredSignature,
  key,
  now,
  maxSkewMs,
}: VerifyDetachedOptions): Promise<Date> {
  if (typeof armoredSignature !== 'string' || armoredSignature.length > MAX_ARMORED_SIGNATURE) {
    throw new KlError(
      'KL_MESSAGE_MALFORMED',
      `the signature must be armored and at most ${MAX_ARMORED_SIGNATURE} bytes`,
    );
  }
  checkArmor(armoredSignature, 'SIGNATURE', 'KL_MESSAGE_MALFORMED', 'detached signature');
  const native = readNativeSignature(armoredSignature);
  if (native) {
    checkFreshness(native.created, now, maxSkewMs);
    const verdict = await nativeCheckSignature(native, data, key, Math.max(native.created, now.getTime()));
    if (verdict === false) throw new KlError('KL_SIGNATURE_INVALID', 'signature check failed');
    if (verdict === true) return new Date(native.created);
  }
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature, config: PGP_CONFIG });
  } catch {
    throw new KlError('KL_MESSAGE_MALFORMED', 'the signature cannot be read as an OpenPGP signature');
  }
  if (signature.packets.length !== 1) throw new KlError('KL_MESSAGE_MALFORMED', 'send exactly one signature');
  // OpenPGP.js has no clock-skew tolerance: verify "as of" the signature's own time if it is a little
  // in the future, then apply our own freshness window.
  const created = signature.packets[0]!.created ?? new Date(0);
  const at = created.getTime() > now.getTime() ? created : now;
  checkFreshness(created.getTime(), now, maxSkewMs);
  try {
    const message = await openpgp.createMessage({ binary: data });
    const result = await openpgp.verify({
      message,
      signature,
      verificationKeys: key,
      expectSigned: true,
      date: at,
      config: PGP_CONFIG,
    });
    await result.signatures[0]!.verified;
    refuseWeakSigner(key, result.signatures);
  } catch {
    throw new KlError('KL_SIGNATURE_INVALID', 'signature check failed');
  }
  return created;
}

/**
 * Throws if a signature OpenPGP.js accepted was made under an Ed25519 key at a small-order or
 * non-canonical point: OpenSSL, under OpenPGP.js, accepts forgeries anyone can make under such keys
 * (the key policy refuses them at registration; this covers keys held from before, and pinned keys).
 */
function refuseWeakSigner(key: openpgp.Key, signatures: ReadonlyArray<{ keyID: openpgp.KeyID }>): void {
  for (const signature of signatures) {
    for (const signing of key.getKeys(signature.keyID)) {
      const point = curvePoint(signing.keyPacket);
      if (point?.curve === 'ed25519' && !ed25519PublicKeyAcceptable(point.point))
        throw new Error('a signature under an Ed25519 key anyone can sign for');
    }
  }
}

/** Refuses a signature made more than `maxSkewMs` away from `now` (either way). */
function checkFreshness(created: number, now: Date, maxSkewMs: number | undefined): void {
  if (maxSkewMs !== undefined && Math.abs(created - now.getTime()) > maxSkewMs) {
    throw new KlError(
      'KL_SIGNATURE_INVALID',
      'signature check failed (the signature is not fresh: check the clock)',
    );
  }
}

/**
 * Encrypts `data` to `recipient` and signs it with `signer` (one message, sign-then-encrypt).
 * @throws KlError `KL_KEY_POLICY` when nothing can be encrypted to the recipient key (no valid
 * encryption key; a Cv25519 key at a low-order point, refused at registration since).
 */
export function encryptAndSign(
  data: Uint8Array,
  recipient: openpgp.PublicKey,
  signer: openpgp.PrivateKey,
  date?: Date,
): Promise<string> {
  return encryptMessage(data, recipient, signer, date);
}

/**
 * Encrypts `data` to `recipient`, signed inside by `signer` if given; natively in the default profile.
 * @throws KlError `KL_KEY_POLICY` when nothing can be encrypted to the recipient key.
 */
export async function encryptMessage(
  data: Uint8Array,
  recipient: openpgp.PublicKey,
  signer: openpgp.PrivateKey | undefined,
  date?: Date,
): Promise<string> {
  try {
    const native = await nativeEncrypt(data, recipient, signer, (date ?? new Date()).getTime());
    if (native !== undefined) return native;
    const message = await openpgp.createMessage({ binary: data, format: 'binary' });
    return (await openpgp.encrypt({
      message,
      encryptionKeys: recipient,
      ...(signer ? { signingKeys: signer } : {}),
      format: 'armored',
      config: PGP_CONFIG,
      ...(date ? { date } : {}),
    })) as string;
  } catch (err) {
    if (isKlError(err)) throw err;
    throw new KlError('KL_KEY_POLICY', 'nothing can be encrypted to this key');
  }
}

/** Reads an armored message with the decompression bound set (message bombs stop at the bound). */
export async function readArmoredMessage(armored: unknown): Promise<openpgp.Message<Uint8Array>> {
  checkArmoredMessage(armored);
  try {
    return (await openpgp.readMessage({
      armoredMessage: armored,
      config: PGP_CONFIG,
    })) as openpgp.Message<Uint8Array>;
  } catch {
    throw new KlError('KL_MESSAGE_MALFORMED', 'the message cannot be read as an OpenPGP message');
  }
}

/** Checks the size and the armor envelope of a message. */
export function checkArmoredMessage(armored: unknown): asserts armored is string {
  if (typeof armored !== 'string' || armored.length > MAX_ARMORED_MESSAGE) {
    throw new KlError(
      'KL_MESSAGE_MALFORMED',
      `the message must be armored and at most ${MAX_ARMORED_MESSAGE} bytes`,
    );
  }
  checkArmor(armored, 'MESSAGE', 'KL_MESSAGE_MALFORMED', 'message');
}

/**
 * Decrypts with `decryptionKey` and requires a valid signature by `signerKey`. Returns the bytes.
 * Compressed content (which keyledger never sends, but other tools do) is read by OpenPGP.js up to
 * the decompression bound of config.ts.
 * @throws KlError `KL_DECRYPTION_FAILED` (generic) or `KL_MESSAGE_MALFORMED`.
 */
export async function decryptAndVerify(
  armored: unknown,
  decryptionKey: openpgp.PrivateKey,
  signerKey: openpgp.PublicKey,
  now: Date,
): Promise<Uint8Array> {
  checkArmoredMessage(armored);
  const native = await nativeDecryptAndVerify(armored, decryptionKey, signerKey, now.getTime());
  if (native === null)
    throw new KlError('KL_DECRYPTION_FAILED', 'the message could not be decrypted and verified');
  if (native !== undefined) return native;
  const message = await readArmoredMessage(armored);
  try {
    const result = await openpgp.decrypt({
      message,
      decryptionKeys: decryptionKey,
      verificationKeys: signerKey,
      expectSigned: true,
      format: 'binary',
      date: now,
      config: { ...PGP_CONFIG, allowUnauthenticatedMessages: false },
    });
    refuseWeakSigner(signerKey, result.signatures);
    return result.data as Uint8Array;
  } catch {
    throw new KlError('KL_DECRYPTION_FAILED', 'the message could not be decrypted and verified');
  }
}

/**
 * Verifies a signed (not encrypted) OpenPGP message, e.g. what `gpg --unwrap` leaves of a challenge,
 * and returns its literal bytes.
 * @throws KlError `KL_DECRYPTION_FAILED` (generic) or `KL_MESSAGE_MALFORMED`.
 */
export async function verifySignedMessage(
  binaryMessage: Uint8Array,
  signerKey: openpgp.PublicKey,
  now: Date,
): Promise<Uint8Array> {
  let message: openpgp.Message<Uint8Array>;
  try {
    message = (await openpgp.readMessage({
      binaryMessage,
      config: PGP_CONFIG,
    })) as openpgp.Message<Uint8Array>;
  } catch {
    throw new KlError('KL_MESSAGE_MALFORMED', 'the message cannot be read as an OpenPGP message');
  }
  try {
    const result = await openpgp.verify({
      message,
      verificationKeys: signerKey,
      expectSigned: true,
      format: 'binary',
      date: now,
      config: PGP_CONFIG,
    });
    refuseWeakSigner(signerKey, result.signatures);
    return result.data as Uint8Array;
  } catch {
    throw new KlError('KL_DECRYPTION_FAILED', 'the message could not be decrypted and verified');
  }
}

/** Reads an armored private key and decrypts it with `passphrase` (if it is encrypted). */
export async function unlockPrivateKey(
  armored: string,
  passphrase: string | undefined,
): Promise<openpgp.PrivateKey> {
  checkArmor(armored, 'PRIVATE KEY BLOCK', 'KL_KEY_MALFORMED', 'private key');
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: armored, config: PGP_CONFIG });
  } catch {
    throw new KlError('KL_KEY_MALFORMED', 'the private key cannot be read');
  }
  if (key.isDecrypted()) return key;
  if (!passphrase)
    throw new KlError('KL_PASSPHRASE_REQUIRED', 'the private key is protected by a passphrase');
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase, config: PGP_CONFIG });
  } catch {
    throw new KlError('KL_PASSPHRASE_WRONG', 'the passphrase does not unlock the private key');
  }
}

/**
 * Reads one armored key with OpenPGP.js. Plain armor is unwrapped natively first and handed over as
 * binary: OpenPGP.js's own armor reader runs through web streams and costs more than the parse.
 */
export function readArmoredKey(armored: string): Promise<openpgp.Key> {
  const binaryKey = dearmor(armored, 'PUBLIC KEY BLOCK');
  return binaryKey
    ? openpgp.readKey({ binaryKey, config: PGP_CONFIG })
    : openpgp.readKey({ armoredKey: armored, config: PGP_CONFIG });
}

/** Reads an armored public key (no policy checks: for pinned and ledger keys already accepted). */
export async function readPublicKey(armored: string): Promise<openpgp.PublicKey> {
  checkArmor(armored, 'PUBLIC KEY BLOCK', 'KL_KEY_MALFORMED', 'public key');
  try {
    const key = await readArmoredKey(armored);
    return key.isPrivate() ? (key as openpgp.PrivateKey).toPublic() : (key as openpgp.PublicKey);
  } catch {
    throw new KlError('KL_KEY_MALFORMED', 'the public key cannot be read');
  }
}
