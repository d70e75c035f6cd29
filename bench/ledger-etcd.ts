/**
 * `npm run bench:ledger -- --engine etcd` — registrations per second and commit latency (submit →
 * the transaction is in a durable keyledger block) on the etcd engine against a real 3-member etcd
 * cluster on loopback (started here, as the tests start it: test/support/etcd-cluster.ts), next to the
 * embedded engine measured in the same run with the same load (the baseline). `--json` prints the
 * results document on stdout; `--out FILE` writes it (bench/support/bench-cli.ts, bench/README.md).
 * Options: --registrations N (default 300), --in-flight N (default 16), --revocations N (default
 * 100): revocation propagation to a second server of the deployment (joined with keys of its own and
 * admitted) — from the revocation's submit on the first server to the second server's ledger holding
 * it, p50/p99, next to the first server's own commit latency for the same revocations; --poll-ms N
 * (default 100): how often both servers read the cluster's head at the least (the follower's
 * fallback: its watch on the head wakes a read at once).
 * The members share this machine's cores and disk with the servers: each commit is an fsync on a
 * quorum of members (Raft), here all on one disk.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import type { EtcdSequencer } from '../src/ledger/etcd-sequencer.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { etcdSequencerFor, initEtcdNode, joinEtcdNode } from '../src/server/etcd-node.js';
import { type EtcdCluster, startEtcdCluster } from '../test/support/etcd-cluster.js';
import { benchArgs } from './support/bench-cli.js';
import { embeddedBaseline, registrationLoad, revocationPropagation } from './support/ledger-engine-run.js';

const args = benchArgs({
  name: 'ledger-etcd',
  command: 'npm run bench:ledger -- --engine etcd',
  summary:
    'Registrations/s and commit latency on the etcd engine (3-member cluster on loopback), next to the embedded engine.',
  params: {
    engine: { kind: 'text', full: 'etcd', fullWhen: 'any', help: 'etcd (given to npm run bench:ledger)' },
    registrations: { kind: 'count', full: '300', fullWhen: 'atLeast', help: 'registrations per engine' },
    'in-flight': { kind: 'count', full: '16', fullWhen: 'any', help: 'registrations in flight' },
    revocations: {
      kind: 'count',
      full: '100',
      fullWhen: 'atLeast',
      help: 'revocations timed to the second server',
    },
    'poll-ms': {
      kind: 'count',
      full: '100',
      fullWhen: 'any',
      help: "how often each server reads the cluster's head at the least, ms (its watch wakes reads at once)",
    },
  },
  out: 'file',
  resultsFile: 'ledger-etcd.json',
});
if (args.text('engine') !== 'etcd') {
  process.stderr.write(
    'bench ledger-etcd: --engine must be etcd (npm run bench:ledger runs the embedded engine)\n',
  );
  process.exit(2);
}
const N = args.count('registrations');
const IN_FLIGHT = args.count('in-flight');
const REVOCATIONS = args.count('revocations');
const POLL_MS = args.count('poll-ms');
const PASS = 'bench passphrase';
const PREFIX = '/keyledger/bench';
const root = mkdtempSync(join(tmpdir(), 'kl-bench-etcd-'));
const log = (s: string) => process.stderr.write(`${s}\n`);

/** A server's ledger following the cluster. */
interface Follower {
  ledger: EmbeddedLedger;
  sequencer: EtcdSequencer;
}

/** Opens the ledger of `dataDir` on the cluster and follows it; resolves once it has caught up. */
async function follow(dataDir: string): Promise<Follower> {
  const sequencer = etcdSequencerFor({ dataDir, prefix: PREFIX, pollMs: POLL_MS });
  const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASS, sequencer });
  await sequencer.follow((b) => ledger.ingest(b), ledger.sequencerCursor());
  return { ledger, sequencer };
}

/**
 * A second server of the deployment: joined with keys of its own from the first's genesis,
 * admitted by the first (`first`, the governor), following the cluster.
 */
async function secondServer(cluster: EtcdCluster, first: EmbeddedLedger): Promise<Follower> {
  const dataDir = join(root, 'second');
  const { request } = await joinEtcdNode({
    dataDir,
    passphrase: PASS,
    endpoints: cluster.endpoints,
    genesis: first.genesis,
    name: 'second',
  });
  await first.governance({
    type: 'RegistrarAdded',
    body: { keyId: request.keyId, publicKey: request.publicKey, name: request.name, node: request.node },
  });
  return follow(dataDir);
}

async function close(...servers: Follower[]): Promise<void> {
  for (const s of servers) {
    await s.ledger.drain();
    await s.sequencer.stop();
    await s.ledger.close();
  }
}

let cluster: EtcdCluster | undefined;
try {
  log(`keyledger ledger benchmark, etcd engine vs embedded — ${cpus()[0]?.model} × ${cpus().length}`);
  const emb = await embeddedBaseline(root, PASS, N, IN_FLIGHT);
  log(
    `embedded: ${emb.perSecond} registrations/s, commit p50 ${emb.latencyMs.p50} ms, p99 ${emb.latencyMs.p99} ms`,
  );

  mkdirSync(join(root, 'cluster'));
  cluster = await startEtcdCluster(3, join(root, 'cluster'));
  const dataDir = join(root, 'etcd');
  await initEtcdNode({ dataDir, passphrase: PASS, endpoints: cluster.endpoints, prefix: PREFIX });
  const first = await follow(dataDir);
  const registered: TxBodies['KeyRegistered'][] = [];
  const etcd = await registrationLoad(first.ledger, N, IN_FLIGHT, registered);
  log(
    `etcd (3 members on loopback): ${etcd.perSecond} registrations/s, commit p50 ${etcd.latencyMs.p50} ms, p99 ${etcd.latencyMs.p99} ms`,
  );
  const second = await secondServer(cluster, first.ledger);
  const revoked = await revocationPropagation(first.ledger, second.ledger, registered.slice(0, REVOCATIONS));
  log(
    `revocation through the first server: committed there p50 ${revoked.commitOnFirst.p50} ms, p99 ${revoked.commitOnFirst.p99} ms; on the second server (watching the head, reading it every ${POLL_MS} ms at the least) p50 ${revoked.visibleOnSecond.p50} ms, p99 ${revoked.visibleOnSecond.p99} ms`,
  );
  await close(second, first);
  await args.finish({
    registrations: N,
    inFlight: IN_FLIGHT,
    embedded: emb,
    etcdCluster: { members: cluster.members.length, ...etcd },
    revocations: Math.min(REVOCATIONS, registered.length),
    revocationPropagation: { ...revoked, pollMs: POLL_MS },
    note: 'a 3-member etcd 3.4 cluster on loopback sharing the machine with both servers: every commit is a Raft round and an fsync on a quorum of members on one disk',
  });
} finally {
  await cluster?.stop();
  rmSync(root, { recursive: true, force: true });
}
