/**
 * Shared test helpers: temporary data directories, a controllable clock, ledgers opened on real
 * SQLite files, and OpenPGP-shaped key material.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import type { LoginResult } from '../src/client/login.js';
import { dataPaths } from '../src/ledger/data-dir.js';
import { EmbeddedLedger, initEmbeddedLedger, type OpenOptions } from '../src/ledger/embedded-ledger.js';
import type { TxBodies } from '../src/ledger/transactions.js';
import { Channel } from '../src/protocol/channel.js';

export const PASSPHRASE = 'correct horse battery staple';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  // Client WebSockets closed by a server that shut down can linger half-closed in the test process
  // (no timer or handle of ours is left); end the process once everything has reported. The exit
  // code the test runner set (1 on any failure) is kept.
  setTimeout(() => process.exit(), 2_000).unref();
});

/** A fresh temporary directory, removed after the test file. */
export function tempDir(prefix = 'kl-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** The error `promise` is rejected with; the test fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.fail('expected a refusal');
}

/** Waits until `check` holds, asking every `stepMs`; the test fails after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 20_000,
  stepMs = 25,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.UTC(2026, 10, 26, 12, 0, 0)) {
  let t = start;
  const now = () => t;
  return Object.assign(now, { advance: (ms: number) => (t += ms), set: (ms: number) => (t = ms) });
}

/** Initialises a ledger in a new temp dir and opens it for writing. */
export function freshLedger(opts: Partial<OpenOptions> = {}): { ledger: EmbeddedLedger; dataDir: string } {
  const dataDir = join(tempDir(), 'data');
  initEmbeddedLedger({ dataDir, passphrase: PASSPHRASE, ...(opts.now ? { now: opts.now } : {}) });
  const ledger = EmbeddedLedger.open({ dataDir, passphrase: PASSPHRASE, ...opts });
  return { ledger, dataDir };
}

/**
 * An armored block with the shape of an OpenPGP public key and a random v4 fingerprint. The ledger
 * does not parse OpenPGP (the server's pgp layer does, before it submits), so ledger tests and
 * benchmarks may use these; tests of key handling use real keys.
 */
export function fakeKey(): { fingerprint: string; publicKey: string } {
  const body = randomBytes(300)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return {
    fingerprint: randomBytes(20).toString('hex'),
    publicKey: `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${body}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
  };
}

/** A KeyRegistered body for `id` with fake key material. */
export function registration(id: string, name = 'Test User'): TxBodies['KeyRegistered'] {
  return { id, name, ...fakeKey(), algorithm: 'ed25519-legacy' };
}

/** A fake armored detached signature (shape only). */
export function fakeSignature(): string {
  return `-----BEGIN PGP SIGNATURE-----\n\n${randomBytes(90).toString('base64')}\n-----END PGP SIGNATURE-----\n`;
}

/** A clock that follows real time plus an offset the test can move (keys made "now" stay valid). */
export function liveClock() {
  let offset = 0;
  let frozen: number | null = null;
  const now = () => frozen ?? Date.now() + offset;
  return Object.assign(now, {
    advance: (ms: number) => {
      if (frozen !== null) frozen += ms;
      else offset += ms;
    },
    /** Back to real time. */
    reset: () => {
      offset = 0;
      frozen = null;
    },
    /** Stops the clock where it is (for exact boundaries: real time must not slip in between). */
    freeze: () => {
      frozen = Date.now() + offset;
    },
    /** Lets it run again from where it stood. */
    thaw: () => {
      if (frozen !== null) offset = frozen - Date.now();
      frozen = null;
    },
  });
}

/** A copy of the data directory `pristine` with `mutate` applied to its ledger's SQLite file. */
export function tamperedCopy(pristine: string, mutate: (db: Database.Database) => void): string {
  const dir = join(tempDir(), 'copy');
  cpSync(pristine, dir, { recursive: true });
  const db = new Database(dataPaths(dir).db);
  mutate(db);
  db.close();
  return dir;
}

/**
 * A Set-Cookie header as `name=value` and its attributes in sorted order, so a test states which
 * attributes a cookie carries without depending on the order a cookie library writes them in.
 */
export function cookieParts(setCookie: string): { pair: string; attributes: string[] } {
  const [pair = '', ...attributes] = setCookie.split(';').map((part) => part.trim());
  return { pair, attributes: attributes.sort() };
}

/**
 * The client's side of a login's session channel, driven by hand: a test seals frames itself
 * (forged, replayed, tampered) and opens what the server sends after `finished` (seq 0).
 */
export function handDrivenChannel(l: Pick<LoginResult, 'sessionId' | 'keys' | 'transcriptHash'>): Channel {
  return new Channel({
    role: 'client',
    sid: l.sessionId,
    keys: l.keys,
    chain: l.transcriptHash,
    nextRecvSeq: 1,
    now: Date.now,
  });
}
