/**
 * `Buffer` for the browser bundle: the `buffer` package, plus the base64url encoding Node has and
 * that package lacks (the ledger encodes keys and signatures as base64url). Injected as a global.
 */
import { Buffer as BrowserBuffer } from 'buffer/';

type Encoding = Parameters<typeof BrowserBuffer.from>[1];
const toBase64 = (s: string) => s.replace(/-/g, '+').replace(/_/g, '/');
const originalFrom = BrowserBuffer.from.bind(BrowserBuffer) as (...args: unknown[]) => BrowserBuffer;
(BrowserBuffer as unknown as { from: unknown }).from = (
  value: unknown,
  encoding?: unknown,
  ...rest: unknown[]
) =>
  encoding === 'base64url' && typeof value === 'string'
    ? originalFrom(toBase64(value), 'base64' as Encoding)
    : originalFrom(value, encoding, ...rest);
const originalToString = BrowserBuffer.prototype.toString;
BrowserBuffer.prototype.toString = function (this: BrowserBuffer, encoding?: string, ...rest: number[]) {
  if (encoding !== 'base64url') return originalToString.call(this, encoding as 'utf8', ...rest);
  return originalToString.call(this, 'base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

export const Buffer = BrowserBuffer;
