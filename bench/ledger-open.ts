/**
 * `npm run bench:open` — how long opening a data directory takes (docs/ledger.md "Integrity at
 * start"): a ledger of N audit-event transactions (--transactions, default 100,000; --block-size B,
 * default 1,000), opened without a verified checkpoint (every transaction row checked: the baseline),
 * then with it at the top (rows of checked blocks not read again). `--json` prints the results
 * document on stdout; `--out FILE` writes it (bench/support/bench-cli.ts, bench/README.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { benchArgs } from './support/bench-cli.js';

const args = benchArgs({
  name: 'ledger-open',
  command: 'npm run bench:open --',
  summary: 'Time to open a data directory with and without a verified checkpoint at the top.',
  params: {
    transactions: { kind: 'count', full: '100000', fullWhen: 'atLeast', help: 'audit-event transactions' },
    'block-size': { kind: 'count', full: '1000', fullWhen: 'any', help: 'transactions per block' },
  },
  out: 'file',
  resultsFile: 'ledger-open.json',
});
const N = args.count('transactions');
const perBlock = args.count('block-size');
const passphrase = 'bench passphrase';
const log = (s: string) => process.stderr.write(`${s}\n`);
const dir = mkdtempSync(join(tmpdir(), 'kl-open-'));
const dataDir = join(dir, 'data');
try {
  initEmbeddedLedger({ dataDir, passphrase });
  const ledger = EmbeddedLedger.open({ dataDir, passphrase, maxBlockTxs: perBlock });
  const started = performance.now();
  for (let i = 0; i < N; i += 5_000) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 5_000); j++)
      batch.push(
        ledger.submit({
          type: 'AuditEvent',
          body: { event: 'login', at: j, subject: 'a'.repeat(64), detail: { ip: '127.0.0.1', n: j } },
        }),
      );
    await Promise.all(batch);
  }
  const blocks = (await ledger.checkpoint())?.header.height ?? 0;
  await ledger.close();
  const writeSeconds = +((performance.now() - started) / 1000).toFixed(1);
  log(`${N} transactions in ${blocks} blocks written in ${writeSeconds} s`);
  const time = async (label: string, passphraseOrNot?: string) => {
    const t = performance.now();
    const l = EmbeddedLedger.open({ dataDir, ...(passphraseOrNot ? { passphrase: passphraseOrNot } : {}) });
    const ms = Math.round(performance.now() - t);
    await l.close();
    log(`${label}: ${ms} ms`);
    return ms;
  };
  // The order matters: the node's first open records the verified checkpoint the later ones use.
  const readOnlyNoCheckpointMs = await time('open read-only, no verified checkpoint (checks every row)');
  const nodeNoCheckpointMs = await time(
    'open as the node, no verified checkpoint (checks every row, records the checkpoint)',
    passphrase,
  );
  const nodeWithCheckpointMs = await time('open as the node, verified checkpoint at the top', passphrase);
  const readOnlyWithCheckpointMs = await time('open read-only, verified checkpoint at the top');
  await args.finish({
    transactions: N,
    blocks,
    writeSeconds,
    openMs: {
      readOnlyWithCheckpoint: readOnlyWithCheckpointMs,
      nodeWithCheckpoint: nodeWithCheckpointMs,
      baselineReadOnlyNoCheckpoint: readOnlyNoCheckpointMs,
      baselineNodeNoCheckpoint: nodeNoCheckpointMs,
    },
    notes: [
      'baseline: the same directory opened before any verified checkpoint exists (every row checked).',
      'opening as the node includes unsealing its keys with the passphrase (scrypt).',
    ],
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
