/**
 * Starts one of the ledger's worker threads (the parallel audit's, the transaction signer's) from
 * its module next to this one: the compiled JavaScript, or — when keyledger runs from its
 * TypeScript sources (tests, benchmarks) — the TypeScript module through tsx's loader, which a
 * worker does not inherit from its parent.
 */
import { Worker } from 'node:worker_threads';

/** Starts the worker module `name` (without extension) of this folder with `workerData`. */
export function startLedgerWorker(name: string, workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL(`./${name}.js`, import.meta.url), { workerData });
  const url = new URL(`./${name}.ts`, import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
