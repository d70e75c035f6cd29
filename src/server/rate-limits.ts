/**
 * The server's rate limits (docs/protocol.md "Rate limits"): their settings, defaults, and the set of
 * limiters one server uses. A limit keyed on an identity is charged only by what proved something
 * about it; unauthenticated traffic is charged to its source address (`…PerIp`, after the proxy trust
 * list) and to server-wide budgets (`…Global`).
 */
import { type Limit, RateLimiter } from './rate-limiter.js';

/** Rate limits of the server (docs/protocol.md "Rate limits"). */
export interface RateLimits {
  /** Registration requests and emailed-code requests per source address. */
  registerPerIp: Limit;
  /** Registrations per identity whose identity proof verified. */
  registerPerIdentity: Limit;
  /** Wrong invitation or emailed codes per source address. */
  wrongCodePerIp: Limit;
  /** Wrong emailed codes, server-wide: bounds guessing the 8-digit codes from many addresses. */
  wrongEmailCodeGlobal: Limit;
  /** Login hellos and resumes per source address. */
  loginPerIp: Limit;
  /** Login hellos and resumes, server-wide (each hello costs an encryption and a signature). */
  loginGlobal: Limit;
  /** Verified logins per identity. */
  loginPerIdentity: Limit;
  /**
   * Emails per address (protects the mailbox). When it is used up no mail is sent, and the codes sent
   * meanwhile stay valid, so the owner always holds one: it cannot lock anybody out.
   */
  emailPerIdentity: Limit;
  /** New devices' requests to join an identity, per source address (docs/protocol.md "Devices"). */
  deviceRequestPerIp: Limit;
  /** Device codes that match no request, per identity whose session asked (it proved its key). */
  wrongDeviceCodePerIdentity: Limit;
  /** Recoveries tried, per source address (docs/protocol.md "Recovery"); never per identity. */
  recoveryPerIp: Limit;
  /** Recoveries tried, server-wide (bounds many sources at once). */
  recoveryGlobal: Limit;
}

/** Defaults: generous enough for a busy office behind one NAT, tight for what can be guessed. */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  registerPerIp: { burst: 60, perSecond: 1 },
  registerPerIdentity: { burst: 10, perSecond: 0.1 },
  wrongCodePerIp: { burst: 10, perSecond: 1 / 60 },
  wrongEmailCodeGlobal: { burst: 30, perSecond: 1 / 60 },
  loginPerIp: { burst: 600, perSecond: 50 },
  loginGlobal: { burst: 2_000, perSecond: 500 },
  loginPerIdentity: { burst: 20, perSecond: 1 },
  emailPerIdentity: { burst: 3, perSecond: 1 / 60 },
  deviceRequestPerIp: { burst: 10, perSecond: 1 / 60 },
  wrongDeviceCodePerIdentity: { burst: 10, perSecond: 1 / 60 },
  recoveryPerIp: { burst: 5, perSecond: 1 / 60 },
  recoveryGlobal: { burst: 100, perSecond: 2 },
};

/** One limiter per entry of {@link RateLimits}. */
export type RateLimiters = { [K in keyof RateLimits]: RateLimiter };

/** What each limit is called in operator alerts, and which limiter family it belongs to. */
const NAMES: { [K in keyof RateLimits]: [family: string, what: string] } = {
  registerPerIp: ['registration', 'registration per IP'],
  registerPerIdentity: ['registration', 'registration per identity'],
  wrongCodePerIp: ['wrong code', 'wrong codes per IP'],
  wrongEmailCodeGlobal: ['wrong code', 'wrong emailed codes (server-wide)'],
  loginPerIp: ['login', 'login per IP'],
  loginGlobal: ['login', 'logins (server-wide)'],
  loginPerIdentity: ['login', 'login per identity'],
  emailPerIdentity: ['email code', 'email code per identity'],
  deviceRequestPerIp: ['device', 'device requests per IP'],
  wrongDeviceCodePerIdentity: ['wrong code', 'wrong device codes per identity'],
  recoveryPerIp: ['recovery', 'recoveries per IP'],
  recoveryGlobal: ['recovery', 'recoveries (server-wide)'],
};

/**
 * The limiters of one server, from `limits` over the defaults. `tripped(what)` is told of each key
 * a limit refuses (the alert policy turns that into an operator alert).
 */
export function createRateLimiters(
  limits: Partial<RateLimits> | undefined,
  now: () => number,
  tripped: (what: string) => (key: string) => void,
): RateLimiters {
  const merged = { ...DEFAULT_RATE_LIMITS, ...limits };
  const out = {} as RateLimiters;
  for (const k of Object.keys(NAMES) as Array<keyof RateLimits>) {
    const [family, what] = NAMES[k];
    out[k] = new RateLimiter(family, merged[k], now, 100_000, tripped(what));
  }
  return out;
}
