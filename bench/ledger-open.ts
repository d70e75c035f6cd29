/**
 * How long opening a data directory takes (docs/ledger.md "Integrity at start"): a ledger of N
 * audit-event transactions (default 100,000, B per block, default 1,000), opened without a verified
 * checkpoint (every transaction row checked), then with it at the top (rows of checked blocks not
 * read again). Run: npm run bench:open -- [N] [B]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';

const N = Number(process.argv[2] ?? 100_000);
const perBlock = Number(process.argv[3] ?? 1_000);
const passphrase = 'bench passphrase';
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
  const height = (await ledger.checkpoint())?.header.height ?? 0;
  await ledger.close();
  console.log(
    `${N} transactions in ${height} blocks written in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  const time = async (label: string, passphraseOrNot?: string) => {
    const t = performance.now();
    const l = EmbeddedLedger.open({ dataDir, ...(passphraseOrNot ? { passphrase: passphraseOrNot } : {}) });
    const ms = performance.now() - t;
    await l.close();
    console.log(`${label}: ${ms.toFixed(0)} ms`);
  };
  await time('open read-only, no verified checkpoint (checks every row)');
  await time(
    'open as the node, no verified checkpoint (checks every row, records the checkpoint)',
    passphrase,
  );
  await time('open as the node, verified checkpoint at the top', passphrase);
  await time('open read-only, verified checkpoint at the top');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
