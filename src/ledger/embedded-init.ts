/**
 * Initialising the embedded engine's data directory (docs/ledger.md): the validator and registrar
 * keys sealed under the passphrase, the genesis, and the database with its schema, the genesis state
 * and the node's origin verified checkpoint.
 */
import { chmodSync, existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { canonicalize } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { dataPaths, ensureDir, isInitialised, refusePartialDataDir, writeGenesisFile } from './data-dir.js';
import { chainIdOf, checkGenesis, type Genesis } from './genesis.js';
import { openKeyFile, sealKeyFile } from './sealed-key-file.js';
import { SigningKey } from './signing-keys.js';
import { genesisEntries } from './state-machine.js';
import { originPoint, signVerifiedCheckpoint, VERIFIED_KEY } from './verified-checkpoint.js';

/** Options of {@link initEmbeddedLedger}. */
export interface InitOptions {
  dataDir: string;
  /** Protects the validator and registrar keys at rest. */
  passphrase: string;
  /** Human name of the ledger. */
  name?: string;
  /** The server's OpenPGP key to pin in the genesis. */
  server?: Genesis['server'];
  /** The EVM chain that orders this ledger (docs/architecture.md "The EVM engine"). */
  engine?: Genesis['engine'];
  now?: () => number;
}

/**
 * Initialises a data directory: makes the validator and registrar keys (sealed under `passphrase`),
 * writes the genesis and creates the database with the node's origin verified checkpoint (height 0,
 * verified-checkpoint.ts). Refuses a directory that is already initialised.
 */
export function initEmbeddedLedger({
  dataDir,
  passphrase,
  name = 'keyledger',
  server,
  engine,
  now = Date.now,
}: InitOptions): {
  genesis: Genesis;
  chainId: string;
} {
  if (isInitialised(dataDir)) throw new KlError('KL_DATA_DIR', `${dataDir} already holds a ledger`);
  refusePartialDataDir(dataDir);
  if (!passphrase)
    throw new KlError('KL_PASSPHRASE_REQUIRED', 'a passphrase is required to protect the ledger keys');
  ensureDir(dataDir);
  const validator = SigningKey.generate();
  const registrar = SigningKey.generate();
  const genesis = checkGenesis({
    v: 1,
    name,
    createdAt: now(),
    validators: [validator.info()],
    quorum: 1,
    registrars: [{ ...registrar.info(), name: 'local registrar' }],
    ...(server ? { server } : {}),
    ...(engine ? { engine } : {}),
  });
  const chainId = writeNewLedger(dataDir, passphrase, genesis, validator, registrar);
  return { genesis, chainId };
}

/** Options of {@link initJoiningLedger}. */
export interface JoiningLedgerOptions {
  dataDir: string;
  /** Protects this server's validator and registrar keys at rest. */
  passphrase: string;
  /** The genesis of the deployment this server joins (it must name a chain that orders it). */
  genesis: Genesis;
}

/**
 * Initialises the data directory of a further server of a chain-ordered deployment (docs/deploy-besu.md
 * "A second server"): the given genesis, and validator and registrar keys of this server's own (not
 * named in the genesis: governance admits them, node-admission.ts). The ledger fills from the chain.
 * @returns this server's public validator and registrar keys, for its admission.
 */
export function initJoiningLedger({ dataDir, passphrase, genesis: given }: JoiningLedgerOptions): {
  chainId: string;
  validator: { keyId: string; publicKey: string };
  registrar: { keyId: string; publicKey: string };
} {
  if (isInitialised(dataDir)) throw new KlError('KL_DATA_DIR', `${dataDir} already holds a ledger`);
  refusePartialDataDir(dataDir);
  if (!passphrase)
    throw new KlError('KL_PASSPHRASE_REQUIRED', 'a passphrase is required to protect the ledger keys');
  const genesis = checkGenesis(given);
  if (!genesis.engine)
    throw new KlError('KL_BAD_INPUT', 'only a ledger ordered by a chain can have further servers');
  ensureDir(dataDir);
  const validator = SigningKey.generate();
  const registrar = SigningKey.generate();
  const chainId = writeNewLedger(dataDir, passphrase, genesis, validator, registrar);
  return { chainId, validator: validator.info(), registrar: registrar.info() };
}

/** Seals the keys, then writes the ledger's files ({@link writeLedgerFiles}). */
function writeNewLedger(
  dataDir: string,
  passphrase: string,
  genesis: Genesis,
  validator: SigningKey,
  registrar: SigningKey,
): string {
  const paths = dataPaths(dataDir);
  sealKeyFile(paths.validatorKey, validator, passphrase, 'validator');
  sealKeyFile(paths.registrarKey, registrar, passphrase, 'registrar');
  return writeLedgerFiles(dataDir, genesis, validator);
}

/**
 * The node keys of a data directory that has no genesis yet (a contribution to a joint genesis,
 * docs/deploy-besu.md "Several organisations"): opened when sealed already, else made and sealed.
 * @throws KlError `KL_DATA_DIR` when the directory holds a ledger, `KL_PASSPHRASE_WRONG`
 */
export function nodeKeysWithoutGenesis(
  dataDir: string,
  passphrase: string,
): { validator: SigningKey; registrar: SigningKey } {
  if (isInitialised(dataDir)) throw new KlError('KL_DATA_DIR', `${dataDir} already holds a ledger`);
  const paths = dataPaths(dataDir);
  if (existsSync(paths.db) || existsSync(paths.genesis)) refusePartialDataDir(dataDir);
  if (!passphrase)
    throw new KlError('KL_PASSPHRASE_REQUIRED', 'a passphrase is required to protect the ledger keys');
  ensureDir(dataDir);
  const key = (path: string, purpose: string) => {
    if (existsSync(path)) return openKeyFile(path, passphrase, purpose);
    const made = SigningKey.generate();
    sealKeyFile(path, made, passphrase, purpose);
    return made;
  };
  return { validator: key(paths.validatorKey, 'validator'), registrar: key(paths.registrarKey, 'registrar') };
}

/**
 * Finishes a data directory whose keys were made before its genesis ({@link nodeKeysWithoutGenesis}):
 * the database and genesis.json of `genesis`, which must name this directory's validator key.
 * @throws KlError `KL_DATA_DIR` (a ledger there already), `KL_BAD_INPUT` (a genesis without this
 * validator), `KL_PASSPHRASE_WRONG`
 */
export function initAdoptedLedger(o: { dataDir: string; passphrase: string; genesis: Genesis }): string {
  if (isInitialised(o.dataDir)) throw new KlError('KL_DATA_DIR', `${o.dataDir} already holds a ledger`);
  const paths = dataPaths(o.dataDir);
  if (existsSync(paths.db) || existsSync(paths.genesis)) refusePartialDataDir(o.dataDir);
  const genesis = checkGenesis(o.genesis);
  const validator = openKeyFile(paths.validatorKey, o.passphrase, 'validator');
  if (!genesis.validators.some((v) => v.keyId === validator.keyId))
    throw new KlError('KL_BAD_INPUT', "this genesis does not name this data directory's validator key");
  return writeLedgerFiles(o.dataDir, genesis, validator);
}

/**
 * Creates the database (schema, genesis, genesis state, the origin verified checkpoint) and writes
 * genesis.json last: its presence marks the directory as initialised.
 */
function writeLedgerFiles(dataDir: string, genesis: Genesis, validator: SigningKey): string {
  const paths = dataPaths(dataDir);
  const chainId = chainIdOf(genesis);
  const db = new Database(paths.db);
  // SQLite gives the -wal and -shm files the database file's mode.
  chmodSync(paths.db, 0o600);
  try {
    createSchema(db);
    db.prepare('INSERT INTO meta(key, value) VALUES (?, ?), (?, ?), (?, ?), (?, ?)').run(
      'format',
      '1',
      'genesis',
      canonicalize(genesis),
      'chain',
      chainId,
      VERIFIED_KEY,
      JSON.stringify(signVerifiedCheckpoint(chainId, originPoint(chainId), validator)),
    );
    const insert = db.prepare('INSERT INTO state(key, value) VALUES (?, ?)');
    for (const e of genesisEntries(genesis)) insert.run(e.key, canonicalize(e.value));
  } finally {
    db.close();
  }
  writeGenesisFile(paths.genesis, genesis);
  return chainId;
}

/** SQL schema of the embedded engine. */
export function createSchema(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS blocks (
      height INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, header TEXT NOT NULL, signatures TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS txs (
      txid TEXT PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL, type TEXT NOT NULL,
      subject TEXT, envelope TEXT NOT NULL, UNIQUE (height, idx));
    CREATE INDEX IF NOT EXISTS txs_subject ON txs(subject, height, idx);
    CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
}
