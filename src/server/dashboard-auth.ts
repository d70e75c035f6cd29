/**
 * How an admin gets into the dashboard without a password (docs/architecture.md "The operator side"): the
 * admin logs in with the normal OpenPGP handshake (`keyledger admin dashboard`), and inside that
 * authenticated session asks for a one-time link. The link's token is random (256 bits), stored only as a
 * hash, single use and short-lived (60 s). Redeeming it starts a dashboard session bound to a cookie
 * (HttpOnly, SameSite=Strict, Secure over TLS) with its own CSRF token, which every state change must carry.
 * Everything lives in memory; time comes from the injected clock.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';

/** Lifetimes of links and dashboard sessions. */
export interface DashboardAuthPolicy {
  linkTtlMs: number;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  /** Outstanding links and live dashboard sessions, at most. */
  maxLinks: number;
  maxSessions: number;
}

/** Defaults: links live 60 s; dashboard sessions end after 15 min idle or 8 h. */
export const DEFAULT_DASHBOARD_AUTH_POLICY: DashboardAuthPolicy = {
  linkTtlMs: 60_000,
  idleTimeoutMs: 15 * 60_000,
  maxLifetimeMs: 8 * 60 * 60_000,
  maxLinks: 1_000,
  maxSessions: 1_000,
};

/** A logged-in dashboard. */
export interface DashboardSession {
  /** The admin identity. */
  id: string;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

/** The name of the dashboard's session cookie. */
export const DASHBOARD_COOKIE = 'kl_admin';

/** One-time links and the dashboard sessions they start. */
export class DashboardAuth {
  private readonly links = new Map<string, { id: string; expiresAt: number }>();
  private readonly sessions = new Map<string, DashboardSession>();

  constructor(
    readonly policy: DashboardAuthPolicy,
    private readonly now: () => number,
  ) {}

  /** Issues a one-time login token for admin `id` (the caller has checked the role). */
  issueLink(id: string): { token: string; expiresAt: number } {
    this.sweep();
    if (this.links.size >= this.policy.maxLinks)
      throw new KlError('KL_RATE_LIMITED', 'too many dashboard links outstanding: try again in a minute');
    const token = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.policy.linkTtlMs;
    this.links.set(sha256Hex(token), { id, expiresAt });
    return { token, expiresAt };
  }

  /**
   * Redeems a link: burns it and starts a dashboard session. Returns the cookie value.
   * @throws KlError `KL_ADMIN_LINK_INVALID` for an unknown, used or expired link (one message for all).
   */
  redeemLink(token: unknown): { cookie: string; session: DashboardSession } {
    const key = typeof token === 'string' && token.length <= 64 ? sha256Hex(token) : '';
    const link = this.links.get(key);
    this.links.delete(key);
    const now = this.now();
    if (!link || link.expiresAt <= now)
      throw new KlError(
        'KL_ADMIN_LINK_INVALID',
        'this dashboard link is not valid (used, expired or unknown)',
      );
    this.sweep();
    if (this.sessions.size >= this.policy.maxSessions)
      throw new KlError('KL_RATE_LIMITED', 'too many dashboard sessions: log out of another one first');
    const cookie = randomBytes(32).toString('base64url');
    const session: DashboardSession = {
      id: link.id,
      csrf: randomBytes(24).toString('base64url'),
      createdAt: now,
      lastSeen: now,
    };
    this.sessions.set(sha256Hex(cookie), session);
    return { cookie, session };
  }

  /**
   * The dashboard session of a cookie, touched; undefined when there is none or it has expired
   * (idle for `idleTimeoutMs` or older than `maxLifetimeMs`).
   */
  session(cookie: unknown): DashboardSession | undefined {
    if (typeof cookie !== 'string' || cookie.length > 64) return undefined;
    const key = sha256Hex(cookie);
    const s = this.sessions.get(key);
    if (!s) return undefined;
    const now = this.now();
    if (now - s.lastSeen >= this.policy.idleTimeoutMs || now - s.createdAt >= this.policy.maxLifetimeMs) {
      this.sessions.delete(key);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  /** @throws KlError `KL_CSRF` unless `token` is the session's CSRF token. */
  checkCsrf(s: DashboardSession, token: unknown): void {
    const a = Buffer.from(typeof token === 'string' ? token : '', 'utf8');
    const b = Buffer.from(s.csrf, 'utf8');
    if (a.length !== b.length || !timingSafeEqual(a, b))
      throw new KlError('KL_CSRF', 'missing or wrong CSRF token: reload the dashboard');
  }

  /** Ends the dashboard session of a cookie (logout). */
  end(cookie: unknown): void {
    if (typeof cookie === 'string' && cookie.length <= 64) this.sessions.delete(sha256Hex(cookie));
  }

  /** Ends every dashboard session and link of an identity (its key or admin role was revoked). */
  endIdentity(id: string): void {
    for (const [k, s] of this.sessions) if (s.id === id) this.sessions.delete(k);
    for (const [k, l] of this.links) if (l.id === id) this.links.delete(k);
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, l] of this.links) if (l.expiresAt <= now) this.links.delete(k);
    for (const [k, s] of this.sessions)
      if (now - s.lastSeen >= this.policy.idleTimeoutMs || now - s.createdAt >= this.policy.maxLifetimeMs)
        this.sessions.delete(k);
  }
}
