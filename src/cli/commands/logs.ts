/**
 * `keyledger logs decrypt`: prints encrypted log files with the reader's private key — the
 * operator's (--key FILE, passphrase in KEYLEDGER_OPERATOR_PASSPHRASE), or by default the server key
 * of DATA (node passphrase), or, with --home, the user's own key for the client's logs (and the
 * keys it retired by rotation, for logs written before).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as openpgp from 'openpgp';
import { ClientHome } from '../../client/home.js';
import { readEncryptedLog } from '../../pgp/encrypted-log.js';
import { unlockPrivateKey } from '../../pgp/messages.js';
import { KlError } from '../../protocol/errors.js';
import { loadServerKey } from '../../server/server-key.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/** Options of `keyledger logs decrypt`. */
export interface LogsOptions {
  data?: string;
  home?: string;
  key?: string;
  file?: string;
  json?: boolean;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
}

/** Decrypts and prints every log file of a data directory (or a client home, or one file). */
export async function logsDecrypt(o: LogsOptions): Promise<number> {
  const dir = o.home ? join(o.home, 'logs') : join(o.data ?? './keyledger-data', 'logs');
  const files = o.file
    ? [o.file]
    : existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.log.enc'))
          .sort()
          .map((f) => join(dir, f))
      : [];
  if (files.length === 0) throw new KlError('KL_NOT_FOUND', `no encrypted log files in ${dir}`);
  let key: openpgp.PrivateKey | openpgp.PrivateKey[];
  if (o.key) {
    key = await unlockPrivateKey(readFileSync(o.key, 'utf8'), process.env.KEYLEDGER_OPERATOR_PASSPHRASE);
  } else if (o.home) {
    const home = new ClientHome(o.home);
    const passphrase = await resolvePassphrase(o, {
      envVar: 'KEYLEDGER_PASSPHRASE',
      prompt: 'Passphrase of your keyledger key: ',
    });
    // Logs written before a key rotation are readable with the retired key (same passphrase).
    const retired: openpgp.PrivateKey[] = [];
    for (const armored of home.readRetiredKeys()) {
      try {
        retired.push(await unlockPrivateKey(armored, passphrase));
      } catch {
        info('note: a retired key in retired/ has another passphrase; logs written for it are skipped');
      }
    }
    key = [await unlockPrivateKey(home.readPrivateKey(), passphrase), ...retired];
  } else {
    key = (await loadServerKey(o.data ?? './keyledger-data', await resolvePassphrase(o))).privateKey;
  }
  let bad = 0;
  for (const f of files) {
    const { header, lines } = await readEncryptedLog(f, key);
    for (const l of lines) {
      if ('error' in l) bad += 1;
      if (o.json) out(JSON.stringify({ file: f, created: header.created, ...l }));
      else out('error' in l ? `${f}:${l.line}: !! ${l.error}` : l.text);
    }
  }
  return bad === 0 ? 0 : 1;
}
