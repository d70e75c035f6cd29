/**
 * Which servers a registered client uses (docs/protocol.md "Several servers"): a home belongs to a
 * ledger, pinned at registration by its genesis (and so its chain id) and the server key the genesis
 * names. Another server is used only when it serves that very ledger (same chain id, same genesis)
 * and presents a server key the client accepts. {@link acceptedServerKey} is the one place that
 * decides which keys those are; {@link checkServer} asks a server and applies it.
 */
import { chainIdOf, checkGenesis } from '../ledger/genesis.js';
import { KlError } from '../protocol/errors.js';
import { InfoReply } from '../protocol/schemas/http.js';
import { callJson, endpoint } from './http.js';
import { checkReply } from './reply.js';
import { serverUrl } from './server-list.js';
import type { ServerFile } from './store.js';

/** A server key: its fingerprint and armored public key. */
export interface ServerKeyInfo {
  fingerprint: string;
  publicKey: string;
}

/**
 * The server key a client registered with `home` accepts when a server presents `presented`, or null.
 * Today: the key pinned at registration, i.e. the one the ledger's genesis names (`genesis.server`).
 * The key returned is the client's own copy, never the presented text: that is what the login
 * handshake checks the server's signature with.
 */
export function acceptedServerKey(
  home: ServerFile,
  presented: { fingerprint: string },
): ServerKeyInfo | null {
  const pinned = home.genesis.server ?? home.server;
  if (presented.fingerprint !== pinned.fingerprint || pinned.fingerprint !== home.server.fingerprint)
    return null;
  return { fingerprint: home.server.fingerprint, publicKey: home.server.publicKey };
}

/** A server that passed {@link checkServer}. */
export interface CheckedServer {
  /** Its base URL, as the list keeps it. */
  url: string;
  /** The key it presented, as accepted. */
  key: ServerKeyInfo;
  /** The servers it lists for this ledger (`/v1/info` `servers`), not checked. */
  servers: string[];
}

/**
 * Asks the server at `url` who it is (`GET /v1/info`) and accepts it only if it serves the ledger
 * `home` is registered with and presents a key {@link acceptedServerKey} accepts.
 * @throws KlError `KL_SERVER_KEY_MISMATCH` (another ledger, or a key the client does not accept),
 *   `KL_NETWORK` (down), `KL_PROTOCOL` (a malformed answer), `KL_BAD_INPUT` (not a server URL).
 */
export async function checkServer(home: ServerFile, url: string): Promise<CheckedServer> {
  const base = serverUrl(url);
  const info = checkReply(
    InfoReply,
    await callJson<unknown>('GET', endpoint(base, 'v1/info')),
    'KL_PROTOCOL',
    'GET /v1/info',
  );
  const chain = chainIdOf(checkGenesis(info.genesis));
  if (chain !== info.chain || chain !== home.chain)
    throw new KlError(
      'KL_SERVER_KEY_MISMATCH',
      `${base} serves another ledger (chain ${info.chain.slice(0, 16)}…) than the one this home is registered with (chain ${home.chain.slice(0, 16)}…): not used`,
      { chain: info.chain.slice(0, 64) },
    );
  const key = acceptedServerKey(home, info.server);
  if (!key)
    throw new KlError(
      'KL_SERVER_KEY_MISMATCH',
      `${base} serves this ledger but presents a server key this client does not accept (fingerprint ${info.server.fingerprint}): someone may be impersonating a server; not used`,
      { fingerprint: info.server.fingerprint },
    );
  return { url: base, key, servers: info.servers ?? [] };
}
