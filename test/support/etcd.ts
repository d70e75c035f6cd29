/**
 * A real 3-member etcd cluster for the etcd-engine tests: Debian's `etcd` (3.4, `.ci/run` installs
 * it) on 127.0.0.1 at free ports, each member with a temporary data directory, joined by
 * `--initial-cluster`. Members can be killed (-9) and restarted on their data; the leader is found
 * through each member's `/v3/maintenance/status` (etcd's JSON gRPC gateway). `sharedEtcdCluster`
 * is the test process's one cluster; `twoEtcdServers` two servers of one deployment on it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { JoinRequest } from '../../src/ledger/node-admission.js';
import { callAdmin } from '../../src/server/admin-socket.js';
import type { RunningServer, ServerOptions } from '../../src/server/app.js';
import { joinEtcdNode } from '../../src/server/etcd-node.js';
import { PASSPHRASE, tempDir } from '../helpers.js';
import { etcdTestServer, startOn } from './server.js';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** One member of the cluster. */
export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  child: ChildProcess | null;
}

/** A running cluster. */
export interface EtcdCluster {
  members: EtcdMember[];
  /** The client URLs of every member (the endpoints a keyledger server is given). */
  endpoints: string[];
  /** The member that leads now (asks each live member), or null without a quorum. */
  leader(): Promise<EtcdMember | null>;
  /** Kills one member with SIGKILL (no shutdown). */
  kill9(member: EtcdMember): Promise<void>;
  /** Starts a killed member again on its data directory. */
  restart(member: EtcdMember): void;
  /** Waits until a leader is elected (throws after `ms`). */
  waitForLeader(ms?: number): Promise<EtcdMember>;
  /** Stops every member. */
  stop(): Promise<void>;
}

/** One POST to etcd's JSON gateway. */
async function gateway(url: string, path: string, body: unknown, ms = 1000): Promise<unknown> {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(ms),
  });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

/** Starts a 3-member cluster (or `size` members); resolves once it has a leader. */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(tempDir('kl-etcd-'), `m${i}`),
      child: null,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `kl-${process.pid}-${Date.now()}`;
  const start = (m: EtcdMember) => {
    m.child = spawn(
      'etcd',
      [
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-client-urls',
        m.clientUrl,
        '--advertise-client-urls',
        m.clientUrl,
        '--listen-peer-urls',
        m.peerUrl,
        '--initial-advertise-peer-urls',
        m.peerUrl,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        token,
        '--initial-cluster-state',
        'new',
        '--heartbeat-interval',
        '50',
        '--election-timeout',
        '500',
        '--log-level',
        'error',
        '--logger',
        'zap',
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
  };
  for (const m of members) start(m);
  const leader = async (): Promise<EtcdMember | null> => {
    for (const m of members) {
      if (!m.child) continue;
      try {
        const s = (await gateway(m.clientUrl, '/v3/maintenance/status', {}, 500)) as {
          header?: { member_id?: string };
          leader?: string;
        };
        if (s.leader && s.leader !== '0' && s.header?.member_id === s.leader) return m;
      } catch {
        // down or no quorum
      }
    }
    return null;
  };
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    leader,
    async waitForLeader(ms = 20_000) {
      const end = Date.now() + ms;
      for (;;) {
        const l = await leader();
        if (l) return l;
        if (Date.now() > end) throw new Error('the etcd cluster elected no leader');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kill9(m) {
      const child = m.child;
      if (!child) return;
      m.child = null;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    restart(m) {
      if (!m.child) start(m);
    },
    async stop() {
      await Promise.all(members.map((m) => cluster.kill9(m)));
    },
  };
  process.once('exit', () => {
    for (const m of members) m.child?.kill('SIGKILL');
  });
  await cluster.waitForLeader();
  return cluster;
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
