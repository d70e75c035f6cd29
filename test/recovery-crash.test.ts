/**
 * Issue 18, crash safety of recoveries: `kill -9` of the whole server (`keyledger serve`, the real
 * binary) while identities are recovered onto new devices with their recovery keys (recoverIdentity,
 * docs/protocol.md "Recovery"), right after a random number of recoveries were acknowledged (0 to
 * all but one; acknowledged: the new device verified its Recovered receipt),
 * or, every other trial, right after the server answered one (on the ledger, its answer kept from
 * its device by a relay in between), KL_RECOVERY_CRASH_TRIALS times (default 2). After each kill:
 *   - the ledger on disk verifies, and every line of the killed server's encrypted log authenticates;
 *   - every acknowledged recovery is on the ledger: the new device is the identity's only device,
 *     the next recovery key is the identity's, the one used is gone;
 *   - no identity is half recovered: each is either recovered exactly so, or untouched (its first
 *     device and recovery key as before);
 *   - a recovery whose answer was lost is run again as its person would (`keyledger recover`, the
 *     real binary, with a new --out file): done already, it is found on the ledger and the command
 *     says which recovery key counts (the first try's next one: `file` null); not done, it is done
 *     now with the new next key;
 *   - afterwards every identity holds exactly its new device (one Recovered each), the new device
 *     logs in and the old one no longer does.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspect, promisify } from 'node:util';
import type { ClientHome } from '../src/client/home.js';
import { recoverIdentity } from '../src/client/recovery.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import type { KeyRecord } from '../src/ledger/state-machine.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { generateRecoveryKey, type RecoveryKeyPair } from '../src/pgp/recovery-key.js';
import { isKlError } from '../src/protocol/errors.js';
import { tempDir } from './helpers.js';
import {
  freePort,
  invitedUsers,
  killServer,
  logInUser,
  registerUser,
  type ServedCli,
  serveCli,
  serverLogs,
} from './support/serve-cli.js';
import { CLIENT_PASSPHRASE, newClient } from './support/server.js';

const TRIALS = Number(process.env.KL_RECOVERY_CRASH_TRIALS ?? 2);
const RECOVERIES_PER_TRIAL = 4;
/** Recoveries start within this many ms of each other (a kill then finds them at different steps). */
const STAGGER_MS = 1_500;
const BIN = new URL('../bin/keyledger.js', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

/** An identity with a recovery key set, and its recovery onto a new device. */
interface Recovery {
  id: string;
  /** The registered device (revoked by the recovery). */
  first: ClientHome;
  firstFingerprint: string;
  /** The recovery key the ledger holds before the recovery. */
  recovery: RecoveryKeyPair;
  /** The new device. */
  device: ClientHome;
  deviceFingerprint: string;
  /** The first try's next recovery key. */
  next: RecoveryKeyPair;
  /** The recovery key the identity should end with (the first try's next, or the one run again wrote). */
  nextFingerprint: string;
  /** The ledger's chain id, from the first device's pin. */
  chain: string;
  /** Settles once the first try ends: true when the new device verified its receipt (even as the server died). */
  known: Promise<boolean>;
  ackedBeforeKill: boolean;
  failure?: unknown;
}

/** What the run counts (printed at its end). */
const figures = { acked: 0, answeredAsKilled: 0, lostDone: 0, lostNotDone: 0 };

describe('kill -9 of the whole server during recoveries', () => {
  it(`${TRIALS} trials: no acknowledged recovery lost, none half done, a lost answer found by running it again`, async () => {
    const root = tempDir('kl-reccrash-');
    const data = join(root, 'data');
    const port = await freePort();
    const config = writeRecoveryServeConfig(join(root, 'config.json'), port);
    const serve = () => serveCli(data, ['--config', config]);
    await killServer(await serve()); // initialises the data directory
    let server: ServedCli = await serve();
    const url = `http://127.0.0.1:${port}`;
    const relay = await answerRelay(port);
    after(() => relay.close());

    for (let t = 0; t < TRIALS; t++) {
      // recoveryPerIp (burst 5, per server: the limiter lives in memory) is not in the configuration
      // file's schema: a fresh server per trial keeps its recoveries within it.
      if (t > 0) server = await restart(server, serve);
      const recoveries: Recovery[] = [];
      for (let i = 0; i < RECOVERIES_PER_TRIAL; i++)
        recoveries.push(await withRecoveryKey(data, url, `t${t}r${i}-`));
      const state = { killed: false };
      await killMoment(relay, recoveries, state, t % 2 === 1);
      state.killed = true;
      await killServer(server);
      relay.cut();

      const audit = verifyLedgerData({ dataDir: data });
      assert.ok(audit.ok, `trial ${t}: the ledger does not verify: ${audit.problem?.reason}`);
      await serverLogs(data); // every line of every server log authenticates
      await Promise.all(recoveries.map((r) => r.known));
      server = await serve();

      const done = new Map<Recovery, boolean>();
      const ledger = EmbeddedLedger.open({ dataDir: data });
      try {
        for (const r of recoveries) done.set(r, await checkAfterKill(ledger, r, t));
      } finally {
        await ledger.close();
      }
      // Whoever did not see "recovered" runs it again, as a person would.
      for (const r of recoveries) if (!(await r.known)) await recoverAgain(root, url, r, done.get(r)!);
      for (const r of recoveries) {
        await (await logInUser({ home: r.device })).close();
        // Its key is no longer the identity's: refused as such (not a network failure).
        await assert.rejects(
          logInUser({ home: r.first }),
          (err) => isKlError(err) && ['KL_AUTH_FAILED', 'KL_KEY_REVOKED'].includes(err.code),
          `trial ${t}: ${r.id}: the old device still logs in`,
        );
      }
      const check = EmbeddedLedger.open({ dataDir: data });
      try {
        for (const r of recoveries) await oneRecovery(check, r, t);
      } finally {
        await check.close();
      }
    }
    await killServer(server);
    const final = verifyLedgerData({ dataDir: data });
    assert.ok(final.ok, final.problem?.reason);
    assert.equal((await serverLogs(data)).files, 2 * TRIALS + 1);
    console.log(
      `recovery crash trials: ${TRIALS}; recoveries acknowledged ${figures.acked} (0 lost), ` +
        `${figures.answeredAsKilled} more as the server died; answers lost: ` +
        `done before the kill and found by running again ${figures.lostDone}, not done and done when run again ${figures.lostNotDone}`,
    );
  });
});

/** Kills an idle server (nothing in flight: one more crash) and starts it again. */
async function restart(server: ServedCli, serve: () => Promise<ServedCli>): Promise<ServedCli> {
  await killServer(server);
  return serve();
}

/** A configuration file for `serve`: `port`, and the registration and login limits open. */
function writeRecoveryServeConfig(path: string, port: number): string {
  const open = { burst: 1e6, perSecond: 1e6 };
  const limits = ['registerPerIp', 'registerPerIdentity', 'loginPerIp', 'loginPerIdentity'];
  writeFileSync(path, JSON.stringify({ port, rateLimits: Object.fromEntries(limits.map((k) => [k, open])) }));
  return path;
}

/**
 * A registered identity whose first device set a recovery key (ClientSession.setRecoveryKey), and a
 * new device with its next recovery key, ready to recover.
 */
async function withRecoveryKey(data: string, url: string, prefix: string): Promise<Recovery> {
  const [u] = await invitedUsers(data, prefix, 1);
  await registerUser(url, u!);
  const recovery = await generateRecoveryKey(u!.id, Date.now());
  const session = await logInUser(u!);
  try {
    assert.equal((await session.setRecoveryKey(recovery)).verified, true);
  } finally {
    await session.close();
  }
  const next = await generateRecoveryKey(u!.id, Date.now());
  const device = await newClient(u!.id);
  device.writeIdentity({ ...device.readIdentity(), device: 'spare' });
  return {
    id: u!.id,
    first: u!.home,
    firstFingerprint: u!.home.readIdentity().fingerprint,
    recovery,
    device,
    deviceFingerprint: device.readIdentity().fingerprint,
    next,
    nextFingerprint: next.fingerprint,
    chain: u!.home.readServer().chain,
    known: Promise.resolve(false),
    ackedBeforeKill: false,
  };
}

/**
 * Starts every recovery through `relay` (within STAGGER_MS of each other: a recovery takes a few
 * hundred ms, and the ledger commits those under way together); resolves when the server is to die:
 * right after a random number of them (1 to all but one) were acknowledged, or for none, at a random
 * moment while they start; or, `atCommit`, right after the server answered one, the relay keeping
 * that answer from its device (the window between the ledger's commit and the answer, too short for
 * the first trigger to find).
 */
async function killMoment(
  relay: AnswerRelay,
  recoveries: Recovery[],
  state: { killed: boolean },
  atCommit: boolean,
): Promise<void> {
  const killAfter = randomInt(0, recoveries.length);
  let acks = 0;
  let fire: () => void = () => {};
  const acknowledged = new Promise<void>((resolve) => {
    fire = () => setTimeout(resolve, randomInt(0, 20));
  });
  // None acknowledged: at a random moment while they start (some sent, some not yet).
  if (killAfter === 0) setTimeout(fire, randomInt(0, STAGGER_MS));
  for (const r of recoveries) {
    r.known = new Promise((wait) => setTimeout(wait, randomInt(0, STAGGER_MS)))
      .then(() =>
        recoverIdentity({
          home: r.device,
          server: relay.url,
          passphrase: CLIENT_PASSPHRASE,
          expectChain: r.chain,
          recovery: r.recovery,
          nextRecovery: r.next,
        }),
      )
      .then(
        (done) => {
          assert.equal(done.recoveryKey, r.next.fingerprint);
          if (!state.killed) {
            r.ackedBeforeKill = true;
            if (++acks === killAfter) fire();
          }
          return true;
        },
        (err: unknown) => {
          r.failure = err;
          return false;
        },
      );
  }
  const allKnown = Promise.all(recoveries.map((r) => r.known));
  const trigger = atCommit
    ? relay.holdNext().then(() => new Promise((r) => setTimeout(r, randomInt(0, 5))))
    : acknowledged;
  const stalled = new Promise((resolve) => setTimeout(resolve, 60_000).unref());
  await Promise.race([trigger, allKnown, stalled]);
}

/** An HTTP relay to the server that can keep a recovery's answer from its new device. */
interface AnswerRelay {
  url: string;
  /**
   * Resolves once the server answered the next recovery (201: on the ledger) and the relay kept that
   * answer from the new device.
   */
  holdNext(): Promise<void>;
  /** Cuts the kept answers off: their devices see the connection reset, as when the server dies. */
  cut(): void;
  close(): Promise<void>;
}

/** An {@link AnswerRelay} on 127.0.0.1 to the server on `port`. */
async function answerRelay(port: number): Promise<AnswerRelay> {
  let holding: (() => void) | null = null;
  const held = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const upstream = request(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const hold =
          holding && req.method === 'POST' && req.url === '/v1/recover' && answer.statusCode === 201;
        if (hold) {
          held.add(res);
          answer.resume();
          const done = holding!;
          holding = null;
          return done();
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  // The login's WebSocket (a device pinned through the relay logs in through it), relayed as bytes.
  server.on('upgrade', (req, socket, head) => {
    const upstream = connect(port, '127.0.0.1', () => {
      const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${v}\r\n`);
      upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join('')}\r\n`);
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holdNext: () => new Promise<void>((resolve) => (holding = resolve)),
    cut: () => {
      holding = null;
      for (const res of held) res.destroy();
      held.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * What must hold of a recovery once the server is back, before anybody runs it again: acknowledged
 * means recovered; recovered or untouched, never between. Returns whether it is recovered.
 */
async function checkAfterKill(ledger: EmbeddedLedger, r: Recovery, trial: number): Promise<boolean> {
  const what = `trial ${trial}: ${r.id}`;
  const { record } = await ledger.getKeyRecord(r.id);
  assert.ok(record, what);
  const done = isRecovered(record, r, r.next.fingerprint);
  if (r.ackedBeforeKill) figures.acked++;
  if (await r.known) {
    // Acknowledged (before the kill, or an answer already on its way when it came).
    if (!r.ackedBeforeKill) figures.answeredAsKilled++;
    assert.ok(done, `${what}: acknowledged, not on the ledger: ${inspect(record, { depth: 4 })}`);
    return true;
  }
  assert.ok(isKlError(r.failure), `${what}: the first try failed with no typed error: ${inspect(r.failure)}`);
  if (!done) {
    // Untouched: the first device and the recovery key as they were.
    assert.equal(record.status, 'active', what);
    assert.equal(record.fingerprint, r.firstFingerprint, `${what}: half recovered`);
    assert.equal(record.devices, undefined, `${what}: half recovered`);
    assert.equal(record.recovery?.fingerprint, r.recovery.fingerprint, `${what}: half recovered`);
  }
  return done;
}

/** Whether `record` is the identity recovered onto `r`'s new device, with `next` its recovery key. */
function isRecovered(record: KeyRecord, r: Recovery, next: string): boolean {
  if (record.fingerprint !== r.deviceFingerprint) return false;
  assert.equal(record.status, 'active');
  assert.equal(record.devices, undefined, `${r.id}: the new device is not the only one`);
  assert.equal(record.device, 'spare');
  assert.deepEqual(record.deviceAdded?.approvedBy, { recovery: r.recovery.fingerprint });
  assert.equal(record.recovery?.fingerprint, next, `${r.id}: another recovery key`);
  assert.ok(record.history.some((h) => h.fingerprint === r.firstFingerprint && h.reason === 'revoked'));
  return true;
}

/**
 * `keyledger recover --key FILE --out NEW --server URL --yes --json` (the real binary) on the new
 * device, after the first try's answer was lost: done already, it says the first try's next key
 * counts (`file` null); else it recovers now with the key it writes to NEW.
 */
async function recoverAgain(root: string, url: string, r: Recovery, done: boolean): Promise<void> {
  const dir = join(root, `again-${r.id}`);
  mkdirSync(dir);
  const key = join(dir, 'recovery.asc');
  writeFileSync(key, r.recovery.privateKey, { mode: 0o600 });
  const out = join(dir, 'next.asc');
  const args = ['recover', '--key', key, '--out', out, '--server', url, '--chain', r.chain, '--yes'];
  const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--home', r.device.dir, '--json'], {
    env: { ...process.env, KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE },
  }).catch((err: { stderr?: string }) =>
    assert.fail(`${r.id}: recover again failed: ${err.stderr ?? inspect(err)}`),
  );
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    fingerprint: string;
    recoveryKey: string;
    file: string | null;
  };
  assert.equal(result.fingerprint, r.deviceFingerprint);
  if (done) {
    assert.equal(result.recoveryKey, r.next.fingerprint, `${r.id}: done already, yet another recovery key`);
    assert.equal(result.file, null, `${r.id}: the new file is said to hold the recovery key`);
    figures.lostDone++;
  } else {
    assert.equal(result.file, out);
    assert.notEqual(result.recoveryKey, r.next.fingerprint);
    r.nextFingerprint = result.recoveryKey;
    figures.lostNotDone++;
  }
}

/** The identity holds exactly its new device, and came there by exactly one Recovered. */
async function oneRecovery(ledger: EmbeddedLedger, r: Recovery, trial: number): Promise<void> {
  const { record } = await ledger.getKeyRecord(r.id);
  assert.ok(record && isRecovered(record, r, r.nextFingerprint), `trial ${trial}: ${r.id} is not recovered`);
  const recovered = (await ledger.transactionsFor(r.id, { limit: 1000 })).filter(
    (t) => t.envelope.tx.type === 'Recovered',
  );
  assert.equal(recovered.length, 1, `trial ${trial}: ${r.id}: one Recovered`);
}
