/**
 * A session opened from the user's home for the session commands, with its own encrypted log.
 */
import { join } from 'node:path';
import { ClientHome } from '../../client/home.js';
import { type ClientSession, connect } from '../../client/session.js';
import { EncryptedLog } from '../../pgp/encrypted-log.js';
import { readPublicKey } from '../../pgp/messages.js';
import { info } from '../io.js';
import { logWriter } from '../log-writer.js';
import { resolvePassphrase } from '../passphrase.js';
import { CLIENT_PASS } from './client-options.js';

/**
 * Opens a session from the home. Alerts whose code is in `expected` (filled in by the caller, e.g.
 * `KL_KEY_REVOKED` once the owner has asked for its own revocation) are the answer the caller waits
 * for, not something gone wrong: they go to the client's log, not to the terminal as an ALERT.
 */
export async function openSession(
  o: { home: string; passphraseFile?: string; server?: string },
  expected: ReadonlySet<string> = new Set(),
): Promise<ClientSession> {
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  home.readServer(); // not registered: said before the passphrase is asked for
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const session = await connect({
    home,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(o.server !== undefined ? { server: o.server } : {}),
  });
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
