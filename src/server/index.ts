/**
 * `keyledger/server`: the server's public entry point. {@link startServer} runs the HTTP and
 * WebSocket server over a data directory (README "Using a session"); {@link keyledger} is the same
 * server as a Fastify plugin for an existing app (`app.register(keyledger, { prefix, ...options })`,
 * over a node opened with {@link openNode}); applications answer session messages with `onMessage`
 * hooks. The login handshake is also available as a pair of functions,
 * {@link createChallenge} and {@link verifyChallengeResponse} (docs/protocol.md "Phase 2"), which do
 * no I/O beyond reading the ledger; registration as {@link createRegistration} and
 * {@link verifyRegistration} (docs/protocol.md "Phase 1"), which do no I/O and keep no state.
 */

export { nativeOpenPgpEnabled, setNativeOpenPgp } from '../pgp/native/switch.js';
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
export { IdentityProofs } from './identity-proofs.js';
export type { OpenNode, OpenNodeOptions } from './open-node.js';
export { openNode } from './open-node.js';
export type { Keyledger, KeyledgerOptions } from './plugin.js';
export { keyledger, keyledger as default } from './plugin.js';
export type {
  CreateRegistrationOptions,
  RegistrationBegun,
  RegistrationRequest,
  VerifiedRegistration,
  VerifyRegistrationOptions,
} from './registration-protocol.js';
export { createRegistration, verifyRegistration } from './registration-protocol.js';
export type { MessageContext, MessageHandler } from './session-service.js';
