/**
 * `keyledger device request | approve | list | revoke`: the devices of an identity (docs/protocol.md
 * "Devices"). A new device asks with its own key and waits; a device already enrolled approves it by
 * the code the new device shows, lists the devices the ledger proves, and revokes one.
 */
import type { DeviceRequestProgress } from '../../client/device-request.js';
import type { DeviceList, DeviceLogin, DeviceLogins } from '../../client/devices.js';
import { ClientHome } from '../../client/home.js';
import type { ClientSession } from '../../client/session.js';
import { findDevice } from '../../ledger/devices.js';
import { sameCheckNumber } from '../../protocol/device-check.js';
import { KlError } from '../../protocol/errors.js';
import { ask, confirm, info, out } from '../io.js';
import { REVOCATION_REASONS } from '../options.js';
import { resolvePassphrase } from '../passphrase.js';
import { CLIENT_PASS, type ClientOptions, homeFlag } from './client-options.js';

/** What `device` subcommands take besides the client options. */
export type DeviceCommand =
  | { sub: 'request'; chain?: string; invite?: string; yes?: boolean }
  | { sub: 'approve'; code: string; check?: string; yes?: boolean }
  | { sub: 'list' }
  | { sub: 'revoke'; target: string; reason?: string; yes?: boolean };

/** `keyledger device …` */
export async function deviceCommand(o: ClientOptions & DeviceCommand): Promise<number> {
  switch (o.sub) {
    case 'request':
      return request(o);
    case 'approve':
      return approve(o);
    case 'list':
      return list(o);
    case 'revoke':
      return revoke(o);
  }
}

/** Opens a session from the home (loaded only by the subcommands that log in: it writes a log). */
async function openSession(...a: Parameters<typeof import('./open-session.js').openSession>) {
  return (await import('./open-session.js')).openSession(...a);
}

/** A time as people read it in these lines. */
const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** `keyledger device request`: the new device's side. */
async function request(
  o: ClientOptions & { chain?: string; invite?: string; yes?: boolean },
): Promise<number> {
  if (!o.server) throw new KlError('KL_BAD_INPUT', '--server URL is required (a server of your ledger)');
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const { requestDevice } = await import('../../client/device-request.js');
  const asked = await requestDevice({
    home,
    server: o.server,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(o.chain ? { expectChain: o.chain } : {}),
    ...(o.invite ? { invite: o.invite } : {}),
    onServer: async ({ chain, fingerprint, trust }) => {
      if (trust === 'pinned') return;
      // Nothing authenticated this server: a forged one could pin this device to a ledger of its own.
      info(
        `keyledger: trusting ${o.server} on first use — no --chain was given, so this server is not authenticated.`,
      );
      info(
        `           its ledger ${chain}, server key ${fingerprint}: compare the ledger with what keyledger device list shows on your other device.`,
      );
      if (o.yes) return;
      if (await confirm('send the request to this server? [y/N] ')) return;
      throw new KlError(
        'KL_SERVER_UNPINNED',
        'not sent: give --chain ID (keyledger device list shows it on your other device), or --yes to accept this server unauthenticated',
      );
    },
  });
  if (o.json)
    out(
      JSON.stringify({
        status: 'pending',
        code: asked.code,
        check: asked.check,
        expiresAt: asked.expiresAt,
        id: identity.id,
        name: asked.name,
        fingerprint: asked.fingerprint,
        chain: asked.chain,
        trust: asked.trust,
      }),
    );
  else {
    out(`code         ${asked.code}   (valid until ${at(asked.expiresAt)})`);
    if (!o.invite) out(`check        ${asked.check}   (type it on the approving device when it asks)`);
    out(`device       ${asked.name} of ${identity.id}`);
    out(`fingerprint  ${asked.fingerprint}`);
    out(
      `ledger       ${asked.chain} (${asked.trust === 'pinned' ? (o.invite ? 'pinned by the invitation' : 'pinned by --chain') : 'trusted on first use'})`,
    );
    if (!o.invite)
      out(
        `on a device of ${identity.id} already enrolled, run: keyledger device approve ${asked.code}  (and check that it shows this fingerprint)`,
      );
  }
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  const onPoll = (p: DeviceRequestProgress) => {
    const left = Math.max(0, Math.round((p.expiresAt - Date.now()) / 1000));
    const line = `waiting for the approval … ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (Date.now() - lastLine >= 30_000) {
      lastLine = Date.now();
      info(line);
    }
  };
  let added: Awaited<ReturnType<typeof asked.wait>>;
  try {
    added = await asked.wait({ onPoll });
  } finally {
    if (tty) process.stderr.write('\r\x1b[2K');
  }
  if (o.json) out(JSON.stringify({ status: 'added', ...added }));
  else {
    out(
      `added        ${added.name} to ${added.id} at block ${added.height}, transaction ${added.txid} (receipt verified against the genesis${asked.trust === 'first-use' ? ' the server presented: trusted on first use, compare the ledger id with keyledger device list on your other device' : ''})`,
    );
    out(`server key   ${added.server.fingerprint} (pinned; matches the ledger genesis)`);
    info(`next: keyledger login${homeFlag(home.dir)}`);
  }
  return 0;
}

/** `keyledger device approve CODE`: an enrolled device adds the device that shows CODE. */
async function approve(o: ClientOptions & { code: string; check?: string; yes?: boolean }): Promise<number> {
  const session = await openSession(o);
  try {
    const pending = await session.pendingDevice(o.code);
    const chain = new ClientHome(o.home).readServer().chain;
    info(`device       ${pending.name} asks to join ${session.id}`);
    info(`fingerprint  ${pending.fingerprint}   (the new device printed it: compare them)`);
    info(`ledger       ${chain}`);
    // The check number binds what this device was shown to what the new device sent: typed, not
    // glanced at, so a request swapped on the way (docs/protocol.md "Devices") is not approved.
    const typed =
      o.check ?? (await ask('the check number the new device shows (approve only a device you hold now): '));
    if (typed === undefined)
      throw new KlError(
        'KL_BAD_INPUT',
        'not approved: type the check number on the terminal, or give --check NUMBER',
      );
    if (!sameCheckNumber(typed, pending.check))
      throw new KlError(
        'KL_BAD_INPUT',
        'not approved: the check number is not the one this request gives — the request may have been swapped on the way (or mistyped); ask again on the new device',
      );
    if (!o.yes && !(await confirm(`add ${pending.name} as a device of ${session.id}? [y/N] `)))
      throw new KlError(
        'KL_BAD_INPUT',
        'not approved: answer y on the terminal, or give --yes once you have compared the fingerprint',
      );
    const r = await session.approveDevice(o.code, pending);
    if (o.json)
      out(JSON.stringify({ ...r, id: session.id, name: pending.name, fingerprint: pending.fingerprint }));
    else
      out(
        `device ${pending.name} (${pending.fingerprint}) added to ${session.id} at block ${r.height}, transaction ${r.txid} (receipt verified)`,
      );
    return 0;
  } finally {
    if (!session.isClosed) await session.close().catch(() => undefined);
  }
}

/** `keyledger device list`: the devices the ledger proves, and each one's last login. */
async function list(o: ClientOptions): Promise<number> {
  const home = new ClientHome(o.home);
  const { listDevices } = await import('../../client/devices.js');
  const r = await listDevices({ home, ...(o.server !== undefined ? { server: o.server } : {}) });
  const chain = home.readServer().chain;
  const logins = await lastLogins(o, r);
  const loginOf = (fingerprint: string) => (logins.verified ? logins.byDevice.get(fingerprint) : undefined);
  if (o.json) {
    out(
      JSON.stringify({
        id: r.id,
        status: r.status,
        chain,
        height: r.height,
        devices: r.devices.map(({ publicKey: _publicKey, ...d }) => ({
          ...d,
          ...(logins.verified ? { lastLogin: loginOf(d.fingerprint) ?? null } : {}),
        })),
        history: r.history,
        recoveryKey: r.record.recovery
          ? { fingerprint: r.record.recovery.fingerprint, height: r.record.recovery.added.height }
          : null,
        lastLogins: logins.verified
          ? { verified: true, searched: logins.searched }
          : { verified: false, code: logins.code, reason: logins.reason },
      }),
    );
    return 0;
  }
  out(`devices of ${r.id} (state proof verified at block ${r.height}; ledger ${chain})`);
  if (r.devices.length === 0) out(`  none: the identity is ${r.status}`);
  for (const d of r.devices) {
    const approved = d.approvedBy
      ? 'device' in d.approvedBy
        ? `, approved by ${d.approvedBy.device}`
        : 'admin' in d.approvedBy
          ? `, added by the operator ${d.approvedBy.admin}`
          : `, enrolled by the recovery key ${d.approvedBy.recovery}`
      : '';
    out(
      `${d.current ? '* ' : '  '}${(d.name ?? '(unnamed)').padEnd(20)} ${d.fingerprint}  added at block ${d.added.height}${approved}${d.current ? '  (this device)' : ''}`,
    );
    if (logins.verified) out(`      ${loginLine(loginOf(d.fingerprint), logins.searched, d.current)}`);
  }
  out(lastLoginsNote(logins));
  const recovery = r.record.recovery;
  out(
    recovery
      ? `recovery key ${recovery.fingerprint} (set at block ${recovery.added.height})`
      : 'no recovery key (keyledger recovery-key create makes one)',
  );
  if (r.history.length > 0) {
    out('earlier keys:');
    for (const h of r.history)
      out(
        `  ${(h.device ?? '(unnamed)').padEnd(20)} ${h.fingerprint}  ${h.reason} at block ${h.replaced.height}`,
      );
  }
  return 0;
}

/** The devices' last logins, or why they are not shown. */
type LastLogins = DeviceLogins | { verified: false; code: string; reason: string };

/**
 * The last login of each device of `r`, read in a session of this device (docs/protocol.md
 * "Devices", `device.logins`): every event verified against the pinned genesis. A refusal (no
 * passphrase, a server that does not answer it, an answer that does not verify) costs the column,
 * not the proven list.
 */
async function lastLogins(o: ClientOptions, r: DeviceList): Promise<LastLogins> {
  if (r.devices.length === 0)
    return { verified: false, code: 'KL_NOT_REGISTERED', reason: `the identity is ${r.status}` };
  let session: ClientSession | undefined;
  try {
    session = await openSession(o);
    const { readDeviceLogins } = await import('../../client/devices.js');
    return await readDeviceLogins({
      session,
      server: new ClientHome(o.home).readServer(),
      id: r.id,
      devices: r.devices.map((d) => d.fingerprint),
    });
  } catch (err) {
    if (!(err instanceof KlError)) throw err;
    const reason =
      err.code === 'KL_NOT_FOUND'
        ? 'this server does not answer device.logins (it reads them from the audit trail)'
        : err.message;
    return { verified: false, code: err.code, reason };
  } finally {
    if (session && !session.isClosed) await session.close().catch(() => undefined);
  }
}

/** One device's last-login line. */
function loginLine(
  login: DeviceLogin | undefined,
  searched: DeviceLogins['searched'],
  current: boolean,
): string {
  const before = current ? ' before this listing' : '';
  return login
    ? `last login${before} ${at(login.at)} (block ${login.height})`
    : `no login${before} on the ledger since block ${searched.fromHeight}`;
}

/** What the last logins shown are, or why there are none. */
function lastLoginsNote(logins: LastLogins): string {
  return logins.verified
    ? `last logins: session starts on the ledger's audit trail, each verified against the genesis (blocks ${logins.searched.fromHeight}–${logins.searched.toHeight} searched; the server picks them, so a later login it left out would not show)`
    : `last logins not shown: ${logins.code}: ${logins.reason}`;
}

/** `keyledger device revoke FPR|NAME`: revokes one device key of the identity. */
async function revoke(
  o: ClientOptions & { target: string; reason?: string; yes?: boolean },
): Promise<number> {
  const reason = REVOCATION_REASONS.find((r) => r === (o.reason ?? 'retired'));
  if (!reason)
    throw new KlError('KL_BAD_INPUT', '--reason must be compromised, superseded, retired or unspecified');
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  home.readServer(); // not registered: said before the passphrase is asked for
  const { listDevices } = await import('../../client/devices.js');
  const proven = await listDevices({ home, ...(o.server !== undefined ? { server: o.server } : {}) });
  const device = findDevice(proven.record, o.target);
  if (!device)
    throw new KlError(
      'KL_DEVICE_UNKNOWN',
      `${identity.id} has no active device ${o.target} on the ledger (keyledger device list shows them)`,
    );
  const own = device.fingerprint === identity.fingerprint;
  const label = `${device.name ?? '(unnamed)'} (${device.fingerprint})`;
  if (!o.yes) {
    info(
      `revoking ${label} ends its sessions${own ? ': it is THIS device, which then cannot log in any more' : ''}.`,
    );
    if (!(await confirm(`revoke ${label}? [y/N] `)))
      throw new KlError('KL_BAD_INPUT', 'not revoked: answer y on the terminal, or give --yes');
  }
  const expected = new Set<string>();
  const session: ClientSession = await openSession(o, expected);
  // Revoking this device ends this session too: that alert is the success here, not an ALERT.
  if (own) expected.add('KL_KEY_REVOKED');
  try {
    const r = await session.revokeDevice(device.fingerprint, reason);
    if (o.json)
      out(
        JSON.stringify({ ...r, id: identity.id, name: device.name, fingerprint: device.fingerprint, reason }),
      );
    else {
      out(
        `device ${label} revoked on the ledger at block ${r.height} (transaction ${r.txid}); its sessions have ended`,
      );
      if (own)
        out(
          `this device's key is revoked: to use ${identity.id} here again, make a new key (keyledger init --id ${identity.id} --device NAME --force${homeFlag(home.dir)}) and ask to be added (keyledger device request)`,
        );
    }
    return 0;
  } finally {
    if (!session.isClosed) await session.close().catch(() => undefined);
  }
}
