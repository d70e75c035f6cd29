/**
 * Sessions (docs/protocol.md "Phases 3 and 4"): the table of live sessions, in memory only (keys never touch
 * disk or the ledger), and every way a session ends — logout, inactivity timeout, absolute lifetime,
 * revocation by the client, the server or an admin, key revocation on the ledger, and a hijack
 * alarm. Ending a session wipes its keys, tells the client (an encrypted alert, then close) when it
 * is connected, and writes an audit event. Time comes from the injected clock.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { Channel } from '../protocol/channel.js';
import type { SessionKeys } from '../protocol/key-schedule.js';
import { ActivityBaseline, DEFAULT_BASELINE_POLICY } from './activity-baseline.js';

/** Why a session ended (also the audit event name). */
export type EndReason = 'logout' | 'timeout' | 'lifetime' | 'revoked' | 'key_revoked' | 'hijack' | 'shutdown';

/** A live session. */
export interface Session {
  sessionId: string;
  id: string;
  fingerprint: string;
  ip: string;
  channel: Channel;
  socket: WebSocket | null;
  createdAt: number;
  lastActivity: number;
  expiresAt: number;
  /** Rejected frames (replays, forgeries, gaps) in the current window. */
  anomalies: number[];
  /** Accepted frames in the current rate window. */
  recentWindow?: { start: number; count: number };
  renewalRequested: boolean;
}

/** Session policy (docs/protocol.md "Phases 3 and 4", Renewal and Timeouts). */
export interface SessionPolicy {
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  /** Renew keys after this many frames in one direction, bytes, or ms (whichever comes first). */
  renewAfterFrames: number;
  renewAfterBytes: number;
  renewAfterMs: number;
}

/** Hijack-detection thresholds (docs/protocol.md "Phases 3 and 4", Hijack detection). */
export interface HijackPolicy {
  /** Rejected frames within `anomalyWindowMs` that end the session. */
  maxAnomalies: number;
  anomalyWindowMs: number;
  /** Frames per `rateWindowMs` above which the session is ended as abnormal activity. */
  maxFramesPerWindow: number;
  rateWindowMs: number;
  /** End the session when it is resumed from another IP address. */
  endOnIpChange: boolean;
  /**
   * Per-identity baseline (see activity-baseline.ts): a `rateWindowMs` window with more frames than
   * `baselineFactor` × the identity's mean active window (and more than `baselineMinFrames`) is
   * abnormal, once `baselineMinHistory` active windows are known. `baselineFactor: 0` turns it off.
   */
  baselineFactor: number;
  baselineMinFrames: number;
  baselineMinHistory: number;
}

/** Defaults: 15 min idle, 12 h lifetime, renew every 10,000 frames, 64 MiB or 10 min. */
export const DEFAULT_SESSION_POLICY: SessionPolicy = {
  idleTimeoutMs: 15 * 60_000,
  maxLifetimeMs: 12 * 60 * 60_000,
  renewAfterFrames: 10_000,
  renewAfterBytes: 64 * 1024 * 1024,
  renewAfterMs: 10 * 60_000,
};

/**
 * Defaults: 3 bad frames a minute, 2,000 frames in 10 s, IP change ends the session; more than 10×
 * the identity's mean active 10 s window (and more than 300) after 5 active windows.
 */
export const DEFAULT_HIJACK_POLICY: HijackPolicy = {
  maxAnomalies: 3,
  anomalyWindowMs: 60_000,
  maxFramesPerWindow: 2_000,
  rateWindowMs: 10_000,
  endOnIpChange: true,
  baselineFactor: DEFAULT_BASELINE_POLICY.factor,
  baselineMinFrames: DEFAULT_BASELINE_POLICY.minFrames,
  baselineMinHistory: DEFAULT_BASELINE_POLICY.minHistory,
};

/** An ended session, as reported to listeners. */
export interface SessionEnded {
  session: Session;
  reason: EndReason;
  detail: string;
}

/** The table of live sessions. Emits `ended` (SessionEnded) and `started` (Session). */
export class SessionTable extends EventEmitter {
  private readonly sessions = new Map<string, Session>();
  /** Each identity's recent activity, for the baseline rule of hijack detection. */
  readonly baseline: ActivityBaseline;

  constructor(
    readonly policy: SessionPolicy,
    readonly hijack: HijackPolicy,
    private readonly now: () => number,
  ) {
    super();
    this.baseline = new ActivityBaseline({
      ...DEFAULT_BASELINE_POLICY,
      factor: hijack.baselineFactor,
      minFrames: hijack.baselineMinFrames,
      minHistory: hijack.baselineMinHistory,
      windowMs: hijack.rateWindowMs,
    });
  }

  /** Starts a session for a verified login. */
  create(init: {
    id: string;
    fingerprint: string;
    ip: string;
    keys: SessionKeys;
    transcriptHash: Buffer;
    socket: WebSocket;
  }): Session {
    const now = this.now();
    const sessionId = randomBytes(16).toString('base64url');
    const session: Session = {
      sessionId,
      id: init.id,
      fingerprint: init.fingerprint,
      ip: init.ip,
      // The finished frame used server→client sequence 0.
      channel: new Channel({
        role: 'server',
        sid: sessionId,
        keys: init.keys,
        chain: init.transcriptHash,
        nextSendSeq: 1,
        now: this.now,
      }),
      socket: init.socket,
      createdAt: now,
      lastActivity: now,
      expiresAt: now + this.policy.maxLifetimeMs,
      anomalies: [],
      renewalRequested: false,
    };
    this.sessions.set(sessionId, session);
    this.emit('started', session);
    return session;
  }

  /** Why `s` has expired at `now`, or null. Idle for exactly idleTimeoutMs counts as expired. */
  expiry(s: Session, now = this.now()): EndReason | null {
    if (now >= s.expiresAt) return 'lifetime';
    if (now - s.lastActivity >= this.policy.idleTimeoutMs) return 'timeout';
    return null;
  }

  /** The live session with this id; an expired one is ended on the way and not returned. */
  get(sessionId: string): Session | undefined {
    const s = this.sessions.get(sessionId);
    if (!s) return undefined;
    const why = this.expiry(s);
    if (why) {
      this.end(sessionId, why, why === 'timeout' ? 'inactivity timeout' : 'session lifetime reached');
      return undefined;
    }
    return s;
  }

  /**
   * Ends a session: tells a connected client (encrypted alert, then close frame code 4000+), wipes
   * the keys, forgets the session. Returns false if there was no such session.
   */
  end(sessionId: string, reason: EndReason, detail: string): boolean {
    const s = this.sessions.get(sessionId);
    if (!s) return false;
    this.sessions.delete(sessionId);
    const ws = s.socket;
    if (ws && ws.readyState === ws.OPEN && !s.channel.isClosed && reason !== 'logout') {
      try {
        ws.send(s.channel.seal({ t: 'alert', code: alertCode(reason), message: detail }));
      } catch {
        // the socket is going away anyway
      }
    }
    s.channel.close();
    if (ws && ws.readyState === ws.OPEN) ws.close(reason === 'logout' ? 1000 : 4000, reason);
    s.socket = null;
    this.emit('ended', { session: s, reason, detail } satisfies SessionEnded);
    return true;
  }

  /** Ends every expired session; returns how many. */
  sweep(): number {
    let n = 0;
    const now = this.now();
    for (const s of [...this.sessions.values()]) {
      const why = this.expiry(s, now);
      if (why) {
        this.end(s.sessionId, why, why === 'timeout' ? 'inactivity timeout' : 'session lifetime reached');
        n += 1;
      }
    }
    return n;
  }

  /** Ends every session of an identity (key revoked). */
  endIdentity(id: string, reason: EndReason, detail: string): number {
    let n = 0;
    for (const s of [...this.sessions.values()])
      if (s.id === id && this.end(s.sessionId, reason, detail)) n += 1;
    return n;
  }

  /** Ends every session of `id` logged in with the device key `fingerprint`; returns how many. */
  endDevice(id: string, fingerprint: string, reason: EndReason, detail: string): number {
    let n = 0;
    for (const s of [...this.sessions.values()])
      if (s.id === id && s.fingerprint === fingerprint && this.end(s.sessionId, reason, detail)) n += 1;
    return n;
  }

  /** Live sessions (not expired). */
  list(): Session[] {
    const now = this.now();
    return [...this.sessions.values()].filter((s) => !this.expiry(s, now));
  }

  /** Live sessions of an identity. */
  ofIdentity(id: string): Session[] {
    return this.list().filter((s) => s.id === id);
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** The alert code a client sees for each way a session ends. */
export function alertCode(reason: EndReason): string {
  switch (reason) {
    case 'timeout':
    case 'lifetime':
      return 'KL_SESSION_EXPIRED';
    case 'key_revoked':
      return 'KL_KEY_REVOKED';
    case 'hijack':
      return 'KL_HIJACK_SUSPECTED';
    case 'shutdown':
      return 'KL_SERVER_SHUTDOWN';
    default:
      return 'KL_SESSION_REVOKED';
  }
}
