/**
 * RFC 8785 JSON Canonicalization Scheme (JCS).
 *
 * Everything keyledger signs or hashes is first put in this form, so that two parties that hold the
 * same value produce the same bytes. Object members are sorted by their UTF-16 code units (RFC 8785
 * §3.2.3), numbers are serialised as ECMAScript does (§3.2.2.3), strings as JSON.stringify escapes them
 * (§3.2.2.2). Values JSON cannot represent (undefined, functions, NaN, ±Infinity, bigint, cycles) are
 * refused rather than silently dropped.
 */
import { utf8 } from './bytes.js';

/** A value that can be canonicalised. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Maximum nesting depth accepted; deeper input is refused (it is never legitimate here). */
export const MAX_JSON_DEPTH = 32;

/** Returns the RFC 8785 canonical JSON text of `value`. Throws `TypeError` on non-JSON values. */
export function canonicalize(value: unknown): string {
  return write(value, []);
}

/** Returns the canonical JSON of `value` as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalize(value));
}

/** `ancestors`: the arrays and objects being written around `value` (its depth, and cycles). */
function write(value: unknown, ancestors: object[]): string {
  if (ancestors.length > MAX_JSON_DEPTH) throw new TypeError('canonical JSON: nesting too deep');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON: non-finite number');
      // RFC 8785 §3.2.2.3: ECMAScript Number serialisation; -0 becomes 0.
      return Object.is(value, -0) ? '0' : JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (ancestors.includes(value)) throw new TypeError('canonical JSON: cycle');
      ancestors.push(value);
      const out = Array.isArray(value) ? writeArray(value, ancestors) : writeObject(value, ancestors);
      ancestors.pop();
      return out;
    }
    default:
      throw new TypeError(`canonical JSON: cannot encode ${typeof value}`);
  }
}

function writeArray(array: readonly unknown[], ancestors: object[]): string {
  let out = '[';
  for (let i = 0; i < array.length; i++) {
    if (i > 0) out += ',';
    out += write(array[i], ancestors);
  }
  return `${out}]`;
}

function writeObject(value: object, ancestors: object[]): string {
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError('canonical JSON: only plain objects are allowed');
  }
  const obj = value as Record<string, unknown>;
  // RFC 8785 §3.2.3: sort by UTF-16 code units, which is what the default sort compares.
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (const key of keys) {
    const member = obj[key];
    if (member === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${write(member, ancestors)}`;
  }
  return `${out}}`;
}
