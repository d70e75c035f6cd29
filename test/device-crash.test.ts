/**
 * Issue 18, crash safety of device additions: `kill -9` of the whole server (`keyledger serve`, the
 * real binary) while new devices join enrolled identities — approved in a session of one of the
 * identity's devices (`keyledger device approve`), or by an operator's invitation (`keyledger admin
 * invite ID --device`, the real binary) — right after a random number of additions were
 * acknowledged (0 to all but one; acknowledged: the new device verified its DeviceAdded receipt),
 * or, every other trial, right after the server took an invitation (it does so before it writes
 * the device), KL_DEVICE_CRASH_TRIALS times (default 3). After each kill:
 *   - the ledger on disk verifies, and every line of the killed server's encrypted log authenticates;
 *   - every acknowledged addition is on the ledger: the key record holds the device under its name;
 *     so is every addition the approving device verified a receipt for, and every invited one the
 *     server answered (it answers an invitation once the device is written);
 *   - a new device whose answer was lost finds out, as its person would (below), and an answer that
 *     says "ask again" comes only when the ledger does not hold the device;
 *   - every added device logs in; each key came onto the ledger by one DeviceAdded, and each
 *     identity's record holds exactly the devices that were added (none twice, none half-added);
 *   - an invitation is spent whenever its device is on the ledger.
 *
 * What a person sees when the server dies during an addition (docs/protocol.md "Devices"):
 *   - `keyledger device request`, waiting for its approval, goes on waiting (a server that does not
 *     answer is no answer while the code lasts). The restarted server no longer knows the request
 *     (pending requests live in its memory only), so the client reads the ledger: an addition written
 *     before the kill is verified and pinned as usual ("added"); otherwise KL_DEVICE_CODE_INVALID, ask
 *     again, and the person runs `device request` again and approves the new code. (`keyledger
 *     login` is no way to find out: the new device pins the ledger only once its addition verified.)
 *   - `device request` that got no answer at all fails (KL_NETWORK). Run again, it reads the ledger
 *     before it waits: an addition written meanwhile is found at once, with no new approval.
 *   - `device approve` in flight fails with KL_NETWORK (the connection is lost); the new device tells.
 *   - `device request --invite` that got no answer fails (KL_NETWORK). The server takes the
 *     invitation for the request's key before it writes the device, so the same key asks again with
 *     the same invitation: the device is written then if the kill cut the write off ("invitations
 *     taken by the kill"), or the addition the ledger holds answers; any other key's request with
 *     that invitation is refused (KL_IDENTITY_PROOF_INVALID). `keyledger login` on that device, before
 *     it asks again, says to run `keyledger device request` again (its home pins no ledger yet).
 * A second test makes the kill's window every time: the invitation taken for the key, no device.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { ClientSession } from '../src/client/session.js';
import { EmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { parseInvitation } from '../src/protocol/invitation.js';
import { IdentityProofs } from '../src/server/identity-proofs.js';
import { tempDir } from './helpers.js';
import {
  type Addition,
  DeviceRun,
  exactDevices,
  type Person,
  type Trial,
  writeDeviceServeConfig,
} from './support/device-additions.js';
import {
  freePort,
  killServer,
  logInUser,
  type ServedCli,
  serveCli,
  serverLogs,
} from './support/serve-cli.js';
import { CLIENT_PASSPHRASE } from './support/server.js';

const BIN = new URL('../bin/keyledger.js', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

const TRIALS = Number(process.env.KL_DEVICE_CRASH_TRIALS ?? 3);
const APPROVED_PER_TRIAL = 4;
const INVITED_PER_TRIAL = 2;
/** Identities enrolled before the first crash; more join when these are full. */
const FIRST_IDENTITIES = 2;
/** Additions start within this many ms of each other (a kill then finds them at different steps). */
const STAGGER_MS = 300;
/** Longest wait for every new device to learn its fate once the server is back, ms. */
const SETTLE_MS = 20_000;

describe('kill -9 of the whole server during device additions', () => {
  it(`${TRIALS} trials: no acknowledged addition lost, the ledger verifies, new devices find out and log in`, async () => {
    const root = tempDir('kl-devcrash-');
    const data = join(root, 'data');
    const port = await freePort();
    const config = writeDeviceServeConfig(join(root, 'config.json'), port);
    const serve = () => serveCli(data, ['--config', config]);
    await killServer(await serve()); // initialises the data directory

    let server: ServedCli = await serve();
    const run = new DeviceRun(data, `http://127.0.0.1:${port}`);
    for (let i = 0; i < FIRST_IDENTITIES; i++) await run.enrol();

    for (let t = 0; t < TRIALS; t++) {
      const trial: Trial = { killed: false, stop: new AbortController() };
      const additions: Addition[] = [];
      for (let i = 0; i < APPROVED_PER_TRIAL + INVITED_PER_TRIAL; i++) {
        const via = i < APPROVED_PER_TRIAL ? 'approval' : 'invitation';
        additions.push(await run.newAddition(`t${t}-${via}-${i}`, via));
      }
      // One session per identity that approves, from one of its devices (they die with the server).
      const sessions = new Map<Person, Promise<ClientSession>>();
      for (const a of additions)
        if (a.via === 'approval' && !sessions.has(a.person)) sessions.set(a.person, run.session(a.person));
      await Promise.all(sessions.values());
      // Every addition starts; the server dies at a moment chosen by killMoment.
      await killMoment(run, trial, additions, sessions, t % 2 === 1);
      trial.killed = true;
      await killServer(server);
      for (const s of sessions.values()) (await s).dropConnection();

      const audit = verifyLedgerData({ dataDir: data });
      assert.ok(audit.ok, `trial ${t}: the ledger does not verify: ${audit.problem?.reason}`);
      await serverLogs(data); // every line of every server log authenticates

      // The new devices still waiting go on polling: the restarted server, or its ledger, answers.
      server = await serve();
      const late = setTimeout(() => trial.stop.abort(), SETTLE_MS);
      await Promise.all(additions.map((a) => a.known));
      clearTimeout(late);
      const ledger = EmbeddedLedger.open({ dataDir: data });
      try {
        for (const a of additions) await run.checkAfterKill(ledger, a, t);
      } finally {
        await ledger.close();
      }

      // Whoever did not see "added" asks again, as a person would.
      for (const a of additions) {
        if (!a.ackedBeforeKill && (await a.known)) run.figures.foundOnPoll++;
        else if (!a.ackedBeforeKill) await run.askAgain(a);
        a.person.devices.push(a.home);
      }
      // Every added device logs in; every identity holds exactly its devices, each added once.
      for (const a of additions) await (await logInUser(a)).close();
      const check = EmbeddedLedger.open({ dataDir: data });
      try {
        for (const person of new Set(additions.map((a) => a.person))) await exactDevices(check, person, t);
      } finally {
        await check.close();
      }
    }
    await killServer(server);
    const final = verifyLedgerData({ dataDir: data });
    assert.ok(final.ok, final.problem?.reason);
    assert.equal((await serverLogs(data)).files, TRIALS + 2);
    const f = run.figures;
    // The figures of the run (docs/reliability.md).
    console.log(
      `device crash trials: ${TRIALS}; additions acknowledged to the new device ${f.acked} (0 lost), ` +
        `to the approving device ${f.approverAcked}; answers lost: found by the waiting device's poll ${f.foundOnPoll}, ` +
        `asked again ${f.askedAgain} (found on the ledger at once ${f.foundAskingAgain}, approved again ${f.approvedAgain}; ` +
        `with the same invitation: not taken yet ${f.invitedAgain}, taken by the kill with no device and written now ` +
        `${f.invitationsSpentByKill}, its device found on the ledger ${f.invitationFoundAgain}); ` +
        `taken invitations refused on another key ${f.otherKeyRefused}`,
    );
  });
});

describe('kill -9 between taking a device invitation and writing the device', () => {
  it('the same key asks again and is added (once); its login said to; any other key is refused', async () => {
    const root = tempDir('kl-devcrash-window-');
    const data = join(root, 'data');
    const port = await freePort();
    const config = writeDeviceServeConfig(join(root, 'config.json'), port);
    let server = await serveCli(data, ['--config', config]);
    const run = new DeviceRun(data, server.url);
    const person = await run.enrol();
    const tablet = await run.newAddition('tablet', 'invitation');
    await killServer(server);
    // What the kill leaves in that window: the invitation taken for the new key (as the server takes
    // it, identity-proofs.ts `consume`, before it writes), no DeviceAdded, no answer.
    const proofs = new IdentityProofs(data);
    proofs.consume(person.id, 'device', parseInvitation(tablet.invite!).code, Date.now(), tablet.fingerprint);
    proofs.close();
    assert.equal(run.invitationLive(tablet), false);
    server = await serveCli(data, ['--config', config]);

    // `keyledger login` on the tablet (the real binary) says what to do: its home pins no ledger yet.
    const login = await execBin(['login', '--home', tablet.home.dir]);
    assert.equal(login.code, 2, login.stderr);
    assert.match(login.stderr, /KL_NOT_REGISTERED.*keyledger device request --server URL.*run it again/);
    await run.otherKeyRefused(tablet);
    const added = await (await run.ask(tablet, tablet.invite)).wait({ signal: AbortSignal.timeout(10_000) });
    assert.equal(added.fingerprint, tablet.fingerprint);
    // Its answer lost once more: asked again, the addition on the ledger answers; nothing is written twice.
    const again = await (await run.ask(tablet, tablet.invite)).wait({ signal: AbortSignal.timeout(10_000) });
    assert.equal(again.txid, added.txid);
    await run.otherKeyRefused(tablet);
    person.devices.push(tablet.home);
    await (await logInUser(tablet)).close();
    await killServer(server);
    const ledger = EmbeddedLedger.open({ dataDir: data });
    try {
      await exactDevices(ledger, person, 0);
    } finally {
      await ledger.close();
    }
  });
});

/** Runs the keyledger binary; its exit code and what it printed. */
async function execBin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, KEYLEDGER_PASSPHRASE: CLIENT_PASSPHRASE };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * Starts every addition of the trial (within STAGGER_MS of each other); resolves when the server is
 * to die: right after a random number of them (0 to all but one) were acknowledged to their new
 * devices or, `atInvitation`, right after the server took an invitation, while it writes that device
 * (a window too short for the first trigger to find often).
 */
async function killMoment(
  run: DeviceRun,
  trial: Trial,
  additions: Addition[],
  sessions: Map<Person, Promise<ClientSession>>,
  atInvitation: boolean,
): Promise<void> {
  const killAfter = randomInt(0, additions.length);
  let acks = 0;
  let fire: () => void = () => {};
  const acknowledged = new Promise<void>((resolve) => {
    fire = () => setTimeout(resolve, randomInt(0, 20));
  });
  if (killAfter === 0) fire();
  for (const a of additions) {
    a.known = run.add(a, trial, sessions.get(a.person), randomInt(0, STAGGER_MS)).then(
      () => {
        if (!trial.killed) {
          a.ackedBeforeKill = true;
          if (++acks === killAfter) fire();
        }
        return true;
      },
      (err: unknown) => {
        a.failure = err;
        return false;
      },
    );
  }
  const allKnown = Promise.all(additions.map((a) => a.known));
  const trigger = atInvitation
    ? run.invitationTaken(additions, allKnown).then(() => new Promise((r) => setTimeout(r, randomInt(0, 10))))
    : acknowledged;
  const stalled = new Promise((r) => setTimeout(r, 60_000).unref());
  await Promise.race([trigger, allKnown, stalled]);
}
