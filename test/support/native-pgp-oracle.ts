/**
 * OpenPGP.js as the oracle of the native OpenPGP path (docs/protocol.md "The native OpenPGP path"):
 * for one input, the verdict of the OpenPGP.js half of src/pgp/messages.ts alone, of the public
 * function (native first, OpenPGP.js behind it) and of the native function alone, in one comparable
 * form: `ok:<detail>` for an acceptance, the KlError code for a refusal, `fallback` when the native
 * function leaves the input to OpenPGP.js, `throw:<message>` for anything else.
 */
import * as openpgp from 'openpgp';
import { checkArmor } from '../../src/pgp/armor.js';
import { PGP_CONFIG } from '../../src/pgp/config.js';
import { decryptAndVerify, verifyDetached } from '../../src/pgp/messages.js';
import {
  nativeCheckSignature,
  nativeDecryptAndVerify,
  nativeOpenSealed,
  readNativeSignature,
} from '../../src/pgp/native/operations.js';
import { openSealed } from '../../src/pgp/sealed.js';
import { isKlError } from '../../src/protocol/errors.js';

/** Lower-case hex. */
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
/** Bytes of lower-case hex. */
export const unhex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

function refusal(error: unknown): string {
  return isKlError(error) ? error.code : `throw:${(error as Error)?.message ?? String(error)}`;
}

/** The armored message read as messages.ts reads it, or the error code it refuses it with. */
async function readOracleMessage(armored: string): Promise<openpgp.Message<Uint8Array> | string> {
  try {
    checkArmor(armored, 'MESSAGE', 'KL_MESSAGE_MALFORMED', 'message');
  } catch (error) {
    return refusal(error);
  }
  try {
    return (await openpgp.readMessage({
      armoredMessage: armored,
      config: PGP_CONFIG,
    })) as openpgp.Message<Uint8Array>;
  } catch {
    return 'KL_MESSAGE_MALFORMED';
  }
}

/** What decryptAndVerify would answer if the native path did not exist (OpenPGP.js only). */
export async function openpgpDecryptVerdict(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
  signerKey: openpgp.PublicKey,
  now: number,
): Promise<string> {
  const message = await readOracleMessage(armored);
  if (typeof message === 'string') return message;
  try {
    const result = await openpgp.decrypt({
      message,
      decryptionKeys: decryptionKey,
      verificationKeys: signerKey,
      expectSigned: true,
      format: 'binary',
      date: new Date(now),
      config: { ...PGP_CONFIG, allowUnauthenticatedMessages: false },
    });
    return `ok:${hex(result.data as Uint8Array)}`;
  } catch {
    return 'KL_DECRYPTION_FAILED';
  }
}

/** What decryptAndVerify answers. */
export async function publicDecryptVerdict(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
  signerKey: openpgp.PublicKey,
  now: number,
): Promise<string> {
  try {
    return `ok:${hex(await decryptAndVerify(armored, decryptionKey, signerKey, new Date(now)))}`;
  } catch (error) {
    return refusal(error);
  }
}

/** What nativeDecryptAndVerify answers: `ok:<hex>`, `reject` (null), `fallback` (undefined). */
export async function nativeDecryptVerdict(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
  signerKey: openpgp.PublicKey,
  now: number,
): Promise<string> {
  try {
    const out = await nativeDecryptAndVerify(armored, decryptionKey, signerKey, now);
    return out === undefined ? 'fallback' : out === null ? 'reject' : `ok:${hex(out)}`;
  } catch (error) {
    return `throw:${(error as Error)?.message}`;
  }
}

/** What verifyDetached (no skew bound) would answer if the native path did not exist. */
export async function openpgpVerifyVerdict(
  armoredSignature: string,
  data: Uint8Array,
  key: openpgp.PublicKey,
  now: number,
): Promise<string> {
  try {
    checkArmor(armoredSignature, 'SIGNATURE', 'KL_MESSAGE_MALFORMED', 'detached signature');
  } catch (error) {
    return refusal(error);
  }
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature, config: PGP_CONFIG });
  } catch {
    return 'KL_MESSAGE_MALFORMED';
  }
  if (signature.packets.length !== 1) return 'KL_MESSAGE_MALFORMED';
  const created = signature.packets[0]!.created ?? new Date(0);
  const at = created.getTime() > now ? created : new Date(now);
  try {
    const result = await openpgp.verify({
      message: await openpgp.createMessage({ binary: data }),
      signature,
      verificationKeys: key,
      expectSigned: true,
      date: at,
      config: PGP_CONFIG,
    });
    await result.signatures[0]!.verified;
    return `ok:${created.getTime()}`;
  } catch {
    return 'KL_SIGNATURE_INVALID';
  }
}

/** What verifyDetached (no skew bound) answers. */
export async function publicVerifyVerdict(
  armoredSignature: string,
  data: Uint8Array,
  key: openpgp.PublicKey,
  now: number,
): Promise<string> {
  try {
    const created = await verifyDetached({ data, armoredSignature, key, now: new Date(now) });
    return `ok:${created.getTime()}`;
  } catch (error) {
    return refusal(error);
  }
}

/**
 * The native signature functions alone, as verifyDetached calls them: `ok:<created>`, `reject`,
 * `fallback` (not read natively, or the key is outside the profile).
 */
export async function nativeVerifyVerdict(
  armoredSignature: string,
  data: Uint8Array,
  key: openpgp.PublicKey,
  now: number,
): Promise<string> {
  try {
    const signature = readNativeSignature(armoredSignature);
    if (!signature) return 'fallback';
    const verdict = await nativeCheckSignature(signature, data, key, Math.max(signature.created, now));
    return verdict === undefined ? 'fallback' : verdict ? `ok:${signature.created}` : 'reject';
  } catch (error) {
    return `throw:${(error as Error)?.message}`;
  }
}

/** OpenPGP.js verification of a detached signature at exactly `date` (no "as of its own time"). */
export async function openpgpVerifiesAt(
  armoredSignature: string,
  data: Uint8Array,
  key: openpgp.PublicKey,
  date: number,
): Promise<boolean> {
  try {
    const signature = await openpgp.readSignature({ armoredSignature, config: PGP_CONFIG });
    const result = await openpgp.verify({
      message: await openpgp.createMessage({ binary: data }),
      signature,
      verificationKeys: key,
      expectSigned: true,
      date: new Date(date),
      config: PGP_CONFIG,
    });
    await result.signatures[0]!.verified;
    return true;
  } catch {
    return false;
  }
}

/** The native check at exactly `date`: true / false, or undefined (outside the profile). */
export async function nativeVerifiesAt(
  armoredSignature: string,
  data: Uint8Array,
  key: openpgp.PublicKey,
  date: number,
): Promise<boolean | undefined> {
  const signature = readNativeSignature(armoredSignature);
  return signature && nativeCheckSignature(signature, data, key, date);
}

/**
 * Whether a native verdict agrees with the oracle: a native acceptance must be the oracle's with the
 * same detail, a native refusal must be a refusal of the oracle with the code the public function
 * throws for it (KL_DECRYPTION_FAILED / KL_SIGNATURE_INVALID), and `fallback` always agrees.
 */
export function nativeAgrees(native: string, oracle: string, refusalCode: string): boolean {
  if (native === 'fallback') return true;
  if (native === 'reject') return oracle === refusalCode;
  return native === oracle;
}

/** What openSealed would answer if the native path did not exist (OpenPGP.js only). */
export async function openpgpOpenSealedVerdict(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
  now: number,
  maxBytes = 4096,
): Promise<string> {
  const message = await readOracleMessage(armored);
  if (typeof message === 'string') return message;
  let data: Uint8Array;
  try {
    const result = await openpgp.decrypt({
      message,
      decryptionKeys: decryptionKey,
      format: 'binary',
      date: new Date(now),
      config: { ...PGP_CONFIG, allowUnauthenticatedMessages: false },
    });
    data = result.data as Uint8Array;
  } catch {
    return 'KL_DECRYPTION_FAILED';
  }
  return data.length > maxBytes ? 'KL_MESSAGE_MALFORMED' : `ok:${hex(data)}`;
}

/** What openSealed answers. */
export async function publicOpenSealedVerdict(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
  now: number,
): Promise<string> {
  try {
    return `ok:${hex(await openSealed(armored, decryptionKey, new Date(now)))}`;
  } catch (error) {
    return refusal(error);
  }
}

/** What nativeOpenSealed answers: `ok:<hex>`, `reject` (null), `fallback` (undefined). */
export async function nativeOpenSealedVerdict(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
): Promise<string> {
  try {
    const out = await nativeOpenSealed(armored, decryptionKey);
    return out === undefined ? 'fallback' : out === null ? 'reject' : `ok:${hex(out)}`;
  } catch (error) {
    return `throw:${(error as Error)?.message}`;
  }
}
