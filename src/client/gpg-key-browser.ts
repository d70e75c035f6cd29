/**
 * GnuPG keys in a browser bundle: there is no `gpg` to run, so each entry point of ./gpg-key.ts
 * throws a clear `KL_GPG_FAILED`. The package.json `browser` field puts this module in the place of
 * ./gpg-key.ts (which starts gpg with node:child_process); keys made or imported with OpenPGP.js
 * (`keySource: 'file'`) work in browsers.
 */
import { KlError } from '../protocol/errors.js';

export type { GpgKeyOptions } from './gpg-key.js';

function unavailable(): never {
  throw new KlError(
    'KL_GPG_FAILED',
    'GnuPG keys cannot be used in a browser: generate or import the key with OpenPGP.js instead',
  );
}

/** Throws `KL_GPG_FAILED`: see the module comment. */
export async function gpgKeyFor(_armoredPublicKey: string, _role: string, _date: Date): Promise<string> {
  unavailable();
}

/** Throws `KL_GPG_FAILED`: see the module comment. */
export async function checkGpgSecretKeys(_o: unknown, _roles: unknown): Promise<void> {
  unavailable();
}

/** Throws `KL_GPG_FAILED`: see the module comment. */
export async function exportGpgPublicKey(_o: unknown): Promise<string> {
  unavailable();
}

/** Throws `KL_GPG_FAILED` when made: see the module comment. */
export class GpgClientKey {
  constructor(_publicKey: string, _o: unknown) {
    unavailable();
  }
}
