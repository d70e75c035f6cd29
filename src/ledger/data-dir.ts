/**
 * The embedded engine's data directory:
 *   ledger.sqlite (+ -wal, -shm)  blocks, transactions and state (SQLite, WAL, synchronous=FULL)
 *   genesis.json                  the genesis document, for distribution to clients and auditors
 *   validator.key                 the validator's Ed25519 key, sealed (scrypt + AES-256-GCM), 0600
 *   registrar.key                 this node's registrar key, sealed the same way, 0600
 *   ledger.lock                   pid of the process that writes, while it runs
 * The directory itself is made with mode 0700, and a directory that already exists is set back to
 * 0700 whenever a writer opens it.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { KlError } from '../protocol/errors.js';
import { chainIdOf, checkGenesis, type Genesis } from './genesis.js';
import { writeFileAtomic } from './sealed-key-file.js';
import { storageFaultReason } from './storage-fault.js';

/** Paths inside a data directory. */
export function dataPaths(dir: string) {
  return {
    dir,
    db: join(dir, 'ledger.sqlite'),
    genesis: join(dir, 'genesis.json'),
    validatorKey: join(dir, 'validator.key'),
    registrarKey: join(dir, 'registrar.key'),
    lock: join(dir, 'ledger.lock'),
    /** The node's Ethereum account key, sealed like the ledger keys (EVM engine only). */
    evmAccountKey: join(dir, 'evm-account.key'),
    /** Where the EVM node is: { rpcUrl, confirmations } (EVM engine only; no secrets). */
    evmSettings: join(dir, 'evm.json'),
    /**
     * A server that joined a deployment: its join request (public keys, account, URL), handed to
     * the governor for its admission (docs/deploy-besu.md "A second server"; no secrets).
     */
    joinRequest: join(dir, 'join-request.json'),
    /**
     * This organisation's contribution to a joint genesis (docs/deploy-besu.md "Several
     * organisations"): its keys are made, its genesis is not adopted yet (public; no secrets).
     */
    contribution: join(dir, 'contribution.json'),
  };
}

/** True when `dir` holds an initialised ledger. */
export function isInitialised(dir: string): boolean {
  return existsSync(dataPaths(dir).genesis) && existsSync(dataPaths(dir).db);
}

/**
 * Refuses to make a new ledger over part of an old one: a genesis without its database (or a
 * database without its genesis) means the ledger's history was lost or moved, and the keys beside
 * it (validator, registrar, server) must not be replaced by new ones.
 * @throws KlError `KL_DATA_DIR` naming what is there and what is missing; nothing is changed.
 */
export function refusePartialDataDir(dir: string): void {
  const paths = dataPaths(dir);
  const genesis = existsSync(paths.genesis);
  if (!genesis && existsSync(paths.contribution))
    throw new KlError(
      'KL_DATA_DIR',
      `${dir} holds keys contributed to a joint genesis: finish it with \`keyledger genesis adopt FILE --data ${dir}\`, not with a genesis of its own`,
    );
  if (genesis === existsSync(paths.db)) return;
  throw new KlError(
    'KL_DATA_DIR',
    `${dir} holds ${genesis ? 'genesis.json but no ledger.sqlite' : 'ledger.sqlite but no genesis.json'}: part of a ` +
      'data directory whose ledger was lost or moved. Nothing was changed: restore the missing file, or move ' +
      'the directory away to start a new ledger.',
  );
}

/** Makes the directory (0700) if needed; an existing one is set to 0700 (see {@link tightenDir}). */
export function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new KlError('KL_DATA_DIR', `cannot create data directory ${dir}`, undefined, { cause: err });
  }
  tightenDir(dir);
}

/**
 * Sets an existing data directory to mode 0700 (owner only) when it is more open: a directory made
 * by hand or by an older version with the umask's 0755 would let other accounts list it and reach
 * the admin socket's name. Nothing is written when the mode is already 0700.
 * @throws KlError `KL_DATA_DIR` when the mode cannot be set (e.g. the directory is not ours).
 */
export function tightenDir(dir: string): void {
  try {
    const st = statSync(dir);
    if (!st.isDirectory()) throw new Error('not a directory');
    if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  } catch (err) {
    throw new KlError(
      'KL_DATA_DIR',
      `cannot restrict data directory ${dir} to mode 0700 (owner only): ${(err as Error).message}`,
      undefined,
      { cause: err },
    );
  }
}

/** Reads and checks genesis.json. */
export function readGenesisFile(path: string): { genesis: Genesis; chainId: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new KlError('KL_DATA_DIR', `cannot read genesis file ${path}`, undefined, { cause: err });
  }
  const genesis = checkGenesis(raw);
  return { genesis, chainId: chainIdOf(genesis) };
}

/** Writes genesis.json (0644: it is public). */
export function writeGenesisFile(path: string, genesis: Genesis): void {
  writeFileAtomic(path, `${JSON.stringify(genesis, null, 2)}\n`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the writer lock of a data directory: one writing process at a time. A lock left by a process
 * that no longer runs (killed) is taken over. The directory is set to mode 0700 first.
 * @returns the function that releases the lock.
 * @throws KlError `KL_DATA_DIR` when another live process holds it, or the directory's mode cannot
 * be set.
 */
export function acquireWriterLock(dir: string): () => void {
  const { lock } = dataPaths(dir);
  tightenDir(dir);
  const create = (): void => {
    // O_EXCL: of two processes starting at once, exactly one creates the file.
    const fd = openSync(lock, 'wx', 0o600);
    try {
      writeSync(fd, String(process.pid));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  };
  const cannotLock = (err: unknown) => {
    const why = storageFaultReason(err);
    return why
      ? new KlError('KL_STORAGE_UNAVAILABLE', `cannot open ${dir} for writing: ${why}`, undefined, {
          cause: err,
        })
      : new KlError('KL_DATA_DIR', `cannot lock ${dir}: ${(err as Error).message}`, undefined, {
          cause: err,
        });
  };
  try {
    create();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotLock(err);
    const pid = Number.parseInt(readFileSync(lock, 'utf8'), 10);
    if (Number.isSafeInteger(pid) && pidAlive(pid)) {
      throw new KlError('KL_DATA_DIR', `the ledger in ${dir} is in use by process ${pid}`, { pid });
    }
    try {
      rmSync(lock, { force: true }); // left by a process that died
      create();
    } catch (again) {
      throw cannotLock(again);
    }
  }
  return () => {
    try {
      if (readFileSync(lock, 'utf8') === String(process.pid)) rmSync(lock);
    } catch {
      // already gone
    }
  };
}

/** File mode bits of a path (for tests and checks). */
export function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}
