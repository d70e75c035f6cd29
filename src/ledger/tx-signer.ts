/**
 * Signs the engine's transactions with the registrar key (docs/ledger.md "Commit and durability"):
 * in this thread while few transactions wait — no added latency — and, while a backlog builds up,
 * on worker threads, so that the Ed25519 signatures (the largest single cost of a transaction) run
 * beside the thread that applies the rules and writes the blocks. Signatures are handed back in the
 * order they were asked for, so transactions reach the block queue in submission order. A worker
 * that fails, or whose signature does not verify, is replaced by this thread: signing never fails
 * for it.
 */
import type { Worker } from 'node:worker_threads';
import { utf8 } from '../protocol/bytes.js';
import { TX_DOMAIN } from './domains.js';
import { type SigningKey, verifySignature } from './signing-keys.js';
import { signTransactionText } from './transactions.js';
import type { SignBatch, SignedBatch, SignerWorkerData } from './tx-signer-worker.js';
import { startLedgerWorker } from './worker-thread.js';

interface Request {
  text: string;
  /** The signature, once made (requests are handed back in order). */
  sig?: string;
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
  /** Set when a worker failed or the signer closes: everything is signed in this thread from then on. */
  private inThreadOnly = false;
  /** Requests not handed back yet, in the order they were made. */
  private readonly order: Request[] = [];
  private head = 0;
  /** Requests not yet sent to a worker. */
  private batch: Request[] = [];
  private scheduled = false;
  private readonly inFlight = new Map<number, Request[]>();
  private nextId = 0;
  private elsewhere = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly key: SigningKey,
    private readonly options: TransactionSignerOptions,
  ) {}

  /** Signatures made on worker threads so far. */
  get signedOnWorkers(): number {
    return this.elsewhere;
  }

  /** Signatures asked for and not yet handed back. */
  get pending(): number {
    return this.order.length - this.head;
  }

  /**
   * The signature of `text`: made now, unless there is a backlog (`busy`) and worker threads are up
   * — then it is made on one, with others, and handed back after every earlier one.
   */
  sign(text: string, busy: boolean): string | Promise<string> {
    const queued = this.pending > 0; // never overtake a signature still being made
    if (this.inThreadOnly || this.options.threads === 0 || (!busy && !queued)) return this.here(text);
    this.start();
    if (this.ready === 0 && !queued) return this.here(text); // still starting
    return new Promise<string>((resolve) => {
      const request: Request = { text, resolve };
      this.order.push(request);
      this.batch.push(request);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Stops the worker threads once every signature asked for is handed back; signatures asked for
   * meanwhile and later are made in this thread.
   */
  async close(): Promise<void> {
    this.inThreadOnly = true;
    if (this.pending > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    const workers = this.workers ?? [];
    this.workers = [];
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private here(text: string): string {
    return signTransactionText(this.key, text);
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
    data.pkcs8.fill(0); // each worker got its own copy
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.batch;
    this.batch = [];
    const workers = this.workers ?? [];
    if (this.inThreadOnly || workers.length === 0) {
      for (const r of batch) this.done(r, this.here(r.text));
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
    if (!part) return;
    this.inFlight.delete(id);
    // One signature of each batch is checked here: a worker that signs wrongly is not used again.
    const first = part[0];
    if (first && !(sigs[0] && verifySignature(this.key.publicKey, TX_DOMAIN, utf8(first.text), sigs[0]))) {
      this.inFlight.set(id, part);
      this.fail();
      return;
    }
    for (const [i, r] of part.entries()) {
      const sig = sigs[i];
      if (sig !== undefined) this.elsewhere += 1;
      this.done(r, sig ?? this.here(r.text));
    }
  }

  /** Records a signature and hands back every request, in order, whose signature is made. */
  private done(request: Request, sig: string): void {
    request.sig = sig;
    while (this.head < this.order.length && this.order[this.head]!.sig !== undefined) {
      const r = this.order[this.head++]!;
      r.resolve(r.sig!);
    }
    if (this.head === this.order.length) {
      this.order.length = 0;
      this.head = 0;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** A worker stopped or signed wrongly: what the workers hold is signed here, and so is everything from now on. */
  private fail(): void {
    this.inThreadOnly = true;
    for (const part of this.inFlight.values()) for (const r of part) this.done(r, this.here(r.text));
    this.inFlight.clear();
  }
}
