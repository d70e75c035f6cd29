/**
 * The servers of the ledger a home belongs to, as server.json keeps them (docs/protocol.md "Several
 * servers"): the preferred one (`url`, the one used last) first, then the others in the order they
 * were added. Pure functions over a {@link ServerFile}: nothing here talks to a server or decides
 * trust (server-trust.ts does).
 */
import { KlError } from '../protocol/errors.js';
import type { ServerEntry, ServerFile } from './store.js';

/**
 * A server's base URL as the list keeps it: http: or https:, no credentials, query or fragment, no
 * trailing slash (a server mounted under a path keeps its path).
 * @throws KlError `KL_BAD_INPUT` for anything else.
 */
export function serverUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KlError(
      'KL_BAD_INPUT',
      `${JSON.stringify(text)} is not a server URL (e.g. https://kl.example.org)`,
    );
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
    throw new KlError('KL_BAD_INPUT', `${JSON.stringify(text)} is not an http:// or https:// server URL`);
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/+$/, '');
}

/** `text` as {@link serverUrl}, or undefined when it is not a server URL. */
function urlOrUndefined(text: string): string | undefined {
  try {
    return serverUrl(text);
  } catch {
    return undefined;
  }
}

/**
 * The home's servers, the preferred one first, each once. A server.json without a list (written
 * before several servers) holds one: the server it registered with, with the pinned key.
 */
export function serverList(server: ServerFile): ServerEntry[] {
  const preferred = urlOrUndefined(server.url) ?? server.url;
  const listed = server.servers ?? [{ url: preferred, fingerprint: server.server.fingerprint }];
  const out = new Map<string, ServerEntry>();
  const first = listed.find((e) => (urlOrUndefined(e.url) ?? e.url) === preferred);
  out.set(preferred, first ? { ...first, url: preferred } : { url: preferred });
  for (const e of listed) {
    const url = urlOrUndefined(e.url);
    if (url && !out.has(url)) out.set(url, { ...e, url });
  }
  return [...out.values()];
}

/**
 * `server` with `entry` in its list (added, or its fingerprint updated: an entry without one keeps
 * the one it had); `prefer` makes it `url`.
 */
export function withServer(server: ServerFile, entry: ServerEntry, prefer = false): ServerFile {
  const url = serverUrl(entry.url);
  const list = serverList(server);
  const at = list.findIndex((e) => e.url === url);
  const fingerprint = entry.fingerprint ?? (at >= 0 ? list[at]!.fingerprint : undefined);
  const updated: ServerEntry = { url, ...(fingerprint ? { fingerprint } : {}) };
  if (at >= 0) list[at] = updated;
  else list.push(updated);
  return { ...server, url: prefer ? url : (list[0]?.url ?? url), servers: list };
}

/** At most this many servers learnt from servers' lists are kept (the list a person adds to is not bounded). */
const MAX_LEARNT = 32;

/**
 * `server` with the URLs another server listed (`/v1/info` `servers`) added as not yet checked;
 * known ones stay as they are, and what is not a server URL is left out.
 */
export function withLearnt(server: ServerFile, urls: readonly string[]): ServerFile {
  const list = serverList(server);
  const known = new Set(list.map((e) => e.url));
  let learnt = list.filter((e) => !e.fingerprint).length;
  for (const text of urls) {
    const url = urlOrUndefined(text);
    if (!url || known.has(url) || learnt >= MAX_LEARNT) continue;
    known.add(url);
    list.push({ url });
    learnt += 1;
  }
  return { ...server, servers: list };
}

/**
 * `server` without `url`; the next server becomes the preferred one when it was.
 * @throws KlError `KL_BAD_INPUT` when the list does not hold it, or holds nothing else.
 */
export function withoutServer(server: ServerFile, url: string): ServerFile {
  const gone = serverUrl(url);
  const list = serverList(server);
  if (!list.some((e) => e.url === gone))
    throw new KlError(
      'KL_BAD_INPUT',
      `${gone} is not one of this home's servers (keyledger servers lists them)`,
    );
  const rest = list.filter((e) => e.url !== gone);
  if (!rest.some((e) => e.fingerprint))
    throw new KlError(
      'KL_BAD_INPUT',
      `${gone} is the only checked server of this home: add another first (keyledger servers add URL)`,
    );
  const preferred = list[0]!.url === gone ? rest.find((e) => e.fingerprint)!.url : list[0]!.url;
  return {
    ...server,
    url: preferred,
    servers: [...rest.filter((e) => e.url === preferred), ...rest.filter((e) => e.url !== preferred)],
  };
}
