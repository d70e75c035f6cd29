/**
 * `npm run bench:ledger -- --engine evm` — registrations per second and commit latency (submit →
 * the transaction is in a durable keyledger block) on the EVM engine against a local anvil node,
 * next to the embedded engine measured in the same run with the same load (the baseline). `--json`
 * prints the results document on stdout; `--out FILE` writes it (bench/support/bench-cli.ts,
 * bench/README.md). Options: --registrations N (default 300), --in-flight N (default 16).
 * Anvil automines one transaction per block, with no consensus: Besu/GoQuorum QBFT adds its block
 * period (1–2 s typically) to every commit, and batches many transactions per block.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPaths, readGenesisFile } from '../src/ledger/data-dir.js';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { evmSequencerFor, initEvmNode } from '../src/server/evm-node.js';
import { ANVIL_FUNDER_KEY, startAnvil } from '../test/support/anvil.js';
import { benchArgs } from './support/bench-cli.js';

const args = benchArgs({
  name: 'ledger-evm',
  command: 'npm run bench:ledger -- --engine evm',
  summary: 'Registrations/s and commit latency on the EVM engine (anvil), next to the embedded engine.',
  params: {
    engine: { kind: 'text', full: 'evm', fullWhen: 'any', help: 'evm (given to npm run bench:ledger)' },
    registrations: { kind: 'count', full: '300', fullWhen: 'atLeast', help: 'registrations per engine' },
    'in-flight': { kind: 'count', full: '16', fullWhen: 'any', help: 'registrations in flight' },
  },
  out: 'file',
  resultsFile: 'ledger-evm.json',
});
if (args.text('engine') !== 'evm') {
  process.stderr.write(
    'bench ledger-evm: --engine must be evm (npm run bench:ledger runs the embedded engine)\n',
  );
  process.exit(2);
}
const N = args.count('registrations');
const IN_FLIGHT = args.count('in-flight');
const PASS = 'bench passphrase';
const root = mkdtempSync(join(tmpdir(), 'kl-bench-evm-'));
const log = (s: string) => process.stderr.write(`${s}\n`);

function body(i: number): TxBodies['KeyRegistered'] {
  const hex = (n: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString('hex');
  return {
    id: `user${i}.${hex(3)}@example.org`,
    name: `User ${i}`,
    fingerprint: hex(20),
    publicKey: `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${Buffer.from(
      crypto.getRandomValues(new Uint8Array(450)),
    )
      .toString('base64')
      .replace(/(.{64})/g, '$1\n')}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
    algorithm: 'ed25519-legacy',
  };
}

async function load(ledger: EmbeddedLedger) {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < N) {
        const i = next++;
        const t = performance.now();
        await ledger.submit({ type: 'KeyRegistered', body: body(i) });
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    +latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
  return { perSecond: Math.round(N / seconds), latencyMs: { p50: q(0.5), p99: q(0.99) } };
}

try {
  log(`keyledger ledger benchmark, EVM engine vs embedded — ${cpus()[0]?.model} × ${cpus().length}`);
  const embeddedDir = join(root, 'embedded');
  initEmbeddedLedger({ dataDir: embeddedDir, passphrase: PASS });
  const embedded = EmbeddedLedger.open({ dataDir: embeddedDir, passphrase: PASS, batchWaitMs: 2 });
  const emb = await load(embedded);
  await embedded.close();
  log(
    `embedded: ${emb.perSecond} registrations/s, commit p50 ${emb.latencyMs.p50} ms, p99 ${emb.latencyMs.p99} ms`,
  );

  const anvil = await startAnvil();
  const dataDir = join(root, 'evm');
  await initEvmNode({ dataDir, passphrase: PASS, rpcUrl: anvil.url, insecureDevFunderKey: ANVIL_FUNDER_KEY });
  const engine = readGenesisFile(dataPaths(dataDir).genesis).genesis.engine!;
  const sequencer = evmSequencerFor({ dataDir, passphrase: PASS, engine, pollMs: 10 });
  const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASS, sequencer });
  await sequencer.follow((b) => ledger.ingest(b), ledger.sequencerCursor());
  const evm = await load(ledger);
  await ledger.drain();
  await sequencer.stop();
  await ledger.close();
  await anvil.stop();
  log(
    `evm (anvil): ${evm.perSecond} registrations/s, commit p50 ${evm.latencyMs.p50} ms, p99 ${evm.latencyMs.p99} ms`,
  );
  await args.finish({
    registrations: N,
    inFlight: IN_FLIGHT,
    embedded: emb,
    evmAnvil: evm,
    note: 'anvil automines one transaction per block without consensus; QBFT adds its block period per commit',
  });
} finally {
  rmSync(root, { recursive: true, force: true });
}
