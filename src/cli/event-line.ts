/**
 * The console line of a server event (`keyledger serve`): one short line per event, time first,
 * then a verb column, the identity, and what identifies the key, the session and the client:
 *
 *     20:41:07 login      alice@example.org  key 3F2A…91C0  session 7d1e9a…  from 127.0.0.1
 *
 * Pure (no I/O). Secrets never reach it (events.ts); session ids are shortened, fingerprints too
 * (the whole ones are on the ledger and in `keyledger admin sessions`). Identities and details may
 * come from the network, so control and bidirectional-override characters are replaced: a line
 * cannot move the cursor, recolour the terminal or disguise itself.
 */

import { UNSAFE_TEXT } from '../protocol/errors.js';
import type { ServerEvent } from '../server/events.js';
import type { RefusalCount, RefusalOthers } from './refusal-summary.js';

/** Width of the verb column. */
const VERB = 10;

/** Longest identity or detail shown, characters. */
const MAX_FIELD = 120;

/** `s` safe to print on a terminal: unsafe characters (`UNSAFE_TEXT`) become `?`, long text is cut with `…`. */
export function printable(s: string, max = MAX_FIELD): string {
  const clean = s.replace(UNSAFE_TEXT, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** A fingerprint as its first and last 4 hex digits, upper case: `3F2A…91C0`. */
export function shortFingerprint(fingerprint: string): string {
  const f = printable(fingerprint).toUpperCase();
  return f.length > 9 ? `${f.slice(0, 4)}…${f.slice(-4)}` : f;
}

/** A session id as its first 6 characters: enough to tell sessions apart, not to name one. */
export function shortSession(sessionId: string): string {
  return `${printable(sessionId).slice(0, 6)}…`;
}

/** The time of day in UTC, `HH:MM:SS`. */
export function timeOfDay(at: number): string {
  return new Date(at).toISOString().slice(11, 19);
}

function line(at: number, verb: string, rest: string): string {
  return `${timeOfDay(at)} ${verb.padEnd(VERB)} ${rest}`;
}

const ENDED: Record<string, string> = {
  timeout: 'idle timeout',
  lifetime: 'lifetime reached',
  revoked: 'revoked',
  key_revoked: 'key revoked',
  shutdown: 'server shutting down',
};

/** The console line of one event. */
export function formatEvent(e: ServerEvent): string {
  const who = 'id' in e && e.id ? printable(e.id) : '';
  switch (e.kind) {
    case 'registered':
      return line(
        e.at,
        'registered',
        `${who}  key ${shortFingerprint(e.fingerprint)}  from ${printable(e.ip)}`,
      );
    case 'login':
      return line(
        e.at,
        'login',
        `${who}  key ${shortFingerprint(e.fingerprint)}  session ${shortSession(e.sessionId)}  from ${printable(e.ip)}`,
      );
    case 'session_ended':
      return e.reason === 'logout'
        ? line(e.at, 'logout', `${who}  session ${shortSession(e.sessionId)}`)
        : line(
            e.at,
            'ended',
            `${who}  session ${shortSession(e.sessionId)}  (${ENDED[e.reason] ?? e.reason})`,
          );
    case 'key_revoked': {
      const by = e.by === 'owner' ? 'by its owner' : `by admin ${printable(e.by.admin)}`;
      return line(
        e.at,
        'revoked',
        `${who}  key ${shortFingerprint(e.fingerprint)}  (${printable(e.reason)}, ${by})`,
      );
    }
    case 'key_rotated':
      return line(e.at, 'rotated', `${who}  new key ${shortFingerprint(e.fingerprint)}`);
    case 'device_added':
      return line(
        e.at,
        'device',
        `${who}  added ${printable(e.name)}  key ${shortFingerprint(e.fingerprint)}`,
      );
    case 'device_revoked': {
      const by =
        'admin' in e.by ? `by admin ${printable(e.by.admin)}` : `by key ${shortFingerprint(e.by.device)}`;
      return line(
        e.at,
        'device',
        `${who}  revoked key ${shortFingerprint(e.fingerprint)}  (${printable(e.reason)}, ${by})`,
      );
    }
    case 'recovery_key_set':
      return line(e.at, 'recovery', `${who}  recovery key ${shortFingerprint(e.fingerprint)} set`);
    case 'recovered':
      return line(
        e.at,
        'recovery',
        `${who}  recovered on ${printable(e.name)}  key ${shortFingerprint(e.fingerprint)}  (every other device revoked)`,
      );
    case 'role_changed':
      return line(e.at, 'role', `${who}  ${printable(e.role)} role ${e.granted ? 'granted' : 'revoked'}`);
    case 'alert': {
      const session = e.sessionId ? `  session ${shortSession(e.sessionId)}` : '';
      return line(
        e.at,
        'ALERT',
        `${printable(e.alert)}  ${who ? `${who}${session}  ` : ''}${printable(e.detail)}`,
      );
    }
    case 'refused':
      return line(e.at, 'refused', `${e.what} from ${printable(e.ip)}  ${e.code}${who ? `  (${who})` : ''}`);
    case 'ledger_problem':
      return line(e.at, 'ALERT', `ledger  ${printable(e.detail)}`);
  }
}

/**
 * `value` as one line of JSON that is also safe on a terminal: JSON escapes only C0 controls, so
 * the other unsafe characters (`UNSAFE_TEXT`: C1, bidirectional and zero-width format characters,
 * line separators) are written as `\\uXXXX` escapes too. The JSON means the same.
 */
export function jsonLine(value: unknown): string {
  // Each UTF-16 unit escaped: a character outside the BMP (tags) becomes its surrogate pair.
  return JSON.stringify(value).replace(UNSAFE_TEXT, (c) => {
    let escaped = '';
    for (let i = 0; i < c.length; i++) escaped += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return escaped;
  });
}

/**
 * The event as one JSON object (`keyledger serve --json`, one per line after the start object):
 * `event` is its kind, `at` an ISO time, the session id shortened as on the console.
 */
export function eventJson(e: ServerEvent): Record<string, unknown> {
  const { kind, at, ...rest } = e;
  const o: Record<string, unknown> = { event: kind, at: new Date(at).toISOString(), ...rest };
  if (typeof o.sessionId === 'string') o.sessionId = o.sessionId ? shortSession(o.sessionId) : '';
  return o;
}

const WHAT: Record<RefusalCount['what'], string> = {
  login: 'refused logins',
  registration: 'refused registration requests',
  rate_limit: 'rate-limit alerts',
  ledger: 'ledger problems',
};

/** The console line of what a flood summary counted, e.g. `…and 120 more refused logins from 10.0.0.0/24 in the last 10 s`. */
export function formatRefusalCount(c: RefusalCount, at: number): string {
  return line(
    at,
    c.what === 'login' || c.what === 'registration' ? 'refused' : 'ALERT',
    `…and ${c.count} more ${WHAT[c.what]}${c.what === 'ledger' ? '' : ` from ${printable(c.source)}`} in the last ${Math.round(c.windowMs / 1000)} s`,
  );
}

/** The console line of the sources a flood summary did not list one by one. */
export function formatRefusalOthers(o: RefusalOthers, at: number): string {
  return line(
    at,
    'refused',
    `…and ${o.count} more refusals from ${o.exact ? '' : 'up to '}${o.sources} other source(s) in the last ${Math.round(o.windowMs / 1000)} s`,
  );
}
