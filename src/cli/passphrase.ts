/**
 * Where the CLI gets the passphrase that protects the node's keys (ledger validator and registrar;
 * the server's OpenPGP key too, from issue 3): `--passphrase-file FILE`, else the environment variable
 * KEYLEDGER_SERVER_PASSPHRASE, else a prompt on a terminal. `--insecure-dev-passphrase` uses a fixed,
 * public passphrase for demos; it says so every time.
 */
import { readFileSync } from 'node:fs';
import { KlError } from '../protocol/errors.js';
import { info, promptSecret } from './io.js';

/** The well-known passphrase of `--insecure-dev-passphrase`. Never protects anything. */
export const INSECURE_DEV_PASSPHRASE = 'keyledger-insecure-dev-passphrase';

/** Options that say where a passphrase comes from. */
export interface PassphraseSource {
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
}

/** Resolves the passphrase from the sources above, in that order. */
export async function resolvePassphrase(src: PassphraseSource, { confirm = false } = {}): Promise<string> {
  if (src.passphraseFile) {
    const text = readFileSync(src.passphraseFile, 'utf8').replace(/\r?\n$/, '');
    if (!text) throw new KlError('KL_PASSPHRASE_REQUIRED', `passphrase file ${src.passphraseFile} is empty`);
    return text;
  }
  const env = process.env.KEYLEDGER_SERVER_PASSPHRASE;
  if (env) return env;
  if (src.insecureDevPassphrase) {
    info('warning: --insecure-dev-passphrase: the node keys are protected by a publicly known passphrase');
    return INSECURE_DEV_PASSPHRASE;
  }
  if (process.stdin.isTTY) {
    const first = await promptSecret('Passphrase for the node keys: ');
    if (confirm && (await promptSecret('Repeat the passphrase: ')) !== first) {
      throw new KlError('KL_PASSPHRASE_WRONG', 'the two passphrases differ');
    }
    if (!first) throw new KlError('KL_PASSPHRASE_REQUIRED', 'the passphrase must not be empty');
    return first;
  }
  throw new KlError(
    'KL_PASSPHRASE_REQUIRED',
    'no passphrase: set KEYLEDGER_SERVER_PASSPHRASE, pass --passphrase-file FILE, or (demos only) --insecure-dev-passphrase',
  );
}
