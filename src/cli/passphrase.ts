/**
 * Where the CLI gets the passphrase that protects the node's keys (ledger validator and registrar;
 * the server's OpenPGP key too): `--passphrase-file FILE`, else the environment variable
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

/** Where to look for a passphrase and what to ask. */
export interface PassphraseLookup {
  /** Environment variable to read (default KEYLEDGER_SERVER_PASSPHRASE). */
  envVar?: string;
  /** Prompt shown on a terminal. */
  prompt?: string;
  /** Ask twice on a terminal (when making a key). */
  confirm?: boolean;
  /** Return undefined instead of failing when no source gives one (e.g. gpg-agent decides). */
  optional?: boolean;
}

/** Resolves the passphrase from the sources above, in that order. */
export async function resolvePassphrase(
  src: PassphraseSource,
  lookup: PassphraseLookup & { optional: true },
): Promise<string | undefined>;
export async function resolvePassphrase(src: PassphraseSource, lookup?: PassphraseLookup): Promise<string>;
export async function resolvePassphrase(
  src: PassphraseSource,
  lookup: PassphraseLookup = {},
): Promise<string | undefined> {
  const envVar = lookup.envVar ?? 'KEYLEDGER_SERVER_PASSPHRASE';
  if (src.passphraseFile) {
    const text = readFileSync(src.passphraseFile, 'utf8').replace(/\r?\n$/, '');
    if (!text) throw new KlError('KL_PASSPHRASE_REQUIRED', `passphrase file ${src.passphraseFile} is empty`);
    return text;
  }
  const env = process.env[envVar];
  if (env) return env;
  if (src.insecureDevPassphrase) {
    info('warning: --insecure-dev-passphrase: the keys are protected by a publicly known passphrase');
    return INSECURE_DEV_PASSPHRASE;
  }
  if (process.stdin.isTTY) {
    const first = await promptSecret(lookup.prompt ?? 'Passphrase for the node keys: ');
    if (lookup.confirm && (await promptSecret('Repeat the passphrase: ')) !== first) {
      throw new KlError('KL_PASSPHRASE_WRONG', 'the two passphrases differ');
    }
    if (!first && !lookup.optional)
      throw new KlError('KL_PASSPHRASE_REQUIRED', 'the passphrase must not be empty');
    return first || undefined;
  }
  if (lookup.optional) return undefined;
  throw new KlError(
    'KL_PASSPHRASE_REQUIRED',
    `no passphrase: set ${envVar}, pass --passphrase-file FILE${envVar === 'KEYLEDGER_SERVER_PASSPHRASE' ? ', or (demos only) --insecure-dev-passphrase' : ''}`,
  );
}
