/**
 * `npm run bench:ledger` — figures for the embedded ledger, each next to a baseline measured in the
 * same run on the same machine:
 *   1. committed transactions per second with blocks of 1, 10, 100 and 1000 transactions
 *      (baseline: raw better-sqlite3 inserts of the same rows with the same durability settings);
 *   2. key-record lookup + state proof latency, p50/p99, with N identities (default 1,000,000), and
 *      the process's memory (RSS) holding them (baseline: a raw SQLite point select);
 *   3. `keyledger ledger verify` of that data directory, on worker threads with its progress on
 *      stderr (baseline: how long Ed25519 verification alone of as many signatures takes on every
 *      core, from a rate measured in the same run).
 * `--json` prints the results document on stdout; `--out FILE` writes it (bench/support/bench-cli.ts,
 * bench/README.md). Never fails on timing.
 *
 * Options: --identities N (default 1000000), --commits N (transactions per block size, at most
 * 500, 5,000, 20,000 and 50,000 for blocks of 1, 10, 100 and 1000; default 50000), --samples N
 * (lookups timed, default 10000), --keep DIR (keep the filled data directory there);
 * --engine evm runs bench/ledger-evm.ts instead (EVM engine on anvil next to the embedded engine),
 * --engine etcd bench/ledger-etcd.ts (etcd engine on a 3-member cluster next to the embedded engine).
 * `ledger verify` runs the compiled CLI (dist/, npm run build).
 * Keys are OpenPGP-shaped random blocks (the ledger stores keys, it does not parse them).
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { verifyKeyRecordProof } from '../src/ledger/proofs.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { benchArgs } from './support/bench-cli.js';
import { ed25519VerifyPerSecondAllCores } from './support/ed25519-rate.js';

// `--engine evm`: the EVM engine next to the embedded one, on a local chain (bench/ledger-evm.ts);
// `--engine etcd`: the etcd engine on a 3-member cluster on loopback (bench/ledger-etcd.ts). Each
// reads the rest of the command line itself.
const { engine } = parseArgs({ options: { engine: { type: 'string' } }, strict: false }).values;
if (engine === 'evm' || engine === 'etcd') {
  await import(engine === 'evm' ? './ledger-evm.js' : './ledger-etcd.js');
  process.exit(0);
}
const args = benchArgs({
  name: 'ledger',
  command: 'npm run bench:ledger --',
  summary:
    'Embedded ledger: commits/s by block size, lookup + proof latency, full verify time, next to raw SQLite and Ed25519.',
  params: {
    identities: {
      kind: 'count',
      full: '1000000',
      fullWhen: 'atLeast',
      help: 'identities in the lookup ledger',
    },
    commits: {
      kind: 'count',
      full: '50000',
      fullWhen: 'atLeast',
      help: 'most transactions per block size in the commit runs',
    },
    samples: { kind: 'count', full: '10000', fullWhen: 'atLeast', help: 'lookups timed' },
    keep: { kind: 'text', fullWhen: 'any', help: 'keep the filled data directory in DIR' },
    engine: {
      kind: 'text',
      full: 'embedded',
      fullWhen: 'any',
      help: 'embedded, evm (bench/ledger-evm.ts) or etcd (bench/ledger-etcd.ts)',
    },
  },
  out: 'file',
  resultsFile: 'ledger.json',
});
if (args.text('engine') !== 'embedded') {
  process.stderr.write('bench ledger: --engine must be embedded, evm or etcd\n');
  process.exit(2);
}
const IDENTITIES = args.count('identities');
const COMMITS = args.count('commits');
const SAMPLES = args.count('samples');
const KEEP = args.text('keep');
const PASS = 'bench passphrase';
const root = KEEP ?? mkdtempSync(join(tmpdir(), 'kl-bench-'));

function body(i: number): TxBodies['KeyRegistered'] {
  return {
    id: `user${i}.${randomBytes(3).toString('hex')}@example.org`,
    name: `User ${i}`,
    fingerprint: randomBytes(20).toString('hex'),
    publicKey: `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${randomBytes(450)
      .toString('base64')
      .replace(/(.{64})/g, '$1\n')}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
    algorithm: 'ed25519-legacy',
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function newLedger(name: string, maxBlockTxs: number) {
  const dataDir = join(root, name);
  initEmbeddedLedger({ dataDir, passphrase: PASS });
  return { dataDir, ledger: EmbeddedLedger.open({ dataDir, passphrase: PASS, maxBlockTxs }) };
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);

// 1. Commit throughput by block size.
async function commitThroughput(blockSize: number, total: number) {
  const { ledger } = newLedger(`commit-${blockSize}`, blockSize);
  const bodies = Array.from({ length: total }, (_, i) => body(i));
  const t0 = performance.now();
  // Keep a bounded number in flight, as a busy server would.
  const inFlight = Math.max(blockSize * 2, 2);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) {
        const b = bodies[next++]!;
        await ledger.submit({ type: 'KeyRegistered', body: b });
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const height = (await ledger.checkpoint())!.header.height;
  await ledger.close();
  return {
    blockSize,
    transactions: total,
    blocks: height,
    seconds: +seconds.toFixed(3),
    txPerSecond: Math.round(total / seconds),
  };
}

// Baseline for 1: the same rows written with raw better-sqlite3, same pragmas, same batch sizes.
function sqliteBaseline(blockSize: number, total: number) {
  const db = new Database(join(root, `baseline-${blockSize}.sqlite`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE txs (txid TEXT PRIMARY KEY, body TEXT NOT NULL); CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
  );
  const ins = db.prepare('INSERT INTO txs VALUES (?, ?)');
  const st = db.prepare('INSERT INTO state VALUES (?, ?)');
  const rows = Array.from(
    { length: total },
    (_, i) => [randomBytes(32).toString('hex'), JSON.stringify(body(i))] as const,
  );
  const t0 = performance.now();
  for (let i = 0; i < total; i += blockSize) {
    db.transaction(() => {
      for (const [id, text] of rows.slice(i, i + blockSize)) {
        ins.run(id, text);
        st.run(`s${id}`, text);
      }
    })();
  }
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return { blockSize, rowsPerSecond: Math.round(total / seconds) };
}

/** Baseline: how many Ed25519 signatures of a transaction-sized message one core makes per second. */
function ed25519SignPerSecond(): number {
  const { privateKey } = generateKeyPairSync('ed25519');
  const msg = randomBytes(900);
  const n = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sign(null, msg, privateKey);
  return Math.round(n / ((performance.now() - t0) / 1000));
}

async function main() {
  log(
    `keyledger ledger benchmark — ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Node ${process.version}; data in ${root}`,
  );
  const signRate = ed25519SignPerSecond();
  log(`baseline: Ed25519 signatures of 900 bytes: ${signRate}/s`);
  const commit = [];
  for (const [blockSize, total] of [
    [1, 500],
    [10, 5_000],
    [100, 20_000],
    [1000, 50_000],
  ] as const) {
    const n = Math.min(total, COMMITS);
    const r = await commitThroughput(blockSize, n);
    const b = sqliteBaseline(blockSize, n);
    commit.push({ ...r, baselineRawSqliteRowsPerSecond: b.rowsPerSecond });
    log(
      `commit  block ${String(blockSize).padStart(4)}: ${String(r.txPerSecond).padStart(7)} tx/s   (raw SQLite same batches: ${b.rowsPerSecond} rows/s)`,
    );
  }

  // 2. Lookup + proof with many identities.
  log(`filling a ledger with ${IDENTITIES} identities…`);
  const { ledger, dataDir } = newLedger('lookup', 1000);
  const ids: string[] = [];
  const tFill = performance.now();
  for (let i = 0; i < IDENTITIES; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, IDENTITIES - i) }, (_, j) => body(i + j));
    await Promise.all(batch.map((b) => ledger.submit({ type: 'KeyRegistered', body: b })));
    for (const b of batch) ids.push(b.id);
    if ((i / 1000) % 50 === 0) log(`  ${i + batch.length}/${IDENTITIES}`);
  }
  const fillSeconds = (performance.now() - tFill) / 1000;
  const filled = process.memoryUsage();
  const memoryAfterFill = { rssBytes: filled.rss, heapUsedBytes: filled.heapUsed };
  const samples = SAMPLES;
  const lookup: number[] = [];
  const withVerify: number[] = [];
  for (let i = 0; i < samples; i++) {
    const id = ids[Math.floor(Math.random() * ids.length)]!;
    const t0 = performance.now();
    const proof = await ledger.getKeyRecord(id);
    const t1 = performance.now();
    if (!verifyKeyRecordProof({ genesis: ledger.genesis, proof }).verified) throw new Error('proof failed');
    lookup.push(t1 - t0);
    withVerify.push(performance.now() - t0);
  }
  await ledger.close();
  const raw = new Database(join(dataDir, 'ledger.sqlite'), { readonly: true });
  const sel = raw.prepare('SELECT value FROM state WHERE key = ?');
  const rawTimes: number[] = [];
  for (let i = 0; i < samples; i++) {
    const key = `identity:${ids[Math.floor(Math.random() * ids.length)]}`;
    const t0 = performance.now();
    JSON.parse((sel.get(key) as { value: string }).value);
    rawTimes.push(performance.now() - t0);
  }
  raw.close();
  for (const a of [lookup, withVerify, rawTimes]) a.sort((x, y) => x - y);
  const ms = (x: number) => +x.toFixed(4);
  const memory = process.memoryUsage();
  const lookupResult = {
    identities: IDENTITIES,
    fillSeconds: +fillSeconds.toFixed(2),
    fillTxPerSecond: Math.round(IDENTITIES / fillSeconds),
    samples,
    lookupAndProofMs: { p50: ms(quantile(lookup, 0.5)), p99: ms(quantile(lookup, 0.99)) },
    lookupProofAndClientVerifyMs: { p50: ms(quantile(withVerify, 0.5)), p99: ms(quantile(withVerify, 0.99)) },
    baselineRawSqliteSelectMs: { p50: ms(quantile(rawTimes, 0.5)), p99: ms(quantile(rawTimes, 0.99)) },
    memoryWithLedgerOpen: memoryAfterFill,
    memoryAfterClose: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
  };
  log(
    `lookup+proof with ${IDENTITIES} identities: p50 ${lookupResult.lookupAndProofMs.p50} ms, p99 ${lookupResult.lookupAndProofMs.p99} ms   (raw SQLite select: p50 ${lookupResult.baselineRawSqliteSelectMs.p50} ms, p99 ${lookupResult.baselineRawSqliteSelectMs.p99} ms); RSS with the ledger open ${mib(memoryAfterFill.rssBytes)} MiB`,
  );

  // 3. `keyledger ledger verify` of that data directory (worker threads; its progress on stderr).
  const threads = availableParallelism();
  const verifyRate = await ed25519VerifyPerSecondAllCores(threads);
  const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
  log(`keyledger ledger verify --data ${dataDir} (${threads} worker threads)…`);
  const tCli = performance.now();
  const cli = spawnSync(process.execPath, [bin, 'ledger', 'verify', '--data', dataDir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'], // its progress shows on this benchmark's stderr
  });
  const cliSeconds = (performance.now() - tCli) / 1000;
  const said =
    /^ledger OK: (\d+) blocks, (\d+) transactions, \d+ state entries verified in ([\d.]+) s$/m.exec(
      cli.stdout,
    );
  if (cli.status !== 0 || !said) throw new Error(`ledger verify failed: ${cli.stdout}`);
  const audit = { blocks: Number(said[1]), transactions: Number(said[2]), seconds: Number(said[3]) };
  const verifyResult = {
    transactions: audit.transactions,
    blocks: audit.blocks,
    threads,
    seconds: audit.seconds,
    commandSeconds: +cliSeconds.toFixed(2),
    txPerSecond: Math.round(audit.transactions / audit.seconds),
    baselineEd25519VerifyPerSecondAllCores: verifyRate,
    baselineEd25519VerifyOnlySeconds: +(audit.transactions / verifyRate).toFixed(2),
  };
  log(
    `verify ${audit.transactions} tx in ${verifyResult.seconds} s (${verifyResult.txPerSecond} tx/s, ${threads} threads)   (Ed25519 verification alone of as many signatures on ${threads} cores: ${verifyResult.baselineEd25519VerifyOnlySeconds} s)`,
  );

  await args.finish({
    baselineEd25519SignPerSecond: signRate,
    commit,
    lookup: lookupResult,
    verify: verifyResult,
    notes: [
      'All figures from one run on one machine; baselines measured in the same run.',
      'commit: KeyRegistered transactions with ~600-byte keys, bounded concurrency (2 × block size in flight), synchronous=FULL.',
      'lookup: getKeyRecord (SQLite read + state-tree proof); client verify adds the block signature and proof check.',
      'memory: the bench process holding the open lookup ledger (its state tree in memory), after the fill.',
      'verify: keyledger ledger verify on worker threads (one per core); its baseline is Ed25519 verification alone of as many signatures at the rate all cores reach together, measured in this run.',
    ],
  });
  if (KEEP) log(`data kept in ${root}; try: keyledger ledger verify --data ${dataDir}`);
}

try {
  await main();
} finally {
  if (!KEEP) rmSync(root, { recursive: true, force: true });
}
