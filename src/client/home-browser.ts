/**
 * The home directory store in a browser bundle: there is no file system, so {@link ClientHome} and
 * {@link defaultHome} throw a clear `KL_DATA_DIR`. The package.json `browser` field puts this
 * module in the place of ./home.ts (node:fs, node:os); use {@link BrowserClientStore} (IndexedDB)
 * or {@link MemoryClientStore} instead.
 */
import { KlError } from '../protocol/errors.js';

export type { IdentityFile, PendingRotation, ServerFile } from './store.js';

function unavailable(): never {
  throw new KlError(
    'KL_DATA_DIR',
    'a home directory cannot be used in a browser: use BrowserClientStore or MemoryClientStore',
  );
}

/** Throws `KL_DATA_DIR`: see the module comment. */
export function defaultHome(): string {
  unavailable();
}

/** Throws `KL_DATA_DIR` when made: see the module comment. */
export class ClientHome {
  constructor(_dir?: string) {
    unavailable();
  }
}
