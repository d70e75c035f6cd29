import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { freshLedger, PASSPHRASE } from './helpers.js';

const TRIALS = Number(process.env.KL_CRASH_TRIALS ?? 20);
const writer = new URL('./support/crash-writer.mjs', import.meta.url).pathname;

/** Runs the writer until it has acknowledged some transactions, kills it at a random moment. */
function runAndKill(dataDir: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dataDir, PASSPHRASE], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: string[] = [];
    let buffer = '';
    let stderr = '';
    let armed = false;
    const killAfterMs = randomInt(0, 150);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) if (line.startsWith('ACK ')) acked.push(line.slice(4));
      if (!armed && acked.length > 0) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.on('data', (c) => (stderr += c));
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      // Lines the writer printed before dying still count: they were acknowledged.
      for (const line of buffer.split('\n')) if (line.startsWith('ACK ')) acked.push(line.slice(4));
      if (signal !== 'SIGKILL') reject(new Error(`writer exited on its own: ${stderr}`));
      else resolve(acked);
    });
  });
}

describe('crash safety', () => {
  it(`SIGKILL at random moments (${TRIALS} times): no acknowledged transaction is lost, the ledger verifies`, async () => {
    const { ledger, dataDir } = freshLedger();
    await ledger.close();
    const allAcked: string[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const acked = await runAndKill(dataDir);
      assert.ok(acked.length > 0, `trial ${trial}: the writer acknowledged nothing`);
      allAcked.push(...acked);
      const audit = verifyLedgerData({ dataDir });
      assert.ok(audit.ok, `trial ${trial}: ${audit.problem?.reason}`);
      // Reopening for writing takes over the dead writer's lock and checks state against the last block.
      const reopened = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE });
      for (const txid of acked) {
        const r = await reopened.getTransaction(txid);
        assert.equal(r.txid, txid);
      }
      await reopened.close();
    }
    const reader = EmbeddedLedger.open({ dataDir });
    for (const txid of allAcked) assert.equal((await reader.getTransaction(txid)).txid, txid);
    await reader.close();
  });
});
