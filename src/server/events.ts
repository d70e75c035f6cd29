/**
 * What happens on a running server, as typed events for whoever embeds it (`startServer({ onEvent })`):
 * the CLI prints them as one console line each (src/cli/event-line.ts). Events carry identities,
 * public key fingerprints, whole session ids (the listener shortens what it shows), addresses and
 * error codes — never a secret: no invitation or emailed code, session key, token or passphrase.
 * Identities and details may come from the network (a refused hello names any identity): a listener
 * that prints them must neutralise control characters.
 */
import type { EndReason } from './sessions.js';

/** A key registered on the ledger through this server (docs/protocol.md "Phase 1"). */
export interface RegisteredEvent {
  kind: 'registered';
  at: number;
  id: string;
  fingerprint: string;
  /** The client's address (after the proxy trust list). */
  ip: string;
}

/** A verified login: a new session. */
export interface LoginEvent {
  kind: 'login';
  at: number;
  id: string;
  fingerprint: string;
  sessionId: string;
  ip: string;
}

/**
 * A session ended for any reason but a hijack alarm (that one is an {@link AlertEvent} of kind
 * `hijack`, which names the session).
 */
export interface SessionEndedEvent {
  kind: 'session_ended';
  at: number;
  id: string;
  sessionId: string;
  ip: string;
  reason: Exclude<EndReason, 'hijack'>;
}

/** A key revoked on the ledger (by its owner, an operator or an admin). */
export interface KeyRevokedEvent {
  kind: 'key_revoked';
  at: number;
  id: string;
  fingerprint: string;
  /** The revocation reason on the ledger (compromised, superseded, retired, unspecified). */
  reason: string;
  /** Who revoked it: the owner, or this admin identity. */
  by: 'owner' | { admin: string };
}

/**
 * A key replaced on the ledger by its owner (docs/protocol.md "Phases 3 and 4", Key revocation and
 * rotation).
 */
export interface KeyRotatedEvent {
  kind: 'key_rotated';
  at: number;
  id: string;
  /** The new key's fingerprint. */
  fingerprint: string;
}

/** A device key added to an identity on the ledger (docs/protocol.md "Devices"). */
export interface DeviceAddedEvent {
  kind: 'device_added';
  at: number;
  id: string;
  fingerprint: string;
  name: string;
}

/** One device key of an identity revoked on the ledger; the identity's other devices stay. */
export interface DeviceRevokedEvent {
  kind: 'device_revoked';
  at: number;
  id: string;
  fingerprint: string;
  reason: string;
  /** Who revoked it: a device of the identity (its fingerprint), or this admin identity. */
  by: { device: string } | { admin: string };
}

/** An identity's recovery key set or replaced on the ledger (docs/protocol.md "Recovery"). */
export interface RecoveryKeySetEvent {
  kind: 'recovery_key_set';
  at: number;
  id: string;
  /** The recovery key's fingerprint. */
  fingerprint: string;
}

/** An identity recovered with its recovery key: every device revoked, one new device enrolled. */
export interface RecoveredEvent {
  kind: 'recovered';
  at: number;
  id: string;
  /** The new device's key. */
  fingerprint: string;
  name: string;
}

/** A role (admin) granted or revoked on the ledger. */
export interface RoleChangedEvent {
  kind: 'role_changed';
  at: number;
  id: string;
  role: string;
  granted: boolean;
}

/**
 * An alert for the operator, as recorded in the alert log (hijack, storage, rate_limit, …); `id`
 * is the identity or, for a rate limit, the source it is charged to.
 */
export interface AlertEvent {
  kind: 'alert';
  at: number;
  alert: string;
  id: string;
  sessionId: string;
  detail: string;
}

/**
 * A refused attempt: a login handshake or resumption that failed, or a registration request (or an
 * emailed-code request) that was refused. `id` is what the request claimed, if anything.
 */
export interface RefusedEvent {
  kind: 'refused';
  at: number;
  what: 'login' | 'registration';
  ip: string;
  /** The KL_* code the client was sent. */
  code: string;
  id?: string;
}

/**
 * The chain under an EVM-engine ledger cannot be followed (the node unreachable, a read failed) or
 * left a transaction out; repeats while the problem lasts (the console summarises them).
 */
export interface LedgerProblemEvent {
  kind: 'ledger_problem';
  at: number;
  detail: string;
}

/** Every server event. */
export type ServerEvent =
  | RegisteredEvent
  | LoginEvent
  | SessionEndedEvent
  | KeyRevokedEvent
  | KeyRotatedEvent
  | DeviceAddedEvent
  | DeviceRevokedEvent
  | RecoveryKeySetEvent
  | RecoveredEvent
  | RoleChangedEvent
  | AlertEvent
  | RefusedEvent
  | LedgerProblemEvent;

/**
 * `text` with every URL cut to its scheme, host and port: an RPC URL may carry credentials (user
 * info, an API key in the path or the query), and error messages of the chain client quote it.
 */
export function withoutUrlSecrets(text: string): string {
  // Linear: a scheme starts where no scheme character precedes it (no backtracking over long runs);
  // the user info ends at the last "@" before the host, so a password holding "@" goes whole.
  return text.replace(
    /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/?#]*@)?([^\s/?#@"',)]+)[^\s"',)]*/gi,
    '$1$2',
  );
}

/**
 * A listener that can never break the server: what it throws, or its promise rejects with, is
 * dropped (a console that cannot be written must not end a login).
 */
export function safeListener(listener?: (event: ServerEvent) => void): (event: ServerEvent) => void {
  if (!listener) return () => {};
  return (event) => {
    try {
      // An async listener's rejection is dropped too (unhandled, it would end the process).
      const result = listener(event) as unknown;
      if (result instanceof Promise) result.catch(() => {});
    } catch {
      // see above
    }
  };
}
