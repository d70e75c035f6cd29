/**
 * The operator's admin commands, through the running server's DATA/admin.sock: sessions, alerts,
 * revocations and the admin role (`keyledger admin dashboard` is dashboard-link.ts).
 */

import { dataPaths, readGenesisFile } from '../../ledger/data-dir.js';
import {
  checkGovernanceProposal,
  type GovernanceProposal,
  signGovernanceProposal,
} from '../../ledger/governance-proposal.js';
import type { TransactionReceipt } from '../../ledger/proofs.js';
import { openKeyFile } from '../../ledger/sealed-key-file.js';
import type { IdentityRole } from '../../ledger/transactions.js';
import { KlError, wireText } from '../../protocol/errors.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { callAdmin } from '../../server/admin-socket.js';
import type { DroppedAlerts } from '../../server/alert-log.js';
import type { ChangeRequest, RegistrarView } from '../../server/server-admission.js';
import { info, out } from '../io.js';
import { type PassphraseSource, resolvePassphrase } from '../passphrase.js';
import { readJsonFile, writeJsonFile } from './genesis.js';

/** `keyledger admin sessions|revoke-session|revoke-key|alerts` through DATA/admin.sock */
export async function adminSessionCommand(
  o: { data: string; reason?: string; json?: boolean } & (
    | { sub: 'sessions' | 'alerts' }
    | { sub: 'revoke-session' | 'revoke-key'; target: string }
    | { sub: 'revoke-device'; target: string; device: string }
  ),
): Promise<number> {
  if (o.sub === 'sessions') {
    const list = await callAdmin<Array<Record<string, unknown>>>(o.data, 'GET', '/sessions');
    if (o.json) out(JSON.stringify(list));
    else if (list.length === 0) out('no live sessions');
    else
      for (const s of list)
        out(
          `${wireText(String(s.sessionId), 40)}  ${wireText(String(s.id), 254).padEnd(30)} key …${wireText(String(s.fingerprint ?? ''), 64).slice(-16)}  ${wireText(String(s.ip), 100)}  epoch ${s.epoch}  frames ${s.framesIn}/${s.framesOut}  ${s.connected ? 'connected' : 'disconnected'}  last active ${new Date(Number(s.lastActivity)).toISOString()}`,
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
      for (const a of list)
        out(
          `${new Date(Number(a.at)).toISOString()}  ${wireText(String(a.kind), 40)}  ${wireText(String(a.id), 254)}  ${wireText(String(a.detail))}`,
        );
    return 0;
  }
  if (o.sub === 'revoke-session') {
    await callAdmin(o.data, 'POST', `/sessions/${encodeURIComponent(o.target)}/revoke`);
    out(o.json ? JSON.stringify({ revoked: o.target }) : `session ${o.target} revoked`);
    return 0;
  }
  if (o.sub === 'revoke-device') {
    const id = canonicalIdentity(o.target);
    const r = await callAdmin<{ fingerprint: string; name: string | null; receipt: TransactionReceipt }>(
      o.data,
      'POST',
      `/keys/${encodeURIComponent(id)}/devices/${encodeURIComponent(o.device)}/revoke`,
      { reason: o.reason ?? 'compromised', admin: process.env.KEYLEDGER_ADMIN ?? 'admin@localhost' },
    );
    const device = `${r.name ? `${wireText(r.name, 40)} ` : ''}(${wireText(r.fingerprint, 64)})`;
    out(
      o.json
        ? JSON.stringify({
            revoked: id,
            fingerprint: r.fingerprint,
            name: r.name,
            txid: r.receipt.txid,
            height: r.receipt.block.header.height,
          })
        : `device ${device} of ${id} revoked: block ${r.receipt.block.header.height}, transaction ${r.receipt.txid}; its sessions have ended`,
    );
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
  }
  return 0;
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

/** `keyledger admin registrar list|add|remove` through DATA/admin.sock (server-admission.ts). */
export async function adminRegistrar(
  o: { data: string; json?: boolean } & ({ sub: 'list' } | { sub: 'add' | 'remove'; target: string }),
): Promise<number> {
  if (o.sub === 'list') {
    const list = await callAdmin<RegistrarView[]>(o.data, 'GET', '/registrars');
    if (o.json) out(JSON.stringify(list));
    else
      for (const r of list)
        out(
          `${r.keyId}  ${wireText(r.name, 64).padEnd(20)} ${r.active ? 'active ' : 'removed'}  since block ${r.since}${r.server ? `  server ${r.server.fingerprint}${r.server.url ? ` ${wireText(r.server.url, 200)}` : ''}${r.server.account ? ` account ${r.server.account}` : ''}` : ''}`,
        );
    return 0;
  }
  let result: { receipt: TransactionReceipt; registrar: RegistrarView };
  if (o.sub === 'add') {
    const request = readJsonFile(o.target, 'join request');
    result = await callAdmin(o.data, 'POST', '/registrars', { request });
  } else result = await callAdmin(o.data, 'POST', `/registrars/${encodeURIComponent(o.target)}/remove`);
  const { registrar, receipt } = result;
  const height = receipt.block.header.height;
  if (o.json) out(JSON.stringify({ ...registrar, txid: receipt.txid, height }));
  else
    out(
      o.sub === 'add'
        ? `server ${wireText(registrar.name, 64)} admitted (registrar ${registrar.keyId}): block ${height}, transaction ${receipt.txid}`
        : `registrar ${wireText(registrar.name, 64)} (${registrar.keyId}) removed: block ${height}, transaction ${receipt.txid}; its account can no longer write`,
    );
  return 0;
}

/** The change `keyledger admin governance propose WHAT…` names. */
function changeOf(what: string[], role: string): ChangeRequest {
  const [noun, verb, target, ...rest] = what;
  if (target && rest.length === 0) {
    if (noun === 'registrar' && verb === 'add')
      return { type: 'RegistrarAdded', request: readJsonFile(target, 'join request') };
    if (noun === 'registrar' && verb === 'remove') return { type: 'RegistrarRemoved', which: target };
    if (noun === 'role' && (verb === 'grant' || verb === 'revoke'))
      return {
        type: verb === 'grant' ? 'RoleGranted' : 'RoleRevoked',
        id: target,
        role: role as IdentityRole,
      };
  }
  throw new KlError(
    'KL_BAD_INPUT',
    'propose one of: registrar add FILE | registrar remove KEYID|NAME | role grant IDENTITY | role revoke IDENTITY',
  );
}

/**
 * One `path: value` line per field of `value`, nested objects flattened (`node.validator.keyId`);
 * a public key is shown by its size (its id or fingerprint is a field beside it).
 */
function describeFields(value: unknown, path = ''): string[] {
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).flatMap(([key, inner]) =>
      describeFields(inner, path ? `${path}.${key}` : key),
    );
  const text = String(value);
  if (/publicKey$/.test(path)) return [`${path}: (a key of ${text.length} characters)`];
  return [`${path}: ${wireText(text, 200)}`];
}

/**
 * `keyledger admin governance propose | sign | submit` (docs/ledger.md "Governance"): a change a
 * quorum of validators approves, proposed and submitted through the governor's DATA/admin.sock,
 * signed offline by each validator's data directory.
 */
export async function adminGovernance(
  o: { data: string; out?: string; json?: boolean } & PassphraseSource &
    (
      | { sub: 'propose'; what: string[]; role?: string }
      | { sub: 'sign'; file: string }
      | { sub: 'submit'; files: string[] }
    ),
): Promise<number> {
  if (o.sub === 'propose') {
    const proposal = await callAdmin<GovernanceProposal>(o.data, 'POST', '/governance/proposals', {
      change: changeOf(o.what, o.role ?? 'admin'),
    });
    const file = o.out ?? 'governance-proposal.json';
    writeJsonFile(file, proposal);
    out(
      o.json
        ? JSON.stringify({ file, type: proposal.type, govSeq: proposal.body.govSeq })
        : `${proposal.type} proposed at governance sequence ${proposal.body.govSeq}, written to ${file}\nnext: each validator's organisation runs \`keyledger admin governance sign ${file} --data DIR\``,
    );
    return 0;
  }
  if (o.sub === 'sign') {
    const proposal = checkGovernanceProposal(readJsonFile(o.file, 'governance proposal'));
    // Every field, so the validator sees what it approves (keys by their id beside them).
    out(`approving ${proposal.type} on ledger ${proposal.chain}:`);
    for (const line of describeFields(proposal.body)) out(`  ${line}`);
    const { genesis } = readGenesisFile(dataPaths(o.data).genesis);
    const validator = openKeyFile(dataPaths(o.data).validatorKey, await resolvePassphrase(o), 'validator');
    const signature = signGovernanceProposal(proposal, genesis, validator);
    const file = o.out ?? `governance-signature-${validator.keyId.slice(0, 8)}.json`;
    writeJsonFile(file, signature);
    out(o.json ? JSON.stringify({ file, validator: validator.keyId }) : `approval written to ${file}`);
    return 0;
  }
  const [proposalFile, ...sigFiles] = o.files;
  const r = await callAdmin<{ receipt: TransactionReceipt; type: string }>(o.data, 'POST', '/governance', {
    proposal: readJsonFile(proposalFile!, 'governance proposal'),
    signatures: sigFiles.map((f) => readJsonFile(f, 'governance signature')),
  });
  const height = r.receipt.block.header.height;
  out(
    o.json
      ? JSON.stringify({ type: r.type, txid: r.receipt.txid, height })
      : `${r.type} written: block ${height}, transaction ${r.receipt.txid}`,
  );
  return 0;
}
