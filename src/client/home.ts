/**
 * The client's home directory (default ~/.keyledger, mode 0700), seed phase 1 step 4 "Client's
 * Private Key Storage":
 *   identity.json     identity, name, fingerprint, where the private key lives (file or gpg)
 *   private-key.asc   the private key, passphrase-protected (iterated S2K), mode 0600 (file keys only)
 *   server.json       the server this identity registered with: URL, pinned genesis and server key,
 *                     the last checkpoint seen, the registration receipt
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { SignedHeader } from '../ledger/block.js';
import type { Genesis } from '../ledger/genesis.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { KlError } from '../protocol/errors.js';

/** identity.json */
export interface IdentityFile {
  v: 1;
  id: string;
  name: string;
  fingerprint: string;
  algorithm: string;
  publicKey: string;
  keySource: 'file' | 'gpg';
  /** GNUPGHOME for gpg keys, when not the default. */
  gpgHome?: string;
}

/** server.json */
export interface ServerFile {
  v: 1;
  url: string;
  chain: string;
  genesis: Genesis;
  server: { fingerprint: string; publicKey: string };
  checkpoint: SignedHeader;
  registration: { receipt: TransactionReceipt; at: number };
}

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

/** Access to one home directory. */
export class ClientHome {
  constructor(readonly dir: string = defaultHome()) {}

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

  hasServer(): boolean {
    return existsSync(this.serverPath);
  }

  readServer(): ServerFile {
    if (!this.hasServer())
      throw new KlError('KL_NOT_REGISTERED', `not registered with any server yet: run keyledger register`);
    return JSON.parse(readFileSync(this.serverPath, 'utf8')) as ServerFile;
  }

  writeServer(server: ServerFile): void {
    this.ensure();
    writePrivate(this.serverPath, `${JSON.stringify(server, null, 2)}\n`);
  }
}
