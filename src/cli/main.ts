/**
 * The `keyledger` command.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isKlError } from '../protocol/errors.js';
import { demo } from './commands/demo.js';
import { ledgerInit, ledgerShow, ledgerVerify, parseHeight } from './commands/ledger.js';
import { info } from './io.js';

const HELP = `keyledger — passwordless mutual authentication with OpenPGP keys on a permissioned ledger

usage:
  keyledger demo [--data DIR] [--users N]          run the quick-start job on the embedded ledger
  keyledger ledger init --data DIR [--name NAME]   make the node keys and genesis of a new ledger
  keyledger ledger verify --data DIR [--checkpoint FILE]... [--json]
                                                   re-check every block, transaction and state entry,
                                                   and that checkpoints kept earlier are still there
  keyledger ledger show --data DIR [--height N | --id IDENTITY | --tx TXID] [--json]

passphrase of the node keys: KEYLEDGER_SERVER_PASSPHRASE, --passphrase-file FILE, a prompt on a
terminal, or --insecure-dev-passphrase (a public passphrase, for demos only).

exit status: 0 success, 1 verification failed, 2 error (the message starts with the error code).`;

const OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  name: { type: 'string' },
  height: { type: 'string' },
  id: { type: 'string' },
  tx: { type: 'string' },
  checkpoint: { type: 'string', multiple: true },
  users: { type: 'string' },
  'passphrase-file': { type: 'string' },
  'insecure-dev-passphrase': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    info(`error KL_BAD_INPUT: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.version) {
    info(version());
    return 0;
  }
  const [cmd, sub] = positionals;
  if (v.help || !cmd) {
    info(HELP);
    return v.help ? 0 : 2;
  }
  const common = {
    data: v.data ?? './keyledger-data',
    json: v.json ?? false,
    quiet: v.quiet ?? false,
    ...(v['passphrase-file'] ? { passphraseFile: v['passphrase-file'] } : {}),
    insecureDevPassphrase: v['insecure-dev-passphrase'] ?? false,
  };
  try {
    if (cmd === 'demo') {
      const users = v.users === undefined ? 3 : Number(v.users);
      if (!Number.isSafeInteger(users) || users < 2 || users > 1000) {
        info('error KL_BAD_INPUT: --users must be an integer from 2 to 1000');
        return 2;
      }
      return await demo({ ...common, users });
    }
    if (cmd === 'ledger') {
      if (!v.data) {
        info('error KL_BAD_INPUT: --data DIR is required');
        return 2;
      }
      if (sub === 'init') return await ledgerInit({ ...common, ...(v.name ? { name: v.name } : {}) });
      if (sub === 'verify') return await ledgerVerify({ ...common, checkpoints: v.checkpoint ?? [] });
      if (sub === 'show') {
        const selectors = [v.height, v.id, v.tx].filter((x) => x !== undefined).length;
        if (selectors > 1) {
          info('error KL_BAD_INPUT: give at most one of --height, --id, --tx');
          return 2;
        }
        const height = parseHeight(v.height);
        return await ledgerShow({
          ...common,
          ...(height !== undefined ? { height } : {}),
          ...(v.id !== undefined ? { id: v.id } : {}),
          ...(v.tx !== undefined ? { tx: v.tx } : {}),
        });
      }
    }
    info(`error KL_BAD_INPUT: unknown command "${positionals.join(' ')}"\n\n${HELP}`);
    return 2;
  } catch (err) {
    if (isKlError(err)) info(`error ${err.code}: ${err.message}`);
    else info(`error: ${(err as Error).message ?? String(err)}`);
    return 2;
  }
}
