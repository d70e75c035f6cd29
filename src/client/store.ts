/**
 * Where a client keeps its identity, its protected private key, the server it registered with (and
 * what it pinned of it: genesis, server key, last checkpoint) and a key rotation in progress
 * (docs/protocol.md "Phase 1", step 5). The SDK reads and writes only through this interface:
 * `ClientHome` keeps it in a directory (~/.keyledger, files 0600), {@link MemoryClientStore} in
 * memory (nothing touches a disk). Methods may answer synchronously or with a promise, so a store
 * backed by an asynchronous database fits too.
 */
import type { SignedHeader } from '../ledger/block.js';
import type { Genesis } from '../ledger/genesis.js';
import type { NodeAdmission } from '../ledger/node-admission.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { KlError } from '../protocol/errors.js';

/** The identity (identity.json in a home directory). */
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
  /**
   * The name of this device (`keyledger init --device NAME`; the schema's DeviceName): what a new
   * device asks to be added as, and how `keyledger device list` shows it (docs/protocol.md "Devices").
   */
  device?: string;
}

/**
 * One server of the ledger this identity belongs to (server.json `servers`; docs/protocol.md
 * "Several servers").
 */
export interface ServerEntry {
  /** Its base URL. */
  url: string;
  /**
   * Fingerprint of the server key it presented when the client checked it (src/client/server-trust.ts);
   * absent for a server learnt from another server's list and not checked yet: it is checked before
   * its first use.
   */
  fingerprint?: string;
}

/**
 * The ledger this identity registered with (server.json): the pinned genesis and server key, the
 * last checkpoint seen, the registration receipt, and the ledger's servers. A home belongs to a
 * ledger (its chain), not to one server.
 */
export interface ServerFile {
  v: 1;
  /** The preferred server: the one used last (tried first). */
  url: string;
  chain: string;
  genesis: Genesis;
  server: { fingerprint: string; publicKey: string };
  checkpoint: SignedHeader;
  registration: { receipt: TransactionReceipt; at: number };
  /**
   * The ledger's servers this client may use, `url` among them. Absent in a server.json written
   * before several servers: then `url` alone, with the pinned server key.
   */
  servers?: ServerEntry[];
  /**
   * Further servers of a chain-ordered ledger whose admissions this client verified against the
   * genesis (node-admission.ts): their server keys and block signatures are trusted too.
   */
  admitted?: NodeAdmission[];
  /** Registrar key ids of servers whose removal this client verified: never trusted again. */
  removed?: string[];
}

/** A key rotation that has started but is not installed yet (rotation.json). */
export interface PendingRotation {
  v: 1;
  /** identity.json as it will be once the rotation is installed. */
  identity: IdentityFile;
  /** The new protected private key (file keys). */
  privateKey?: string;
  startedAt: number;
}

/** A value, or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** Storage of one client identity; see the module comment. */
export interface ClientStore {
  /** What to call this store in messages (a directory, "memory"). */
  readonly name: string;
  hasIdentity(): Awaitable<boolean>;
  /** @throws KlError `KL_NOT_REGISTERED` when there is no identity. */
  readIdentity(): Awaitable<IdentityFile>;
  /** Writes the identity, and its protected private key for file keys. */
  writeIdentity(identity: IdentityFile, armoredPrivateKey?: string): Awaitable<void>;
  /** The protected (passphrase-encrypted) private key of a file key. */
  readPrivateKey(): Awaitable<string>;
  /** Keeps the private key of `current` aside before another takes its place; where it went, or null. */
  retireKey(current: Pick<IdentityFile, 'keySource' | 'fingerprint'>): Awaitable<string | null>;
  /** Private keys replaced by rotations or a forced new identity, oldest first. */
  readRetiredKeys(): Awaitable<string[]>;
  readPendingRotation(): Awaitable<PendingRotation | null>;
  writePendingRotation(pending: PendingRotation): Awaitable<void>;
  discardPendingRotation(): Awaitable<void>;
  /** Makes a pending rotation's key the current one (the old key retired); idempotent. */
  installPendingRotation(): Awaitable<IdentityFile>;
  hasServer(): Awaitable<boolean>;
  /** @throws KlError `KL_NOT_REGISTERED` when this identity has not registered. */
  readServer(): Awaitable<ServerFile>;
  writeServer(server: ServerFile): Awaitable<void>;
}

/**
 * A {@link ClientStore} in memory: for tests, short-lived programs and callers that keep the
 * identity elsewhere (it can be seeded with `initial` and read back with `snapshot()`). Values are
 * copied in and out, so a caller cannot change what the store holds by accident.
 */
export class MemoryClientStore implements ClientStore {
  readonly name = 'memory';
  private identity: IdentityFile | undefined;
  private privateKey: string | undefined;
  private server: ServerFile | undefined;
  private pending: PendingRotation | undefined;
  private readonly retired: string[] = [];

  constructor(initial: { identity?: IdentityFile; privateKey?: string; server?: ServerFile } = {}) {
    this.identity = copy(initial.identity);
    this.privateKey = initial.privateKey;
    this.server = copy(initial.server);
  }

  /** What the store holds now (copies). */
  snapshot(): { identity?: IdentityFile; privateKey?: string; server?: ServerFile; retired: string[] } {
    return {
      ...(this.identity ? { identity: copy(this.identity) } : {}),
      ...(this.privateKey !== undefined ? { privateKey: this.privateKey } : {}),
      ...(this.server ? { server: copy(this.server) } : {}),
      retired: [...this.retired],
    };
  }

  hasIdentity(): boolean {
    return this.identity !== undefined;
  }

  readIdentity(): IdentityFile {
    if (!this.identity) throw new KlError('KL_NOT_REGISTERED', 'no identity in this store: create one first');
    return copy(this.identity);
  }

  writeIdentity(identity: IdentityFile, armoredPrivateKey?: string): void {
    if (armoredPrivateKey !== undefined) this.privateKey = armoredPrivateKey;
    this.identity = copy(identity);
  }

  readPrivateKey(): string {
    if (this.privateKey === undefined) throw new KlError('KL_DATA_DIR', 'no private key in this store');
    return this.privateKey;
  }

  retireKey(current: Pick<IdentityFile, 'keySource' | 'fingerprint'>): string | null {
    if (current.keySource !== 'file' || this.privateKey === undefined) return null;
    this.retired.push(this.privateKey);
    this.privateKey = undefined;
    return `memory:retired/${current.fingerprint}`;
  }

  readRetiredKeys(): string[] {
    return [...this.retired];
  }

  readPendingRotation(): PendingRotation | null {
    return this.pending ? copy(this.pending) : null;
  }

  writePendingRotation(pending: PendingRotation): void {
    this.pending = copy(pending);
  }

  discardPendingRotation(): void {
    this.pending = undefined;
  }

  installPendingRotation(): IdentityFile {
    const pending = this.pending;
    if (!pending) throw new KlError('KL_BAD_INPUT', 'no key rotation is in progress');
    const current = this.readIdentity();
    if (current.fingerprint !== pending.identity.fingerprint) {
      this.retireKey(current);
      this.writeIdentity(pending.identity, pending.privateKey);
    }
    this.pending = undefined;
    return copy(pending.identity);
  }

  hasServer(): boolean {
    return this.server !== undefined;
  }

  readServer(): ServerFile {
    if (!this.server)
      throw new KlError('KL_NOT_REGISTERED', 'not registered with any server yet: register first');
    return copy(this.server);
  }

  writeServer(server: ServerFile): void {
    this.server = copy(server);
  }
}

function copy<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
