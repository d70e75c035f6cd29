/**
 * Which servers a registered client uses (docs/protocol.md "Several servers"): a home belongs to a
 * ledger, pinned at registration by its genesis (and so its chain id) and the server key the genesis
 * names. Another server is used only when it serves that very ledger (same chain id, same genesis)
 * and presents a server key the client accepts. {@link acceptedServerKey} is the one place that
 * decides which keys those are; {@link checkServer} asks a server and applies it.
 */
import { chainIdOf, checkGenesis, type Genesis } from '../ledger/genesis.js';
import { type NodeAdmission, verifyNodeAdmission, verifyNodeRemoval } from '../ledger/node-admission.js';
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
 * The admissions among `candidates` (what a server listed in `/v1/info` `admitted`) that verify
 * against the genesis alone: further servers of a chain-ordered ledger (node-admission.ts).
 */
export function verifiedAdmissions(
  genesis: Genesis,
  chain: string,
  candidates: readonly unknown[] | undefined,
): NodeAdmission[] {
  const out: NodeAdmission[] = [];
  for (const admission of (candidates ?? []).slice(0, MAX_ADMITTED)) {
    const result = verifyNodeAdmission({ genesis, chain, admission });
    if (result.verified) out.push(result.admission);
  }
  return out;
}

/** At most this many admitted servers are kept in a home. */
const MAX_ADMITTED = 16;

/**
 * The registrar key ids of the removals among `candidates` (`/v1/info` `removed`) that verify
 * against the genesis alone: servers a client stops trusting for good.
 */
export function verifiedRemovals(
  genesis: Genesis,
  chain: string,
  candidates: readonly unknown[] | undefined,
): string[] {
  const out: string[] = [];
  for (const removal of (candidates ?? []).slice(0, MAX_REMOVED)) {
    const result = verifyNodeRemoval({ genesis, chain, removal });
    if (result.verified) out.push(result.removal.keyId);
  }
  return out;
}

/** At most this many removed servers are remembered in a home. */
const MAX_REMOVED = 256;

/**
 * `server` with `admissions` (already verified) added to the admitted servers it keeps, and the
 * servers of `removed` (verified removals) dropped for good: a removal always wins, whoever shows
 * the old admission again.
 */
export function withAdmitted(
  server: ServerFile,
  admissions: readonly NodeAdmission[],
  removed: readonly string[] = [],
): ServerFile {
  if (admissions.length === 0 && removed.length === 0) return server;
  const gone = new Set([...(server.removed ?? []), ...removed]);
  const byKey = new Map((server.admitted ?? []).filter((a) => !gone.has(a.keyId)).map((a) => [a.keyId, a]));
  for (const a of admissions)
    if (!gone.has(a.keyId) && !byKey.has(a.keyId) && byKey.size < MAX_ADMITTED) byKey.set(a.keyId, a);
  return {
    ...server,
    admitted: [...byKey.values()],
    ...(gone.size > 0 ? { removed: [...gone].slice(-MAX_REMOVED) } : {}),
  };
}

/**
 * The server key trusted for a ledger when a server presents `presented`: the one its genesis
 * pins, or the key of a further server whose admission (verified) names it; else null. The key
 * returned is the trusted copy, never the presented text.
 */
export function trustedServerKey(
  genesis: Genesis,
  admitted: readonly NodeAdmission[],
  presented: { fingerprint: string },
): ServerKeyInfo | null {
  if (genesis.server && presented.fingerprint === genesis.server.fingerprint) return genesis.server;
  const admission = admitted.find((a) => a.node.server.fingerprint === presented.fingerprint);
  return admission ? { ...admission.node.server } : null;
}

/**
 * The server key a client registered with `home` accepts when a server presents `presented`, or
 * null: the key pinned at registration (the one the ledger's genesis names), or that of a further
 * server whose admission the client verified and keeps (`admitted` in server.json). The key
 * returned is the client's own copy: that is what the login handshake checks the server's
 * signature with.
 */
export function acceptedServerKey(
  home: ServerFile,
  presented: { fingerprint: string },
): ServerKeyInfo | null {
  const pinned = home.genesis.server ?? home.server;
  if (pinned.fingerprint !== home.server.fingerprint) return null;
  if (presented.fingerprint === pinned.fingerprint)
    return { fingerprint: home.server.fingerprint, publicKey: home.server.publicKey };
  return trustedServerKey(home.genesis, home.admitted ?? [], presented);
}

/** A server that passed {@link checkServer}. */
export interface CheckedServer {
  /** Its base URL, as the list keeps it. */
  url: string;
  /** The key it presented, as accepted. */
  key: ServerKeyInfo;
  /** The servers it lists for this ledger (`/v1/info` `servers`), not checked. */
  servers: string[];
  /** The admissions of further servers it listed that verify against the genesis. */
  admitted: NodeAdmission[];
  /** The registrar key ids of the removed servers it listed (removals verified). */
  removed: string[];
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
  const admitted = verifiedAdmissions(home.genesis, home.chain, info.admitted);
  const removed = verifiedRemovals(home.genesis, home.chain, info.removed);
  const key = acceptedServerKey(withAdmitted(home, admitted, removed), info.server);
  if (!key)
    throw new KlError(
      'KL_SERVER_KEY_MISMATCH',
      `${base} serves this ledger but presents a server key this client does not accept (fingerprint ${info.server.fingerprint}): someone may be impersonating a server; not used`,
      { fingerprint: info.server.fingerprint },
    );
  return { url: base, key, servers: info.servers ?? [], admitted, removed };
}
