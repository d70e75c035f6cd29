/**
 * The worker-thread audit (src/ledger/verify-parallel.ts): what a worker reports only spares the
 * replay work, it never decides a verdict — a precheck counts only for the very row the replay read
 * (same leaf hash) and only for the key the permission rules resolve; `--threads` on the CLI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { leafHash } from '../src/ledger/merkle.js';
import { LedgerAudit, verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { verifyLedgerDataInParallel } from '../src/ledger/verify-parallel.js';
import { toHex, utf8 } from '../src/protocol/bytes.js';
import { freshLedger, registration, tamperedCopy } from './helpers.js';

let pristine = '';
let forged = '';
let anchorTxid = '';

before(async () => {
  const { ledger, dataDir } = freshLedger({ maxBlockTxs: 3 });
  await Promise.all(
    Array.from({ length: 7 }, (_, i) =>
      ledger.submit({ type: 'KeyRegistered', body: registration(`u${i}@example.org`) }),
    ),
  );
  anchorTxid = (
    await ledger.submit({
      type: 'HashAnchored',
      body: { hash: 'b'.repeat(64), algorithm: 'sha256', label: 'x' },
    })
  ).txid;
  await ledger.close();
  pristine = dataDir;
  // The anchor's body changed and its id recomputed: its signature no longer fits.
  forged = tamperedCopy(pristine, (db) => {
    const row = db.prepare('SELECT envelope FROM txs WHERE txid = ?').get(anchorTxid) as { envelope: string };
    const changed = row.envelope.replace('"label":"x"', '"label":"y"');
    db.prepare('UPDATE txs SET envelope = ?, txid = ? WHERE txid = ?').run(
      changed,
      toHex(leafHash(utf8(changed))),
      anchorTxid,
    );
  });
});

/** Replays `dir` with the given precheck for the forged anchor (the only transaction of its block). */
function replayWith(
  dir: string,
  precheck: (row: { envelope: string }, key: string) => object,
): string | undefined {
  const audit = new LedgerAudit(dir);
  try {
    audit.begin();
    const key = audit.genesis.registrars[0]!.publicKey;
    for (const row of audit.blockRows()) {
      const rows = (audit as unknown as { txsOf: { all(h: number): Array<{ envelope: string }> } }).txsOf.all(
        row.height,
      );
      audit.block(
        row,
        rows.map((tx) => precheck(tx, key) as never),
      );
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    audit.close();
  }
}

describe('ledger verify on worker threads', () => {
  it('gives the same verdict as the single-threaded audit, with 1, 2 and 3 threads', async () => {
    for (const dir of [pristine, forged]) {
      const alone = verifyLedgerData({ dataDir: dir });
      for (const threads of [1, 3])
        assert.deepEqual(await verifyLedgerDataInParallel({ dataDir: dir, threads }), alone);
    }
    assert.equal(verifyLedgerData({ dataDir: pristine }).ok, true);
    assert.match(verifyLedgerData({ dataDir: forged }).problem!.reason, /signature is not valid/);
  });

  it('reports progress for every block, ending at the total', async () => {
    const seen: Array<[number, number]> = [];
    const { blocks } = await verifyLedgerDataInParallel({
      dataDir: pristine,
      threads: 2,
      onProgress: (h, t) => seen.push([h, t]),
    });
    assert.ok(blocks >= 3);
    assert.deepEqual(
      seen,
      Array.from({ length: blocks }, (_, i) => [i + 1, blocks]),
    );
  });

  it('a precheck for another text (another leaf hash) is ignored: the forged signature is still caught', () => {
    const reason = replayWith(forged, (_tx, key) => ({ leaf: new Uint8Array(32), verifiedWith: key }));
    assert.match(reason ?? '', /signature is not valid/);
  });

  it('a precheck that verified with another key than the signer resolves to is ignored', () => {
    const reason = replayWith(forged, (tx) => ({
      leaf: leafHash(utf8(tx.envelope)),
      verifiedWith: 'another-key',
    }));
    assert.match(reason ?? '', /signature is not valid/);
  });

  it('a precheck for this very row and the signer’s key is what spares the check (and only that)', () => {
    // The control of the two tests above: with a matching precheck the replay does skip the
    // signature, and the forgery is then caught later, by the block's transaction root.
    const reason = replayWith(forged, (tx, key) => ({
      leaf: leafHash(utf8(tx.envelope)),
      verifiedWith: key,
    }));
    assert.match(reason ?? '', /transaction root is wrong/);
  });

  it('keyledger ledger verify --threads: 0 and 2 agree; a bad value is refused with a clear error', () => {
    const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [bin, 'ledger', 'verify', '--data', forged, '--quiet', ...args], {
        encoding: 'utf8',
      });
    const none = run('--threads', '0');
    const two = run('--threads', '2');
    assert.equal(none.status, 1, none.stderr);
    assert.equal(two.status, 1, two.stderr);
    assert.equal(two.stdout, none.stdout);
    assert.match(two.stdout, /ledger TAMPERED: block \d+: transaction [0-9a-f]{64} is invalid/);
    const bad = run('--threads', 'many');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /KL_BAD_INPUT: --threads must be a whole number from 0 to 64/);
  });
});
