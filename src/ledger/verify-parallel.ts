/**
 * The offline audit on every core (`keyledger ledger verify`, docs/ledger.md "On every core"):
 * worker threads (verify-worker.ts) check transaction rows ahead of the replay — leaf hashes, shapes,
 * Ed25519 signatures — while this thread replays the blocks in order with {@link LedgerAudit}, exactly
 * as {@link verifyLedgerData} does. A worker's result only spares the replay work it would do the
 * same way; it never decides a verdict.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { dataPaths } from './data-dir.js';
import {
  LedgerAudit,
  type LedgerVerification,
  type TxPrecheck,
  type VerifyLedgerOptions,
  verifyLedgerData,
} from './verify-ledger.js';
import type { VerifyJob, VerifyJobResult, VerifyWorkerData } from './verify-worker.js';
import { startLedgerWorker } from './worker-thread.js';

/** Options of {@link verifyLedgerDataInParallel}. */
export interface ParallelVerifyOptions extends VerifyLedgerOptions {
  /** Worker threads checking signatures (default: the cores available; 0 checks in this thread). */
  threads?: number;
}

/** About this many transactions per job: large enough to amortise a message, small enough to overlap. */
const JOB_TRANSACTIONS = 2000;

/** A pool of workers answering jobs in any order. */
class WorkerPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<
    number,
    { resolve: (r: VerifyJobResult) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;
  private turn = 0;
  private failure: Error | null = null;

  constructor(threads: number, data: VerifyWorkerData) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = startLedgerWorker('verify-worker', data);
      worker.on('message', (result: VerifyJobResult) => {
        this.waiting.get(result.id)?.resolve(result);
        this.waiting.delete(result.id);
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`a verifying thread stopped (exit code ${code})`));
      });
      return worker;
    });
  }

  run(from: number, to: number): Promise<VerifyJobResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const job: VerifyJob = { id, from, to };
    const promise = new Promise<VerifyJobResult>((resolve, reject) =>
      this.waiting.set(id, { resolve, reject }),
    );
    this.workers[this.turn++ % this.workers.length]!.postMessage(job);
    return promise;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const { reject } of this.waiting.values()) reject(err);
    this.waiting.clear();
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the verifying threads were stopped');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A job's results, by height: each block's prechecks in index order. */
class Prechecks {
  private readonly byHeight = new Map<number, (TxPrecheck | undefined)[]>();

  constructor(
    readonly to: number,
    result: VerifyJobResult,
    keys: readonly string[],
  ) {
    result.keyIndex.forEach((index, i) => {
      const height = result.heights[i]!;
      let list = this.byHeight.get(height);
      if (!list) {
        list = [];
        this.byHeight.set(height, list);
      }
      // A refused row gets no precheck: the replay checks it and names what is wrong.
      list.push(
        index === -2
          ? undefined
          : {
              leaf: result.leaves.subarray(32 * i, 32 * i + 32),
              verifiedWith: index >= 0 ? keys[index] : undefined,
            },
      );
    });
  }

  of(height: number): readonly (TxPrecheck | undefined)[] | undefined {
    return this.byHeight.get(height);
  }
}

/**
 * Re-checks a whole data directory like {@link verifyLedgerData}, with worker threads checking
 * transactions ahead of the replay. Same verdicts, same messages. Never throws for a bad ledger.
 */
export async function verifyLedgerDataInParallel(
  options: ParallelVerifyOptions,
): Promise<LedgerVerification> {
  const threads = Math.max(0, Math.floor(options.threads ?? availableParallelism()));
  if (threads === 0) return verifyLedgerData(options);
  const { dataDir, onProgress, knownCheckpoints = [] } = options;
  const audit = new LedgerAudit(dataDir);
  let pool: WorkerPool | null = null;
  try {
    audit.begin();
    const keys = audit.candidateKeys();
    pool = new WorkerPool(threads, { db: dataPaths(dataDir).db, keys });
    const span = Math.max(
      1,
      Math.round(JOB_TRANSACTIONS / Math.max(1, audit.totalTransactions / Math.max(1, audit.totalBlocks))),
    );
    const jobs: Array<{ to: number; result: Promise<VerifyJobResult> }> = [];
    let scheduled = 0;
    const schedule = () => {
      while (jobs.length < 2 * threads && scheduled < audit.totalBlocks) {
        const from = scheduled + 1;
        const to = Math.min(audit.totalBlocks, scheduled + span);
        const result = pool!.run(from, to);
        result.catch(() => {}); // awaited in order below; a failure surfaces there
        jobs.push({ to, result });
        scheduled = to;
      }
    };
    let current: Prechecks | null = null;
    for (const row of audit.blockRows()) {
      const height = audit.blocks + 1;
      while (!current || height > current.to) {
        schedule();
        const job = jobs.shift();
        if (!job) break; // more rows than blocks counted: the replay names the extra one
        current = new Prechecks(job.to, await job.result, keys);
      }
      audit.block(row, current?.of(height));
      onProgress?.(audit.blocks, audit.totalBlocks);
    }
    return audit.finish(knownCheckpoints);
  } catch (err) {
    return audit.failure(err);
  } finally {
    await pool?.close();
    audit.close();
  }
}
