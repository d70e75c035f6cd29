/**
 * `keyledger/server`: the server's public entry point. {@link startServer} runs the HTTP and
 * WebSocket server over a data directory (README "Using a session"); applications answer session
 * messages with `onMessage` hooks. The login handshake is also available as a pair of functions,
 * {@link createChallenge} and {@link verifyChallengeResponse} (docs/protocol.md "Phase 2"), which do
 * no I/O beyond reading the ledger.
 */
export type { RateLimits, RunningServer, ServerOptions } from './app.js';
export { DEFAULT_RATE_LIMITS, startServer } from './app.js';
export type { ServerEvent } from './events.js';
export type {
  ChallengeResponse,
  CreateChallengeOptions,
  Hello,
  PendingChallenge,
  VerifiedLogin,
  VerifyChallengeResponseOptions,
} from './handshake.js';
export { createChallenge, ParsedKeyCache, verifyChallengeResponse } from './handshake.js';
export type { MessageContext, MessageHandler } from './session-service.js';
