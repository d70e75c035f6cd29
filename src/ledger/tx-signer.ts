/**
 * Signs the engine's transactions with the registrar key (docs/ledger.md "Commit and durability"):
 * in this thread while few transactions wait — no added latency — and, while a backlog builds up,
 * on worker threads, so that the Ed25519 signatures (the largest single cost of a transaction) run
 * beside the thread that applies the rules and writes the blocks. A worker that fails is replaced by
 * this thread: signing never fails for it.
 */
import type { Worker } from 'node:worker_threads';
import type { SigningKey } from './signing-keys.js';
import { signTransactionText } from './transactions.js';
import type { SignBatch, SignedBatch, SignerWorkerData } from './tx-signer-worker.js';
import { startLedgerWorker } from './worker-thread.js';

interface Request {
  text: string;
  resolve: (sig: string) => void;
}

/** Options of {@link TransactionSigner}. */
export interface TransactionSignerOptions {
  /** Worker threads (0: always in this thread). */
  threads: number;
}

/** The registrar's signer of transaction texts. */
export class TransactionSigner {
  private workers: Worker[] | null = null;
  private ready = 0;
  private failed = false;
  private batch: Request[] = [];
  private scheduled = false;
  private readonly inFlight = new Map<number, Request[]>();
  private nextId = 0;
  private waiting = 0;
  private elsewhere = 0;

  constructor(
    private readonly key: SigningKey,
    private readonly options: TransactionSignerOptions,
  ) {}

  /** Signatures made on worker threads so far. */
  get signedOnWorkers(): number {
    return this.elsewhere;
  }

  /** Signatures asked for and not yet made. */
  get pending(): number {
    return this.waiting;
  }

  /**
   * The signature of `text`: made now unless `busy` (a backlog) and worker threads are up, in which
   * case it is made on one with others, soon.
   */
  sign(text: string, busy: boolean): string | Promise<string> {
    if (!busy || this.options.threads === 0 || this.failed) return signTransactionText(this.key, text);
    this.start();
    if (this.ready === 0) return signTransactionText(this.key, text); // still starting
    this.waiting += 1;
    return new Promise<string>((resolve) => {
      this.batch.push({ text, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Waits until every signature asked for is made. */
  async drain(): Promise<void> {
    while (this.waiting > 0) await new Promise((resolve) => setImmediate(resolve));
  }

  /** Stops the worker threads (signatures asked for later are made in this thread). */
  async close(): Promise<void> {
    await this.drain();
    const workers = this.workers ?? [];
    this.workers = [];
    this.failed = true;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private start(): void {
    if (this.workers) return;
    const data: SignerWorkerData = { pkcs8: this.key.exportPkcs8() };
    this.workers = Array.from({ length: this.options.threads }, () => {
      const worker = startLedgerWorker('tx-signer-worker', data);
      worker.unref();
      worker.on('message', (message: SignedBatch | 'ready') => {
        if (message === 'ready') this.ready += 1;
        else this.settle(message.id, message.sigs);
      });
      worker.on('error', () => this.fail());
      worker.on('exit', () => this.fail());
      return worker;
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.batch;
    this.batch = [];
    const workers = this.workers ?? [];
    if (this.failed || workers.length === 0) {
      for (const r of batch) this.resolve(r, signTransactionText(this.key, r.text));
      return;
    }
    const share = Math.ceil(batch.length / workers.length);
    workers.forEach((worker, w) => {
      const part = batch.slice(w * share, (w + 1) * share);
      if (part.length === 0) return;
      const id = this.nextId++;
      this.inFlight.set(id, part);
      const job: SignBatch = { id, texts: part.map((r) => r.text) };
      worker.postMessage(job);
    });
  }

  private settle(id: number, sigs: string[]): void {
    const part = this.inFlight.get(id);
    this.inFlight.delete(id);
    for (const [i, r] of (part ?? []).entries()) {
      const sig = sigs[i];
      if (sig !== undefined) this.elsewhere += 1;
      this.resolve(r, sig ?? signTransactionText(this.key, r.text));
    }
  }

  private resolve(request: Request, sig: string): void {
    this.waiting -= 1;
    request.resolve(sig);
  }

  /** A worker stopped: what it held is signed here, and so is everything from now on. */
  private fail(): void {
    if (this.failed && this.inFlight.size === 0) return;
    this.failed = true;
    for (const part of this.inFlight.values())
      for (const r of part) this.resolve(r, signTransactionText(this.key, r.text));
    this.inFlight.clear();
  }
}
