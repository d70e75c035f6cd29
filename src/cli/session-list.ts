/**
 * The caller's sessions as the server lists them (`session.list`): checked before anything of it is
 * printed, and shown as people read them (local time, how long ago), for `keyledger session list`
 * and the shell's `/sessions`.
 */
import type { Static } from 'typebox';
import { KlError, wireText } from '../protocol/errors.js';
import { check } from '../protocol/schemas/check.js';
import { ListedSessionSchema } from '../protocol/schemas/session.js';

/** One of the caller's sessions, as `session.list` answers. */
export type ListedSession = Static<typeof ListedSessionSchema>;

/** The `session.list` answer, checked (`KL_PROTOCOL` if it is not a list of sessions). */
export function checkSessionList(value: unknown): ListedSession[] {
  if (!Array.isArray(value) || value.length > 10_000)
    throw new KlError('KL_PROTOCOL', 'the server answered the session list with something unexpected');
  return value.map((v, i) => check(ListedSessionSchema, v, 'KL_PROTOCOL', `sessions[${i}]`));
}

/** How long ago, as people say it: `just now`, `42 s ago`, `5 min ago`, `3 h 20 min ago`, `2 d 4 h ago`. */
export function formatAgo(ms: number): string {
  const age = formatAge(ms);
  return age ? `${age} ago` : 'just now';
}

/** A duration as people say it: `42 s`, `5 min`, `3 h 20 min`, `2 d 4 h`; `''` under a second. */
function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 1) return '';
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  return h % 24 ? `${Math.floor(h / 24)} d ${h % 24} h` : `${Math.floor(h / 24)} d`;
}

/** A local `HH:MM:SS` time, with the date in front when it is not `now`'s day. */
function localTime(at: number, now: number): string {
  const d = new Date(at);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return d.toDateString() === new Date(now).toDateString()
    ? time
    : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/**
 * One line per session: id, the device key it logged in with, address, when it started and when it was last active (local time and
 * how long ago); the session that asked is marked `(this one)`. The address is the server's text
 * and goes through {@link wireText}.
 */
export function formatSessionList(sessions: readonly ListedSession[], now: number): string[] {
  if (sessions.length === 0) return ['no sessions'];
  return sessions.map(
    (s) =>
      `${s.sessionId}${s.fingerprint ? `  key …${s.fingerprint.slice(-16)}` : ''}  from ${wireText(s.ip, 100)}  started ${localTime(s.createdAt, now)} (${formatAgo(now - s.createdAt)})` +
      `  last active ${formatAgo(now - s.lastActivity)}${s.current ? '  (this one)' : ''}`,
  );
}
