/**
 * A node whose ledger is ordered by an etcd cluster (docs/deploy-etcd.md): the cluster's endpoints
 * are a node setting (DATA/etcd.json, like DATA/evm.json), never part of the genesis; the genesis
 * names only the key prefix. `etcdSequencerFor` connects a started node to its cluster.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdSequencer } from '../ledger/etcd-sequencer.js';
import { KlError } from '../protocol/errors.js';

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
