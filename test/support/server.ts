/**
 * Test helpers for the server: a real server on 127.0.0.1 (port 0) over a fresh data directory, and
 * clients with real OpenPGP keys in their own home directories.
 */
import { join } from 'node:path';
import { ClientHome } from '../../src/client/home.js';
import { createIdentity } from '../../src/client/identity.js';
import { register } from '../../src/client/register.js';
import { type RunningServer, type ServerOptions, startServer } from '../../src/server/app.js';
import { PASSPHRASE, tempDir } from '../helpers.js';

export const CLIENT_PASSPHRASE = 'client passphrase';

/** Starts a server on a random loopback port. */
export async function testServer(
  o: Partial<ServerOptions> = {},
): Promise<RunningServer & { dataDir: string }> {
  const dataDir = join(tempDir('kl-srv-'), 'data');
  const server = await startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port: 0, ...o });
  return Object.assign(server, { dataDir });
}

/** Issues an invitation for `id` valid for a day. */
export function invite(server: RunningServer, id: string): string {
  const now = Date.now();
  return server.proofs.issueInvite(id, now, now + 86_400_000);
}

/** A client home with a freshly generated key for `id`. */
export async function newClient(id: string, name = 'Test User'): Promise<ClientHome> {
  const home = new ClientHome(join(tempDir('kl-home-'), 'home'));
  await createIdentity({ home, id, name, source: 'generate', passphrase: CLIENT_PASSPHRASE });
  return home;
}

/** A client registered with `server`. */
export async function registeredClient(server: RunningServer, id: string): Promise<ClientHome> {
  const home = await newClient(id);
  await register({
    home,
    server: server.url,
    proof: { method: 'invite', code: invite(server, id) },
    passphrase: CLIENT_PASSPHRASE,
  });
  return home;
}
