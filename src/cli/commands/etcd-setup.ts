/**
 * A new data directory whose ledger is ordered by an etcd cluster (docs/deploy-etcd.md): `keyledger
 * serve --etcd URLS` on first start, and `keyledger ledger deploy --engine etcd`.
 */
import { isInitialised } from '../../ledger/data-dir.js';
import { KlError } from '../../protocol/errors.js';
import { initEtcdNode } from '../../server/etcd-node.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';
import type { LedgerSettings } from './evm-setup.js';

/** A new etcd-engine data directory: its genesis names the prefix, which is bound to it at once. */
export async function initEtcd(data: string, passphrase: string, l: LedgerSettings) {
  if (!l.etcd || l.etcd.length === 0)
    throw new KlError('KL_CONFIG_INVALID', 'the etcd engine needs --etcd URL,URL,URL (ledger.etcd)');
  const r = await initEtcdNode({
    dataDir: data,
    passphrase,
    endpoints: l.etcd,
    ...(l.etcdPrefix ? { prefix: l.etcdPrefix } : {}),
  });
  const prefix = r.genesis.engine?.type === 'etcd' ? r.genesis.engine.prefix : '';
  info(`ledger ordered by the etcd cluster (${l.etcd.length} endpoint(s)), prefix ${prefix}`);
  return { ...r, prefix };
}

/** `keyledger ledger deploy --engine etcd --etcd URLS --data DIR`: a new etcd-engine data directory. */
export async function etcdDeploy(o: {
  data: string;
  ledger: LedgerSettings;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  json?: boolean;
}): Promise<number> {
  if (isInitialised(o.data)) throw new KlError('KL_DATA_DIR', `${o.data} already holds a ledger`);
  const passphrase = await resolvePassphrase(o, { confirm: true });
  const r = await initEtcd(o.data, passphrase, o.ledger);
  if (o.json) out(JSON.stringify({ type: 'etcd', prefix: r.prefix, chain: r.chainId, dataDir: o.data }));
  else
    out(`prefix ${r.prefix}
chain ${r.chainId}
start it: keyledger serve --data ${o.data}`);
  return 0;
}
