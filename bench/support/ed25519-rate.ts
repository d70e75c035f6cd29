/**
 * A same-run baseline for signature-bound work: how many Ed25519 verifications per second this
 * machine does on `threads` cores at once (node:crypto, one worker thread per core, each verifying
 * transaction-sized messages with one key, as a ledger's registrar signs them).
 */
import { Worker } from 'node:worker_threads';

/** Each worker's share of verifications. */
const PER_THREAD = 5000;

const WORKER = `
const { generateKeyPairSync, randomBytes, sign, verify } = require('node:crypto');
const { parentPort, workerData } = require('node:worker_threads');
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const message = randomBytes(900);
const signature = sign(null, message, privateKey);
parentPort.once('message', () => {
  for (let i = 0; i < workerData; i++) if (!verify(null, message, publicKey, signature)) throw new Error('verify');
  parentPort.postMessage('done');
});
parentPort.postMessage('ready');
`;

/** Ed25519 verifications per second with `threads` threads verifying at the same time. */
export async function ed25519VerifyPerSecondAllCores(threads: number): Promise<number> {
  const workers = Array.from(
    { length: threads },
    () => new Worker(WORKER, { eval: true, workerData: PER_THREAD }),
  );
  const next = (w: Worker) =>
    new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
  try {
    await Promise.all(workers.map(next));
    const started = performance.now();
    const done = workers.map(next);
    for (const w of workers) w.postMessage('go');
    await Promise.all(done);
    return Math.round((threads * PER_THREAD) / ((performance.now() - started) / 1000));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
