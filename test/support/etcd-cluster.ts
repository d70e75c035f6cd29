/**
 * A real etcd cluster on loopback, for the etcd-engine tests and benchmarks: Debian's `etcd` (3.4,
 * `.ci/run` installs it) on 127.0.0.1 at free ports, each member with a data directory of its own
 * under one root, joined by `--initial-cluster`. Members can be killed (-9) and restarted on their
 * data; the leader is found through each member's `/v3/maintenance/status` (etcd's JSON gRPC
 * gateway). Free of node:test, so that a benchmark can start a cluster without the test runner
 * (test/support/etcd.ts adds what the tests share: one cluster per test process, two servers).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

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

/**
 * Starts a 3-member cluster (or `size` members), their data directories under `root` (default: a
 * new temporary directory, left for the caller to remove); resolves once it has a leader.
 */
export async function startEtcdCluster(
  size = 3,
  root = mkdtempSync(join(tmpdir(), 'kl-etcd-')),
): Promise<EtcdCluster> {
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(root, `m${i}`),
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
