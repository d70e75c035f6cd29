/**
 * HTTP calls to the server with timeouts, size bounds and typed errors: a server error body
 * `{ error: { code, message } }` becomes a KlError with that code. Plain node:http(s) with no
 * connection pooling: a CLI command or a test ends as soon as its work is done.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { errorFromWire, KlError } from '../protocol/errors.js';

const MAX_RESPONSE = 1024 * 1024;

/** Calls `method url` with an optional JSON body; returns the parsed JSON answer. */
export async function callJson<T>(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  const u = new URL(url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      {
        method,
        agent: false,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE) {
            req.destroy();
            reject(new KlError('KL_NETWORK', 'the server answer is too large'));
          } else chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', (err) =>
          reject(new KlError('KL_NETWORK', `the answer from ${u.origin} broke off: ${err.message}`)),
        );
      },
    );
    const timer = setTimeout(() => req.destroy(new Error('timed out')), timeoutMs);
    timer.unref();
    req.on('close', () => clearTimeout(timer));
    req.on('error', (err) =>
      reject(
        new KlError('KL_NETWORK', `cannot reach ${u.origin}: ${err.message}`, undefined, { cause: err }),
      ),
    );
    req.end(payload);
  });
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw new KlError('KL_NETWORK', `the server answered ${status} with something that is not JSON`);
  }
  if (status < 200 || status >= 300) {
    const e = typeof json === 'object' && json !== null ? (json as { error?: unknown }).error : undefined;
    throw errorFromWire(e, 'KL_NETWORK', { message: `the server answered ${status}` });
  }
  return json as T;
}
