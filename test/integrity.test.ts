/**
 * Integrity claims the tools keep (docs/ledger.md "Integrity at start"), against an attacker who can
 * write the SQLite file but holds no node key: a rewritten audit row is never listed as genuine (CLI
 * and admin API); the server refuses to start on changed transaction rows, changed middle-block
 * headers, deleted or extra transactions, a deleted or forged verified checkpoint (until the operator
 * runs `ledger verify --mark-verified`); `keyledger status` exits non-zero for another key, a revoked
 * key, an unknown identity, and says "history cut short" for a truncated ledger; `keyledger receipt
 * verify` checks the OpenPGP signature against the key the ledger held. Real servers on 127.0.0.1,
 * the real CLI, tampered real rows.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { ClientHome } from '../src/client/home.js';
import { openClientKey } from '../src/client/identity.js';
import { rotateKey } from '../src/client/rotate.js';
import { connect } from '../src/client/session.js';
import { type BlockHeader, blockHashOf } from '../src/ledger/block.js';
import { acquireWriterLock, dataPaths } from '../src/ledger/data-dir.js';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { leafHash } from '../src/ledger/merkle.js';
import { verifyLedgerExtends } from '../src/ledger/proofs.js';
import { toHex } from '../src/protocol/bytes.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { isKlError } from '../src/protocol/errors.js';
import { setAdminRole } from '../src/server/admin-actions.js';
import { type RunningServer, startServer } from '../src/server/app.js';
import { fakeSignature, PASSPHRASE, registration, tamperedCopy, tempDir } from './helpers.js';
import { serveCli } from './support/serve-cli.js';
import { CLIENT_PASSPHRASE, newClient, registeredClient } from './support/server.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;

/** Runs the real CLI without blocking this process (the server under test runs in it). */
function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { KEYLEDGER_SERVER_PASSPHRASE: _a, KEYLEDGER_PASSPHRASE: _b, ...base } = process.env;
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const data = join(tempDir(), 'data');
let port = 0;
let server: RunningServer;
const homes: Record<string, ClientHome> = {};
/** A copy of the data directory taken after the registrations (a shorter, genuine history). */
let snapshot = '';
/** The data directory once the server stopped, untouched. */
let pristine = '';
let signedFile = '';
let carolFile = '';

function start(dataDir: string, p = port): Promise<RunningServer> {
  return startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port: p });
}

/** Lets the fire-and-forget audit events of the server reach the ledger. */
const settle = () => new Promise((r) => setTimeout(r, 300));

before(async () => {
  server = await start(data, 0);
  port = Number(new URL(server.url).port);
  for (const id of ['alice', 'bob', 'carol']) homes[id] = await registeredClient(server, `${id}@example.org`);
  await setAdminRole(server.ledger, 'alice@example.org', true);
  await settle();
  await server.close();
  snapshot = join(tempDir(), 'snapshot');
  cpSync(data, snapshot, { recursive: true });
  // Restarted on the same port; this start records the node's verified checkpoint.
  server = await start(data);
  const s = await connect({ home: homes.alice!, passphrase: CLIENT_PASSPHRASE });
  await s.close();
  signedFile = join(tempDir(), 'iou.json');
  const sent = await run(
    ['send', 'I owe Bob 10 EUR', '--sign', '--out', signedFile, '--home', homes.alice!.dir],
    {
      KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE,
    },
  );
  assert.equal(sent.code, 0, sent.stderr);
  await settle();
});

after(async () => {
  await server?.close();
});

describe('keyledger receipt verify checks the signature against the ledger', () => {
  it('accepts the genuine file and says which checks passed', async () => {
    const ok = await run(['receipt', 'verify', signedFile, '--home', homes.alice!.dir]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /receipt OK: HashAnchored/);
    assert.match(ok.stdout, /exactly the one anchored/);
    assert.match(
      ok.stdout,
      /signature OK: by alice@example\.org's key [0-9a-f]{40}, the key the ledger held at block \d+/,
    );
  });

  it('rejects a garbage signature and a signature by another key', async () => {
    const doc = JSON.parse(readFileSync(signedFile, 'utf8'));
    const garbage = join(tempDir(), 'garbage.json');
    writeFileSync(garbage, JSON.stringify({ ...doc, signature: 'not a signature at all' }));
    const g = await run(['receipt', 'verify', garbage, '--home', homes.alice!.dir]);
    assert.equal(g.code, 1, g.stdout + g.stderr);
    assert.match(g.stdout, /signature INVALID/);
    assert.doesNotMatch(g.stdout, /signature OK/);

    // Bob signs Alice's message with his own (registered) key.
    const { key } = await openClientKey(homes.bob!, CLIENT_PASSPHRASE);
    const forged = join(tempDir(), 'forged.json');
    writeFileSync(
      forged,
      JSON.stringify({
        ...doc,
        signature: await key.signDetached(Buffer.from(doc.message, 'utf8'), new Date()),
      }),
    );
    const f = await run(['receipt', 'verify', forged, '--home', homes.alice!.dir, '--json']);
    assert.equal(f.code, 1, f.stdout + f.stderr);
    const r = JSON.parse(f.stdout);
    assert.equal(r.verified, false);
    assert.equal(r.messageMatches, true);
    assert.equal(r.signature.verified, false);
    assert.match(r.signature.reason, /not a valid signature over the message by alice@example\.org's key/);
  });
});

describe('keyledger status exits non-zero for states a script must notice', () => {
  it('0 for the key the ledger holds; 5 for an identity the ledger does not know', async () => {
    const ok = await run(['status', '--home', homes.alice!.dir, '--json']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(JSON.parse(ok.stdout).state, 'ok');
    const stranger = await newClient('stranger@example.org');
    const unknown = await run(['status', '--home', stranger.dir]);
    assert.equal(unknown.code, 5, unknown.stdout + unknown.stderr);
  });

  it('3 when the ledger holds another key, 4 when the key is revoked', async () => {
    // A copy of carol's home keeps her old key after she rotates it.
    const oldHome = join(tempDir(), 'carol-old');
    cpSync(homes.carol!.dir, oldHome, { recursive: true });
    carolFile = join(tempDir(), 'carol.json');
    const sent = await run(
      ['send', 'signed with my first key', '--sign', '--out', carolFile, '--home', homes.carol!.dir],
      {
        KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE,
      },
    );
    assert.equal(sent.code, 0, sent.stderr);
    await rotateKey({
      home: homes.carol!,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'generate', passphrase: CLIENT_PASSPHRASE, type: 'ecc' },
    });
    const other = await run(['status', '--home', oldHome]);
    assert.equal(other.code, 3, other.stdout + other.stderr);
    assert.match(other.stdout, /ANOTHER KEY [0-9a-f]{40}/);

    const s = await connect({ home: homes.bob!, passphrase: CLIENT_PASSPHRASE });
    await s.revokeKey('compromised');
    const revoked = await run(['status', '--home', homes.bob!.dir, '--json']);
    assert.equal(revoked.code, 4, revoked.stdout + revoked.stderr);
    assert.equal(JSON.parse(revoked.stdout).ledger.status, 'revoked');
  });

  it('a message signed with a key rotated away since still verifies (the key held at that height)', async () => {
    const ok = await run(['receipt', 'verify', carolFile, '--home', homes.carol!.dir]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /signature OK: .*no longer its current key/);
  });
});

describe('the admin API never lists a forged audit row', () => {
  it('answers KL_LEDGER_CORRUPT once a row was rewritten in the live file', async () => {
    const s = await connect({ home: homes.alice!, passphrase: CLIENT_PASSPHRASE });
    const link = (await s.request<{ url: string }>({ op: 'admin.dashboard-link' })).url;
    await s.close();
    const res = await fetch(link, { redirect: 'manual' });
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
    const good = await fetch(`${server.url}/admin/api/audit`, { headers: { cookie } });
    assert.equal(good.status, 200);
    const rows = (await good.json()) as Array<{ event: string; txid: string }>;
    const target = rows.find((r) => r.event === 'session_start')!;
    assert.ok(target, 'a session_start event to rewrite');

    // Rewrite the row behind the running server's back; restore it afterwards.
    const db = new Database(dataPaths(data).db);
    const { envelope } = db.prepare('SELECT envelope FROM txs WHERE txid = ?').get(target.txid) as {
      envelope: string;
    };
    try {
      db.prepare('UPDATE txs SET envelope = ? WHERE txid = ?').run(
        envelope.replace('"session_start"', '"session_stop"'),
        target.txid,
      );
      const bad = await fetch(`${server.url}/admin/api/audit`, { headers: { cookie } });
      const text = await bad.text();
      assert.equal(bad.status, 503, text);
      assert.equal(JSON.parse(text).error.code, 'KL_LEDGER_CORRUPT');
      assert.doesNotMatch(text, /session_stop/);
      const csv = await fetch(`${server.url}/admin/api/audit?format=csv`, { headers: { cookie } });
      assert.equal(csv.status, 503);
      // The overview still answers (alerts and sessions matter most now); only its login chart,
      // read from the audit trail, says it is unavailable, and counts nothing forged.
      const overview = await fetch(`${server.url}/admin/api/overview`, { headers: { cookie } });
      assert.equal(overview.status, 200);
      const o = (await overview.json()) as {
        logins: { points: unknown[]; unavailable?: string };
        alerts: { open: number };
        sessions: { live: number };
      };
      assert.deepEqual(o.logins, { points: [], unavailable: 'KL_LEDGER_CORRUPT' });
      assert.equal(typeof o.alerts.open, 'number');
      assert.equal(typeof o.sessions.live, 'number');
      // Same with the txid recomputed: the block's signed transaction root no longer fits.
      const changed = envelope.replace('"session_start"', '"session_stop"');
      db.prepare('UPDATE txs SET envelope = ?, txid = ? WHERE txid = ?').run(
        changed,
        toHex(leafHash(Buffer.from(changed))),
        target.txid,
      );
      const bad2 = await fetch(`${server.url}/admin/api/audit`, { headers: { cookie } });
      const text2 = await bad2.text();
      assert.equal(bad2.status, 503, text2);
      assert.doesNotMatch(text2, /session_stop/);
      assert.match(text2, /transaction root|is missing/);
    } finally {
      db.prepare("UPDATE txs SET envelope = ?, txid = ? WHERE type = 'AuditEvent' AND envelope LIKE ?").run(
        envelope,
        target.txid,
        '%"session_stop"%',
      );
      db.close();
    }
    const restored = await fetch(`${server.url}/admin/api/audit`, { headers: { cookie } });
    assert.equal(restored.status, 200);
  });
});

describe('history cut short', () => {
  it('keyledger status says so (KL_CHECKPOINT_INVALID), not a range error', async () => {
    assert.equal((await run(['status', '--home', homes.alice!.dir])).code, 0);
    await server.close();
    pristine = join(tempDir(), 'pristine');
    cpSync(data, pristine, { recursive: true });
    // The same node, on the same address, with the shorter (genuine) history taken earlier.
    server = await start(snapshot);
    const st = await run(['status', '--home', homes.alice!.dir]);
    assert.equal(st.code, 2, st.stdout + st.stderr);
    assert.match(
      st.stderr,
      /error KL_CHECKPOINT_INVALID: history cut short: the ledger now ends at block \d+, but this client already saw block \d+/,
    );
    // Logging in compares checkpoints too.
    const li = await run(['login', '--home', homes.alice!.dir], { KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE });
    assert.equal(li.code, 2, li.stdout + li.stderr);
    assert.match(li.stderr, /error KL_CHECKPOINT_INVALID: history cut short/);
    await server.close();
  });
});

describe('verifyLedgerExtends (the client side of a checkpoint comparison)', () => {
  it('tells a history cut short from a rewritten one, whatever the server claims', async () => {
    const reader = EmbeddedLedger.open({ dataDir: pristine });
    try {
      const top = (await reader.checkpoint())!;
      const kept = top;
      const genesis = reader.genesis;
      // A server answering with a (genuine) proof that ends below the kept checkpoint.
      const shorter = await reader.consistency(1, top.header.height - 1);
      const a = verifyLedgerExtends({ genesis, kept, proof: shorter });
      assert.equal(a.verified, false);
      assert.match((a as { reason: string }).reason, /^history cut short: the ledger now ends at block \d+/);
      // A server refusing the proof: its signed latest header tells the cut.
      const b = verifyLedgerExtends({ genesis, kept, latest: shorter.newer });
      assert.match((b as { reason: string }).reason, /^history cut short/);
      // A bare claim (unsigned) proves nothing: treated as a rewrite, not believed.
      const c = verifyLedgerExtends({
        genesis,
        kept,
        latest: { ...shorter.newer, signatures: [] },
      });
      assert.match((c as { reason: string }).reason, /history was rewritten/);
      // A proof from another kept checkpoint does not count.
      const d = verifyLedgerExtends({ genesis, kept, proof: await reader.consistency(1) });
      assert.match((d as { reason: string }).reason, /history was rewritten/);
      const ok = verifyLedgerExtends({
        genesis,
        kept: shorter.newer,
        proof: await reader.consistency(top.header.height - 1),
      });
      assert.equal(ok.verified, true);
    } finally {
      await reader.close();
    }
  });
});

/** A copy of the pristine data directory with `mutate` applied to its SQLite file. */
const tampered = (mutate: (db: Database.Database) => void): string => tamperedCopy(pristine, mutate);

const lastAudit = (db: Database.Database) =>
  db
    .prepare(
      "SELECT txid, envelope, height FROM txs WHERE type = 'AuditEvent' ORDER BY height DESC, idx DESC",
    )
    .get() as {
    txid: string;
    envelope: string;
    height: number;
  };

async function refusesToStart(dir: string, reason: RegExp): Promise<void> {
  await assert.rejects(start(dir, 0), (e: unknown) => {
    assert.ok(isKlError(e, 'KL_LEDGER_CORRUPT'), String(e));
    assert.match((e as Error).message, reason);
    assert.match((e as Error).message, /run `keyledger ledger verify --data /);
    return true;
  });
}

async function auditReportsDamage(dir: string, forged?: RegExp): Promise<void> {
  const a = await run(['audit', '--data', dir]);
  assert.equal(a.code, 1, a.stdout + a.stderr);
  assert.match(a.stdout, /audit trail DAMAGED \(KL_LEDGER_CORRUPT\)/);
  if (forged) assert.doesNotMatch(a.stdout, forged);
}

describe('a damaged ledger: keyledger audit reports it, the server refuses to start', () => {
  it('the untouched ledger starts and lists its audit trail', async () => {
    const a = await run(['audit', '--data', pristine]);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.match(a.stdout, /session_start/);
    const s = await start(
      tampered(() => {}),
      0,
    );
    await s.close();
  });

  it('a rewritten audit row', async () => {
    const dir = tampered((db) => {
      const row = lastAudit(db);
      db.prepare('UPDATE txs SET envelope = ? WHERE txid = ?').run(
        row.envelope.replace(/"event":"[a-z_]+"/, '"event":"forged_event"'),
        row.txid,
      );
    });
    await auditReportsDamage(dir, /forged_event/);
    await refusesToStart(dir, /transaction [0-9a-f]{64} does not match its id/);
  });

  it('a rewritten audit row with its id recomputed (keyledger serve, the real binary)', async () => {
    const dir = tampered((db) => {
      const row = lastAudit(db);
      const changed = row.envelope.replace(/"event":"[a-z_]+"/, '"event":"forged_event"');
      db.prepare('UPDATE txs SET envelope = ?, txid = ? WHERE txid = ?').run(
        changed,
        toHex(leafHash(Buffer.from(changed))),
        row.txid,
      );
    });
    await auditReportsDamage(dir, /forged_event/);
    await assert.rejects(serveCli(dir), (e: Error) => {
      assert.match(
        e.message,
        /error KL_LEDGER_CORRUPT: the ledger in .* is damaged: block \d+: transaction root is wrong/,
      );
      assert.match(e.message, /keyledger ledger verify/);
      return true;
    });
  });

  it('a changed transaction row (the signed message anchor)', async () => {
    const dir = tampered((db) =>
      db
        .prepare(
          `UPDATE txs SET envelope = replace(envelope, '"signed message"', '"signed massage"') WHERE type = 'HashAnchored'`,
        )
        .run(),
    );
    await refusesToStart(dir, /does not match its id/);
    await auditReportsDamage(dir);
  });

  it('a changed middle-block header, with and without its hash recomputed', async () => {
    const header = (db: Database.Database, h: number) =>
      JSON.parse(
        (db.prepare('SELECT header FROM blocks WHERE height = ?').get(h) as { header: string }).header,
      ) as BlockHeader;
    const mid = (db: Database.Database) =>
      Math.floor((db.prepare('SELECT max(height) AS n FROM blocks').get() as { n: number }).n / 2);
    const plain = tampered((db) => {
      const h = mid(db);
      db.prepare('UPDATE blocks SET header = ? WHERE height = ?').run(
        canonicalize({ ...header(db, h), time: header(db, h).time + 1 }),
        h,
      );
    });
    await refusesToStart(plain, /block \d+: header does not match its hash/);
    await auditReportsDamage(plain);
    const rehashed = tampered((db) => {
      const h = mid(db);
      const changed = { ...header(db, h), time: header(db, h).time + 1 };
      db.prepare('UPDATE blocks SET header = ?, hash = ? WHERE height = ?').run(
        canonicalize(changed),
        blockHashOf(changed),
        h,
      );
    });
    await refusesToStart(rehashed, /block|history/);
    await auditReportsDamage(rehashed);
  });

  it('a deleted transaction, and an extra one', async () => {
    const deleted = tampered((db) => db.prepare('DELETE FROM txs WHERE txid = ?').run(lastAudit(db).txid));
    await refusesToStart(deleted, /transactions? (are|is) missing|holds \d+ transactions, header says/);
    await auditReportsDamage(deleted);
    const extra = tampered((db) => {
      const row = lastAudit(db);
      const changed = row.envelope.replace(/"at":\d+/, '"at":1');
      db.prepare(
        'INSERT INTO txs(txid, height, idx, type, subject, envelope) VALUES (?, ?, 9999, ?, NULL, ?)',
      ).run(toHex(leafHash(Buffer.from(changed))), row.height, 'AuditEvent', changed);
    });
    await refusesToStart(extra, /belong to no block|holds \d+ transactions, header says/);
    await auditReportsDamage(extra);
    const beyond = tampered((db) => {
      const row = lastAudit(db);
      const changed = row.envelope.replace(/"at":\d+/, '"at":2');
      db.prepare(
        'INSERT INTO txs(txid, height, idx, type, subject, envelope) VALUES (?, 100000, 0, ?, NULL, ?)',
      ).run(toHex(leafHash(Buffer.from(changed))), 'AuditEvent', changed);
    });
    await refusesToStart(beyond, /1 transaction rows belong to no block/);
  });

  it('a row below the node’s verified checkpoint: start is fast and does not re-read it, every read checks it', async () => {
    // The registration-time audit events are in blocks the restart already verified.
    const dir = tampered((db) => {
      const row = db
        .prepare(
          `SELECT txid, envelope FROM txs WHERE type = 'AuditEvent' AND envelope LIKE '%"registration"%' ORDER BY height LIMIT 1`,
        )
        .get() as { txid: string; envelope: string };
      db.prepare('UPDATE txs SET envelope = ? WHERE txid = ?').run(
        row.envelope.replace('"registration"', '"forged_event"'),
        row.txid,
      );
    });
    const reader = EmbeddedLedger.open({ dataDir: dir });
    await reader.close();
    await auditReportsDamage(dir, /forged_event/);
    const v = await run(['ledger', 'verify', '--data', dir, '--quiet']);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /ledger TAMPERED: block \d+: transaction [0-9a-f]{64} does not match its id/);
  });

  it('a ledger cut short below the node’s verified checkpoint is refused at start', async () => {
    // The snapshot's node never verified beyond its own end; the pristine one did (at its restart).
    const dir = tampered((db) => {
      const top = (db.prepare('SELECT max(height) AS n FROM blocks').get() as { n: number }).n;
      const verified = JSON.parse(
        (db.prepare("SELECT value FROM meta WHERE key = 'verified'").get() as { value: string }).value,
      ).height as number;
      assert.ok(verified > 1 && verified <= top);
      db.prepare('DELETE FROM txs WHERE height >= ?').run(verified);
      db.prepare('DELETE FROM blocks WHERE height >= ?').run(verified);
    });
    await refusesToStart(dir, /history cut short|stored state does not match/);
  });
});

describe('a deleted verified checkpoint does not let a history cut short in', () => {
  const verifiedRow = (dir: string) => {
    const db = new Database(dataPaths(dir).db, { readonly: true });
    try {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'verified'").get() as
        | { value: string }
        | undefined;
      return row ? (JSON.parse(row.value) as { height: number; hash: string; sig: string }) : null;
    } finally {
      db.close();
    }
  };
  const edit = (dir: string, mutate: (db: Database.Database) => void) => {
    const db = new Database(dataPaths(dir).db);
    try {
      mutate(db);
    } finally {
      db.close();
    }
  };
  const openAsNode = (dir: string) => EmbeddedLedger.open({ dataDir: dir, passphrase: PASSPHRASE });
  const noCheckpoint = (e: unknown) => {
    assert.ok(isKlError(e, 'KL_LEDGER_CORRUPT'), String(e));
    assert.match((e as Error).message, /has 1 block but no valid verified checkpoint/);
    assert.match((e as Error).message, /run `keyledger ledger verify --data .*`; if it verifies/);
    assert.match((e as Error).message, /`keyledger ledger verify --data .* --mark-verified` records it/);
    return true;
  };

  it('the reproduction is refused with KL_LEDGER_CORRUPT; ledger verify --mark-verified is the way back', async () => {
    const dir = join(tempDir(), 'data');
    initEmbeddedLedger({ dataDir: dir, passphrase: PASSPHRASE });
    const alice = registration('alice@example.org');
    let ledger = openAsNode(dir);
    await ledger.submit({ type: 'KeyRegistered', body: alice });
    const stateAt1 = (() => {
      const db = new Database(dataPaths(dir).db, { readonly: true });
      try {
        return db.prepare('SELECT key, value FROM state').all() as Array<{ key: string; value: string }>;
      } finally {
        db.close();
      }
    })();
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: alice.id,
        fingerprint: alice.fingerprint,
        reason: 'compromised',
        by: 'owner',
        ownerSignature: fakeSignature(),
      },
    });
    await ledger.close();
    ledger = openAsNode(dir); // records the verified checkpoint at block 2
    await ledger.close();
    assert.equal(verifiedRow(dir)?.height, 2);

    // Cut the history back to block 1, with the state of block 1.
    edit(dir, (db) => {
      db.prepare('DELETE FROM txs WHERE height > 1').run();
      db.prepare('DELETE FROM blocks WHERE height > 1').run();
      db.prepare('DELETE FROM state').run();
      const put = db.prepare('INSERT INTO state(key, value) VALUES (?, ?)');
      for (const r of stateAt1) put.run(r.key, r.value);
    });
    assert.throws(() => openAsNode(dir), /history cut short/);
    // Nothing to mark while the record says the history was longer.
    const cut = await run(['ledger', 'verify', '--data', dir, '--mark-verified', '--quiet'], {
      KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE,
    });
    assert.equal(cut.code, 1, cut.stdout + cut.stderr);
    assert.match(cut.stdout, /cut short/);
    assert.equal(verifiedRow(dir)?.height, 2);

    // The attack: delete the record. A node no longer starts.
    const old = verifiedRow(dir)!;
    edit(dir, (db) => db.prepare("DELETE FROM meta WHERE key = 'verified'").run());
    assert.throws(() => openAsNode(dir), noCheckpoint);
    // Nor with a record the node did not sign (the old signature over another block).
    edit(dir, (db) => {
      const block1 = db.prepare('SELECT hash FROM blocks WHERE height = 1').get() as { hash: string };
      db.prepare("INSERT INTO meta(key, value) VALUES ('verified', ?)").run(
        JSON.stringify({ ...old, height: 1, hash: block1.hash, txs: 1 }),
      );
    });
    assert.throws(() => openAsNode(dir), noCheckpoint);
    assert.equal(verifiedRow(dir)?.height, 1, 'a refused start writes nothing');

    // Read-only opens check everything and do not refuse; ledger verify says what the node will do.
    const reader = EmbeddedLedger.open({ dataDir: dir });
    assert.equal((await reader.checkpoint())?.header.height, 1);
    await reader.close();
    const plain = await run(['ledger', 'verify', '--data', dir, '--quiet']);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stdout, /ledger OK: 1 blocks/);
    assert.match(plain.stdout, /no valid verified checkpoint: the node will refuse to start/);

    // --mark-verified needs the node passphrase and a stopped node.
    const wrong = await run(['ledger', 'verify', '--data', dir, '--mark-verified', '--quiet'], {
      KEYLEDGER_SERVER_PASSPHRASE: 'not the passphrase',
    });
    assert.equal(wrong.code, 2, wrong.stdout + wrong.stderr);
    assert.match(wrong.stderr, /KL_PASSPHRASE_WRONG/);
    const release = acquireWriterLock(dir); // as a running server holds it
    try {
      const busy = await run(['ledger', 'verify', '--data', dir, '--mark-verified', '--quiet'], {
        KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE,
      });
      assert.equal(busy.code, 2, busy.stdout + busy.stderr);
      assert.match(busy.stderr, /KL_DATA_DIR: the ledger in .* is in use by process/);
    } finally {
      release();
    }
    assert.throws(() => openAsNode(dir), noCheckpoint);

    // The operator's explicit decision: this (shorter) history is the one to run.
    const marked = await run(['ledger', 'verify', '--data', dir, '--mark-verified', '--quiet'], {
      KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE,
    });
    assert.equal(marked.code, 0, marked.stdout + marked.stderr);
    assert.match(marked.stdout, /verified checkpoint recorded at block 1 \([0-9a-f]{64}\)/);
    const node = openAsNode(dir);
    try {
      assert.equal((await node.checkpoint())?.header.height, 1);
      assert.equal((await node.getKeyRecord(alice.id)).record?.status, 'active');
    } finally {
      await node.close();
    }
  });

  it('a fresh data directory and a normal restart start without any step; a wiped one does not', async () => {
    const dir = join(tempDir(), 'data');
    initEmbeddedLedger({ dataDir: dir, passphrase: PASSPHRASE });
    assert.equal(verifiedRow(dir)?.height, 0, 'initialising records the origin checkpoint');
    let ledger = openAsNode(dir);
    await ledger.submit({ type: 'KeyRegistered', body: registration('bob@example.org') });
    await ledger.close();
    ledger = openAsNode(dir);
    await ledger.submit({ type: 'KeyRegistered', body: registration('carol@example.org') });
    await ledger.close();
    assert.equal(verifiedRow(dir)?.height, 1);
    ledger = openAsNode(dir);
    assert.equal((await ledger.checkpoint())?.header.height, 2);
    await ledger.close();
    assert.equal(verifiedRow(dir)?.height, 2);

    // Cutting everything away (back to the genesis state) is the same attack, at height 0.
    const empty = join(tempDir(), 'empty');
    initEmbeddedLedger({ dataDir: empty, passphrase: PASSPHRASE });
    edit(empty, (db) => db.prepare("DELETE FROM meta WHERE key = 'verified'").run());
    assert.throws(
      () => openAsNode(empty),
      (e: unknown) =>
        isKlError(e, 'KL_LEDGER_CORRUPT') && /has 0 blocks but no valid verified/.test(String(e)),
    );
  });

  it('the server refuses a data directory whose record was deleted', async () => {
    const dir = tampered((db) => db.prepare("DELETE FROM meta WHERE key = 'verified'").run());
    await refusesToStart(dir, /has \d+ blocks but no valid verified checkpoint/);
  });
});
