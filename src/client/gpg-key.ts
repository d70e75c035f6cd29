/**
 * A client key that lives in GnuPG: every private-key operation runs `gpg`, so keys in gpg-agent or
 * on an OpenPGP smartcard work and never leave it (`keyledger init --gpg FINGERPRINT`).
 *   sign:    gpg --batch --no-tty --status-fd 2 --armor --detach-sign --local-user SIGNING-FPR!
 *            where SIGNING-FPR is the key the registered public key signs with: the primary key, or
 *            its signing subkey when the primary can only certify (as Sequoia's `sq key generate`
 *            and PGPainless make keys); the `!` makes gpg use exactly that (sub)key
 *   decrypt: gpg --batch --no-tty --status-fd 2 --unwrap --decrypt   (keeps the inner signed message,
 *            whose server signature is then checked against the pinned server key here)
 * With a passphrase: --pinentry-mode loopback --passphrase-fd 3 (the passphrase never touches disk).
 */
import { spawn } from 'node:child_process';
import type * as openpgp from 'openpgp';
import { PGP_FULL_CONFIG } from '../pgp/config.js';
import { readPublicKey, verifySignedMessage } from '../pgp/messages.js';
import { KlError } from '../protocol/errors.js';
import type { ClientKey } from './client-key.js';

/** Options of {@link GpgClientKey}. */
export interface GpgKeyOptions {
  fingerprint: string;
  /** Passphrase for loopback pinentry; without it gpg-agent's cache or pinentry decides. */
  passphrase?: string;
  /** GNUPGHOME to use (default: gpg's own). */
  homedir?: string;
  gpgPath?: string;
  timeoutMs?: number;
}

interface GpgResult {
  stdout: Buffer;
  status: string;
}

function runGpg(args: string[], input: Uint8Array, o: GpgKeyOptions): Promise<GpgResult> {
  const full = ['--batch', '--no-tty', '--status-fd', '2', ...(o.homedir ? ['--homedir', o.homedir] : [])];
  if (o.passphrase !== undefined) full.push('--pinentry-mode', 'loopback', '--passphrase-fd', '3');
  full.push(...args);
  return new Promise((resolve, reject) => {
    const child = spawn(o.gpgPath ?? 'gpg', full, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let status = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => {
      status += c.toString();
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new KlError('KL_GPG_FAILED', `cannot run gpg: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out), status });
      else reject(Object.assign(new Error('gpg failed'), { status, code }));
    });
    // gpg may exit before reading all input (e.g. a wrong passphrase): ignore the broken pipe.
    child.stdin!.on('error', () => {});
    const fd3 = child.stdio[3] as NodeJS.WritableStream | null;
    fd3?.on('error', () => {});
    if (o.passphrase !== undefined && fd3) fd3.end(`${o.passphrase}\n`);
    else fd3?.end();
    child.stdin!.end(Buffer.from(input));
  });
}

function gpgError(err: unknown, what: string): KlError {
  const status = (err as { status?: string }).status ?? '';
  if (/BAD_PASSPHRASE|MISSING_PASSPHRASE|Bad passphrase|No passphrase given/i.test(status)) {
    return new KlError('KL_PASSPHRASE_WRONG', `gpg could not unlock the key (${what})`);
  }
  if (isKlError(err)) return err;
  const last =
    status
      .split('\n')
      .filter((l) => l.startsWith('gpg:'))
      .pop() ?? 'no detail';
  return new KlError('KL_GPG_FAILED', `gpg could not ${what}: ${last.replace(/^gpg: /, '')}`);
}

function isKlError(err: unknown): err is KlError {
  return err instanceof KlError;
}

/**
 * The fingerprint of the (sub)key `armoredPublicKey` signs or encrypts with at `date` (the one
 * OpenPGP.js — and so the server — picks: valid, unexpired, unrevoked, newest first).
 * @throws KlError `KL_KEY_POLICY` when the key has no valid (sub)key for `role`.
 */
export async function gpgKeyFor(
  armoredPublicKey: string,
  role: 'signing' | 'encryption',
  date: Date,
): Promise<string> {
  const key = await readPublicKey(armoredPublicKey);
  try {
    const k =
      role === 'signing'
        ? await key.getSigningKey(undefined, date, undefined, PGP_FULL_CONFIG)
        : await key.getEncryptionKey(undefined, date, undefined, PGP_FULL_CONFIG);
    return k.getFingerprint();
  } catch {
    throw new KlError('KL_KEY_POLICY', `the key has no valid ${role} key or subkey`);
  }
}

/**
 * Checks that GnuPG holds the secret parts `keyledger` will use: the signing (sub)key and the
 * encryption subkey of the primary key `o.fingerprint` (secret keys that are present, or on a
 * smartcard; not stubs such as `gpg --export-secret-subkeys` leaves for the primary key).
 * @throws KlError `KL_KEY_POLICY` naming the part GnuPG cannot use, or `KL_GPG_FAILED`.
 */
export async function checkGpgSecretKeys(
  o: GpgKeyOptions,
  roles: { signing: string; encryption: string },
): Promise<void> {
  let listing: string;
  try {
    const r = await runGpg(
      ['--with-colons', '--with-fingerprint', '--list-secret-keys', o.fingerprint.toUpperCase()],
      new Uint8Array(),
      { ...o, passphrase: undefined },
    );
    listing = r.stdout.toString('utf8');
  } catch (err) {
    throw gpgError(err, `find the secret key ${o.fingerprint}`);
  }
  // --with-colons: a sec/ssb record, then its fpr record; field 15 is '#' for a stub (no secret).
  const usable = new Set<string>();
  let pending: string[] | null = null;
  for (const line of listing.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'sec' || f[0] === 'ssb') pending = f;
    else if (f[0] === 'fpr' && pending) {
      if (pending[14] !== '#') usable.add((f[9] ?? '').toLowerCase());
      pending = null;
    }
  }
  const missing = (role: string, fpr: string) =>
    new KlError(
      'KL_KEY_POLICY',
      `GnuPG has no usable secret key for the ${role} ${fpr === o.fingerprint.toLowerCase() ? 'primary key' : `subkey ${fpr}`} of ${o.fingerprint}: keyledger needs a key that can both sign and decrypt`,
    );
  if (!usable.has(roles.signing)) throw missing('signing', roles.signing);
  if (!usable.has(roles.encryption)) throw missing('encryption', roles.encryption);
}

/** A key held by GnuPG. */
export class GpgClientKey implements ClientKey {
  readonly fingerprint: string;

  constructor(
    readonly publicKey: string,
    private readonly o: GpgKeyOptions,
  ) {
    this.fingerprint = o.fingerprint.toLowerCase();
  }

  async signDetached(data: Uint8Array, date?: Date): Promise<string> {
    // Sign with the (sub)key the registered key signs with, which is also what the server verifies.
    const signing = await gpgKeyFor(this.publicKey, 'signing', date ?? new Date());
    try {
      const r = await runGpg(
        ['--armor', '--detach-sign', '--digest-algo', 'SHA256', '--local-user', `${signing.toUpperCase()}!`],
        data,
        this.o,
      );
      if (!/\[GNUPG:\] SIG_CREATED /.test(r.status))
        throw Object.assign(new Error('no signature'), { status: r.status });
      return r.stdout.toString('utf8');
    } catch (err) {
      throw gpgError(err, 'sign');
    }
  }

  async decryptVerified(armored: string, signer: openpgp.PublicKey, now: Date): Promise<Uint8Array> {
    let inner: Buffer;
    try {
      const r = await runGpg(['--unwrap', '--decrypt'], Buffer.from(armored, 'utf8'), this.o);
      if (!/\[GNUPG:\] DECRYPTION_OKAY/.test(r.status))
        throw Object.assign(new Error('not decrypted'), { status: r.status });
      inner = r.stdout;
    } catch (err) {
      const e = gpgError(err, 'decrypt the challenge');
      throw e.code === 'KL_GPG_FAILED'
        ? new KlError('KL_DECRYPTION_FAILED', 'the challenge could not be decrypted and verified')
        : e;
    }
    return verifySignedMessage(inner, signer, now);
  }
}

/** Exports the armored public key of `fingerprint` from GnuPG. */
export async function exportGpgPublicKey(o: GpgKeyOptions): Promise<string> {
  try {
    const r = await runGpg(['--armor', '--export', o.fingerprint.toUpperCase()], new Uint8Array(), {
      ...o,
      passphrase: undefined,
    });
    const text = r.stdout.toString('utf8');
    if (!text.includes('BEGIN PGP PUBLIC KEY BLOCK'))
      throw Object.assign(new Error('no key'), { status: `gpg: key ${o.fingerprint} not found` });
    return text;
  } catch (err) {
    throw gpgError(err, `export key ${o.fingerprint}`);
  }
}
