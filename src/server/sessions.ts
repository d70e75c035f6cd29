/**
 * The session table: sessions established by a verified login, in memory only (DESIGN: "keys live
 * in memory only"). Expiry by inactivity and by absolute lifetime, with an injected clock; keys are
 * wiped when a session ends. The encrypted channel itself is issue 4.
 */
import { randomBytes } from 'node:crypto';
import { type SessionKeys, wipeSessionKeys } from '../protocol/key-schedule.js';

/** A live session. */
export interface Session {
  sessionId: string;
  id: string;
  fingerprint: string;
  ip: string;
  keys: SessionKeys;
  createdAt: number;
  lastActivity: number;
  expiresAt: number;
}

/** Session policy. */
export interface SessionPolicy {
  idleTimeoutMs: number;
  maxLifetimeMs: number;
}

/** Default policy: 15 minutes idle, 12 hours at most. */
export const DEFAULT_SESSION_POLICY: SessionPolicy = {
  idleTimeoutMs: 15 * 60_000,
  maxLifetimeMs: 12 * 60 * 60_000,
};

/** Sessions by id. */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();

  constructor(
    readonly policy: SessionPolicy,
    private readonly now: () => number,
  ) {}

  /** Starts a session for a verified login. */
  create(init: { id: string; fingerprint: string; ip: string; keys: SessionKeys }): Session {
    const now = this.now();
    const session: Session = {
      sessionId: randomBytes(16).toString('base64url'),
      ...init,
      createdAt: now,
      lastActivity: now,
      expiresAt: now + this.policy.maxLifetimeMs,
    };
    this.sessions.set(session.sessionId, session);
    return session;
  }

  /** The live session with this id, or undefined (expired ones are ended on the way). */
  get(sessionId: string): Session | undefined {
    const s = this.sessions.get(sessionId);
    if (s && this.expired(s)) {
      this.end(sessionId);
      return undefined;
    }
    return s;
  }

  private expired(s: Session): boolean {
    const now = this.now();
    return now >= s.expiresAt || now - s.lastActivity >= this.policy.idleTimeoutMs;
  }

  /** Ends a session and wipes its keys. */
  end(sessionId: string): boolean {
    const s = this.sessions.get(sessionId);
    if (!s) return false;
    wipeSessionKeys(s.keys);
    this.sessions.delete(sessionId);
    return true;
  }

  /** Ends every expired session; returns how many. */
  sweep(): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (this.expired(s)) {
        this.end(s.sessionId);
        n += 1;
      }
    }
    return n;
  }

  /** Live sessions of an identity. */
  ofIdentity(id: string): Session[] {
    return [...this.sessions.values()].filter((s) => s.id === id && !this.expired(s));
  }

  get size(): number {
    return this.sessions.size;
  }
}
