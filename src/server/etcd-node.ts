/**
 * A node whose ledger is ordered by an etcd cluster (docs/deploy-etcd.md): the cluster's endpoints
 * are a node setting (DATA/etcd.json, like DATA/evm.json), never part of the genesis; the genesis
 * names only the key prefix. `initEtcdNode` makes the first server's data directory and binds the
 * prefix to its ledger, `joinEtcdNode` a further server's; `etcdSequencerFor` connects a started
 * node to its cluster and `followWhenBound` follows it once the prefix is checked.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, isInitialised, refusePartialDataDir } from '../ledger/data-dir.js';
import { initEmbeddedLedger } from '../ledger/embedded-init.js';
import { EtcdSequencer } from '../ledger/etcd-sequencer.js';
import { chainIdOf, checkGenesis, type EtcdEngineInfo, type Genesis } from '../ledger/genesis.js';
import type { JoinRequest } from '../ledger/node-admission.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { check } from '../protocol/schemas/check.js';
import { EtcdPrefix } from '../protocol/schemas/ledger.js';
import { makeJoinRequest } from './joined-node.js';
import { createServerKey } from './server-key.js';

/** The node's etcd settings (DATA/etcd.json). */
export interface EtcdSettings {
  /** Client URLs of the cluster's members. */
  endpoints: string[];
}

/** DATA/etcd.json. */
export function etcdSettingsPath(dataDir: string): string {
  return join(dataDir, 'etcd.json');
}

/**
 * Checks a list of endpoints (`http://host:port` or `https://…`, at least one, no credentials in
 * the URL) and returns them normalised (no trailing slash).
 * @throws KlError `KL_BAD_INPUT`
 */
export function checkEtcdEndpoints(endpoints: string[]): string[] {
  if (endpoints.length === 0 || endpoints.length > 16)
    throw new KlError('KL_BAD_INPUT', 'give between 1 and 16 etcd endpoints (--etcd URL,URL,URL)');
  return endpoints.map((e) => {
    let url: URL;
    try {
      url = new URL(e.trim());
    } catch {
      throw new KlError('KL_BAD_INPUT', `not an etcd endpoint URL: ${e}`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
      throw new KlError('KL_BAD_INPUT', `an etcd endpoint is http(s)://host:port, without credentials: ${e}`);
    return url.origin;
  });
}

/** Writes DATA/etcd.json (0600, like every file of the data directory). */
export function writeEtcdSettings(dataDir: string, settings: EtcdSettings): void {
  const checked: EtcdSettings = { endpoints: checkEtcdEndpoints(settings.endpoints) };
  writeFileSync(etcdSettingsPath(dataDir), `${JSON.stringify(checked, null, 2)}\n`, { mode: 0o600 });
}

/** DATA/etcd.json, or nothing. */
export function readEtcdSettings(dataDir: string): Partial<EtcdSettings> {
  const path = etcdSettingsPath(dataDir);
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as EtcdSettings;
  } catch {
    throw new KlError('KL_DATA_DIR', `${path} is not valid JSON`);
  }
}

/** The sequencer of an etcd-engine node: the endpoints given, else those of DATA/etcd.json. */
export function etcdSequencerFor(o: {
  dataDir: string;
  prefix: string;
  endpoints?: string[];
  pollMs?: number;
  now?: () => number;
  log?: (line: string) => void;
}): EtcdSequencer {
  const endpoints = o.endpoints ?? readEtcdSettings(o.dataDir).endpoints;
  if (!endpoints || endpoints.length === 0)
    throw new KlError('KL_DATA_DIR', 'no etcd cluster configured: give --etcd URL,URL,URL');
  return new EtcdSequencer({
    endpoints: checkEtcdEndpoints(endpoints),
    prefix: o.prefix,
    ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    ...(o.now ? { now: o.now } : {}),
    ...(o.log
      ? { log: o.log, onRefused: (txid, why) => o.log!(`etcd transaction ${txid} left out: ${why}`) }
      : {}),
  });
}

/**
 * Checks an etcd key prefix (`/keyledger/example`: `/`-separated segments of letters, digits and
 * `._~:@+=-`, at most 128 characters).
 * @throws KlError `KL_BAD_INPUT`
 */
export function checkEtcdPrefix(prefix: string): string {
  return check(EtcdPrefix, prefix, 'KL_BAD_INPUT', 'etcd prefix (/keyledger/NAME)');
}

/** A prefix of its own for a new ledger named `name`: `/keyledger/<name as a slug>-<8 random hex>`. */
export function defaultEtcdPrefix(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
  return `/keyledger/${slug || 'ledger'}-${randomBytes(4).toString('hex')}`;
}

/** Options of {@link initEtcdNode}. */
export interface InitEtcdNodeOptions {
  dataDir: string;
  passphrase: string;
  endpoints: string[];
  /** The key prefix of the new ledger (default {@link defaultEtcdPrefix}). */
  prefix?: string;
  name?: string;
  now?: () => number;
}

/**
 * Makes the first server of an etcd-engine deployment: its keys, a genesis naming the prefix,
 * DATA/etcd.json, and the prefix bound to the new ledger. A prefix that already orders a ledger is
 * refused before anything is made (a further server of that deployment joins it instead), and so
 * is a prefix nested in another deployment's or holding keys already (docs/deploy-etcd.md "What a
 * cluster writer cannot do").
 * @throws KlError `KL_DATA_DIR`, `KL_BAD_INPUT`, `KL_CONFIG_INVALID`, `KL_LEDGER_UNAVAILABLE`
 */
export async function initEtcdNode(o: InitEtcdNodeOptions): Promise<{ genesis: Genesis; chainId: string }> {
  if (isInitialised(o.dataDir)) throw new KlError('KL_DATA_DIR', `${o.dataDir} already holds a ledger`);
  refusePartialDataDir(o.dataDir);
  const endpoints = checkEtcdEndpoints(o.endpoints);
  const engine: EtcdEngineInfo = {
    type: 'etcd',
    prefix: checkEtcdPrefix(o.prefix ?? defaultEtcdPrefix(o.name ?? 'keyledger')),
  };
  const sequencer = new EtcdSequencer({ endpoints, prefix: engine.prefix });
  const bound = await sequencer.boundLedger();
  if (bound !== null)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `the etcd prefix ${engine.prefix} already orders a keyledger ledger (${bound.slice(0, 16)}…): a further server of that deployment is made with \`keyledger node join --etcd …\`; a new ledger needs a prefix of its own (--etcd-prefix)`,
    );
  const conflict = await sequencer.prefixConflict();
  if (conflict) throw new KlError('KL_CONFIG_INVALID', conflict);
  ensureDir(o.dataDir);
  writeEtcdSettings(o.dataDir, { endpoints });
  const server = await createServerKey(o.dataDir, o.passphrase, { now: new Date((o.now ?? Date.now)()) });
  const { genesis, chainId } = initEmbeddedLedger({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    name: o.name ?? 'keyledger',
    server,
    engine,
    ...(o.now ? { now: o.now } : {}),
  });
  await sequencer.bind(chainId).catch((err: unknown) => {
    throw bindingRefused(err, engine.prefix, o.dataDir);
  });
  return { genesis, chainId };
}

/** Options of {@link joinEtcdNode}. */
export interface JoinEtcdNodeOptions {
  dataDir: string;
  passphrase: string;
  endpoints: string[];
  /** The deployment's genesis (public: `GET /v1/ledger/genesis` of any of its servers). */
  genesis: unknown;
  /** This server's name in the ledger (its registrar name). */
  name: string;
  /** This server's public URL, listed for clients once it is admitted. */
  url?: string;
  now?: () => number;
}

/**
 * Makes a further server of a running etcd-engine deployment (docs/deploy-etcd.md "A second
 * server"): checks the cluster's prefix orders this genesis's ledger, then makes this server's own
 * keys, DATA/etcd.json and its join request for the governor.
 * @throws KlError `KL_BAD_INPUT`, `KL_DATA_DIR`, `KL_CONFIG_INVALID`, `KL_LEDGER_UNAVAILABLE`
 */
export async function joinEtcdNode(o: JoinEtcdNodeOptions): Promise<{ request: JoinRequest }> {
  const genesis = checkGenesis(o.genesis);
  const engine = genesis.engine;
  if (engine?.type !== 'etcd')
    throw new KlError(
      'KL_BAD_INPUT',
      engine
        ? `this genesis is ordered by the ${engine.type} engine, not etcd: join it with that engine's settings`
        : 'this genesis orders its ledger itself (embedded engine): it has one server',
    );
  if (isInitialised(o.dataDir)) throw new KlError('KL_DATA_DIR', `${o.dataDir} already holds a ledger`);
  refusePartialDataDir(o.dataDir);
  const endpoints = checkEtcdEndpoints(o.endpoints);
  const chain = chainIdOf(genesis);
  const bound = await new EtcdSequencer({ endpoints, prefix: engine.prefix }).boundLedger();
  if (bound !== chain)
    throw new KlError(
      'KL_CONFIG_INVALID',
      bound === null
        ? `the etcd prefix ${engine.prefix} orders no ledger yet on this cluster: start the deployment's first server, or check the endpoints`
        : `the etcd prefix ${engine.prefix} orders another ledger (${bound.slice(0, 16)}…) than this genesis (${chain.slice(0, 16)}…): check the endpoints`,
    );
  ensureDir(o.dataDir);
  writeEtcdSettings(o.dataDir, { endpoints });
  const request = await makeJoinRequest({
    dataDir: o.dataDir,
    passphrase: o.passphrase,
    genesis,
    chain,
    name: o.name,
    ...(o.url ? { url: o.url } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
  return { request };
}

/** A refused binding as the operator should read it; other errors as they are. */
function bindingRefused(err: unknown, prefix: string, dataDir: string): unknown {
  if (!isKlError(err, 'KL_LEDGER_CORRUPT')) return err;
  return new KlError(
    'KL_CONFIG_INVALID',
    `${err.message}: the ledger in ${dataDir} does not belong to the deployment the etcd prefix ${prefix} orders (a further server of a deployment is made with \`keyledger node join\`)`,
  );
}

/**
 * At start: binds the prefix to the ledger `chain` (or checks it is bound to it), then follows the
 * cluster. A prefix that orders another ledger (or a new prefix nested in another deployment's) is
 * refused (`KL_CONFIG_INVALID`, with a message that says so). A cluster that cannot be reached now
 * is asked again every `retryMs` while nothing is read (the ledger is stale: it fails closed); a
 * refusal found then fails the sequencer closed for good (a chain fault: the `chain fault` alert,
 * `/readyz` 503, one log line) and nothing is followed. Returns a function that stops the retries.
 */
export async function followWhenBound(o: {
  sequencer: EtcdSequencer;
  prefix: string;
  dataDir: string;
  chain: string;
  follow: () => Promise<void>;
  log: (line: string) => void;
  retryMs?: number;
}): Promise<() => void> {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const attempt = async (): Promise<boolean> => {
    try {
      await o.sequencer.bind(o.chain);
    } catch (err) {
      if (isKlError(err, 'KL_LEDGER_UNAVAILABLE')) return false;
      throw bindingRefused(err, o.prefix, o.dataDir);
    }
    await o.follow();
    return true;
  };
  const retry = () => {
    timer = setTimeout(() => {
      attempt().then(
        (done) => {
          if (!done && !stopped) retry();
          else if (done) o.log(`etcd prefix ${o.prefix} checked: following the cluster`);
        },
        (err: unknown) => {
          // The follower logs the fault (one line) and tells it as a chain change.
          if (!stopped) o.sequencer.failClosed(`NOT following the etcd cluster: ${(err as Error).message}`);
        },
      );
    }, o.retryMs ?? 1000);
    timer.unref();
  };
  if (!(await attempt())) {
    o.log(`cannot check which ledger the etcd prefix ${o.prefix} orders yet (cluster unreachable): retrying`);
    retry();
  }
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
