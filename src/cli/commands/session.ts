/**
 * `keyledger session list|revoke` and `keyledger revoke-key`: the user's sessions and key.
 */
import { join } from 'node:path';
import { ClientHome, defaultHome } from '../../client/home.js';
import type { ClientSession } from '../../client/session.js';
import { KlError, wireText } from '../../protocol/errors.js';
import { out } from '../io.js';
import { checkSessionList, formatSessionList } from '../session-list.js';
import { openSession } from './open-session.js';

/** `keyledger session list` or `keyledger session revoke SESSION_ID` */
export async function sessionCommand(
  o: { home: string; passphraseFile?: string; server?: string; json?: boolean } & (
    | { sub: 'list' }
    | { sub: 'revoke'; target: string }
  ),
): Promise<number> {
  const session = await openSession(o);
  try {
    if (o.sub === 'list') {
      const list = checkSessionList(await session.request<unknown>({ op: 'session.list' }));
      // The session this command opened to ask is not one of "your other sessions".
      const others = list.filter((s) => !s.current);
      if (o.json) out(JSON.stringify(others));
      else if (others.length === 0) out(`no other sessions of ${session.id}`);
      else for (const line of formatSessionList(others, Date.now())) out(line);
      return 0;
    }
    const r = await session.request<unknown>({ op: 'session.revoke', sessionId: o.target });
    if (typeof (r as { revoked?: unknown } | null)?.revoked !== 'string')
      throw new KlError('KL_PROTOCOL', 'the server answered the revocation with something unexpected');
    const { revoked } = r as { revoked: string };
    out(o.json ? JSON.stringify({ revoked }) : `revoked session ${wireText(revoked, 64)}`);
    return 0;
  } finally {
    if (!session.isClosed) await session.close();
  }
}

/** `keyledger revoke-key [--reason R]`: the owner revokes its key on the ledger. */
export async function revokeKey(o: {
  home: string;
  passphraseFile?: string;
  server?: string;
  reason?: string;
  json?: boolean;
}): Promise<number> {
  const reason = (['compromised', 'superseded', 'retired', 'unspecified'] as const).find(
    (r) => r === (o.reason ?? 'compromised'),
  );
  if (!reason)
    throw new KlError('KL_BAD_INPUT', '--reason must be compromised, superseded, retired or unspecified');
  const expected = new Set<string>();
  const session = await openSession(o, expected);
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
