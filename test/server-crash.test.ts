/**
 * Issue 7, faults: `kill -9` of the whole server (`keyledger serve`, the real binary) while clients
 * register and revoke keys, right after a random number of those writes were acknowledged (0 to
 * all but one), KL_SERVER_CRASH_TRIALS times (default 4 in `npm test`; `npm run test:crash` runs
 * 100). After each kill:
 *   - the ledger on disk verifies (every block, signature, Merkle root and state root);
 *   - every acknowledged write (a registration or revocation whose receipt the client verified) is
 *     on the ledger after the restart;
 *   - clients whose answer was lost retry cleanly: a registration again (the same key gets the
 *     original receipt, or is written now), a revocation again (or the login says KL_KEY_REVOKED);
 *   - sessions open before the kill cannot be resumed (session keys lived in the dead process's
 *     memory only) — a typed KL_SESSION_UNKNOWN — and the users log in again;
 *   - the killed server's encrypted log opens and every line in it authenticates.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ClientSession } from '../src/client/session.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { isKlError } from '../src/protocol/errors.js';
import { tempDir } from './helpers.js';
import {
  freePort,
  type InvitedUser,
  invitedUsers,
  killServer,
  logInUser,
  registerUser,
  serveCli,
  serverLogs,
  writeServeConfig,
} from './support/serve-cli.js';

const TRIALS = Number(process.env.KL_SERVER_CRASH_TRIALS ?? 4);
const REGISTRATIONS_PER_TRIAL = 5;
const REVOCATIONS_PER_TRIAL = 2;
const SESSIONS_PER_TRIAL = 2;
/** `keyledger serve` with the run's configuration (a fixed port: clients keep its URL across restarts). */
const serve = (data: string, config: string) => serveCli(data, ['--config', config]);

const code = (c: string) => (err: unknown) => isKlError(err) && err.code === c;

describe('kill -9 of the whole server during registrations and revocations', () => {
  it(`${TRIALS} trials: no acknowledged write lost, the ledger verifies, clients retry or log in again`, async () => {
    const root = tempDir('kl-srvcrash-');
    const data = join(root, 'data');
    const port = await freePort();
    const config = writeServeConfig(join(root, 'config.json'), port);
    const url = `http://127.0.0.1:${port}`;

    // Initialise the data directory, then issue every invitation of the run (the server is down).
    await killServer(await serve(data, config));
    const pending = await invitedUsers(data, 'crash', TRIALS * REGISTRATIONS_PER_TRIAL + 8);
    const reg = (u: InvitedUser) => registerUser(url, u);

    // A few users registered before the first crash, so that there is something to revoke.
    let server = await serve(data, config);
    const active: InvitedUser[] = [];
    for (const u of pending.splice(0, 8)) {
      await reg(u);
      active.push(u);
    }
    const revoked: InvitedUser[] = [];
    let ackedRegistrations = 0;
    let ackedRevocations = 0;
    let retriedRegistrations = 0;
    let retriedRevocations = 0;
    let answerLost = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      // Sessions that are open when the server dies.
      const live: ClientSession[] = [];
      for (const u of active.slice(-SESSIONS_PER_TRIAL)) live.push(await logInUser(u));
      const registering = pending.splice(0, REGISTRATIONS_PER_TRIAL);
      const revoking = active.splice(0, REVOCATIONS_PER_TRIAL);

      // Every operation starts at once. The server is killed right after a random number of them
      // (0 to all but one) were acknowledged, so each trial has writes acknowledged and in flight.
      const total = registering.length + revoking.length;
      const killAfter = randomInt(0, total);
      let acks = 0;
      let fire: () => void = () => {};
      const killTime = new Promise<void>((resolve) => {
        fire = () => setTimeout(resolve, randomInt(0, 20));
      });
      if (killAfter === 0) fire();
      // Each resolves to whether the client got its verified acknowledgment.
      const acked = (p: Promise<unknown>) =>
        p.then(
          () => {
            if (++acks === killAfter) fire();
            return true;
          },
          () => false,
        );
      const regs = registering.map((u) => acked(reg(u)));
      const revs = revoking.map((u) => acked(logInUser(u).then((s) => s.revokeKey('retired'))));
      await Promise.race([killTime, Promise.all([...regs, ...revs])]);
      await killServer(server);
      const regAcks = await Promise.all(regs);
      const revAcks = await Promise.all(revs);
      for (const s of live) s.dropConnection();

      const audit = verifyLedgerData({ dataDir: data });
      assert.ok(audit.ok, `trial ${trial}: the ledger does not verify: ${audit.problem?.reason}`);
      await serverLogs(data); // every line of every server log authenticates

      server = await serve(data, config);
      const ledger = EmbeddedLedger.open({ dataDir: data });
      try {
        for (const [i, u] of registering.entries()) {
          if (regAcks[i]) {
            ackedRegistrations++;
            const { record } = await ledger.getKeyRecord(u.id);
            assert.equal(
              record?.status,
              'active',
              `trial ${trial}: acknowledged registration of ${u.id} lost`,
            );
            assert.equal(record.fingerprint, u.home.readIdentity().fingerprint);
          } else {
            // The answer was lost (or never made): the client runs the registration again.
            retriedRegistrations++;
            if ((await ledger.getKeyRecord(u.id)).record) answerLost++; // written, not acknowledged
            const r = await reg(u);
            assert.equal(r.verified, true);
          }
          active.push(u);
        }
        for (const [i, u] of revoking.entries()) {
          if (revAcks[i]) {
            ackedRevocations++;
            const { record } = await ledger.getKeyRecord(u.id);
            assert.equal(
              record?.status,
              'revoked',
              `trial ${trial}: acknowledged revocation of ${u.id} lost`,
            );
          } else {
            // Revoke again, or learn that the revocation was written after all.
            retriedRevocations++;
            try {
              const s = await logInUser(u);
              await s.revokeKey('retired');
            } catch (err) {
              assert.ok(code('KL_KEY_REVOKED')(err), `trial ${trial}: ${String(err)}`);
            }
          }
          await assert.rejects(logInUser(u), code('KL_KEY_REVOKED'));
          revoked.push(u);
        }
      } finally {
        await ledger.close();
      }
      // Sessions of the dead server: not resumable (keys were in its memory only); a new login works.
      for (const s of live) {
        await assert.rejects(s.resume(), code('KL_SESSION_UNKNOWN'));
      }
      for (const u of active.slice(-SESSIONS_PER_TRIAL)) await (await logInUser(u)).close();
    }
    await killServer(server);
    const final = verifyLedgerData({ dataDir: data });
    assert.ok(final.ok, final.problem?.reason);
    const ledger = EmbeddedLedger.open({ dataDir: data });
    for (const u of active) assert.equal((await ledger.getKeyRecord(u.id)).record?.status, 'active', u.id);
    for (const u of revoked) assert.equal((await ledger.getKeyRecord(u.id)).record?.status, 'revoked', u.id);
    await ledger.close();
    assert.equal((await serverLogs(data)).files, TRIALS + 2);
    // The figures of the run (docs/reliability.md).
    console.log(
      `server crash trials: ${TRIALS}; acknowledged registrations ${ackedRegistrations} (0 lost), ` +
        `retried ${retriedRegistrations} (${answerLost} of them written before the kill, answered from the ledger); acknowledged revocations ${ackedRevocations} (0 lost), retried ${retriedRevocations}`,
    );
  });
});
