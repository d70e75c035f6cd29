/**
 * `keyledger whoami`: this home's identity, key and server (read from the home; nothing is sent).
 */
import { ClientHome } from '../../client/home.js';
import { out } from '../io.js';
import { algorithmName, type ClientOptions } from './client-options.js';

/** `keyledger whoami` */
export async function whoami(o: ClientOptions): Promise<number> {
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  const server = home.hasServer() ? home.readServer() : null;
  const data = {
    id: identity.id,
    name: identity.name,
    fingerprint: identity.fingerprint,
    algorithm: identity.algorithm,
    keySource: identity.keySource,
    server: server?.url ?? null,
  };
  if (o.json) out(JSON.stringify(data));
  else {
    out(`${identity.id} (${identity.name})`);
    out(
      `fingerprint  ${identity.fingerprint} [${algorithmName(identity.algorithm)}, ${identity.keySource === 'gpg' ? 'GnuPG' : 'file'}]`,
    );
    out(`server       ${server ? server.url : 'not registered'}`);
  }
  return 0;
}
