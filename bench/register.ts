/**
 * `npm run bench:register` — registrations committed per server core-second, every key check
 * included (docs/protocol.md "Phase 1": key policy, proof of possession, the sealed invitation, the
 * ledger commit, the receipt), next to the raw commit rate of the embedded ledger measured in the
 * same run (baseline: the same KeyRegistered transactions, with the same concurrency and group
 * commit window as the server, committed in this process). Then a second phase of registrations
 * with the server's CPU profiler on, split into where the server spent them
 * (support/register-profile.ts). Prints a summary on stderr; `--json` prints the results document on
 * stdout; `--out FILE` writes it (support/bench-cli.ts, bench/README.md). Never fails on timing.
 *
 * Each registration is the SDK's `register` (src/client/register.ts) against a real server child
 * (support/register-server.ts) on 127.0.0.1: GET /v1/info, register/begin, register/complete, with
 * an invitation carrying the server's pin, and the receipt verified against the genesis by the
 * client. A key cannot be registered for two identities (the ledger binds a key to one identity for
 * good), so every registration has its own key, made before anything is timed; keys are stored
 * unlocked in a MemoryClientStore, so no passphrase stretching or file I/O weighs on the client.
 *
 * Options: --registrations N (timed, default 2000), --concurrency N (in flight, default 32),
 * --profile-registrations N (profiled phase, default 1000), --sampling-us N (profiler interval,
 * default 250), --cpuprofile FILE (also write the raw profile, for Chrome DevTools).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { register } from '../src/client/register.js';
import { MemoryClientStore } from '../src/client/store.js';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { generateKeyPair } from '../src/pgp/key-pair.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { benchArgs } from './support/bench-cli.js';
import type { CpuProfile } from './support/profile-split.js';
import { startRegisterServer } from './support/register-harness.js';
import { formatRegistrationProfile, splitRegistrationProfile } from './support/register-profile.js';

const args = benchArgs({
  name: 'register',
  command: 'npm run bench:register --',
  summary:
    'Registrations committed per server core-second (every key check and the receipt), next to the raw embedded-ledger commit rate; a profile of where the server spends them.',
  params: {
    registrations: { kind: 'count', full: '2000', fullWhen: 'atLeast', help: 'timed registrations' },
    concurrency: { kind: 'count', full: '32', fullWhen: 'any', help: 'registrations in flight' },
    'profile-registrations': {
      kind: 'count',
      full: '1000',
      fullWhen: 'atLeast',
      help: 'registrations of the profiled phase (after the timed one)',
    },
    'sampling-us': {
      kind: 'count',
      full: '250',
      fullWhen: 'any',
      help: 'CPU profiler sampling interval, µs',
    },
    cpuprofile: {
      kind: 'text',
      fullWhen: 'any',
      help: 'also write the profiled phase as a .cpuprofile to FILE (Chrome DevTools)',
    },
  },
  out: 'file',
  resultsFile: 'register.json',
});
const REGISTRATIONS = args.count('registrations');
const CONCURRENCY = args.count('concurrency');
const PROFILED = args.count('profile-registrations');
const SAMPLING_US = args.count('sampling-us');
const CPUPROFILE = args.text('cpuprofile');
const WARMUP = Math.min(50, REGISTRATIONS);
const REPO = resolve(new URL('..', import.meta.url).pathname);
const PASS = 'bench';
const root = mkdtempSync(join(tmpdir(), 'kl-bench-register-'));
const log = (s: string) => process.stderr.write(`${s}\n`);

/** One identity to register: its key (unlocked) in a store, and its invitation. */
interface Client {
  id: string;
  store: MemoryClientStore;
  body: TxBodies['KeyRegistered'];
  code: string;
}

/** Makes `count` identities with their own Ed25519/Cv25519 v4 keys (client cost, not timed). */
async function makeClients(count: number): Promise<Omit<Client, 'code'>[]> {
  const clients: Omit<Client, 'code'>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const pair = await generateKeyPair({ id: `reg${i}@example.org`, name: `Reg ${i}` });
    const identity = {
      v: 1 as const,
      id: pair.id,
      name: `Reg ${i}`,
      fingerprint: pair.fingerprint,
      algorithm: pair.algorithm,
      publicKey: pair.publicKey,
      keySource: 'file' as const,
    };
    clients.push({
      id: pair.id,
      store: new MemoryClientStore({ identity, privateKey: pair.privateKey }),
      body: {
        id: pair.id,
        name: identity.name,
        fingerprint: pair.fingerprint,
        publicKey: pair.publicKey,
        algorithm: pair.algorithm,
      },
    });
    if ((i + 1) % 500 === 0) log(`  ${i + 1}/${count} keys`);
  }
  log(`${count} keys made in ${((performance.now() - t0) / 1000).toFixed(1)} s (not timed)`);
  return clients;
}

/** Runs `items` through `work` with `concurrency` in flight; the latency of each, ms. */
async function inFlight<T>(
  items: T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<number[]> {
  let next = 0;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        const t = performance.now();
        await work(item);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return latencies;
}

/** Registers `c` through the SDK; the client checks the receipt (register throws otherwise). */
async function registerOne(server: string, c: Client): Promise<void> {
  const r = await register({ home: c.store, server, proof: { method: 'invite', code: c.code } });
  if (r.verified !== true || r.id !== c.id || r.trust !== 'pinned')
    throw new Error(`registration of ${c.id} came back unverified`);
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const settle = () => new Promise((r) => setTimeout(r, 100)); // the last audit events' group commit

/** A server child over `dir` with invitations for `clients` and `warm` of them registered (JIT warm). */
async function serverWith(dir: string, clients: Client[], warm: Client[]) {
  const server = await startRegisterServer(dir, PASS);
  try {
    const codes = await server.invites(clients.map((c) => c.id));
    clients.forEach((c, i) => {
      c.code = codes[i]!;
    });
    await inFlight(warm, CONCURRENCY, (c) => registerOne(server.url, c));
    await settle();
    return server;
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** The timed phase: `timed` registrations through the SDK, the server's CPU seconds around them. */
async function timedFigures(warm: Client[], timed: Client[]) {
  const server = await serverWith(root, [...warm, ...timed], warm);
  try {
    log(`server at ${server.url}; timing ${timed.length} registrations, ${CONCURRENCY} in flight…`);
    const height0 = await server.height();
    const cpu0 = await server.cpuSeconds();
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    const latencies = await inFlight(timed, CONCURRENCY, (c) => registerOne(server.url, c));
    const wall = (performance.now() - t0) / 1000;
    await settle();
    const cpu = (await server.cpuSeconds()) - cpu0;
    const clientCpu = cpuMs(client0) / 1000;
    const blocks = (await server.height()) - height0;
    latencies.sort((a, b) => a - b);
    return {
      registrations: timed.length,
      concurrency: CONCURRENCY,
      httpRequestsPerRegistration: 3,
      wallSeconds: +wall.toFixed(2),
      registrationsPerSec: Math.round(timed.length / wall),
      serverCpuSeconds: +cpu.toFixed(2),
      serverCpuMsPerRegistration: +((cpu / timed.length) * 1000).toFixed(3),
      registrationsPerSecPerCore: Math.round(timed.length / cpu),
      clientCpuMsPerRegistration: +((clientCpu / timed.length) * 1000).toFixed(3),
      // Each registration commits KeyRegistered and, without waiting, an AuditEvent.
      blocks,
      transactionsPerBlock: +((2 * timed.length) / Math.max(1, blocks)).toFixed(1),
      latencyMs: { p50: +quantile(latencies, 0.5).toFixed(1), p99: +quantile(latencies, 0.99).toFixed(1) },
    };
  } finally {
    await server.stop();
  }
}

/**
 * The profiled phase, on a second server whose data directory is in memory (/dev/shm) when the
 * machine has one: the profiler samples the main thread also while it waits in fsync, which on a
 * disk would show up as SQLite time; in memory the samples are CPU. Its CPU per registration, next
 * to the timed phase's, shows what durable writes to the disk add.
 */
async function profiledFigures(warm: Client[], profiled: Client[]) {
  const shm = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'kl-bench-register-')) : undefined;
  const server = await serverWith(shm ?? join(root, 'profiled'), [...warm, ...profiled], warm);
  try {
    log(
      `profiling ${profiled.length} registrations on a second server (data in ${shm ? 'memory, /dev/shm' : 'the temporary folder'}; profiler every ${SAMPLING_US} µs)…`,
    );
    const file = join(root, 'register.cpuprofile');
    const cpu0 = await server.cpuSeconds();
    await server.profileStart(SAMPLING_US);
    const t0 = performance.now();
    await inFlight(profiled, CONCURRENCY, (c) => registerOne(server.url, c));
    const wall = (performance.now() - t0) / 1000;
    await settle();
    const { processCpuMs } = await server.profileStop(file);
    const cpu = (await server.cpuSeconds()) - cpu0;
    if (CPUPROFILE) copyFileSync(file, resolve(CPUPROFILE));
    const split = splitRegistrationProfile(
      JSON.parse(readFileSync(file, 'utf8')) as CpuProfile,
      profiled.length,
      { top: 15, root: REPO, cpuMs: processCpuMs },
    );
    return {
      dataDir: shm ? 'tmpfs (/dev/shm)' : 'disk (temporary folder)',
      samplingIntervalUs: SAMPLING_US,
      wallSeconds: +wall.toFixed(2),
      // With the profiler on: its own cost is in this figure, not in the timed phase's.
      serverCpuMsPerRegistration: +((cpu / profiled.length) * 1000).toFixed(3),
      processCpuMsWhileProfiling: +processCpuMs.toFixed(1),
      // Process CPU (all threads) minus the main thread's busy samples: other threads (GC helpers,
      // libuv) and the profiler when positive; main-thread waits (fsync) sampled as busy when negative.
      cpuOutsideSamplesMsPerRegistration: +((processCpuMs - split.busyMs) / profiled.length).toFixed(3),
      ...split,
    };
  } finally {
    await server.stop();
    if (shm) rmSync(shm, { recursive: true, force: true });
  }
}

/**
 * Baseline: the embedded ledger alone committing the same KeyRegistered transactions with the same
 * concurrency and group-commit window (2 ms, as the server), in this process. `withAudit` adds the
 * AuditEvent the server writes for each registration, not waited for (src/server/audit.ts).
 */
async function ledgerFigures(warm: Client[], timed: Client[], withAudit: boolean) {
  const dataDir = join(root, withAudit ? 'ledger-with-audit' : 'ledger');
  initEmbeddedLedger({ dataDir, passphrase: PASS });
  const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASS, batchWaitMs: 2 });
  try {
    const audits: Promise<unknown>[] = [];
    const commit = async (c: Client) => {
      await ledger.submit({ type: 'KeyRegistered', body: c.body });
      if (withAudit)
        audits.push(
          ledger.submit({
            type: 'AuditEvent',
            body: {
              event: 'registration',
              at: Date.now(),
              subject: sha256Hex(c.id),
              detail: { fingerprint: c.body.fingerprint },
            },
          }),
        );
    };
    await inFlight(warm, CONCURRENCY, commit);
    await Promise.all(audits.splice(0));
    const height0 = (await ledger.checkpoint())?.header.height ?? 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await inFlight(timed, CONCURRENCY, commit);
    await Promise.all(audits);
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuMs(cpu0) / 1000;
    const blocks = ((await ledger.checkpoint())?.header.height ?? 0) - height0;
    return {
      transactions: timed.length * (withAudit ? 2 : 1),
      registrations: timed.length,
      blocks,
      seconds: +wall.toFixed(3),
      cpuSeconds: +cpu.toFixed(3),
      commitsPerSec: Math.round(timed.length / wall),
      cpuMsPerRegistration: +((cpu / timed.length) * 1000).toFixed(4),
      commitsPerSecPerCore: Math.round(timed.length / cpu),
    };
  } finally {
    await ledger.close();
  }
}

try {
  log(`keyledger registration benchmark — ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}`);
  const made = await makeClients(2 * WARMUP + REGISTRATIONS + PROFILED);
  const clients: Client[] = made.map((c) => ({ ...c, code: '' }));
  const warm = clients.slice(0, WARMUP);
  const timed = clients.slice(WARMUP, WARMUP + REGISTRATIONS);
  const t = await timedFigures(warm, timed);
  const p = await profiledFigures(
    clients.slice(WARMUP + REGISTRATIONS, 2 * WARMUP + REGISTRATIONS),
    clients.slice(2 * WARMUP + REGISTRATIONS),
  );
  log('ledger baseline: the same KeyRegistered transactions, committed by the embedded ledger alone…');
  const l = await ledgerFigures(warm, timed, false);
  const la = await ledgerFigures(warm, timed, true);
  const result = await args.finish({
    registrationsPerSecPerCore: t.registrationsPerSecPerCore,
    ledgerCommitsPerSecPerCore: l.commitsPerSecPerCore,
    ratio: +(t.registrationsPerSecPerCore / l.commitsPerSecPerCore).toFixed(4),
    goal: 'registrationsPerSecPerCore ≥ 1000',
    keyledger: t,
    ledger: { keyRegistered: l, keyRegisteredWithAuditEvent: la },
    profile: p,
  });
  log('');
  log(
    `keyledger registrations: ${t.registrationsPerSec}/s wall (${t.concurrency} in flight), server ${t.serverCpuMsPerRegistration} ms CPU/registration → ${t.registrationsPerSecPerCore} registrations per server core-second (goal ≥ 1000); client ${t.clientCpuMsPerRegistration} ms CPU/registration; latency p50 ${t.latencyMs.p50} ms, p99 ${t.latencyMs.p99} ms; ${t.transactionsPerBlock} tx/block`,
  );
  log(
    `embedded ledger alone, same KeyRegistered transactions: ${l.commitsPerSec}/s wall, ${l.cpuMsPerRegistration} ms CPU each → ${l.commitsPerSecPerCore} commits per core-second (${(l.transactions / Math.max(1, l.blocks)).toFixed(1)} tx/block); with the AuditEvent too: ${la.commitsPerSecPerCore} registrations' writes per core-second`,
  );
  log(`ratio: ${result.ratio}`);
  log('');
  log(
    `where the server spends a registration (${p.registrations} profiled, data on ${p.dataDir}): ${p.serverCpuMsPerRegistration} ms CPU/registration with the profiler on; process CPU minus main-thread busy samples: ${p.cpuOutsideSamplesMsPerRegistration} ms/registration`,
  );
  for (const line of formatRegistrationProfile(p)) log(line);
} finally {
  rmSync(root, { recursive: true, force: true });
}
