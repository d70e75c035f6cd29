/**
 * `keyledger recovery-key create` and `keyledger recover` (docs/protocol.md "Recovery"): an offline
 * key that can take an identity back on a new device when its devices are lost. The private part is
 * written once — an armored file (a USB stick) and a paper form of four lines printed for a person to
 * keep — and the ledger holds the public part; a recovery on a new device revokes every device,
 * enrols the new one and writes the next recovery key the same way, before anything is sent.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ClientHome } from '../../client/home.js';
import type { RecoveryKeyPair } from '../../pgp/recovery-key.js';
import { isKlError, KlError } from '../../protocol/errors.js';
import { decodePaperKey, encodePaperKey } from '../../protocol/paper-key.js';
import { ask, confirm, info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';
import { CLIENT_PASS, type ClientOptions, homeFlag } from './client-options.js';

/** Options of `keyledger recovery-key create`. */
export interface RecoveryKeyCreateOptions extends ClientOptions {
  /** Where the new recovery key's armored private part is written (a new file; required). */
  out?: string;
  /** The current recovery key's file when it is replaced (`-`: its paper form on standard input). */
  replace?: string;
}

/** Options of `keyledger recover`. */
export interface RecoverCommandOptions extends ClientOptions {
  /** The recovery key's armored file; without it, its paper form is read from standard input. */
  key?: string;
  /** Where the next recovery key's armored private part is written (a new file; required). */
  out?: string;
  chain?: string;
  /** Recover without asking to confirm. */
  yes?: boolean;
  /** Accept a server nothing authenticated (no `chain`) without asking. */
  trustFirstUse?: boolean;
}

const recoveryKeyModule = () => import('../../pgp/recovery-key.js');

/** The `--out` file, which the commands require. */
function outFile(path: string | undefined): string {
  if (!path) throw new KlError('KL_BAD_INPUT', '--out FILE is required: where the recovery key is written');
  return path;
}

/** Writes `key`'s armored private part to a new file `path` (never over another), readable by its owner only. */
function writeKeyFile(path: string, key: RecoveryKeyPair): void {
  try {
    writeFileSync(path, key.privateKey, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KlError(
      'KL_BAD_INPUT',
      e.code === 'EEXIST'
        ? `${path} exists: a recovery key is written to a new file only (nothing was changed)`
        : `cannot write ${path}: ${e.message}`,
    );
  }
}

/** The recovery key of `id` in an armored file, or in the paper form typed on standard input. */
async function readRecovery(id: string, file: string | undefined): Promise<RecoveryKeyPair> {
  const { readRecoveryKey, recoveryKeyFromPaper } = await recoveryKeyModule();
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KlError('KL_BAD_INPUT', `cannot read ${file}: ${(err as Error).message}`);
    }
    return readRecoveryKey(id, text);
  }
  return recoveryKeyFromPaper(id, decodePaperKey(await paperForm()));
}

/** The paper form: typed line by line on a terminal, else read from standard input (at most 4 KiB). */
async function paperForm(): Promise<string> {
  if (!process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) {
      text += String(chunk);
      if (text.length > 4096)
        throw new KlError('KL_RECOVERY_KEY_UNREADABLE', 'a paper recovery key is four short lines');
    }
    return text;
  }
  info('type the four lines of the paper recovery key (spaces and case do not matter):');
  const lines: string[] = [];
  while (lines.length < 4) {
    const line = await ask(`${lines.length + 1}: `);
    if (line === undefined) break;
    if (line.trim()) lines.push(line);
  }
  return lines.join('\n');
}

/** Prints where the private part went and its paper form, for a person to keep. */
function showKey(key: RecoveryKeyPair, file: string): void {
  out(`recovery key  ${key.fingerprint}`);
  out(`written to    ${file} (armored; keep it offline, e.g. on a USB stick)`);
  out('paper form (print it or write it down; keyledger recover reads it back):');
  for (const line of encodePaperKey(key.paper)) out(`    ${line}`);
}

/** The recovery key the ledger proves for the home's identity (null: none). */
async function ledgerRecoveryKey(home: ClientHome, server: string | undefined): Promise<string | null> {
  const { listDevices } = await import('../../client/devices.js');
  const proven = await listDevices({ home, ...(server !== undefined ? { server } : {}) });
  return proven.record.recovery?.fingerprint ?? null;
}

/** `keyledger recovery-key create`. */
export async function recoveryKeyCreate(o: RecoveryKeyCreateOptions): Promise<number> {
  const file = outFile(o.out);
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  home.readServer(); // not registered: said before anything is made
  const replaces =
    o.replace === undefined
      ? undefined
      : await readRecovery(identity.id, o.replace === '-' ? undefined : o.replace);
  const { generateRecoveryKey } = await recoveryKeyModule();
  const key = await generateRecoveryKey(identity.id, Date.now());
  // Written before the ledger holds it: once registered, the private part is never lost.
  writeKeyFile(file, key);
  const { openSession } = await import('./open-session.js');
  const session = await openSession(o);
  try {
    const r = await session.setRecoveryKey(key, replaces ? { replaces } : {});
    if (o.json)
      out(
        JSON.stringify({
          ...r,
          id: identity.id,
          fingerprint: key.fingerprint,
          file: file,
          paper: encodePaperKey(key.paper),
          ...(replaces ? { replaced: replaces.fingerprint } : {}),
        }),
      );
    else {
      out(`${identity.id}: recovery key set on the ledger at block ${r.height} (transaction ${r.txid})`);
      if (replaces) out(`it replaces ${replaces.fingerprint}, which no longer recovers anything`);
      showKey(key, file);
      out(
        `on a new device, after keyledger init --id ${identity.id} --device NAME: keyledger recover --key ${file} --server URL --out NEXT-FILE (or type the paper form)`,
      );
    }
    return 0;
  } catch (err) {
    // An answer lost on the way is no verdict: the ledger says whether the key is registered.
    const held = await ledgerRecoveryKey(home, o.server).catch(() => undefined);
    if (held === key.fingerprint) {
      out(`${identity.id}: the answer was lost, but the ledger holds this recovery key`);
      showKey(key, file);
      return 0;
    }
    info(
      isKlError(err, 'KL_NETWORK') || held === undefined
        ? `keyledger: the ledger does not show ${file} as the recovery key of ${identity.id} now; keep the file until keyledger device list shows which recovery key counts`
        : `keyledger: ${file} was not registered as the recovery key of ${identity.id} (the ledger shows ${held ?? 'none'}): delete it`,
    );
    throw err;
  } finally {
    await session.close().catch(() => {});
  }
}

/** `keyledger recover`. */
export async function recoverCommand(o: RecoverCommandOptions): Promise<number> {
  if (!o.server) throw new KlError('KL_BAD_INPUT', '--server URL is required (a server of your ledger)');
  const file = outFile(o.out);
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  const recovery = await readRecovery(identity.id, o.key);
  if (!o.yes) {
    info(
      `recovering ${identity.id} with recovery key ${recovery.fingerprint} revokes EVERY device of ${identity.id} and ends their sessions; this device (${identity.device ?? 'unnamed'}, ${identity.fingerprint}) becomes its only one.`,
    );
    if (!(await confirm('recover onto this device? [y/N] ')))
      throw new KlError('KL_BAD_INPUT', 'not recovered: answer y on the terminal, or give --yes');
  }
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const { generateRecoveryKey } = await recoveryKeyModule();
  const next = await generateRecoveryKey(identity.id, Date.now());
  writeKeyFile(file, next);
  const { recoverIdentity } = await import('../../client/recovery.js');
  const done = await recoverIdentity({
    home,
    server: o.server,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(o.chain ? { expectChain: o.chain } : {}),
    recovery,
    nextRecovery: next,
    onServer: async ({ chain, fingerprint, trust }) => {
      if (trust === 'pinned') return;
      // Nothing authenticated this server: a forged one could fake the recovery and pin this device.
      info(
        `keyledger: trusting ${o.server} on first use — no --chain was given, so this server is not authenticated.`,
      );
      info(`           its ledger ${chain}, server key ${fingerprint}.`);
      if (o.trustFirstUse) return;
      if (await confirm('recover through this server? [y/N] ')) return;
      throw new KlError(
        'KL_SERVER_UNPINNED',
        'not sent: give --chain ID (your ledger id), or --trust-first-use to accept this server unauthenticated',
      );
    },
  });
  const nextKept = done.recoveryKey === next.fingerprint;
  if (o.json)
    out(
      JSON.stringify({
        ...done,
        file: nextKept ? file : null,
        paper: nextKept ? encodePaperKey(next.paper) : null,
      }),
    );
  else {
    out(
      `${done.id} recovered onto ${done.name} (${done.fingerprint}) at block ${done.height} (transaction ${done.txid}): every other device is revoked`,
    );
    if (nextKept) showKey(next, file);
    else
      out(
        `an earlier try had already recovered it: the recovery key is now ${done.recoveryKey}, written by that try (${file} is not it: delete it)`,
      );
    out(`this device can log in now: keyledger login${homeFlag(home.dir)}`);
  }
  return 0;
}
