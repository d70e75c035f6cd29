/**
 * The four message operations of src/pgp/messages.ts on the native path (docs/protocol.md "The native
 * OpenPGP path"). Each answers `undefined` when the keys or the input are outside the native profile —
 * the caller then runs OpenPGP.js — and otherwise the same verdict OpenPGP.js would give.
 */
import type * as openpgp from 'openpgp';
import { nativeView } from './keys.js';
import {
  encryptAndSignNative,
  messageRecipient,
  type NativeOpenedMessage,
  openNativeMessage,
} from './message.js';
import { armor, dearmor, readPackets, writePacket } from './packets.js';
import {
  checkSignature,
  makeSignature,
  type NativeSignature,
  parseSignature,
  SIG_BINARY,
} from './signature.js';
import { nativeOpenPgpEnabled } from './switch.js';

const TAG_SIGNATURE = 2;

/** OpenPGP.js compares times in whole seconds (util.normalizeDate). */
function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** An armored detached signature of `data` by `key` made at `at` (ms), or `undefined` outside the profile. */
export async function nativeSignDetached(
  data: Uint8Array,
  key: openpgp.PrivateKey,
  at: number,
): Promise<string | undefined> {
  if (!nativeOpenPgpEnabled()) return undefined;
  const signer = await nativeView(key).signingKey(at);
  return signer && armor('SIGNATURE', writePacket(TAG_SIGNATURE, makeSignature(data, signer, at)));
}

/** The one binary-document signature in an armored detached signature, or `undefined`. */
export function readNativeSignature(armored: string): NativeSignature | undefined {
  if (!nativeOpenPgpEnabled()) return undefined;
  const bytes = dearmor(armored, 'SIGNATURE');
  const packets = bytes && readPackets(bytes, 1);
  if (packets?.length !== 1 || packets[0]!.tag !== TAG_SIGNATURE) return undefined;
  const signature = parseSignature(packets[0]!.body);
  return signature?.type === SIG_BINARY ? signature : undefined;
}

/**
 * Checks `signature` over `data` by `key` as OpenPGP.js verifies at `date` (ms): valid bytes, made by a
 * key valid for signing when it was made, not made after `date`, not expired at `date`. `true`/`false`
 * is the verdict; `undefined`: the signing key is outside the profile.
 */
export async function nativeCheckSignature(
  signature: NativeSignature,
  data: Uint8Array,
  key: openpgp.PublicKey,
  date: number,
): Promise<boolean | undefined> {
  if (!nativeOpenPgpEnabled()) return undefined;
  const signingKey = await nativeView(key).verificationKey(signature.issuerKeyIdHex, signature.created);
  if (!signingKey) return undefined;
  const at = wholeSeconds(date);
  return checkSignature(signature, data, signingKey) && signature.created <= at && at < signature.expires;
}

/**
 * `data` encrypted to `recipient` at `at` (ms) and, with a `signer`, signed inside (sign-then-encrypt);
 * armored; `undefined` outside the profile.
 */
export async function nativeEncrypt(
  data: Uint8Array,
  recipient: openpgp.PublicKey,
  signer: openpgp.PrivateKey | undefined,
  at: number,
): Promise<string | undefined> {
  if (!nativeOpenPgpEnabled()) return undefined;
  const recipientKey = await nativeView(recipient).encryptionKey(at);
  if (!recipientKey) return undefined;
  const signingKey = signer && (await nativeView(signer).signingKey(at));
  if (signer && !signingKey) return undefined;
  return armor(
    'MESSAGE',
    encryptAndSignNative({
      data,
      recipient: recipientKey,
      created: at,
      ...(signingKey ? { signer: signingKey } : {}),
    }),
  );
}

/** Decrypts an armored message of the native shape with `decryptionKey` (see openNativeMessage). */
async function openArmored(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
): Promise<NativeOpenedMessage | null | undefined> {
  if (!nativeOpenPgpEnabled()) return undefined;
  const bytes = dearmor(armored, 'MESSAGE');
  const recipient = bytes && messageRecipient(bytes);
  if (!recipient) return undefined;
  const key = await nativeView(decryptionKey).decryptionKey(recipient);
  return key && openNativeMessage(bytes, key);
}

/**
 * Decrypts an armored message with `decryptionKey` and requires a valid signature by `signerKey` at
 * `now` (ms). The literal bytes, `null` for a definite failure, `undefined` outside the profile.
 */
export async function nativeDecryptAndVerify(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
  signerKey: openpgp.PublicKey,
  now: number,
): Promise<Uint8Array | null | undefined> {
  const opened = await openArmored(armored, decryptionKey);
  if (!opened?.signature) return opened && undefined;
  const verdict = await nativeCheckSignature(opened.signature, opened.data, signerKey, now);
  if (verdict === undefined) return undefined;
  return verdict ? opened.data : null;
}

/**
 * Decrypts an armored message with `decryptionKey`, without asking for a signature (a signature it
 * carries is not checked, as OpenPGP.js does without verification keys). The literal bytes, `null` for
 * a definite failure, `undefined` outside the profile.
 */
export async function nativeOpenSealed(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
): Promise<Uint8Array | null | undefined> {
  const opened = await openArmored(armored, decryptionKey);
  return opened && opened.data;
}
