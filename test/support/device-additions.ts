/**
 * Device additions against `keyledger serve` (the real binary, test/support/serve-cli.ts), for the
 * crash trials of test/device-crash.test.ts: identities enrolled with room for more devices, new
 * devices asking to join (`keyledger device request`, with or without an operator's invitation from
 * `keyledger admin invite ID --device`), approvals in a session of one of the identity's devices, a
 * new device asking again as its person would, and what the ledger must hold afterwards
 * (docs/protocol.md "Devices", docs/ledger.md "Devices").
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { inspect, promisify } from 'node:util';
import { type DeviceRequest, requestDevice } from '../../src/client/device-request.js';
import type { ClientHome } from '../../src/client/home.js';
import type { ClientSession } from '../../src/client/session.js';
import { activeDevices, MAX_DEVICES } from '../../src/ledger/devices.js';
import { EmbeddedLedger } from '../../src/ledger/embedded-ledger.js';
import { isKlError } from '../../src/protocol/errors.js';
import { parseInvitation } from '../../src/protocol/invitation.js';
import { IdentityProofs } from '../../src/server/identity-proofs.js';
import { invitedUsers, logInUser, registerUser } from './serve-cli.js';
import { CLIENT_PASSPHRASE, newClient } from './server.js';

const bin = new URL('../../bin/keyledger.js', import.meta.url).pathname;
const run = promisify(execFile);
const isCode = (err: unknown, c: string) => isKlError(err) && err.code === c;

/** How often a waiting new device polls, ms (the client's default is 1,000). */
const POLL_MS = 50;

/**
 * A configuration file for `serve`: `port`, and every rate limit the trials meet open (one machine
 * plays every device). serve-cli.ts `writeServeConfig` opens the registration and login limits;
 * device requests and invitations need theirs open too.
 */
export function writeDeviceServeConfig(path: string, port: number): string {
  const open = { burst: 1e6, perSecond: 1e6 };
  const limits = ['registerPerIp', 'registerPerIdentity', 'loginPerIp', 'loginPerIdentity'];
  const device = ['wrongCodePerIp', 'deviceRequestPerIp', 'wrongDeviceCodePerIdentity'];
  const rateLimits = Object.fromEntries([...limits, ...device].map((k) => [k, open]));
  writeFileSync(path, JSON.stringify({ port, rateLimits }));
  return path;
}

/** An enrolled identity and the homes of its devices (the registered key first). */
export interface Person {
  id: string;
  devices: ClientHome[];
  /** Its devices on the ledger, and those promised to additions under way. */
  planned: number;
}

/** The server of one trial. */
export interface Trial {
  /** Set just before the kill. */
  killed: boolean;
  /** Stops the waits of requests nobody is left to approve. */
  stop: AbortController;
}

/** One device addition of a trial and what became of it. */
export interface Addition {
  person: Person;
  via: 'approval' | 'invitation';
  home: ClientHome;
  name: string;
  fingerprint: string;
  /** The operator's invitation, as handed over (`via: 'invitation'`). */
  invite?: string;
  /** Settles once the new device knows: true when it verified its receipt. */
  known: Promise<boolean>;
  /** The new device verified its receipt before the kill. */
  ackedBeforeKill: boolean;
  /** The approving device verified its receipt before the kill. */
  approverAcked: boolean;
  /** The server answered the invited request (it does so after the write) before the kill. */
  invitationAnswered: boolean;
  /** The request was answered after the kill: nobody is left to approve it. */
  askedAfterKill: boolean;
  /** The new device got its code and waits (polls) for the addition. */
  waiting: boolean;
  /** Why the new device's wait failed. */
  failure?: unknown;
}

/** What a run counts (printed at its end: docs/reliability.md). */
export interface DeviceCrashFigures {
  acked: number;
  approverAcked: number;
  foundOnPoll: number;
  askedAgain: number;
  foundAskingAgain: number;
  approvedAgain: number;
  /** The same invitation again, not taken yet: the device written then. */
  invitedAgain: number;
  /** The same invitation again, taken by the kill with no device: the device written then. */
  invitationsSpentByKill: number;
  /** The same invitation again, its device on the ledger: answered with that addition. */
  invitationFoundAgain: number;
  /** A taken invitation put on another key's request: refused. */
  otherKeyRefused: number;
}

/** Identities on one served data directory, their devices, and additions to them. */
export class DeviceRun {
  readonly people: Person[] = [];
  readonly figures: DeviceCrashFigures = {
    acked: 0,
    approverAcked: 0,
    foundOnPoll: 0,
    askedAgain: 0,
    foundAskingAgain: 0,
    approvedAgain: 0,
    invitedAgain: 0,
    invitationsSpentByKill: 0,
    invitationFoundAgain: 0,
    otherKeyRefused: 0,
  };
  private enrolled = 0;
  private chain = '';

  constructor(
    readonly data: string,
    readonly url: string,
  ) {}

  /** Registers one more identity (its first device) with the running server. */
  async enrol(): Promise<Person> {
    const [u] = await invitedUsers(this.data, `dev${this.enrolled++}-`, 1);
    await registerUser(this.url, u!);
    this.chain ||= u!.home.readServer().chain;
    const person = { id: u!.id, devices: [u!.home], planned: 1 };
    this.people.push(person);
    return person;
  }

  /** A new device for an identity with room for one more (one enrolled when all are full). */
  async newAddition(name: string, via: Addition['via']): Promise<Addition> {
    const open = this.people.filter((p) => p.planned < MAX_DEVICES);
    const person = open.length > 0 ? open[randomInt(open.length)]! : await this.enrol();
    person.planned++;
    const home = await newClient(person.id);
    return {
      person,
      via,
      home,
      name,
      fingerprint: home.readIdentity().fingerprint,
      ...(via === 'invitation' ? { invite: await this.deviceInvitation(person.id) } : {}),
      known: Promise.resolve(false),
      ackedBeforeKill: false,
      approverAcked: false,
      invitationAnswered: false,
      askedAfterKill: false,
      waiting: false,
    };
  }

  /** `keyledger admin invite ID --device --json` (the real binary, on the data directory). */
  async deviceInvitation(id: string): Promise<string> {
    const args = [bin, 'admin', 'invite', id, '--device', '--data', this.data, '--json'];
    const { stdout } = await run(process.execPath, args);
    return (JSON.parse(stdout) as { code: string }).code;
  }

  /** `keyledger device request --chain CHAIN` (`--invite` with `invite`) from the addition's new device. */
  ask(a: Pick<Addition, 'home' | 'name'>, invite?: string): Promise<DeviceRequest> {
    return requestDevice({
      home: a.home,
      server: this.url,
      passphrase: CLIENT_PASSPHRASE,
      name: a.name,
      expectChain: this.chain,
      pollMs: POLL_MS,
      ...(invite ? { invite } : {}),
    });
  }

  /** A session from one of `person`'s devices, at random. */
  session(person: Person): Promise<ClientSession> {
    return logInUser({ home: person.devices[randomInt(person.devices.length)]! });
  }

  /**
   * The addition up to the new device's verified receipt: approved in `approver`, or invited; its
   * request sent after `delayMs` (so that a kill finds additions at every step).
   */
  async add(a: Addition, trial: Trial, approver?: Promise<ClientSession>, delayMs = 0): Promise<void> {
    await new Promise((r) => setTimeout(r, delayMs));
    const asked = await this.ask(a, a.invite);
    if (trial.killed) a.askedAfterKill = true;
    else if (a.invite) a.invitationAnswered = true;
    const waiting = asked.wait({ signal: trial.stop.signal });
    a.waiting = true;
    if (approver && !trial.killed) {
      const approved = approve(await approver, asked).then(() => {
        if (!trial.killed) a.approverAcked = true;
      });
      approved.catch(() => {}); // the kill ends the session: the new device's wait tells
    }
    await waiting;
  }

  /** What must hold of an addition once the server is back, before anybody asks again. */
  async checkAfterKill(ledger: EmbeddedLedger, a: Addition, trial: number): Promise<void> {
    const onLedger = await holds(ledger, a);
    const what = `trial ${trial}: ${a.name} of ${a.person.id}`;
    const known = await a.known;
    if (a.ackedBeforeKill) this.figures.acked++;
    if (a.approverAcked) this.figures.approverAcked++;
    if (known) assert.ok(onLedger, `${what}: acknowledged to the new device, not on the ledger`);
    assert.ok(
      !a.approverAcked || onLedger,
      `${what}: acknowledged to the approving device, not on the ledger`,
    );
    assert.ok(!a.invitationAnswered || onLedger, `${what}: the invitation was answered, not on the ledger`);
    assert.ok(
      !a.approverAcked || known,
      `${what}: approved and written, yet the new device's wait failed: ${inspect(a.failure)}`,
    );
    // A new device that was waiting learns of its addition from the restarted server's ledger.
    assert.ok(
      !onLedger || !a.waiting || known,
      `${what}: on the ledger, yet the waiting device was not told: ${inspect(a.failure)}`,
    );
    if (a.invite && onLedger)
      assert.equal(this.invitationLive(a), false, `${what}: the device is added, its invitation unspent`);
    if (known) return;
    assert.ok(isKlError(a.failure), `${what}: the wait failed with no typed error: ${inspect(a.failure)}`);
    // "Ask again" only when the ledger does not hold the device.
    if (isCode(a.failure, 'KL_DEVICE_CODE_INVALID'))
      assert.ok(!onLedger, `${what}: told to ask again, yet added`);
    // Given up on (the stop signal) only when nobody was left to approve the request.
    if (a.failure.message === 'stopped waiting for the approval')
      assert.ok(a.askedAfterKill, `${what}: a request to the killed server never learnt its fate`);
  }

  /** Whether the addition's device invitation can still be used (DATA/server.sqlite). */
  invitationLive(a: Addition): boolean {
    const proofs = new IdentityProofs(this.data);
    try {
      return live(proofs, a);
    } finally {
      proofs.close();
    }
  }

  /**
   * Resolves once the server took one of the additions' invitations (DATA/server.sqlite shows it
   * used: the server takes it before it writes the device), or once `until` settles.
   */
  async invitationTaken(additions: Addition[], until: Promise<unknown>): Promise<void> {
    let over = false;
    void until.finally(() => (over = true));
    const proofs = new IdentityProofs(this.data);
    try {
      while (!over && additions.every((a) => !a.invite || live(proofs, a)))
        await new Promise((r) => setTimeout(r, 1));
    } finally {
      proofs.close();
    }
  }

  /**
   * The new device asks again (`keyledger device request`, with its invitation if it had one), as a
   * person does who never saw "added".
   */
  async askAgain(a: Addition): Promise<void> {
    this.figures.askedAgain++;
    const reader = EmbeddedLedger.open({ dataDir: this.data });
    const onLedger = await holds(reader, a).finally(() => reader.close());
    if (a.invite) return this.inviteAgain(a, onLedger);
    const asked = await this.ask(a);
    if (onLedger) {
      // The wait reads the ledger first: found at once, with no approval.
      const added = await asked.wait({ signal: AbortSignal.timeout(10_000) });
      assert.equal(added.fingerprint, a.fingerprint);
      this.figures.foundAskingAgain++;
      return;
    }
    const session = await this.session(a.person);
    const stop = new AbortController();
    const waiting = asked.wait({ signal: stop.signal });
    try {
      await approve(session, asked);
      await waiting;
      this.figures.approvedAgain++;
    } finally {
      stop.abort(); // a failed approval leaves no wait behind
      waiting.catch(() => {});
      await session.close();
    }
  }

  /**
   * The same invitation again, from the same key: it adds the device whether or not the kill left it
   * taken (docs/protocol.md "Devices": taken for this key, it is this key asking again), and answers
   * with the addition the ledger holds when the device is there; taken, it is refused on any other
   * key's request.
   */
  private async inviteAgain(a: Addition, onLedger: boolean): Promise<void> {
    const spent = !this.invitationLive(a);
    if (spent) await this.otherKeyRefused(a);
    const asked = await this.ask(a, a.invite);
    const added = await asked.wait({ signal: AbortSignal.timeout(10_000) });
    assert.equal(added.fingerprint, a.fingerprint);
    if (onLedger) this.figures.invitationFoundAgain++;
    else if (spent) this.figures.invitationsSpentByKill++;
    else this.figures.invitedAgain++;
  }

  /** A taken invitation on another key's request for the same identity: refused, nothing added. */
  async otherKeyRefused(a: Addition): Promise<void> {
    const other = { home: await newClient(a.person.id), name: 'other' };
    await assert.rejects(this.ask(other, a.invite), (err) => isCode(err, 'KL_IDENTITY_PROOF_INVALID'));
    this.figures.otherKeyRefused++;
  }
}

/** Whether the addition's device invitation can still be used. */
function live(proofs: IdentityProofs, a: Addition): boolean {
  try {
    proofs.check(a.person.id, 'device', parseInvitation(a.invite!).code, Date.now());
    return true;
  } catch (err) {
    assert.ok(isCode(err, 'KL_IDENTITY_PROOF_INVALID'), String(err));
    return false;
  }
}

/** Approves `asked` in `session` as its person does: the check numbers and fingerprints agree. */
export async function approve(session: ClientSession, asked: DeviceRequest) {
  const pending = await session.pendingDevice(asked.code);
  assert.equal(pending.check, asked.check);
  assert.equal(pending.fingerprint, asked.fingerprint);
  return session.approveDevice(asked.code, pending);
}

/** Whether the ledger's record of the addition's identity holds its key, under its name. */
export async function holds(ledger: EmbeddedLedger, a: Addition): Promise<boolean> {
  const { record } = await ledger.getKeyRecord(a.person.id);
  const device = record && activeDevices(record).find((d) => d.fingerprint === a.fingerprint);
  if (device) assert.equal(device.name, a.name, `${a.fingerprint} added under another name`);
  return device !== undefined;
}

/**
 * The identity's record holds exactly the devices its person has (the registered key and each added
 * one), and each added key came by exactly one DeviceAdded.
 */
export async function exactDevices(ledger: EmbeddedLedger, person: Person, trial: number): Promise<void> {
  const { record } = await ledger.getKeyRecord(person.id);
  assert.ok(record, person.id);
  const fingerprints = (homes: ClientHome[]) => homes.map((h) => h.readIdentity().fingerprint).sort();
  const held = activeDevices(record)
    .map((d) => d.fingerprint)
    .sort();
  assert.deepEqual(held, fingerprints(person.devices), `trial ${trial}: ${person.id} holds other devices`);
  const added: string[] = [];
  for (const r of await ledger.transactionsFor(person.id, { limit: 1000 }))
    if (r.envelope.tx.type === 'DeviceAdded')
      added.push((r.envelope.tx.body as { fingerprint: string }).fingerprint);
  assert.deepEqual(
    added.sort(),
    fingerprints(person.devices.slice(1)),
    `trial ${trial}: ${person.id}: one DeviceAdded for each added device`,
  );
}
