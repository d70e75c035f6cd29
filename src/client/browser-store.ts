/**
 * A {@link ClientStore} in the browser's IndexedDB, for the SDK in a web page: the same records as
 * a home directory (identity, protected private key, server pin and checkpoint, a key rotation in
 * progress, retired keys; docs/protocol.md "Phase 1"), in one object store of one database per
 * identity. The private key is kept only as OpenPGP.js keeps it in private-key.asc: armored and
 * encrypted under the user's passphrase. A key that is not encrypted is refused, so nothing in
 * IndexedDB unlocks without the passphrase.
 */
import * as openpgp from 'openpgp';
import { PGP_CONFIG } from '../pgp/config.js';
import { isKlError, KlError } from '../protocol/errors.js';
import type { ClientStore, IdentityFile, PendingRotation, ServerFile } from './store.js';

/** What this module uses of IndexedDB (the DOM types are not in this project's libs). */
interface IdbRequest<T> {
  result: T;
  error: { message: string } | null;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
  onblocked: (() => void) | null;
}
interface IdbObjectStore {
  get(key: string): IdbRequest<unknown>;
  put(value: unknown, key: string): IdbRequest<unknown>;
  delete(key: string): IdbRequest<unknown>;
}
interface IdbTransaction {
  error: { message: string } | null;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  objectStore(name: string): IdbObjectStore;
  abort(): void;
}
interface IdbDatabase {
  readonly objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: 'readonly' | 'readwrite'): IdbTransaction;
  close(): void;
}
/** The part of the browser's `indexedDB` (an IDBFactory) this store uses. */
export interface IdbFactoryLike {
  open(name: string, version: number): unknown;
}

/** Options of {@link BrowserClientStore}. */
export interface BrowserClientStoreOptions {
  /** The IndexedDB database (default `keyledger`): one per identity kept in the browser. */
  database?: string;
  /** The IndexedDB to use (default the global `indexedDB`). */
  indexedDB?: IdbFactoryLike;
}

const STORE = 'client';
const VERSION = 1;

type Key = 'identity' | 'privateKey' | 'server' | 'pending' | 'retired';

function request<T>(r: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(storageError(r.error));
  });
}

function storageError(cause: unknown): KlError {
  if (isKlError(cause)) return cause;
  const why = (cause as { message?: unknown } | null)?.message;
  return new KlError(
    'KL_STORAGE_UNAVAILABLE',
    `the browser storage (IndexedDB) failed${typeof why === 'string' && why ? `: ${why}` : ''}`,
    undefined,
    { cause },
  );
}

/**
 * Refuses an armored private key that is not encrypted in full: the store keeps keys only under
 * the user's passphrase.
 */
async function checkProtected(armoredKey: string): Promise<void> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey, config: PGP_CONFIG });
  } catch {
    throw new KlError(
      'KL_KEY_MALFORMED',
      'the private key to store cannot be read as an OpenPGP private key',
    );
  }
  if (key.isDecrypted())
    throw new KlError(
      'KL_PASSPHRASE_REQUIRED',
      'the private key must be encrypted under a passphrase before the browser keeps it',
    );
}

/** See the module comment. Every method answers with a promise. */
export class BrowserClientStore implements ClientStore {
  /** `indexeddb:DATABASE`, for messages. */
  readonly name: string;
  private readonly database: string;
  private readonly factory: IdbFactoryLike | undefined;
  private opening: Promise<IdbDatabase> | undefined;

  constructor(o: BrowserClientStoreOptions = {}) {
    this.database = o.database ?? 'keyledger';
    this.factory = o.indexedDB ?? (globalThis as { indexedDB?: IdbFactoryLike }).indexedDB;
    this.name = `indexeddb:${this.database}`;
  }

  /** Closes the database connection (a new call opens it again). */
  async close(): Promise<void> {
    const db = this.opening;
    this.opening = undefined;
    if (db) (await db.catch(() => null))?.close();
  }

  private open(): Promise<IdbDatabase> {
    this.opening ??= new Promise<IdbDatabase>((resolve, reject) => {
      if (!this.factory) {
        reject(new KlError('KL_STORAGE_UNAVAILABLE', 'this environment has no IndexedDB'));
        return;
      }
      let r: IdbOpenRequest;
      try {
        r = this.factory.open(this.database, VERSION) as IdbOpenRequest;
      } catch (err) {
        reject(storageError(err));
        return;
      }
      r.onupgradeneeded = () => {
        if (!r.result.objectStoreNames.contains(STORE)) r.result.createObjectStore(STORE);
      };
      r.onblocked = () =>
        reject(new KlError('KL_STORAGE_UNAVAILABLE', 'the browser storage is in use by another tab'));
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(storageError(r.error));
    });
    const opening = this.opening;
    opening.catch(() => {
      if (this.opening === opening) this.opening = undefined;
    });
    return opening;
  }

  /**
   * Runs `fn` in one IndexedDB transaction: its writes all happen or none do (an exception aborts
   * it). Resolves once the transaction has committed.
   */
  private async run<T>(
    mode: 'readonly' | 'readwrite',
    fn: (kv: {
      get<V>(key: Key): Promise<V | undefined>;
      put(key: Key, value: unknown): Promise<void>;
      del(key: Key): Promise<void>;
    }) => Promise<T>,
  ): Promise<T> {
    const db = await this.open();
    let tx: IdbTransaction;
    try {
      tx = db.transaction(STORE, mode);
    } catch (err) {
      throw storageError(err);
    }
    const committed = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(storageError(tx.error));
      tx.onabort = () => reject(storageError(tx.error ?? { message: 'the transaction was aborted' }));
    });
    const store = tx.objectStore(STORE);
    let result: T;
    try {
      result = await fn({
        get: <V>(key: Key) => request(store.get(key)) as Promise<V | undefined>,
        put: async (key, value) => {
          await request(store.put(value, key));
        },
        del: async (key) => {
          await request(store.delete(key));
        },
      });
    } catch (err) {
      committed.catch(() => {});
      try {
        tx.abort();
      } catch {
        // already finished
      }
      throw storageError(err);
    }
    await committed;
    return result;
  }

  private read<V>(key: Key): Promise<V | undefined> {
    return this.run('readonly', (kv) => kv.get<V>(key));
  }

  async hasIdentity(): Promise<boolean> {
    return (await this.read('identity')) !== undefined;
  }

  async readIdentity(): Promise<IdentityFile> {
    const identity = await this.read<IdentityFile>('identity');
    if (!identity) throw new KlError('KL_NOT_REGISTERED', `no identity in ${this.name}: create one first`);
    return identity;
  }

  /** Writes the identity and, for file keys, its private key, which must be passphrase-encrypted. */
  async writeIdentity(identity: IdentityFile, armoredPrivateKey?: string): Promise<void> {
    if (armoredPrivateKey !== undefined) await checkProtected(armoredPrivateKey);
    await this.run('readwrite', async (kv) => {
      if (armoredPrivateKey !== undefined) await kv.put('privateKey', armoredPrivateKey);
      await kv.put('identity', identity);
    });
  }

  async readPrivateKey(): Promise<string> {
    const key = await this.read<string>('privateKey');
    if (key === undefined) throw new KlError('KL_DATA_DIR', `no private key in ${this.name}`);
    return key;
  }

  async retireKey(current: Pick<IdentityFile, 'keySource' | 'fingerprint'>): Promise<string | null> {
    if (current.keySource !== 'file') return null;
    return this.run('readwrite', async (kv) => {
      const key = await kv.get<string>('privateKey');
      if (key === undefined) return null;
      const retired = (await kv.get<string[]>('retired')) ?? [];
      await kv.put('retired', [...retired, key]);
      await kv.del('privateKey');
      return `${this.name}/retired/${current.fingerprint}`;
    });
  }

  async readRetiredKeys(): Promise<string[]> {
    return (await this.read<string[]>('retired')) ?? [];
  }

  async readPendingRotation(): Promise<PendingRotation | null> {
    return (await this.read<PendingRotation>('pending')) ?? null;
  }

  /** Keeps a rotation's new key (passphrase-encrypted, like the current one) until it is installed. */
  async writePendingRotation(pending: PendingRotation): Promise<void> {
    if (pending.privateKey !== undefined) await checkProtected(pending.privateKey);
    await this.run('readwrite', (kv) => kv.put('pending', pending));
  }

  async discardPendingRotation(): Promise<void> {
    await this.run('readwrite', (kv) => kv.del('pending'));
  }

  /** Retires the old key and installs the pending one in one transaction; idempotent. */
  async installPendingRotation(): Promise<IdentityFile> {
    return this.run('readwrite', async (kv) => {
      const pending = await kv.get<PendingRotation>('pending');
      if (!pending) throw new KlError('KL_BAD_INPUT', 'no key rotation is in progress');
      const current = await kv.get<IdentityFile>('identity');
      if (!current) throw new KlError('KL_NOT_REGISTERED', `no identity in ${this.name}: create one first`);
      if (current.fingerprint !== pending.identity.fingerprint) {
        const old = await kv.get<string>('privateKey');
        if (current.keySource === 'file' && old !== undefined) {
          const retired = (await kv.get<string[]>('retired')) ?? [];
          await kv.put('retired', [...retired, old]);
          await kv.del('privateKey');
        }
        if (pending.privateKey !== undefined) await kv.put('privateKey', pending.privateKey);
        await kv.put('identity', pending.identity);
      }
      await kv.del('pending');
      return pending.identity;
    });
  }

  async hasServer(): Promise<boolean> {
    return (await this.read('server')) !== undefined;
  }

  async readServer(): Promise<ServerFile> {
    const server = await this.read<ServerFile>('server');
    if (!server) throw new KlError('KL_NOT_REGISTERED', 'not registered with any server yet: register first');
    return server;
  }

  async writeServer(server: ServerFile): Promise<void> {
    await this.run('readwrite', (kv) => kv.put('server', server));
  }
}
