/**
 * The client's home directory (default ~/.keyledger, mode 0700), where the client keeps its
 * private key and what it pinned (docs/protocol.md "Phase 1", step 5):
 *   identity.json     identity, name, fingerprint, where the private key lives (file or gpg), and
 *                     the name of this device, if given
 *   private-key.asc   the private key, passphrase-protected (iterated S2K), mode 0600 (file keys only)
 *   server.json       the server this identity registered with: URL, pinned genesis and server key,
 *                     the last checkpoint seen, the registration receipt
 *   rotation.json     a key rotation in progress: the new key, kept until the ledger has it and it
 *                     is installed (so an interrupted `keyledger rotate-key` can be finished)
 *   retired/          private keys replaced by a rotation or by `init --force`, named by fingerprint
 *                     (mode 0600)
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KlError } from '../protocol/errors.js';
import type { ClientStore, IdentityFile, PendingRotation, ServerFile } from './store.js';

export type { IdentityFile, PendingRotation, ServerFile } from './store.js';

/** Default home directory. */
export function defaultHome(): string {
  return process.env.KEYLEDGER_HOME ?? join(homedir(), '.keyledger');
}

function writePrivate(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** A {@link ClientStore} in one home directory (the layout above), used by the CLI. */
export class ClientHome implements ClientStore {
  constructor(readonly dir: string = defaultHome()) {}

  /** The directory, for messages. */
  get name(): string {
    return this.dir;
  }

  get identityPath(): string {
    return join(this.dir, 'identity.json');
  }
  get privateKeyPath(): string {
    return join(this.dir, 'private-key.asc');
  }
  get serverPath(): string {
    return join(this.dir, 'server.json');
  }

  /** Makes the directory (0700). */
  ensure(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
  }

  hasIdentity(): boolean {
    return existsSync(this.identityPath);
  }

  readIdentity(): IdentityFile {
    if (!this.hasIdentity())
      throw new KlError('KL_NOT_REGISTERED', `no identity in ${this.dir}: run keyledger init first`);
    return JSON.parse(readFileSync(this.identityPath, 'utf8')) as IdentityFile;
  }

  writeIdentity(identity: IdentityFile, armoredPrivateKey?: string): void {
    this.ensure();
    if (armoredPrivateKey !== undefined) writePrivate(this.privateKeyPath, armoredPrivateKey);
    writePrivate(this.identityPath, `${JSON.stringify(identity, null, 2)}\n`);
  }

  readPrivateKey(): string {
    return readFileSync(this.privateKeyPath, 'utf8');
  }

  get rotationPath(): string {
    return join(this.dir, 'rotation.json');
  }

  /** A rotation that was started and not installed, if any. */
  readPendingRotation(): PendingRotation | null {
    if (!existsSync(this.rotationPath)) return null;
    return JSON.parse(readFileSync(this.rotationPath, 'utf8')) as PendingRotation;
  }

  /** Keeps the new key before the ledger is asked to switch to it. */
  writePendingRotation(pending: PendingRotation): void {
    this.ensure();
    writePrivate(this.rotationPath, `${JSON.stringify(pending, null, 2)}\n`);
  }

  /** Forgets a rotation the ledger refused. */
  discardPendingRotation(): void {
    rmSync(this.rotationPath, { force: true });
  }

  /**
   * Installs a pending rotation once the ledger has the new key: the old private key moves to
   * retired/FINGERPRINT.asc, the new key and identity.json take its place, rotation.json goes.
   * Each step is an atomic rename, and running it again after a crash finishes the job.
   */
  installPendingRotation(): IdentityFile {
    const pending = this.readPendingRotation();
    if (!pending) throw new KlError('KL_BAD_INPUT', 'no key rotation is in progress');
    const current = this.readIdentity();
    if (current.fingerprint !== pending.identity.fingerprint) {
      // (If a crash came after the new key was written but before identity.json, keep it.)
      const installed = existsSync(this.privateKeyPath) && this.readPrivateKey() === pending.privateKey;
      if (!installed) this.retireKey(current);
      this.writeIdentity(pending.identity, pending.privateKey);
    }
    this.discardPendingRotation();
    return pending.identity;
  }

  get retiredDir(): string {
    return join(this.dir, 'retired');
  }

  /**
   * Moves the private key of `current` (a file key) to retired/FINGERPRINT.asc (mode 0600, an
   * atomic rename) before another key takes its place; returns where it went, or null when there
   * is no key file to move (a GnuPG key stays in GnuPG).
   */
  retireKey(current: Pick<IdentityFile, 'keySource' | 'fingerprint'>): string | null {
    if (current.keySource !== 'file' || !existsSync(this.privateKeyPath)) return null;
    mkdirSync(this.retiredDir, { recursive: true, mode: 0o700 });
    const to = join(this.retiredDir, `${current.fingerprint}.asc`);
    renameSync(this.privateKeyPath, to);
    return to;
  }

  /** Armored private keys replaced by rotations (retired/*.asc), oldest first by name order. */
  readRetiredKeys(): string[] {
    const dir = join(this.dir, 'retired');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.asc'))
      .sort()
      .map((f) => readFileSync(join(dir, f), 'utf8'));
  }

  hasServer(): boolean {
    return existsSync(this.serverPath);
  }

  readServer(): ServerFile {
    if (!this.hasServer())
      throw new KlError(
        'KL_NOT_REGISTERED',
        // This home pins no ledger yet, so it cannot tell which of these it is (docs/protocol.md
        // "Devices", "Recovery"): each command, run again, finds on the ledger what was done.
        'not registered with any server yet: run keyledger register (a new identity), or, for a further device of your identity, keyledger device request --server URL — run it again if an approval or invitation was already given: it finds the addition on the ledger; after a recovery whose answer was lost, keyledger recover again',
      );
    return JSON.parse(readFileSync(this.serverPath, 'utf8')) as ServerFile;
  }

  writeServer(server: ServerFile): void {
    this.ensure();
    writePrivate(this.serverPath, `${JSON.stringify(server, null, 2)}\n`);
  }
}
