/**
 * `keyledger demo`: the quick-start job on the embedded ledger. It initialises a data directory if
 * needed, makes real OpenPGP keys for a few users, registers them (each answer waits for the block to
 * be durable), anchors a message hash, revokes one key, writes an audit event, then checks every
 * receipt and proof with the pure verifiers and audits the whole data directory.
 */
import { randomBytes } from 'node:crypto';
import { isInitialised } from '../../ledger/data-dir.js';
import { EmbeddedLedger, initEmbeddedLedger } from '../../ledger/embedded-ledger.js';
import {
  verifyCheckpointConsistency,
  verifyKeyRecordProof,
  verifyTransactionReceipt,
} from '../../ledger/proofs.js';
import { verifyLedgerData } from '../../ledger/verify-ledger.js';
import { generateKeyPair } from '../../pgp/key-pair.js';
import { sha256Hex } from '../../protocol/hash.js';
import { out, progress } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/** Options of the demo. */
export interface DemoOptions {
  data: string;
  users: number;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
}

function check(label: string, ok: boolean): void {
  out(`  ${ok ? 'ok  ' : 'FAIL'} ${label}`);
  if (!ok) throw new Error(`demo check failed: ${label}`);
}

/** Runs the demo; returns the exit code. */
export async function demo(o: DemoOptions): Promise<number> {
  // A demo directory needs no secret: without a passphrase from a file or the environment, the
  // public development passphrase protects it (and resolvePassphrase says so).
  const given = o.passphraseFile !== undefined || !!process.env.KEYLEDGER_SERVER_PASSPHRASE;
  const passphrase = await resolvePassphrase({
    ...o,
    insecureDevPassphrase: o.insecureDevPassphrase || !given,
  });
  if (!isInitialised(o.data)) {
    const { chainId } = initEmbeddedLedger({ dataDir: o.data, passphrase, name: 'keyledger demo' });
    out(`initialised a new ledger in ${o.data} (chain ${chainId.slice(0, 16)}…)`);
  } else {
    out(`using the existing ledger in ${o.data}`);
  }
  const ledger = EmbeddedLedger.open({ dataDir: o.data, passphrase });
  try {
    const start = await ledger.checkpoint();
    const run = randomBytes(3).toString('hex');
    const names = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi'];
    const bar = progress('making OpenPGP keys');
    const keys = [];
    for (let i = 0; i < o.users; i++) {
      const name = names[i % names.length]!;
      keys.push(await generateKeyPair({ id: `${name.toLowerCase()}.${run}.${i}@example.org`, name }));
      bar.update(i + 1, o.users);
    }
    bar.done(`made ${o.users} v4 OpenPGP keys (Ed25519/Cv25519)`);

    out('registering (each answer waits until its block is on disk):');
    const receipts = await Promise.all(
      keys.map((k, i) =>
        ledger.submit({
          type: 'KeyRegistered',
          body: {
            id: k.id,
            name: names[i % names.length]!,
            fingerprint: k.fingerprint,
            publicKey: k.publicKey,
            algorithm: k.algorithm,
          },
        }),
      ),
    );
    for (const r of receipts) {
      const v = verifyTransactionReceipt({ genesis: ledger.genesis, receipt: r });
      check(
        `${(r.envelope.tx.body as { id: string }).id} in block ${r.block.header.height}, receipt verified`,
        v.verified,
      );
    }

    const message = `Transfer 10 EUR to Bob — ${new Date().toISOString()}`;
    const anchor = await ledger.submit({
      type: 'HashAnchored',
      body: { hash: sha256Hex(message), algorithm: 'sha256', id: keys[0]!.id, label: 'demo message' },
    });
    check(
      `message hash anchored in block ${anchor.block.header.height}`,
      verifyTransactionReceipt({ genesis: ledger.genesis, receipt: anchor }).verified,
    );

    const victim = keys[keys.length - 1]!;
    await ledger.submit({
      type: 'KeyRevoked',
      body: {
        id: victim.id,
        fingerprint: victim.fingerprint,
        reason: 'compromised',
        by: 'admin',
        admin: 'admin@example.org',
      },
    });
    await ledger.submit({
      type: 'AuditEvent',
      body: { event: 'key_revoked', at: Date.now(), subject: sha256Hex(victim.id) },
    });
    const revoked = await ledger.getKeyRecord(victim.id);
    const rv = verifyKeyRecordProof({ genesis: ledger.genesis, proof: revoked });
    check(`${victim.id} is revoked, state proof verified`, rv.verified && rv.record?.status === 'revoked');

    const alive = await ledger.getKeyRecord(keys[0]!.id);
    const av = verifyKeyRecordProof({ genesis: ledger.genesis, proof: alive });
    check(`${keys[0]!.id} is active, state proof verified`, av.verified && av.record?.status === 'active');

    const absent = await ledger.getKeyRecord(`nobody.${run}@example.org`);
    check(
      'an unregistered identity is proven absent',
      verifyKeyRecordProof({ genesis: ledger.genesis, proof: absent }).verified && absent.record === null,
    );

    const from = start?.header.height ?? 1;
    const cons = await ledger.consistency(from);
    check(
      `block ${from} → ${cons.newer.header.height}: history only appended to`,
      verifyCheckpointConsistency({ genesis: ledger.genesis, proof: cons }).verified,
    );
  } finally {
    await ledger.close();
  }
  const bar = progress('auditing the data directory');
  const audit = verifyLedgerData({ dataDir: o.data, onProgress: (h, t) => bar.update(h, t) });
  bar.done();
  check(
    `full audit: ${audit.blocks} blocks, ${audit.transactions} transactions, ${audit.stateEntries} state entries`,
    audit.ok,
  );
  out('');
  out(`next: keyledger ledger show --data ${o.data}    keyledger ledger verify --data ${o.data}`);
  return 0;
}
