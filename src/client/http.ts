/**
 * HTTP calls to the server with timeouts, size bounds and typed errors: a server error body
 * `{ error: { code, message } }` becomes a KlError with that code.
 */
import { ERROR_CODES, type ErrorCode, KlError } from '../protocol/errors.js';

const MAX_RESPONSE = 1024 * 1024;

/** Calls `method url` with an optional JSON body; returns the parsed JSON answer. */
export async function callJson<T>(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    throw new KlError(
      'KL_NETWORK',
      `cannot reach ${new URL(url).origin}: ${(err as Error).message}`,
      undefined,
      { cause: err },
    );
  }
  const text = await res.text();
  if (text.length > MAX_RESPONSE) throw new KlError('KL_NETWORK', 'the server answer is too large');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw new KlError('KL_NETWORK', `the server answered ${res.status} with something that is not JSON`);
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })
      ?.error;
    const code = e?.code && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'KL_NETWORK';
    throw new KlError(code, e?.message ?? `the server answered ${res.status}`, e?.details);
  }
  return json as T;
}
