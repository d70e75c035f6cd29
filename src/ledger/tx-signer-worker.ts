/**
 * A worker thread of the transaction signer (tx-signer.ts): holds the registrar key (PKCS#8, in
 * memory only) and signs batches of transaction texts with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SigningKey } from './signing-keys.js';
import { signTransactionText } from './transactions.js';

/** What the worker is started with. */
export interface SignerWorkerData {
  /** The registrar's private key, PKCS#8 DER. */
  pkcs8: Uint8Array;
}

/** A batch to sign, and its answer. */
export interface SignBatch {
  id: number;
  texts: string[];
}
export interface SignedBatch {
  id: number;
  sigs: string[];
}

if (parentPort) {
  const port = parentPort;
  const { pkcs8 } = workerData as SignerWorkerData;
  const key = SigningKey.fromPkcs8(pkcs8);
  pkcs8.fill(0); // the key lives in its handle now
  port.on('message', ({ id, texts }: SignBatch) => {
    const answer: SignedBatch = { id, sigs: texts.map((text) => signTransactionText(key, text)) };
    port.postMessage(answer);
  });
  port.postMessage('ready');
}
