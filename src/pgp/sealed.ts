/**
 * Encryption to a key without a signature, for the identity proof of a registration
 * (docs/protocol.md "Registration on a hostile network"): the client seals the code to KpubS; the
 * statement that carries the sealed message is signed by the key being registered, which is what
 * authenticates it. Only the server key opens it, and every seal is randomised (a fresh session key
 * and ECDH ephemeral per message, RFC 4880 §5.1 / RFC 6637 §8), so an observer can neither read the
 * code nor test guesses against the ciphertext.
 */
import * as openpgp from 'openpgp';
import { isKlError, KlError } from '../protocol/errors.js';
import { PGP_CONFIG } from './config.js';
import { checkArmoredMessage, encryptMessage, readArmoredMessage } from './messages.js';
import { nativeOpenSealed } from './native/operations.js';

/**
 * Encrypts `data` to `recipient` (no signature); returns the armored message.
 * @throws KlError `KL_KEY_POLICY` when nothing can be encrypted to the recipient key.
 */
export function sealTo(data: Uint8Array, recipient: openpgp.PublicKey, date?: Date): Promise<string> {
  return encryptMessage(data, recipient, undefined, date);
}

/**
 * Opens a message sealed with {@link sealTo}; integrity-protected messages only (SEIPD with MDC),
 * at most `maxBytes` of plaintext.
 * @throws KlError `KL_DECRYPTION_FAILED` (generic on purpose) or `KL_MESSAGE_MALFORMED`.
 */
export async function openSealed(
  armored: unknown,
  decryptionKey: openpgp.PrivateKey,
  now: Date,
  maxBytes = 4096,
): Promise<Uint8Array> {
  checkArmoredMessage(armored);
  const native = await nativeOpenSealed(armored, decryptionKey);
  if (native === null) throw new KlError('KL_DECRYPTION_FAILED', 'the message could not be decrypted');
  if (native !== undefined) {
    if (native.length > maxBytes) throw new KlError('KL_MESSAGE_MALFORMED', 'the sealed message is too long');
    return native;
  }
  const message = await readArmoredMessage(armored);
  let data: Uint8Array;
  try {
    const result = await openpgp.decrypt({
      message,
      decryptionKeys: decryptionKey,
      format: 'binary',
      date: now,
      config: { ...PGP_CONFIG, allowUnauthenticatedMessages: false },
    });
    data = result.data as Uint8Array;
  } catch {
    throw new KlError('KL_DECRYPTION_FAILED', 'the message could not be decrypted');
  }
  if (data.length > maxBytes) throw new KlError('KL_MESSAGE_MALFORMED', 'the sealed message is too long');
  return data;
}
