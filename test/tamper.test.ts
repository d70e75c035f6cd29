import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import type Database from 'better-sqlite3';
import { type BlockHeader, blockHashOf } from '../src/ledger/block.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { leafHash } from '../src/ledger/merkle.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { verifyLedgerDataInParallel } from '../src/ledger/verify-parallel.js';
import { toHex } from '../src/protocol/bytes.js';
import { isKlError } from '../src/protocol/errors.js';
import { fakeSignature, freshLedger, registration, tamperedCopy } from './helpers.js';

let pristine = '';
const txOf: Record<string, string> = {};

before(async () => {
  const { ledger, dataDir } = freshLedger();
  // Block 1: two registrations. Block 2: an anchor. Block 3: a revocation. Block 4: an audit event.
  const regs = [registration('ann@example.org'), registration('ben@example.org')];
  const r1 = await Promise.all(regs.map((body) => ledger.submit({ type: 'KeyRegistered', body })));
  txOf.ann = r1[0]!.txid;
  txOf.anchor = (
    await ledger.submit({
      type: 'HashAnchored',
      body: { hash: 'a'.repeat(64), algorithm: 'sha256', label: 'contract' },
    })
  ).txid;
  txOf.revoke = (
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: 'ben@example.org',
        fingerprint: regs[1]!.fingerprint,
        reason: 'compromised',
        by: 'owner',
        ownerSignature: fakeSignature(),
      },
    })
  ).txid;
  txOf.audit = (await ledger.submit({ type: 'AuditEvent', body: { event: 'login', at: 7 } })).txid;
  await ledger.close();
  pristine = dataDir;
});

/** Every tampered copy made below, with the verdict of the single-threaded audit. */
const verdicts: Array<{ dir: string; result: ReturnType<typeof verifyLedgerData> }> = [];

/** A copy of the pristine data directory with `mutate` applied to its SQLite file. */
const tampered = (mutate: (db: Database.Database) => void): string => tamperedCopy(pristine, mutate);

function expectProblem(dir: string, want: { height?: number; txid?: string; reason: RegExp }) {
  const result = verifyLedgerData({ dataDir: dir });
  verdicts.push({ dir, result });
  assert.equal(result.ok, false, 'tampering went unnoticed');
  assert.match(result.problem!.reason, want.reason);
  if (want.height !== undefined) assert.equal(result.problem!.height, want.height);
  if (want.txid !== undefined) assert.equal(result.problem!.txid, want.txid);
}

const header = (db: Database.Database, h: number) =>
  JSON.parse(
    (db.prepare('SELECT header FROM blocks WHERE height = ?').get(h) as { header: string }).header,
  ) as BlockHeader;

describe('ledger verify catches tampering', () => {
  it('passes on the untouched ledger', () => {
    const r = verifyLedgerData({ dataDir: pristine });
    assert.deepEqual(r, { ok: true, blocks: 4, transactions: 5, stateEntries: 6 });
  });

  it('a changed byte in a transaction', () => {
    const dir = tampered((db) =>
      db
        .prepare(`UPDATE txs SET envelope = replace(envelope, '"contract"', '"contrast"') WHERE txid = ?`)
        .run(txOf.anchor),
    );
    expectProblem(dir, { height: 2, txid: txOf.anchor, reason: /does not match its id/ });
  });

  it('a changed transaction whose id the attacker recomputed', () => {
    const dir = tampered((db) => {
      const row = db.prepare('SELECT envelope FROM txs WHERE txid = ?').get(txOf.anchor) as {
        envelope: string;
      };
      const changed = row.envelope.replace('"contract"', '"contrast"');
      db.prepare('UPDATE txs SET envelope = ?, txid = ? WHERE txid = ?').run(
        changed,
        toHex(leafHash(Buffer.from(changed))),
        txOf.anchor,
      );
    });
    expectProblem(dir, { height: 2, reason: /signature is not valid/ });
  });

  it('a changed byte in a block header', () => {
    const dir = tampered((db) =>
      db
        .prepare(`UPDATE blocks SET header = replace(header, '"txCount":1', '"txCount":2') WHERE height = 3`)
        .run(),
    );
    expectProblem(dir, { height: 3, reason: /hash does not match/ });
  });

  it('a changed header with its hash recomputed (the signature no longer fits)', () => {
    const dir = tampered((db) => {
      const h = { ...header(db, 2), time: header(db, 2).time + 1 };
      db.prepare('UPDATE blocks SET header = ?, hash = ? WHERE height = 2').run(
        JSON.stringify(h),
        blockHashOf(h),
      );
    });
    expectProblem(dir, { height: 2, reason: /not signed by a quorum/ });
  });

  it('a changed state row', () => {
    const dir = tampered((db) =>
      db
        .prepare(
          `UPDATE state SET value = replace(value, '"revoked"', '"active"') WHERE key = 'identity:ben@example.org'`,
        )
        .run(),
    );
    expectProblem(dir, { reason: /state row identity:ben@example.org differs/ });
    assert.throws(
      () => EmbeddedLedger.open({ dataDir: dir }),
      (e) => isKlError(e, 'KL_LEDGER_CORRUPT'),
    );
  });

  it('an added state row', () => {
    const dir = tampered((db) =>
      db.prepare(`INSERT INTO state(key, value) VALUES ('identity:evil@example.org', '{}')`).run(),
    );
    expectProblem(dir, { reason: /not explained by any transaction/ });
  });

  it('a deleted block', () => {
    const dir = tampered((db) => db.prepare('DELETE FROM blocks WHERE height = 2').run());
    expectProblem(dir, { height: 2, reason: /block 2 is missing/ });
    assert.throws(
      () => EmbeddedLedger.open({ dataDir: dir }),
      (e) => isKlError(e, 'KL_LEDGER_CORRUPT'),
    );
  });

  it('deleted blocks at the end: caught by state when they changed it, by a known checkpoint always', async () => {
    // Blocks 3 and 4 hold a revocation: the stored state no longer follows from the shorter chain.
    const dir2 = tampered((db) => {
      db.prepare('DELETE FROM blocks WHERE height IN (3, 4)').run();
      db.prepare('DELETE FROM txs WHERE height IN (3, 4)').run();
    });
    expectProblem(dir2, { reason: /state row identity:ben@example.org differs/ });
    // Block 4 holds only an audit event: the shorter chain is internally valid, so an outside
    // checkpoint (as clients keep) is what reveals the cut.
    const reader = EmbeddedLedger.open({ dataDir: pristine });
    const checkpoint = await reader.checkpoint();
    await reader.close();
    const dir = tampered((db) => {
      db.prepare('DELETE FROM blocks WHERE height = 4').run();
      db.prepare('DELETE FROM txs WHERE height = 4').run();
    });
    assert.ok(verifyLedgerData({ dataDir: dir }).ok);
    const r = verifyLedgerData({ dataDir: dir, knownCheckpoints: [checkpoint] });
    assert.equal(r.ok, false);
    assert.match(r.problem!.reason, /ends at block 3 but a checkpoint at block 4 exists/);
    assert.ok(verifyLedgerData({ dataDir: pristine, knownCheckpoints: [checkpoint] }).ok);
  });

  it('two blocks swapped', () => {
    const dir = tampered((db) => {
      const rows = db
        .prepare('SELECT height, hash, header, signatures FROM blocks WHERE height IN (2, 3) ORDER BY height')
        .all() as Array<Record<string, string>>;
      db.prepare('UPDATE blocks SET hash = ? WHERE height = 2').run('x');
      db.prepare('UPDATE blocks SET hash = ?, header = ?, signatures = ? WHERE height = 3').run(
        rows[0]!.hash,
        rows[0]!.header,
        rows[0]!.signatures,
      );
      db.prepare('UPDATE blocks SET hash = ?, header = ?, signatures = ? WHERE height = 2').run(
        rows[1]!.hash,
        rows[1]!.header,
        rows[1]!.signatures,
      );
    });
    expectProblem(dir, { height: 2, reason: /header says height 3/ });
  });

  it('a deleted transaction row, and a transaction moved to another block', () => {
    expectProblem(
      tampered((db) => db.prepare('DELETE FROM txs WHERE txid = ?').run(txOf.ann)),
      { height: 1, reason: /holds 1 transactions, header says 2/ },
    );
    expectProblem(
      tampered((db) => db.prepare('UPDATE txs SET height = 4, idx = 1 WHERE txid = ?').run(txOf.anchor)),
      { height: 2, reason: /holds 0 transactions/ },
    );
  });

  it('keyledger ledger verify exits 1 and names the first bad block and transaction', () => {
    const dir = tampered((db) =>
      db
        .prepare(`UPDATE txs SET envelope = replace(envelope, '"login"', '"logim"') WHERE txid = ?`)
        .run(txOf.audit),
    );
    const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
    const bad = spawnSync(process.execPath, [bin, 'ledger', 'verify', '--data', dir, '--quiet'], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stdout, /ledger TAMPERED: block 4/);
    assert.match(bad.stdout, new RegExp(`first bad transaction: ${txOf.audit}`));
    const good = spawnSync(process.execPath, [bin, 'ledger', 'verify', '--data', pristine, '--quiet'], {
      encoding: 'utf8',
    });
    assert.equal(good.status, 0, good.stderr);
    assert.match(
      good.stdout,
      /^ledger OK: 4 blocks, 5 transactions, 6 state entries verified in [\d.]+ s\n$/,
    );
  });
});

describe('ledger verify on worker threads catches the same tampering', () => {
  it('gives the single-threaded verdict, word for word, on the pristine ledger and on every tampered copy', async () => {
    assert.ok(verdicts.length >= 10, 'the tampering tests above ran first');
    for (const { dir, result } of [
      { dir: pristine, result: verifyLedgerData({ dataDir: pristine }) },
      ...verdicts,
    ]) {
      for (const threads of [2]) {
        assert.deepEqual(
          await verifyLedgerDataInParallel({ dataDir: dir, threads }),
          result,
          `${dir}, ${threads} threads`,
        );
      }
    }
  });
});
