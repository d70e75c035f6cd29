/**
 * What the distributed-engine ledger benchmarks share (bench/ledger-evm.ts, bench/ledger-etcd.ts):
 * OpenPGP-shaped registrations, a registration load with a bounded number in flight (its rate and
 * commit latency), the embedded engine measured under the same load as the baseline, and the
 * propagation of revocations from the first server of a deployment to a second one.
 */
import { join } from 'node:path';
import { EmbeddedLedger, initEmbeddedLedger } from '../../src/ledger/embedded-ledger.js';
import type { TxBodies } from '../../src/ledger/transactions.js';

/** p50 and p99 of some durations, ms, one decimal. */
export interface Quantiles {
  p50: number;
  p99: number;
}

/** A registration load's figures. */
export interface LoadResult {
  perSecond: number;
  latencyMs: Quantiles;
}

/** How the propagation of revocations was timed: on the first server, and on the second. */
export interface PropagationResult {
  commitOnFirst: Quantiles;
  visibleOnSecond: Quantiles;
}

/** A KeyRegistered body for user `i`: a random fingerprint and an OpenPGP-shaped random key block. */
export function registrationBody(i: number): TxBodies['KeyRegistered'] {
  const hex = (n: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString('hex');
  return {
    id: `user${i}.${hex(3)}@example.org`,
    name: `User ${i}`,
    fingerprint: hex(20),
    publicKey: `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${Buffer.from(
      crypto.getRandomValues(new Uint8Array(450)),
    )
      .toString('base64')
      .replace(/(.{64})/g, '$1\n')}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
    algorithm: 'ed25519-legacy',
  };
}

/** p50 and p99 of `values` (ms), one decimal. */
export function quantiles(values: number[]): Quantiles {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => +sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1);
  return { p50: q(0.5), p99: q(0.99) };
}

/**
 * Submits `n` registrations to `ledger`, `inFlight` at a time; each is timed from its submit to its
 * commit (the receipt: the transaction is in a durable block). The bodies written are appended to
 * `bodies` (to revoke them later).
 */
export async function registrationLoad(
  ledger: EmbeddedLedger,
  n: number,
  inFlight: number,
  bodies: TxBodies['KeyRegistered'][] = [],
): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        const registered = registrationBody(i);
        await ledger.submit({ type: 'KeyRegistered', body: registered });
        bodies.push(registered);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { perSecond: Math.round(n / seconds), latencyMs: quantiles(latencies) };
}

/**
 * The baseline: the embedded engine (a fresh data directory under `root`, group commit of 2 ms, as
 * a server runs it) under the same registration load.
 */
export async function embeddedBaseline(
  root: string,
  passphrase: string,
  n: number,
  inFlight: number,
): Promise<LoadResult> {
  const dataDir = join(root, 'embedded');
  initEmbeddedLedger({ dataDir, passphrase });
  const embedded = EmbeddedLedger.open({ dataDir, passphrase, batchWaitMs: 2 });
  try {
    return await registrationLoad(embedded, n, inFlight);
  } finally {
    await embedded.close();
  }
}

/**
 * Revokes `bodies`' keys one at a time through `first`; for each, the ms from its submit until
 * `first` committed it and until `second`'s ledger holds it (its `subscribe`).
 */
export async function revocationPropagation(
  first: EmbeddedLedger,
  second: EmbeddedLedger,
  bodies: TxBodies['KeyRegistered'][],
): Promise<PropagationResult> {
  const seen = new Map<string, number>();
  const waiting = new Map<string, () => void>();
  const unsubscribe = second.subscribe((tx) => {
    if (tx.type !== 'KeyRevoked') return;
    const id = (tx.envelope.tx.body as TxBodies['KeyRevoked']).id;
    seen.set(id, performance.now());
    waiting.get(id)?.();
  });
  const commit: number[] = [];
  const reach: number[] = [];
  try {
    for (const b of bodies) {
      const arrived = new Promise<void>((resolve) => waiting.set(b.id, resolve));
      const t0 = performance.now();
      await first.submit({
        type: 'KeyRevoked',
        body: {
          id: b.id,
          fingerprint: b.fingerprint,
          reason: 'compromised',
          by: 'admin',
          admin: 'bench@example.org',
        },
      });
      commit.push(performance.now() - t0);
      await arrived;
      reach.push(seen.get(b.id)! - t0);
    }
  } finally {
    unsubscribe();
  }
  return { commitOnFirst: quantiles(commit), visibleOnSecond: quantiles(reach) };
}
