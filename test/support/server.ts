/**
 * Test helpers for the server: a real server on 127.0.0.1 (port 0) over a fresh data directory, and
 * clients with real OpenPGP keys in their own home directories.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ClientHome } from '../../src/client/home.js';
import { createIdentity } from '../../src/client/identity.js';
import { register } from '../../src/client/register.js';
import { formatInvitation } from '../../src/protocol/invitation.js';
import { type RunningServer, type ServerOptions, startServer } from '../../src/server/app.js';
import { initEtcdNode } from '../../src/server/etcd-node.js';
import { initEvmNode } from '../../src/server/evm-node.js';
import { PASSPHRASE, tempDir } from '../helpers.js';
import { ANVIL_FUNDER_KEY, type Anvil, startAnvil } from './anvil.js';
import { type EtcdCluster, sharedEtcdCluster } from './etcd.js';

export const CLIENT_PASSPHRASE = 'client passphrase';

/**
 * The ledger engine the protocol suites run on: `KEYLEDGER_TEST_ENGINE=evm` runs them against the EVM
 * engine on a real local chain (anvil, one per test process); `etcd`, against the etcd engine on a
 * real 3-member cluster on loopback (one per test process, each server under a prefix of its own);
 * anything else, the embedded engine. `npm test` runs the registration, login, session, revocation,
 * anchoring and audit suites on each.
 */
export const TEST_ENGINE: 'embedded' | 'evm' | 'etcd' =
  process.env.KEYLEDGER_TEST_ENGINE === 'evm'
    ? 'evm'
    : process.env.KEYLEDGER_TEST_ENGINE === 'etcd'
      ? 'etcd'
      : 'embedded';

let chain: Promise<Anvil> | undefined;
/** The test process's anvil, started on first use and killed when the process exits. */
export function sharedChain(): Promise<Anvil> {
  chain ??= startAnvil().then((a) => {
    process.once('exit', () => a.child.kill('SIGKILL'));
    return a;
  });
  return chain;
}

/** Starts a server on a random loopback port over `dataDir` (initialised on first start if embedded). */
export async function startOn(
  dataDir: string,
  o: Partial<ServerOptions>,
): Promise<RunningServer & { dataDir: string }> {
  const server = await startServer({
    dataDir,
    passphrase: PASSPHRASE,
    host: '127.0.0.1',
    port: 0,
    evm: { pollMs: 20 },
    etcd: { pollMs: 20 },
    ...o,
  });
  return Object.assign(server, { dataDir });
}

/** A server on the EVM engine over `anvil`, with its own freshly deployed contract. */
export async function evmTestServer(
  anvil: Anvil,
  o: Partial<ServerOptions> = {},
): Promise<RunningServer & { dataDir: string }> {
  const dataDir = join(tempDir('kl-evm-'), 'data');
  await initEvmNode({
    dataDir,
    passphrase: PASSPHRASE,
    rpcUrl: anvil.url,
    insecureDevFunderKey: ANVIL_FUNDER_KEY,
  });
  return startOn(dataDir, o);
}

/** A fresh etcd key prefix: one ledger per prefix, so tests sharing a cluster never meet. */
export function testEtcdPrefix(): string {
  return `/keyledger-test/${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** The first server of an etcd-engine deployment on `cluster`, under a prefix of its own. */
export async function etcdTestServer(
  cluster: EtcdCluster,
  o: Partial<ServerOptions> = {},
): Promise<RunningServer & { dataDir: string }> {
  const dataDir = join(tempDir('kl-etcd-srv-'), 'data');
  await initEtcdNode({
    dataDir,
    passphrase: PASSPHRASE,
    endpoints: cluster.endpoints,
    prefix: testEtcdPrefix(),
  });
  return startOn(dataDir, o);
}

/** Starts a server on a random loopback port, on the engine of {@link TEST_ENGINE}. */
export async function testServer(
  o: Partial<ServerOptions> = {},
): Promise<RunningServer & { dataDir: string }> {
  if (TEST_ENGINE === 'evm') return evmTestServer(await sharedChain(), o);
  if (TEST_ENGINE === 'etcd') return etcdTestServer(await sharedEtcdCluster(), o);
  return startOn(join(tempDir('kl-srv-'), 'data'), o);
}

/** Issues an invitation for `id` valid for a day, as `keyledger admin invite` prints it (with the server pin). */
export function invite(server: RunningServer, id: string): string {
  const now = Date.now();
  return formatInvitation(server.proofs.issueInvite(id, now, now + 86_400_000), server.ledger.chainId);
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
