/**
 * What an operator reads of a server's connection to the engine that orders its ledger (an EVM
 * chain or an etcd cluster): `/readyz` with its `chain` block, one `/metrics` gauge, and the
 * `chain` operator alerts (docs/deploy-besu.md "The follower", docs/deploy-etcd.md "Failures").
 */
import assert from 'node:assert/strict';
import type { RunningServer } from '../../src/server/app.js';

/** The `chain` block of `/readyz` (null on the embedded engine). */
export interface ReadyChain {
  head: number | null;
  read: number | null;
  lag: number | null;
  stalenessMs: number;
  fault: string | null;
  queued: number;
  refusedWrites: number;
}

const urlOf = (server: string | { url: string }) => (typeof server === 'string' ? server : server.url);

/** `GET /readyz` of `server` (a server or its URL): the status and the body. */
export async function readyz(
  server: string | { url: string },
): Promise<{ status: number; body: { ready: boolean; chain: ReadyChain } }> {
  const r = await fetch(`${urlOf(server)}/readyz`);
  return { status: r.status, body: (await r.json()) as { ready: boolean; chain: ReadyChain } };
}

/** The value of the gauge `name` on `/metrics` of `server` (fails the test if it is missing). */
export async function metric(server: string | { url: string }, name: string): Promise<number> {
  const text = await (await fetch(`${urlOf(server)}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `metric ${name} missing`);
  return Number(m[1]);
}

/** The details of the server's `chain` operator alerts, oldest first. */
export const chainAlerts = (server: Pick<RunningServer, 'alerts'>) =>
  server.alerts
    .list()
    .filter((a) => a.kind === 'chain')
    .map((a) => a.detail);
