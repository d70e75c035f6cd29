/**
 * Failover between the servers of the ledger a home belongs to (docs/protocol.md "Several
 * servers"): work that needs a server runs on the preferred one, and on the next one when a server
 * is out — cannot be reached, dropped the connection, timed out, is shutting down, or its ledger is
 * behind or stale — or gave no authenticated answer. Only a verdict resting on what a server
 * authenticated and bound to this exchange (unverified-answer.ts: a signed challenge for another key
 * than ours, a signed fork of the kept checkpoint) stops the failover, as does the client's own
 * failure (a wrong passphrase, an unreadable home). Anything else — an HTTP error body, a plaintext
 * login error, a malformed reply, a signature that does not verify, a replayed statement, a proof
 * that does not verify — anyone on the path can write, so the next server is asked; only when no
 * server answered is the first of them given, said to be unverified.
 */
import { isKlError, KlError, wireText } from '../protocol/errors.js';
import { serverList, serverUrl, withServer } from './server-list.js';
import { checkServer, withAdmitted } from './server-trust.js';
import type { ClientStore, ServerEntry, ServerFile } from './store.js';
import { isServerVerdict, isUnverifiedAnswer, unverifiedSummary } from './unverified-answer.js';

/** Codes that mean "this server cannot answer now", after which another server is tried. */
const OUTAGES = new Set<string>([
  'KL_NETWORK',
  'KL_LEDGER_BEHIND',
  'KL_LEDGER_UNAVAILABLE',
  'KL_LEDGER_CLOSED',
  'KL_SERVER_SHUTDOWN',
]);

/** Whether `err` is an outage of one server (see the module comment), not a verdict. */
export function isOutage(err: unknown): boolean {
  return isKlError(err) && OUTAGES.has(err.code);
}

/** The client's own failures (no server's answer): they stop the work at once. */
const LOCAL_FAILURES = new Set<string>([
  'KL_PASSPHRASE_REQUIRED',
  'KL_PASSPHRASE_WRONG',
  'KL_DATA_DIR',
  'KL_MISSING_PACKAGE',
]);

/**
 * Whether `err` ends the work at once: a verdict a server authenticated, the client's own failure
 * (unless a forged answer only carries its code), or no typed error at all (a fault in the client).
 */
function isFinal(err: unknown): boolean {
  if (!isKlError(err)) return true;
  if (isServerVerdict(err)) return true;
  return LOCAL_FAILURES.has(err.code) && !isUnverifiedAnswer(err);
}

/** Options of {@link onServers}. */
export interface FailoverOptions {
  /**
   * Only this server (`--server URL`): checked first (server-trust.ts), added to the list when it
   * passes, and no other is tried.
   */
  only?: string;
  /** Pause before asking again when every server's ledger was behind, ms (default 1,000). */
  behindPauseMs?: number;
}

/**
 * Runs `work` with the home's server file, its `url` set to one server of the ledger: the preferred
 * one first, then the others in list order while servers are out or give no authenticated answer
 * (see the module comment). A server learnt from another's list is checked before its first use
 * (and left out when it fails the check). When every server's ledger was behind, asks once more
 * after a short pause. The server that answered becomes the preferred one; from the others the
 * home keeps only what they proved (a checkpoint whose proof verified).
 * @throws a verdict at once; when no server gave an authenticated answer, the first answer's code
 *   with a message saying it is not verified ({@link noAuthenticatedAnswer}); when every server was
 *   out, the one server's error, or `KL_NETWORK` (`KL_LEDGER_BEHIND` if every one was behind)
 *   saying what was tried.
 */
export async function onServers<T>(
  home: ClientStore,
  work: (server: ServerFile) => Promise<T>,
  o: FailoverOptions = {},
): Promise<T> {
  let server = await home.readServer();
  let entries: ServerEntry[];
  if (o.only !== undefined) {
    const checked = await checkServer(server, o.only);
    server = withAdmitted(
      withServer(server, { url: checked.url, fingerprint: checked.key.fingerprint }),
      checked.admitted,
      checked.removed,
    );
    await home.writeServer(server);
    entries = [{ url: checked.url, fingerprint: checked.key.fingerprint }];
  } else entries = serverList(server);
  const failures: Array<{ url: string; err: KlError }> = [];
  let answer: { url: string; err: KlError } | undefined;
  for (let round = 0; round < 2; round += 1) {
    failures.length = 0;
    for (const entry of entries) {
      if (!entry.fingerprint) {
        const checked = await checkListed(home, server, entry);
        if (checked instanceof KlError) {
          failures.push({ url: entry.url, err: checked });
          continue;
        }
        server = checked;
      }
      try {
        const result = await work({ ...(await home.readServer()), url: entry.url });
        await prefer(home, entry.url);
        return result;
      } catch (err) {
        if (isFinal(err)) throw err;
        if (!isOutage(err)) answer ??= { url: entry.url, err: err as KlError };
        failures.push({ url: entry.url, err: err as KlError });
      }
    }
    const behind = failures.some((f) => f.err.code === 'KL_LEDGER_BEHIND');
    if (!behind || round > 0) break;
    await new Promise((r) => setTimeout(r, o.behindPauseMs ?? 1_000));
  }
  if (answer) throw noAuthenticatedAnswer(answer, failures);
  if (failures.length === 1 && entries.length === 1) throw failures[0]!.err;
  const allBehind = failures.length > 0 && failures.every((f) => f.err.code === 'KL_LEDGER_BEHIND');
  throw new KlError(
    allBehind ? 'KL_LEDGER_BEHIND' : 'KL_NETWORK',
    `no server of this ledger could answer (tried ${failures.length}): ${failures
      .map((f) => `${f.url}: ${f.err.code} ${wireText(unverifiedSummary(f.err))}`)
      .join('; ')}`,
    { tried: failures.length },
  );
}

/**
 * The error given when no server gave an authenticated answer: the first answer's code, and a message
 * that says what it was in the client's own words (never text off the wire as the server's word),
 * that it is not verified, and which servers were tried. `details.authenticated` is false.
 */
function noAuthenticatedAnswer(
  first: { url: string; err: KlError },
  failures: Array<{ url: string; err: KlError }>,
): KlError {
  const tried = failures.map((f) => `${f.url} ${f.err.code}`).join(', ');
  return new KlError(
    first.err.code,
    `${wireText(unverifiedSummary(first.err))} (not verified: no server of this ledger gave an authenticated answer; the first came from ${first.url}; tried ${failures.length}: ${tried})`,
    { authenticated: false, tried: failures.length },
    { cause: first.err },
  );
}

/**
 * Checks a server some server listed before its first use (server-trust.ts); on success notes its
 * key in the home and returns the updated server file, else the error (a server that is down or not
 * one this client accepts: not used).
 */
async function checkListed(
  home: ClientStore,
  server: ServerFile,
  entry: ServerEntry,
): Promise<ServerFile | KlError> {
  try {
    const checked = await checkServer(server, entry.url);
    entry.fingerprint = checked.key.fingerprint;
    const updated = withAdmitted(
      withServer(await home.readServer(), { url: entry.url, fingerprint: entry.fingerprint }),
      checked.admitted,
      checked.removed,
    );
    await home.writeServer(updated);
    return updated;
  } catch (err) {
    if (!isKlError(err)) throw err;
    return err;
  }
}

/** Makes `url` the preferred server (`url` of server.json) when it is not already. */
async function prefer(home: ClientStore, url: string): Promise<void> {
  const current = await home.readServer();
  if (serverUrl(current.url) === url && current.servers) return;
  await home.writeServer(withServer(current, { url }, true));
}
