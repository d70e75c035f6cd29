/**
 * The engine's transaction signer (src/ledger/tx-signer.ts): in this thread without a backlog, on a
 * worker thread with one; every signature verifies; a worker that dies costs nothing but time; and
 * the engine's transactions signed elsewhere land in blocks that `ledger verify` accepts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { TX_DOMAIN } from '../src/ledger/domains.js';
import { SigningKey, verifySignature } from '../src/ledger/signing-keys.js';
import { TransactionSigner } from '../src/ledger/tx-signer.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { utf8 } from '../src/protocol/bytes.js';
import { freshLedger, registration } from './helpers.js';

const key = SigningKey.generate();
const valid = (text: string, sig: string) => verifySignature(key.publicKey, TX_DOMAIN, utf8(text), sig);

/** Asks with a backlog until the signer answers from a worker (it signs here while one starts). */
async function firstFromWorker(
  signer: TransactionSigner,
  check: (text: string, sig: string) => boolean = valid,
): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const sig = signer.sign(`{"warm":${i}}`, true);
    if (typeof sig !== 'string') {
      assert.ok(check(`{"warm":${i}}`, await sig));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail('no worker thread answered within 4 s');
}

describe('transaction signer', () => {
  it('signs in this thread without a backlog, and with no threads at all', async () => {
    const none = new TransactionSigner(key, { threads: 0 });
    const a = none.sign('{"a":1}', true);
    assert.equal(typeof a, 'string');
    assert.ok(valid('{"a":1}', a as string));
    const one = new TransactionSigner(key, { threads: 1 });
    const b = one.sign('{"b":1}', false);
    assert.equal(typeof b, 'string');
    assert.ok(valid('{"b":1}', b as string));
    await one.close();
  });

  it('with a backlog, signs on a worker thread: every signature verifies, each for its own text', async () => {
    const signer = new TransactionSigner(key, { threads: 2 });
    await firstFromWorker(signer);
    const texts = Array.from({ length: 300 }, (_, i) => `{"n":${i}}`);
    // Handed back in the order asked for, across both workers, whatever order they answer in; and a
    // request without a backlog made meanwhile waits its turn instead of overtaking.
    const handedBack: number[] = [];
    const asked = texts.map((t, i) =>
      Promise.resolve(signer.sign(t, i !== 299)).then((sig) => {
        handedBack.push(i);
        return sig;
      }),
    );
    const sigs = await Promise.all(asked);
    assert.deepEqual(
      handedBack,
      texts.map((_, i) => i),
    );
    for (const [i, t] of texts.entries()) assert.ok(valid(t, sigs[i]!), `signature ${i}`);
    assert.equal(new Set(sigs).size, texts.length);
    assert.equal(signer.pending, 0);
    await signer.close();
  });

  it('a worker that dies mid-batch: what it held is signed in this thread, and so is what follows', async () => {
    const signer = new TransactionSigner(key, { threads: 1 });
    await firstFromWorker(signer);
    const texts = Array.from({ length: 200 }, (_, i) => `{"m":${i}}`);
    const pending = texts.map((t) => signer.sign(t, true));
    await new Promise((resolve) => setImmediate(resolve)); // the batch is posted
    const workers = (signer as unknown as { workers: Worker[] }).workers;
    await workers[0]!.terminate();
    const sigs = await Promise.all(pending);
    for (const [i, t] of texts.entries()) assert.ok(valid(t, sigs[i]!), `signature ${i}`);
    const after = signer.sign('{"after":1}', true);
    assert.equal(typeof after, 'string');
    await signer.close();
  });

  it('the engine under a backlog: receipts for all, and the ledger verifies', async () => {
    const { ledger, dataDir } = freshLedger({ signingThreads: 1, maxBlockTxs: 200 });
    const { signer, registrar } = ledger as unknown as { signer: TransactionSigner; registrar: SigningKey };
    await firstFromWorker(signer, (text, sig) =>
      verifySignature(registrar.publicKey, TX_DOMAIN, utf8(text), sig),
    );
    const receipts = await Promise.all(
      Array.from({ length: 600 }, (_, i) =>
        ledger.submit({ type: 'KeyRegistered', body: registration(`s${i}@example.org`) }),
      ),
    );
    assert.ok(signer.signedOnWorkers > 300, `${signer.signedOnWorkers} signed on the worker`);
    assert.equal(new Set(receipts.map((r) => r.txid)).size, 600);
    await ledger.close();
    const audit = verifyLedgerData({ dataDir });
    assert.equal(audit.ok, true, audit.problem?.reason);
    assert.equal(audit.transactions, 600);
  });
});
