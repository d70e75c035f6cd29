/**
 * Test helpers for devices (docs/protocol.md "Devices"), at the wire: a new device's signed request
 * as its client makes it, posted to a server, and approved inside an enrolled device's session as its
 * person would (shown first, then approved).
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientHome } from '../../src/client/home.js';
import { openClientKey } from '../../src/client/identity.js';
import type { ClientSession } from '../../src/client/session.js';
import { type DeviceAdditionStatement, statementBytes } from '../../src/protocol/statements.js';
import type { RunningServer } from '../../src/server/app.js';
import { CLIENT_PASSPHRASE } from './server.js';

/** The body of POST /v1/devices/requests for `id`, signed by the key in `home` (a fresh home). */
export async function deviceRequest(
  server: RunningServer,
  home: ClientHome,
  id: string,
  name: string,
  change: Partial<DeviceAdditionStatement> = {},
): Promise<{ statement: string; publicKey: string; signature: string }> {
  const { identity, key } = await openClientKey(home, CLIENT_PASSPHRASE);
  const statement: DeviceAdditionStatement = {
    type: 'keyledger/add-device',
    v: 1,
    chain: server.ledger.chainId,
    id,
    name,
    fingerprint: identity.fingerprint,
    time: Date.now(),
    ...change,
  };
  const signature = await key.signDetached(statementBytes(statement), new Date(statement.time));
  return { statement: JSON.stringify(statement), publicKey: identity.publicKey, signature };
}

/** POSTs `body` to `path` on `server`: the status and the JSON answer. */
export async function postJson<T>(
  server: RunningServer,
  path: string,
  body: unknown,
): Promise<{ status: number; body: T }> {
  const r = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as T };
}

/**
 * Adds the key in `home` to `id` as the device `name`: its request, approved in `session` (an
 * enrolled device's); then the new home takes the ledger pins of `pinsFrom` (what `device request`
 * writes itself), so it can log in.
 */
export async function approvedDevice(o: {
  server: RunningServer;
  session: ClientSession;
  home: ClientHome;
  id: string;
  name: string;
  pinsFrom: ClientHome;
}): Promise<void> {
  const asked = await postJson<{ code: string }>(
    o.server,
    '/v1/devices/requests',
    await deviceRequest(o.server, o.home, o.id, o.name),
  );
  assert.equal(asked.status, 201, JSON.stringify(asked.body));
  const approved = await o.session.approveDevice(
    asked.body.code,
    await o.session.pendingDevice(asked.body.code),
  );
  assert.equal(approved.verified, true);
  pinLike(o.pinsFrom, o.home);
}

/** `to` takes the ledger pins of `from` (server.json). */
export function pinLike(from: ClientHome, to: ClientHome): void {
  copyFileSync(join(from.dir, 'server.json'), join(to.dir, 'server.json'));
}
