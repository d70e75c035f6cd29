/**
 * `keyledger login`: proves that this home's key logs in, both sides authenticated, then logs out.
 * A session lives as long as the process that holds its keys (keys are kept in memory only,
 * docs/protocol.md): `send`, `shell` and `session` open their own, so `login` ends its session
 * before it exits rather than leave one open that nothing can use until its idle timeout.
 */
import { ClientHome } from '../../client/home.js';
import { connect } from '../../client/session.js';
import { out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';
import { CLIENT_PASS, type ClientOptions } from './client-options.js';

/** `keyledger login` */
export async function loginCommand(o: ClientOptions): Promise<number> {
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  home.readServer(); // not registered: said before the passphrase is asked for
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const session = await connect({
    home,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(o.server !== undefined ? { server: o.server } : {}),
  });
  const { sessionId, expiresAt, idleTimeoutMs, serverUrl } = session;
  await session.close();
  if (o.json)
    out(
      JSON.stringify({
        verified: true,
        id: session.id,
        fingerprint: identity.fingerprint,
        server: serverUrl,
        sessionId,
        loggedOut: true,
        expiresAt: new Date(expiresAt).toISOString(),
        idleTimeoutMs,
      }),
    );
  else {
    out(`logged in    ${session.id} at ${serverUrl} (both sides authenticated)`);
    out(`key          ${identity.fingerprint}, as the ledger holds it; server key as pinned`);
    out(`logged out   session ${sessionId} ended (a session lasts as long as the command that holds it)`);
    out('to work in a session: keyledger shell, or keyledger send MESSAGE');
  }
  return 0;
}
