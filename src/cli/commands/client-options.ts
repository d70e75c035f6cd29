/**
 * What the end user's commands share: their options, the passphrase source, how keys and homes are
 * named.
 */
import { defaultHome } from '../../client/home.js';

/** Options shared by the client commands. */
export interface ClientOptions {
  home: string;
  json?: boolean;
  passphraseFile?: string;
  /**
   * `--server URL`: use this server of the home's ledger only (checked first: same ledger, a server
   * key the client accepts; then added to the home's servers). Default: the home's servers,
   * preferred first, the next when one is out.
   */
  server?: string;
}

/** Where the passphrase of the user's key comes from. */
export const CLIENT_PASS = { envVar: 'KEYLEDGER_PASSPHRASE', prompt: 'Passphrase of your keyledger key: ' };

/**
 * A key's algorithm as people know it (the README's names), from the short label the home and the
 * ledger keep (`ed25519-legacy`, `rsa3072`, …); an unknown label is shown as it is.
 */
export function algorithmName(label: string): string {
  if (label === 'ed25519-legacy') return 'Ed25519/Cv25519 (OpenPGP v4)';
  const rsa = /^rsa(\d+)$/.exec(label);
  return rsa ? `RSA-${rsa[1]}` : label;
}

/** ` --home DIR` when `dir` is not the default home, so that a printed command works as shown. */
export function homeFlag(dir: string): string {
  return dir === defaultHome() ? '' : ` --home ${dir}`;
}
