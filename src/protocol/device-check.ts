/**
 * The check number of a device request (docs/protocol.md "Devices"): six digits both the new device
 * and the approving device compute from the request's statement and its code, which the person types
 * on the approving device. A request swapped on the way (another key, name or time) gives another
 * number, and as the server picks the code only after the statement is fixed, making a swapped
 * request match is a matter of online luck (one in a million per request), not of grinding keys
 * until a fingerprint looks alike. Pure: no I/O.
 */
import { concatBytes, utf8 } from './bytes.js';
import { sha256 } from './hash.js';
import { type DeviceAdditionStatement, statementBytes } from './statements.js';

const DOMAIN = utf8('keyledger/device-check/v1\n');

/**
 * The check number of `statement` under `code` (as the server gave it, `XXXX-XXXX`), shown as
 * `123 456`.
 */
export function deviceCheckNumber(statement: DeviceAdditionStatement, code: string): string {
  const digest = sha256(concatBytes(DOMAIN, statementBytes(statement), utf8(`\n${code}`)));
  const value = ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) >>> 0;
  const digits = String(value % 1_000_000).padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

/** Whether what a person typed is the check number `expected` (spaces and dashes ignored). */
export function sameCheckNumber(typed: string, expected: string): boolean {
  return typed.replace(/[\s-]/g, '') === expected.replace(/\s/g, '');
}

/** A code as a person may type it: any case, with or without the dash, I/L for 1 and O for 0. */
export function normalizeDeviceCode(code: unknown): string | undefined {
  if (typeof code !== 'string' || code.length > 16) return undefined;
  const plain = code.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (!/^[0-9A-HJKMNP-TV-Z]{8}$/.test(plain)) return undefined;
  return `${plain.slice(0, 4)}-${plain.slice(4)}`;
}
