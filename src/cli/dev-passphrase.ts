/**
 * A data directory made by `npm start` is protected by the public development passphrase. When a
 * command on it finds the node passphrase missing or wrong, the person is told so instead of being
 * left to guess a passphrase they never chose.
 */
import { existsSync } from 'node:fs';
import { dataPaths } from '../ledger/data-dir.js';
import { openKeyFile } from '../ledger/sealed-key-file.js';
import { isKlError } from '../protocol/errors.js';
import { INSECURE_DEV_PASSPHRASE } from './passphrase.js';

/**
 * For a missing or wrong node passphrase (`KL_PASSPHRASE_REQUIRED`, `KL_PASSPHRASE_WRONG`): the hint
 * to give when `dataDir`'s validator key opens with the development passphrase; else undefined.
 */
export function devPassphraseHint(err: unknown, dataDir: string): string | undefined {
  if (!isKlError(err) || (err.code !== 'KL_PASSPHRASE_WRONG' && err.code !== 'KL_PASSPHRASE_REQUIRED'))
    return undefined;
  const path = dataPaths(dataDir).validatorKey;
  if (!existsSync(path)) return undefined;
  try {
    openKeyFile(path, INSECURE_DEV_PASSPHRASE, 'validator');
  } catch {
    return undefined;
  }
  return (
    `${dataDir} was made with the public development passphrase (npm start does that): add ` +
    '--insecure-dev-passphrase to use it as it is (demos only), or make a data directory of your own'
  );
}
