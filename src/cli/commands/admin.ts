/**
 * Admin commands: sessions, alerts, revocations and the admin role through DATA/admin.sock (the
 * operator), and the one-time dashboard link (an identity with the admin role).
 */
import { spawn } from 'node:child_process';
import type { TransactionReceipt } from '../../ledger/proofs.js';
import { KlError } from '../../protocol/errors.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { callAdmin } from '../../server/admin-socket.js';
import type { DroppedAlerts } from '../../server/alert-log.js';
import { info, out } from '../io.js';
import { openSession } from './open-session.js';

/** `keyledger admin sessions|revoke-session|revoke-key|alerts` through DATA/admin.sock */
export async function adminSessionCommand(o: {
  data: string;
  sub: string;
  target?: string;
  reason?: string;
  json?: boolean;
}): Promise<number> {
  if (o.sub === 'sessions') {
    const list = await callAdmin<Array<Record<string, unknown>>>(o.data, 'GET', '/sessions');
    if (o.json) out(JSON.stringify(list));
    else if (list.length === 0) out('no live sessions');
    else
      for (const s of list)
        out(
          `${s.sessionId}  ${String(s.id).padEnd(30)} ${s.ip}  epoch ${s.epoch}  frames ${s.framesIn}/${s.framesOut}  ${s.connected ? 'connected' : 'disconnected'}  last active ${new Date(Number(s.lastActivity)).toISOString()}`,
        );
    return 0;
  }
  if (o.sub === 'alerts') {
    const list = await callAdmin<Array<Record<string, unknown>>>(o.data, 'GET', '/alerts');
    const dropped = await callAdmin<DroppedAlerts>(o.data, 'GET', '/alerts/dropped');
    // The server keeps the newest alerts; older ones pushed out are counted, and said (on stderr
    // with --json, whose stdout stays the list).
    if (dropped.total > 0) {
      const kinds = Object.entries(dropped.byKind).map(([k, n]) => `${k} ${n}`);
      (o.json ? info : out)(
        `${dropped.total} older alert(s) dropped from memory (${kinds.join(', ')}); the newest are listed`,
      );
    }
    if (o.json) out(JSON.stringify(list));
    else if (list.length === 0) out('no alerts');
    else
      for (const a of list) out(`${new Date(Number(a.at)).toISOString()}  ${a.kind}  ${a.id}  ${a.detail}`);
    return 0;
  }
  if (!o.target)
    throw new KlError(
      'KL_BAD_INPUT',
      `usage: keyledger admin ${o.sub} ${o.sub === 'revoke-key' ? 'IDENTITY' : 'SESSION_ID'} --data DIR`,
    );
  if (o.sub === 'revoke-session') {
    await callAdmin(o.data, 'POST', `/sessions/${encodeURIComponent(o.target)}/revoke`);
    out(o.json ? JSON.stringify({ revoked: o.target }) : `session ${o.target} revoked`);
    return 0;
  }
  if (o.sub === 'revoke-key') {
    const id = canonicalIdentity(o.target);
    const r = await callAdmin<{ receipt: TransactionReceipt }>(
      o.data,
      'POST',
      `/keys/${encodeURIComponent(id)}/revoke`,
      { reason: o.reason ?? 'compromised', admin: process.env.KEYLEDGER_ADMIN ?? 'admin@localhost' },
    );
    out(
      o.json
        ? JSON.stringify({ revoked: id, txid: r.receipt.txid, height: r.receipt.block.header.height })
        : `key of ${id} revoked: block ${r.receipt.block.header.height}, transaction ${r.receipt.txid}; its sessions have ended`,
    );
    return 0;
  }
  throw new KlError(
    'KL_BAD_INPUT',
    'usage: keyledger admin sessions|alerts|revoke-session ID|revoke-key IDENTITY --data DIR',
  );
}

/** `keyledger admin grant|ungrant IDENTITY`: the admin role on the ledger, through DATA/admin.sock. */
export async function adminGrant(o: {
  data: string;
  id: string;
  grant: boolean;
  json?: boolean;
}): Promise<number> {
  const r = await callAdmin<{ id: string; admin: boolean; receipt: TransactionReceipt }>(
    o.data,
    'POST',
    `/admins/${encodeURIComponent(o.id)}/${o.grant ? 'grant' : 'revoke'}`,
  );
  out(
    o.json
      ? JSON.stringify({
          id: r.id,
          admin: r.admin,
          txid: r.receipt.txid,
          height: r.receipt.block.header.height,
        })
      : `${r.id} ${r.admin ? 'now holds' : 'no longer holds'} the admin role: block ${r.receipt.block.header.height}, transaction ${r.receipt.txid}`,
  );
  return 0;
}

/**
 * `keyledger admin dashboard`: log in with the admin's key (the normal handshake), ask for a one-time
 * dashboard link inside the session, print it, and open it in a browser when there is one.
 */
export async function adminDashboard(o: {
  home: string;
  passphraseFile?: string;
  open?: boolean;
  json?: boolean;
}): Promise<number> {
  const session = await openSession(o);
  let link: { url: string; expiresAt: number };
  try {
    link = await session.request<{ url: string; expiresAt: number }>({ op: 'admin.dashboard-link' });
  } finally {
    if (!session.isClosed) await session.close();
  }
  if (o.json) out(JSON.stringify(link));
  else {
    out(link.url);
    info(`one-time link for ${session.id}, valid until ${new Date(link.expiresAt).toISOString()}`);
  }
  const browser =
    process.env.BROWSER ?? (process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : '');
  if (o.open !== false && browser && !process.env.CI) {
    const child = spawn(browser, [link.url], { detached: true, stdio: 'ignore' });
    child.on('error', () => info('(could not start a browser: open the link above yourself)'));
    child.unref();
  }
  return 0;
}
