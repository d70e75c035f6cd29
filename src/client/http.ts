/**
 * HTTP calls to the server with timeouts, size bounds and typed errors: a server error body
 * `{ error: { code, message } }` becomes a KlError with that code, marked as an unverified answer
 * (unverified-answer.ts) whose summary holds its status and code, not its text. Uses the global
 * `fetch` (Node 20 and browsers alike); the answer is read as a stream and refused past 1 MiB.
 */
import { readBounded } from '../protocol/bytes.js';
import { errorFromWire, KlError } from '../protocol/errors.js';
import { unverifiedAnswer } from './unverified-answer.js';

const MAX_RESPONSE = 1024 * 1024;

/**
 * The URL of an API path (`v1/info`, `v1/ledger/tx/…?from=3`; a leading `/` is ignored) under a
 * server's base URL, keeping the base's own path: a server mounted under `https://host/auth`
 * answers at `https://host/auth/v1/info`, with or without a trailing slash on the base. The base's
 * query and fragment are dropped.
 */
export function endpoint(serverUrl: string, path: string): string {
  const base = new URL(serverUrl);
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL(path.replace(/^\/+/, ''), base).toString();
}

/** {@link endpoint} as a WebSocket URL: `ws:` for an `http:` base, `wss:` for `https:`. */
export function wsEndpoint(serverUrl: string, path: string): string {
  const url = new URL(endpoint(serverUrl, path));
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

/** The answer's text, read up to MAX_RESPONSE bytes (`KL_NETWORK` past it). */
async function boundedText(res: Response, origin: string): Promise<string> {
  if (!res.body) return '';
  let bytes: Uint8Array | null;
  try {
    bytes = await readBounded(res.body, MAX_RESPONSE);
  } catch (err) {
    throw new KlError(
      'KL_NETWORK',
      `the answer from ${origin} broke off: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  if (!bytes) throw new KlError('KL_NETWORK', 'the server answer is too large');
  return new TextDecoder().decode(bytes);
}

/** Calls `method url` with an optional JSON body; returns the parsed JSON answer. */
export async function callJson<T>(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  const { origin } = new URL(url);
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      signal,
      redirect: 'error',
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause ?? (err as Error);
    const why = signal.aborted ? 'timed out' : cause.message;
    throw new KlError('KL_NETWORK', `cannot reach ${origin}: ${why}`, undefined, { cause: err });
  }
  let text: string;
  try {
    text = await boundedText(res, origin);
  } catch (err) {
    if (signal.aborted)
      throw new KlError('KL_NETWORK', `the answer from ${origin} timed out`, undefined, { cause: err });
    throw err;
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw new KlError('KL_NETWORK', `the server answered ${res.status} with something that is not JSON`);
  }
  if (res.status < 200 || res.status >= 300) {
    const e = typeof json === 'object' && json !== null ? (json as { error?: unknown }).error : undefined;
    // Plain HTTP error bodies are not signed: the code fails this call, it is no verdict, and when
    // no server gave an authenticated answer only the status and code are shown (failover.ts).
    const err = errorFromWire(e, 'KL_NETWORK', { message: `the server answered ${res.status}` });
    throw unverifiedAnswer(err, `the server answered ${res.status} ${err.code} in a plain HTTP error body`);
  }
  return json as T;
}
