/**
 * The client's private-key operations, behind one interface so that the key can live in a file
 * (OpenPGP.js, passphrase-protected) or in GnuPG (gpg-agent, an OpenPGP smartcard): the SDK never
 * needs the key material itself, only "sign these bytes" and "decrypt and verify this challenge".
 */
import type * as openpgp from 'openpgp';
import { decryptAndVerify, signDetached } from '../pgp/messages.js';

/** Private-key operations the protocol needs (docs/protocol.md "Phase 1", step 3; "Phase 2", step 3). */
export interface ClientKey {
  /** Fingerprint of the key (lower-case hex). */
  readonly fingerprint: string;
  /** Armored public key. */
  readonly publicKey: string;
  /** Armored detached signature over exact bytes. */
  signDetached(data: Uint8Array, date: Date): Promise<string>;
  /** Decrypts a challenge and requires a valid signature by `signer` (the pinned server key). */
  decryptVerified(armored: string, signer: openpgp.PublicKey, now: Date): Promise<Uint8Array>;
}

/** A key held by OpenPGP.js in this process, unlocked. */
export class OpenPgpClientKey implements ClientKey {
  readonly fingerprint: string;
  readonly publicKey: string;

  constructor(private readonly key: openpgp.PrivateKey) {
    this.fingerprint = key.getFingerprint();
    this.publicKey = key.toPublic().armor();
  }

  signDetached(data: Uint8Array, date: Date): Promise<string> {
    return signDetached(data, this.key, date);
  }

  decryptVerified(armored: string, signer: openpgp.PublicKey, now: Date): Promise<Uint8Array> {
    return decryptAndVerify(armored, this.key, signer, now);
  }
}
