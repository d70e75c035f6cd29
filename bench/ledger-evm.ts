/**
 * `npm run bench:ledger -- --engine evm` — registrations per second and commit latency (submit →
 * the transaction is in a durable keyledger block) on the EVM engine against a local anvil node,
 * next to the embedded engine measured in the same run with the same load (the baseline). `--json`
 * prints the results document on stdout; `--out FILE` writes it (bench/support/bench-cli.ts,
 * bench/README.md). Options: --registrations N (default 300), --in-flight N (default 16),
 * --revocations N (default 100): revocation propagation to a second server of the deployment (joined
 * with keys of its own and admitted, following the chain at the server's default poll of 250 ms) —
 * from the revocation's submit on the first server to the second server's ledger holding it, p50/p99,
 * next to the first server's own commit latency for the same revocations.
 * Anvil automines one transaction per block, with no consensus: Besu/GoQuorum QBFT adds its block
 * period (1–2 s typically) to every commit, and batches many transactions per block.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPaths, readGenesisFile } from '../src/ledger/data-dir.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { evmEngineOf } from '../src/ledger/genesis.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { evmSequencerFor, initEvmNode, joinEvmNode, registrarAccountsFor } from '../src/server/evm-node.js';
import { ANVIL_FUNDER_KEY, startAnvil } from '../test/support/anvil.js';
import { benchArgs } from './support/bench-cli.js';
import { embeddedBaseline, registrationLoad, revocationPropagation } from './support/ledger-engine-run.js';

const args = benchArgs({
  name: 'ledger-evm',
  command: 'npm run bench:ledger -- --engine evm',
  summary: 'Registrations/s and commit latency on the EVM engine (anvil), next to the embedded engine.',
  params: {
    engine: { kind: 'text', full: 'evm', fullWhen: 'any', help: 'evm (given to npm run bench:ledger)' },
    registrations: { kind: 'count', full: '300', fullWhen: 'atLeast', help: 'registrations per engine' },
    'in-flight': { kind: 'count', full: '16', fullWhen: 'any', help: 'registrations in flight' },
    revocations: {
      kind: 'count',
      full: '100',
      fullWhen: 'atLeast',
      help: 'revocations timed to the second server',
    },
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
const REVOCATIONS = args.count('revocations');
const PASS = 'bench passphrase';
const root = mkdtempSync(join(tmpdir(), 'kl-bench-evm-'));
const log = (s: string) => process.stderr.write(`${s}\n`);

/**
 * A second server of the deployment of `dataDir`: joined with keys of its own, admitted by the
 * first (`ledger`, the governor), following the chain; resolves once it has caught up.
 */
async function secondServer(rpcUrl: string, first: EmbeddedLedger, firstDir: string) {
  const dataDir = join(root, 'second');
  const { request } = await joinEvmNode({
    dataDir,
    passphrase: PASS,
    rpcUrl,
    genesis: first.genesis,
    name: 'second',
    insecureDevFunderKey: ANVIL_FUNDER_KEY,
  });
  const engine = evmEngineOf(first.genesis)!;
  await registrarAccountsFor({ dataDir: firstDir, passphrase: PASS, engine }).setAccount(
    request.node.account!,
    true,
  );
  await first.governance({
    type: 'RegistrarAdded',
    body: { keyId: request.keyId, publicKey: request.publicKey, name: request.name, node: request.node },
  });
  const sequencer = evmSequencerFor({ dataDir, passphrase: PASS, engine });
  const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASS, sequencer });
  await sequencer.follow((b) => ledger.ingest(b), ledger.sequencerCursor());
  return { ledger, sequencer };
}

try {
  log(`keyledger ledger benchmark, EVM engine vs embedded — ${cpus()[0]?.model} × ${cpus().length}`);
  const emb = await embeddedBaseline(root, PASS, N, IN_FLIGHT);
  log(
    `embedded: ${emb.perSecond} registrations/s, commit p50 ${emb.latencyMs.p50} ms, p99 ${emb.latencyMs.p99} ms`,
  );

  const anvil = await startAnvil();
  const dataDir = join(root, 'evm');
  await initEvmNode({ dataDir, passphrase: PASS, rpcUrl: anvil.url, insecureDevFunderKey: ANVIL_FUNDER_KEY });
  const engine = evmEngineOf(readGenesisFile(dataPaths(dataDir).genesis).genesis)!;
  const sequencer = evmSequencerFor({ dataDir, passphrase: PASS, engine, pollMs: 10 });
  const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASS, sequencer });
  await sequencer.follow((b) => ledger.ingest(b), ledger.sequencerCursor());
  const registered: TxBodies['KeyRegistered'][] = [];
  const evm = await registrationLoad(ledger, N, IN_FLIGHT, registered);
  log(
    `evm (anvil): ${evm.perSecond} registrations/s, commit p50 ${evm.latencyMs.p50} ms, p99 ${evm.latencyMs.p99} ms`,
  );
  const second = await secondServer(anvil.url, ledger, dataDir);
  const revoked = await revocationPropagation(ledger, second.ledger, registered.slice(0, REVOCATIONS));
  log(
    `revocation through the first server: committed there p50 ${revoked.commitOnFirst.p50} ms, p99 ${revoked.commitOnFirst.p99} ms; on the second server (polling every 250 ms) p50 ${revoked.visibleOnSecond.p50} ms, p99 ${revoked.visibleOnSecond.p99} ms`,
  );
  await second.sequencer.stop();
  await second.ledger.close();
  await ledger.drain();
  await sequencer.stop();
  await ledger.close();
  await anvil.stop();
  await args.finish({
    registrations: N,
    inFlight: IN_FLIGHT,
    embedded: emb,
    evmAnvil: evm,
    revocations: Math.min(REVOCATIONS, registered.length),
    revocationPropagation: { ...revoked, secondServerPollMs: 250 },
    note: 'anvil automines one transaction per block without consensus; QBFT adds its block period per commit',
  });
} finally {
  rmSync(root, { recursive: true, force: true });
}
