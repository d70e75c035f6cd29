/**
 * Session commands: send, shell, session list|revoke, revoke-key (user); admin sessions,
 * revoke-session, revoke-key, alerts (operator, through the local admin socket); audit and
 * receipt verify (auditor).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ClientHome, defaultHome } from '../../client/home.js';
import { type ClientSession, connect } from '../../client/session.js';
import { type SignerCheck, verifyMessageSigner } from '../../client/signed-message.js';
import { type AuditEntry, readAuditTrail } from '../../ledger/audit-trail.js';
import { EmbeddedLedger } from '../../ledger/embedded-ledger.js';
import { chainIdOf, checkGenesis } from '../../ledger/genesis.js';
import { type TransactionReceipt, verifyTransactionReceipt } from '../../ledger/proofs.js';
import type { TxBodies } from '../../ledger/transactions.js';
import { EncryptedLog } from '../../pgp/encrypted-log.js';
import { readPublicKey } from '../../pgp/messages.js';
import { isKlError, KlError, wireText } from '../../protocol/errors.js';
import { sha256Hex } from '../../protocol/hash.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { checkShape, type ObjectShape } from '../../protocol/shape.js';
import { callAdmin } from '../../server/admin-socket.js';
import type { DroppedAlerts } from '../../server/alert-log.js';
import { info, out } from '../io.js';
import { logWriter } from '../log-writer.js';
import { resolvePassphrase } from '../passphrase.js';

const CLIENT_PASS = { envVar: 'KEYLEDGER_PASSPHRASE', prompt: 'Passphrase of your keyledger key: ' };

/**
 * Opens a session from the home. Alerts whose code is in `expected` (filled in by the caller, e.g.
 * `KL_KEY_REVOKED` once the owner has asked for its own revocation) are the answer the caller waits
 * for, not something gone wrong: they go to the client's log, not to the terminal as an ALERT.
 */
async function open(
  o: { home: string; passphraseFile?: string },
  expected: ReadonlySet<string> = new Set(),
): Promise<ClientSession> {
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const session = await connect({ home, ...(passphrase !== undefined ? { passphrase } : {}) });
  // The client keeps its own log too, encrypted to its own key (keyledger logs decrypt --home DIR).
  const log = await EncryptedLog.create(
    join(home.dir, 'logs', `client-${new Date().toISOString().replace(/[:.]/g, '-')}.log.enc`),
    await readPublicKey(identity.publicKey),
  );
  const line = logWriter(log, { report: (m) => info(`keyledger: ${m}`) });
  line(`session ${session.sessionId} started as ${session.id}`);
  session.on('alert', (a: { code: string; message: string }) => {
    if (!expected.has(a.code)) info(`ALERT ${a.code}: ${a.message}`);
    line(`alert ${a.code}: ${a.message}`);
  });
  session.on('renewed', (epoch: number) => line(`keys renewed, epoch ${epoch}`));
  session.on('close', (c: { code: number; resumable: boolean }) => {
    line(`connection closed (${c.code}${c.resumable ? ', resumable' : ''})`);
    if (!c.resumable) log.close();
  });
  return session;
}

/** `keyledger send MESSAGE [--sign] [--out FILE]` */
export async function send(o: {
  home: string;
  passphraseFile?: string;
  message?: string;
  sign?: boolean;
  out?: string;
  json?: boolean;
}): Promise<number> {
  if (o.message === undefined) throw new KlError('KL_BAD_INPUT', 'usage: keyledger send MESSAGE [--sign]');
  const session = await open(o);
  try {
    if (o.sign) {
      const r = await session.sendSigned(o.message);
      const record = { message: o.message, signature: r.signature, receipt: r.receipt };
      if (o.out) writeFileSync(o.out, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      if (o.json)
        out(
          JSON.stringify({
            verified: true,
            txid: r.txid,
            height: r.height,
            hash: r.hash,
            ...(o.out ? { file: o.out } : { record }),
          }),
        );
      else {
        out(`signed and anchored: block ${r.height}, transaction ${r.txid}`);
        out(`message hash ${r.hash} (receipt verified against the genesis)`);
        if (o.out)
          out(
            `message, signature and receipt saved to ${o.out}; check it with: keyledger receipt verify ${o.out}`,
          );
      }
    } else {
      const reply = await session.request(o.message);
      out(o.json ? JSON.stringify(reply) : typeof reply === 'string' ? reply : JSON.stringify(reply));
    }
  } finally {
    await session.close();
  }
  return 0;
}

/** `keyledger shell`: an interactive session. */
export async function shell(o: { home: string; passphraseFile?: string }): Promise<number> {
  const session = await open(o);
  out(
    `session ${session.sessionId} as ${session.id}. Type a message, or /sign TEXT, /note put NAME TEXT, /note get NAME, /notes, /renew, /sessions, /quit`,
  );
  session.on('renewed', (epoch: number) => info(`keys renewed (epoch ${epoch})`));
  session.on('message', (body: unknown) => out(`< ${JSON.stringify(body)}`));
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
  let ended = false;
  session.on('close', (c: { alert?: { code: string; message: string } | null; resumable: boolean }) => {
    if (c.resumable) {
      info('connection lost; resuming…');
      session.resume().then(
        () => info('resumed'),
        (err: Error) => {
          info(`cannot resume: ${err.message}`);
          rl.close();
        },
      );
      return;
    }
    ended = true;
    info(c.alert ? `session ended: ${c.alert.code} ${c.alert.message}` : 'session ended');
    rl.close();
  });
  rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    try {
      if (text === '/quit' || text === '/exit') break;
      if (text === '') {
        // nothing
      } else if (text.startsWith('/sign ')) {
        const r = await session.sendSigned(text.slice(6));
        out(`anchored in block ${r.height}, transaction ${r.txid}`);
      } else if (text === '/renew') {
        await session.renew();
      } else if (text === '/notes') {
        out(JSON.stringify(await session.request({ op: 'note.list' })));
      } else if (text.startsWith('/note put ')) {
        const [, , name, ...rest] = text.split(' ');
        out(JSON.stringify(await session.request({ op: 'note.put', name, text: rest.join(' ') })));
      } else if (text.startsWith('/note get ')) {
        out(JSON.stringify(await session.request({ op: 'note.get', name: text.split(' ')[2] })));
      } else if (text === '/sessions') {
        out(JSON.stringify(await session.request({ op: 'session.list' }), null, 2));
      } else {
        const reply = await session.request(text);
        out(typeof reply === 'string' ? reply : JSON.stringify(reply));
      }
    } catch (err) {
      info(`error ${(err as KlError).code ?? ''}: ${(err as Error).message}`);
    }
    if (ended) break;
    rl.prompt();
  }
  if (!ended) await session.close();
  return 0;
}

/** One of the caller's sessions, as `session.list` answers. */
interface ListedSession {
  sessionId: string;
  ip: string;
  createdAt: number;
  lastActivity: number;
  current: boolean;
}

const LISTED_SESSION_SHAPE: ObjectShape = {
  sessionId: { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ },
  ip: { type: 'string', max: 100 },
  createdAt: { type: 'integer', min: 0, max: 8.64e15 },
  lastActivity: { type: 'integer', min: 0, max: 8.64e15 },
  current: { type: 'boolean' },
};

/** The `session.list` answer, checked before anything of it is printed. */
function checkSessionList(value: unknown): ListedSession[] {
  if (!Array.isArray(value) || value.length > 10_000)
    throw new KlError('KL_PROTOCOL', 'the server answered the session list with something unexpected');
  return value.map((v, i) =>
    checkShape<ListedSession>(v, LISTED_SESSION_SHAPE, 'KL_PROTOCOL', `sessions[${i}]`),
  );
}

/** `keyledger session list|revoke [ID]` */
export async function sessionCommand(o: {
  home: string;
  passphraseFile?: string;
  sub?: string;
  target?: string;
  json?: boolean;
}): Promise<number> {
  const session = await open(o);
  try {
    if (o.sub === 'list') {
      const list = checkSessionList(await session.request<unknown>({ op: 'session.list' }));
      if (o.json) out(JSON.stringify(list.filter((s) => !s.current)));
      else
        for (const s of list.filter((x) => !x.current))
          out(
            `${s.sessionId}  ${wireText(s.ip)}  started ${new Date(s.createdAt).toISOString()}  last active ${new Date(s.lastActivity).toISOString()}`,
          );
      return 0;
    }
    if (o.sub === 'revoke') {
      if (!o.target)
        throw new KlError(
          'KL_BAD_INPUT',
          'usage: keyledger session revoke SESSION_ID (see keyledger session list)',
        );
      const r = await session.request<unknown>({ op: 'session.revoke', sessionId: o.target });
      if (typeof (r as { revoked?: unknown } | null)?.revoked !== 'string')
        throw new KlError('KL_PROTOCOL', 'the server answered the revocation with something unexpected');
      const { revoked } = r as { revoked: string };
      out(o.json ? JSON.stringify({ revoked }) : `revoked session ${wireText(revoked, 64)}`);
      return 0;
    }
    throw new KlError('KL_BAD_INPUT', 'usage: keyledger session list | keyledger session revoke SESSION_ID');
  } finally {
    if (!session.isClosed) await session.close();
  }
}

/** `keyledger revoke-key [--reason R]`: the owner revokes its key on the ledger. */
export async function revokeKey(o: {
  home: string;
  passphraseFile?: string;
  reason?: string;
  json?: boolean;
}): Promise<number> {
  const reason = (['compromised', 'superseded', 'retired', 'unspecified'] as const).find(
    (r) => r === (o.reason ?? 'compromised'),
  );
  if (!reason)
    throw new KlError('KL_BAD_INPUT', '--reason must be compromised, superseded, retired or unspecified');
  const expected = new Set<string>();
  const session = await open(o, expected);
  const fingerprint = new ClientHome(o.home).readIdentity().fingerprint;
  // The server ends every session of the identity with KL_KEY_REVOKED: here that is the success.
  expected.add('KL_KEY_REVOKED');
  let r: Awaited<ReturnType<ClientSession['revokeKey']>>;
  try {
    r = await session.revokeKey(reason);
  } catch (err) {
    expected.clear();
    if (!session.isClosed) await session.close().catch(() => undefined);
    throw err;
  }
  if (o.json) out(JSON.stringify({ ...r, id: session.id, fingerprint }));
  else {
    out(`key ${fingerprint} revoked on the ledger at block ${r.height} (transaction ${r.txid})`);
    out(`every session of ${session.id} has ended`);
    out(
      `to use ${session.id} again: make a new key (keyledger init --id ${session.id} --force${o.home !== defaultHome() ? ` --home ${o.home}` : ''}; ` +
        `the old key moves to ${join(o.home, 'retired')}/) and ask the operator for a new invitation, then keyledger register`,
    );
  }
  if (!session.isClosed) await session.close().catch(() => undefined);
  return 0;
}

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

/** `keyledger audit [--id IDENTITY] [--since T] [--json] --data DIR` */
export async function audit(o: {
  data: string;
  id?: string;
  since?: string;
  json?: boolean;
}): Promise<number> {
  const since = o.since ? Date.parse(o.since) : 0;
  if (Number.isNaN(since))
    throw new KlError('KL_BAD_INPUT', '--since must be a date such as 2026-11-26 or 2026-11-26T10:00:00Z');
  const subject = o.id ? sha256Hex(canonicalIdentity(o.id)) : undefined;
  let entries: AuditEntry[];
  try {
    // Opening checks the ledger, and every event is checked against its block's signed
    // transaction root before it is listed (docs/ledger.md "Integrity at start").
    const ledger = EmbeddedLedger.open({ dataDir: o.data });
    try {
      // Oldest first on the terminal, like a log.
      entries = (
        await readAuditTrail(ledger, { ...(subject ? { subject } : {}), since, limit: 10_000 })
      ).reverse();
    } finally {
      await ledger.close();
    }
  } catch (err) {
    if (!isKlError(err, 'KL_LEDGER_CORRUPT')) throw err;
    // Nothing is listed: no event of a damaged ledger is shown as genuine.
    if (o.json) out(JSON.stringify({ verified: false, code: err.code, reason: err.message }));
    else {
      out(`audit trail DAMAGED (${err.code}): ${err.message}`);
      out(`no event is listed; run keyledger ledger verify --data ${o.data} for a full report`);
    }
    return 1;
  }
  const rows = entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() }));
  if (o.json) out(JSON.stringify(rows));
  else
    for (const r of rows)
      out(
        `${r.at}  ${r.event.padEnd(18)} ${r.subject ? `${r.subject.slice(0, 16)}…` : ''.padEnd(17)}  block ${r.height}  ${r.detail ? JSON.stringify(r.detail) : ''}`,
      );
  return 0;
}

/**
 * `keyledger receipt verify FILE [--genesis FILE | --home DIR]`: checks a file from `keyledger send
 * --sign --out FILE`: the receipt against the genesis (offline), the message against the anchored
 * hash, and the OpenPGP signature against the key the ledger held for the signer at the anchoring
 * block (asks the server pinned in the home for the key record and its proofs). Says which checks
 * passed; exit 0 only when all did, 1 when one failed or could not be made.
 */
export async function receiptVerify(o: {
  file?: string;
  genesis?: string;
  home: string;
  json?: boolean;
}): Promise<number> {
  if (!o.file) throw new KlError('KL_BAD_INPUT', 'usage: keyledger receipt verify FILE [--genesis FILE]');
  const doc = JSON.parse(readFileSync(o.file, 'utf8')) as {
    message?: string;
    signature?: unknown;
    receipt?: TransactionReceipt;
  } & Partial<TransactionReceipt>;
  const receipt = (doc.receipt ?? doc) as TransactionReceipt;
  const home = new ClientHome(o.home);
  const pinned = home.hasServer() ? home.readServer() : null;
  const genesis = checkGenesis(
    o.genesis ? JSON.parse(readFileSync(o.genesis, 'utf8')) : (pinned ?? home.readServer()).genesis,
  );
  const check = verifyTransactionReceipt({ genesis, receipt });
  let messageOk: boolean | null = null;
  if (check.verified && typeof doc.message === 'string' && check.envelope.tx.type === 'HashAnchored') {
    messageOk =
      (check.envelope.tx.body as TxBodies['HashAnchored']).hash ===
      sha256Hex(Buffer.from(doc.message, 'utf8'));
  }
  // A signed-message file (it has a message or a signature) is genuine only with a valid signature.
  const signed = typeof doc.message === 'string' || doc.signature !== undefined;
  let signer: SignerCheck | null = null;
  if (signed && check.verified && messageOk !== false) {
    const id = (check.envelope.tx.body as TxBodies['HashAnchored']).id;
    if (check.envelope.tx.type !== 'HashAnchored' || typeof doc.message !== 'string' || !id)
      signer = { verified: false, reason: 'the receipt anchors no signed message of an identity' };
    else if (!pinned || pinned.chain !== chainIdOf(genesis))
      signer = {
        verified: false,
        reason:
          'not checked: the signer’s key comes from the ledger, and no server of this ledger is pinned in the home (--home DIR)',
      };
    else
      signer = await verifyMessageSigner({
        server: { url: pinned.url, genesis },
        receipt,
        id,
        message: doc.message,
        signature: doc.signature,
      });
  }
  const ok = check.verified && messageOk !== false && (!signed || signer?.verified === true);
  if (o.json)
    out(
      JSON.stringify({
        verified: ok,
        ...(check.verified
          ? { txid: check.txid, height: check.height, type: check.envelope.tx.type }
          : { reason: check.reason }),
        messageMatches: messageOk,
        ...(signed ? { signature: signer ?? { verified: false, reason: 'not checked' } } : {}),
      }),
    );
  else if (!check.verified) out(`receipt INVALID: ${check.reason}`);
  else if (messageOk === false) out('receipt INVALID: the message does not match the anchored hash');
  else {
    out(
      `receipt OK: ${check.envelope.tx.type} in block ${check.height}, transaction ${check.txid}, signed by the ledger's validators`,
    );
    if (messageOk) out('the message in the file is exactly the one anchored');
    if (signer?.verified)
      out(
        `signature OK: by ${signer.id}'s key ${signer.fingerprint}, the key the ledger held at block ${check.height} (key record proven at block ${signer.proofHeight}${signer.current ? '' : '; no longer its current key'})`,
      );
    else if (signer) out(`signature INVALID: ${signer.reason}`);
  }
  return ok ? 0 : 1;
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
  const session = await open(o);
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
