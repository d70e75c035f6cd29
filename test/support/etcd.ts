/**
 * The etcd cluster of the etcd-engine tests (test/support/etcd-cluster.ts: a real 3-member etcd 3.4
 * cluster on loopback, members killed with -9 and restarted on their data), its data removed after
 * the test file. `sharedEtcdCluster` is the test process's one cluster; `twoEtcdServers` two
 * servers of one deployment on it.
 */
import { join } from 'node:path';
import type { JoinRequest } from '../../src/ledger/node-admission.js';
import { callAdmin } from '../../src/server/admin-socket.js';
import type { RunningServer, ServerOptions } from '../../src/server/app.js';
import { joinEtcdNode } from '../../src/server/etcd-node.js';
import { PASSPHRASE, tempDir } from '../helpers.js';
import { type EtcdCluster, startEtcdCluster as startCluster } from './etcd-cluster.js';
import { etcdTestServer, startOn } from './server.js';

export type { EtcdCluster, EtcdMember } from './etcd-cluster.js';

/**
 * Starts a 3-member cluster (or `size` members), its data removed after the test file; resolves
 * once it has a leader.
 */
export function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  return startCluster(size, tempDir('kl-etcd-'));
}

let shared: Promise<EtcdCluster> | undefined;
/** The test process's cluster: started on first use, killed when the process exits. */
export function sharedEtcdCluster(): Promise<EtcdCluster> {
  shared ??= startEtcdCluster();
  return shared;
}

/** A running server with its data directory. */
export type TestServer = RunningServer & { dataDir: string };

/** Two servers of one etcd-engine deployment (see {@link twoEtcdServers}). */
export interface TwoEtcdServers {
  cluster: EtcdCluster;
  /** The first server: the genesis names its keys; it governs. */
  a: TestServer;
  /** The joined server, with keys of its own. */
  b: TestServer;
  /** B's join request (DATA/join-request.json). */
  request: JoinRequest;
  /** Admits B through A's admin socket (`keyledger admin registrar add`); waits until B knows it. */
  admit(): Promise<void>;
  /** Closes both servers (not the cluster). */
  close(): Promise<void>;
}

/**
 * Two servers of one deployment on `cluster` (default: the shared one): A made like `keyledger
 * serve --etcd` on a prefix of its own, B made like `keyledger node join --etcd --genesis`, both
 * started; B admitted by A unless `admit: false`.
 */
export async function twoEtcdServers(
  o: { cluster?: EtcdCluster; a?: Partial<ServerOptions>; b?: Partial<ServerOptions>; admit?: boolean } = {},
): Promise<TwoEtcdServers> {
  const cluster = o.cluster ?? (await sharedEtcdCluster());
  const a = await etcdTestServer(cluster, o.a);
  const dataDir = join(tempDir('kl-etcd-b-'), 'data');
  const { request } = await joinEtcdNode({
    dataDir,
    passphrase: PASSPHRASE,
    endpoints: cluster.endpoints,
    genesis: a.ledger.genesis,
    name: 'kl2',
  });
  const b = await startOn(dataDir, o.b ?? {});
  const pair: TwoEtcdServers = {
    cluster,
    a,
    b,
    request,
    async admit() {
      await callAdmin(a.dataDir, 'POST', '/registrars', { request });
      const end = Date.now() + 20_000;
      while (!b.ledger.registrars().some((r) => r.keyId === request.keyId && r.active)) {
        if (Date.now() > end) throw new Error('B never saw its admission');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await Promise.all([a.close().catch(() => {}), b.close().catch(() => {})]);
    },
  };
  if (o.admit !== false) await pair.admit();
  return pair;
}
