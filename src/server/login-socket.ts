/**
 * The login WebSocket (`/v1/login`): one connection carries the handshake — hello → challenge →
 * response → finished — and then the session (docs/protocol.md "Phases 3 and 4"). Every message is
 * size-limited, parsed and shape-checked; any error is sent as `{ type: "error", code, message }` and the
 * connection is closed. Each connection has at most one pending challenge; the global table of pending
 * challenges is bounded.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { Ledger } from '../ledger/ledger.js';
import { canonicalize } from '../protocol/canonical-json.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { sealFrame } from '../protocol/frame.js';
import { sha256Hex } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { HELLO_SHAPE, MAX_WS_MESSAGE, RESPONSE_SHAPE } from '../protocol/messages.js';
import { checkResumeProof } from '../protocol/resume.js';
import { checkShape } from '../protocol/shape.js';
import { clientAddress, type ProxyTrust, sourceKey } from './client-address.js';
import type { ServerEvent } from './events.js';
import {
  type ChallengeResponse,
  createChallenge,
  type Hello,
  type ParsedKeyCache,
  type PendingChallenge,
  verifyChallengeResponse,
} from './handshake.js';
import type { RateLimiter } from './rate-limiter.js';
import type { ServerKey } from './server-key.js';
import { handleSessionMessage, type MessageHandler } from './session-service.js';
import type { Session, SessionTable } from './sessions.js';

/** What the login socket needs. */
export interface LoginSocketContext {
  ledger: Ledger;
  serverKey: ServerKey;
  keys: ParsedKeyCache;
  sessions: SessionTable;
  now: () => number;
  challengeTtlMs: number;
  handshakeTimeoutMs: number;
  maxPendingChallenges: number;
  /** Refuse logins while the ledger is more stale than this (fail closed); Infinity turns it off. */
  maxLedgerStalenessMs: number;
  /**
   * Unauthenticated traffic (hellos, resumes) is charged to its source and to the server-wide budget;
   * the per-identity limit only by logins that verified (docs/protocol.md "Rate limits").
   */
  limits: { loginPerIp: RateLimiter; loginGlobal: RateLimiter; loginPerIdentity: RateLimiter };
  /** Which proxies' forwarded addresses to believe. */
  proxyTrust: ProxyTrust;
  /** Application hooks for session messages. */
  handlers: MessageHandler[];
  /** Writes an audit event; failures are logged, never block a login. */
  audit: (event: string, id: string, detail?: Record<string, string | number | boolean>) => void;
  log: (msg: string) => void;
  /** Told of each refused login or resumption (events.ts); never throws. */
  event?: (e: ServerEvent) => void;
}

const RESUME_SHAPE = {
  type: { type: 'string', max: 6, enum: ['resume'] },
  sid: { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ },
  nonce: { type: 'string', max: 22, pattern: /^[A-Za-z0-9_-]{22}$/ },
} as const;
const RESUME_PROOF_SHAPE = {
  type: { type: 'string', max: 12, enum: ['resume-proof'] },
  proof: { type: 'string', max: 43, pattern: /^[A-Za-z0-9_-]{43}$/ },
} as const;

/** Attaches the login WebSocket endpoint to an HTTP server; returns how to close it and the size of its challenge table. */
export function attachLoginSocket(
  server: Server,
  path: string,
  ctx: LoginSocketContext,
): { close: () => Promise<void>; pendingChallenges: () => number } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE });
  const pending = new Map<string, PendingChallenge>();
  /** Challenges being made right now (reserved places in `pending`). */
  let creating = 0;

  const sweep = setInterval(() => {
    const now = ctx.now();
    for (const [id, p] of pending) if (p.expiresAt <= now) pending.delete(id);
  }, 5_000);
  sweep.unref();

  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });

  function onConnection(ws: WebSocket, req: IncomingMessage): void {
    const ip = clientAddress(req, ctx.proxyTrust);
    /** What per-source limits are charged to (an IPv6 address by its /64). */
    const source = sourceKey(ip);
    let state: 'hello' | 'response' | 'resume-proof' | 'established' | 'closed' = 'hello';
    let mine: PendingChallenge | undefined;
    let session: Session | undefined;
    let resuming: { session: Session; clientNonce: string; serverNonce: string } | undefined;
    /** The identity this connection claims (hello) or resumes, for the refusal event. */
    let claimed: string | undefined;
    let queue = Promise.resolve();
    let timer: NodeJS.Timeout | undefined = setTimeout(
      () => fail(new KlError('KL_PROTOCOL', 'the handshake took too long')),
      ctx.handshakeTimeoutMs,
    );
    timer.unref();
    // Cleared and dropped once the handshake is over: an idle session keeps nothing of it.
    const stopTimer = () => {
      clearTimeout(timer);
      timer = undefined;
    };

    const send = (msg: object) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
    };
    function fail(err: unknown): void {
      if (state === 'closed') return;
      const e = isKlError(err) ? err : new KlError('KL_INTERNAL', 'internal error');
      if (!isKlError(err)) ctx.log(`login socket error: ${(err as Error)?.stack ?? String(err)}`);
      // A hijack alarm is its own event (an alert naming the session).
      if (state !== 'established' && e.code !== 'KL_HIJACK_SUSPECTED') {
        const id = claimed ? { id: claimed } : {};
        ctx.event?.({ kind: 'refused', at: ctx.now(), what: 'login', ip, code: e.code, ...id });
      }
      send({ type: 'error', code: e.code, message: e.message });
      state = 'closed';
      stopTimer();
      if (mine) pending.delete(mine.challengeId);
      ws.close(1008, e.code);
    }

    ws.on('message', (data: RawData, isBinary: boolean) => {
      // Messages are handled one at a time, in order.
      queue = queue.then(() => handle(data, isBinary)).catch(fail);
    });
    ws.on('close', () => {
      state = 'closed';
      stopTimer();
      if (mine) pending.delete(mine.challengeId);
      // A dropped connection leaves the session alive for resumption until it times out.
      if (session && session.socket === ws) session.socket = null;
    });
    ws.on('error', () => ws.terminate());

    async function handle(data: RawData, isBinary: boolean): Promise<void> {
      if (state === 'closed') return;
      if (isBinary) throw new KlError('KL_PROTOCOL', 'messages are JSON text');
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        throw new KlError('KL_PROTOCOL', 'the message is not valid JSON');
      }
      const type = (msg as { type?: unknown })?.type;
      if (state === 'established' && session) {
        await handleSessionMessage(ctx, session, msg);
        if (!ctx.sessions.get(session.sessionId)) state = 'closed';
        return;
      }
      if (state === 'hello' && type === 'resume') {
        const r = checkShape<{ type: 'resume'; sid: string; nonce: string }>(
          msg,
          RESUME_SHAPE,
          'KL_PROTOCOL',
          'resume',
        );
        // A resume is charged to its source only: it names a live session (an unknown id is refused at
        // once, cheaply) and proves its key, so a flood of hellos elsewhere must not keep live
        // sessions from coming back.
        ctx.limits.loginPerIp.take(source);
        const target = ctx.sessions.get(r.sid);
        if (!target) throw new KlError('KL_SESSION_UNKNOWN', 'no live session has this id: log in again');
        claimed = target.id;
        resuming = {
          session: target,
          clientNonce: r.nonce,
          serverNonce: randomBytes(16).toString('base64url'),
        };
        state = 'resume-proof';
        send({ type: 'resume-challenge', nonce: resuming.serverNonce, epoch: target.channel.epoch });
        return;
      }
      if (state === 'resume-proof' && resuming) {
        if (type !== 'resume-proof') throw new KlError('KL_PROTOCOL', 'expected resume-proof');
        const r = checkShape<{ type: 'resume-proof'; proof: string }>(
          msg,
          RESUME_PROOF_SHAPE,
          'KL_PROTOCOL',
          'resume-proof',
        );
        const target = resuming.session;
        const live = ctx.sessions.get(target.sessionId);
        const { clientNonce, serverNonce } = resuming;
        // docs/protocol.md "Resumption": the proof is made in the current epoch, or in the one the
        // last resumption started from while the client may not have learnt that it succeeded.
        const from = live
          ? target.channel
              .resumePoints()
              .find((p) =>
                checkResumeProof(
                  p.resumeKey,
                  { sid: target.sessionId, epoch: p.epoch, clientNonce, serverNonce },
                  r.proof,
                ),
              )
          : undefined;
        if (!from) {
          if (live)
            ctx.audit('resume_failed', target.id, { session: sha256Hex(target.sessionId).slice(0, 32) });
          throw new KlError('KL_AUTH_FAILED', 'authentication failed');
        }
        // docs/protocol.md "Phases 3 and 4", Hijack detection: one session from two connections, or from
        // another address.
        if (target.socket && target.socket.readyState === target.socket.OPEN) {
          ctx.audit('hijack_alarm', target.id, { reason: 'two_connections' });
          ctx.sessions.end(target.sessionId, 'hijack', 'the session was used from two connections at once');
          throw new KlError(
            'KL_HIJACK_SUSPECTED',
            'the session was used from two connections at once: it has been ended',
          );
        }
        if (target.ip !== ip && ctx.sessions.hijack.endOnIpChange) {
          ctx.audit('hijack_alarm', target.id, { reason: 'ip_change' });
          ctx.sessions.end(target.sessionId, 'hijack', 'the session was resumed from another address');
          throw new KlError(
            'KL_HIJACK_SUSPECTED',
            'the session was resumed from another address: it has been ended',
          );
        }
        target.channel.resume(clientNonce, serverNonce, from.epoch);
        target.socket = ws;
        target.lastActivity = ctx.now();
        session = target;
        resuming = undefined;
        stopTimer();
        state = 'established';
        send({ type: 'resumed', epoch: target.channel.epoch });
        ctx.audit('session_resume', target.id, { session: sha256Hex(target.sessionId).slice(0, 32) });
        return;
      }
      if (state === 'hello') {
        if (type !== 'hello') throw new KlError('KL_PROTOCOL', 'expected hello');
        const hello = checkShape<Hello>(msg, HELLO_SHAPE, 'KL_PROTOCOL', 'hello');
        // Named in a refusal only as a well-formed identity: the hello's text is the client's word.
        claimed = identityOrUndefined(hello.id);
        ctx.limits.loginPerIp.take(source);
        ctx.limits.loginGlobal.take('*');
        // Only verified logins charge the identity's limit: a stranger's hellos for alice never do.
        // Once her own logins used it up, further hellos are refused before any work is spent.
        ctx.limits.loginPerIdentity.check(hello.id.toLowerCase());
        // Challenges being made count too: concurrent hellos must not overrun the bound.
        if (pending.size + creating >= ctx.maxPendingChallenges)
          throw new KlError('KL_RATE_LIMITED', 'the server is busy: try again shortly');
        // Fail closed: a key revoked on the chain while this server cannot read it must not log in.
        if (ctx.ledger.staleness() > ctx.maxLedgerStalenessMs)
          throw new KlError(
            'KL_LEDGER_UNAVAILABLE',
            'the ledger cannot be read right now, so the key cannot be checked: try again shortly',
          );
        creating++;
        const { message, pending: p } = await createChallenge({
          hello,
          ledger: ctx.ledger,
          serverKey: ctx.serverKey,
          keys: ctx.keys,
          now: ctx.now(),
          ttlMs: ctx.challengeTtlMs,
        }).finally(() => creating--);
        if (state !== 'hello') return; // closed meanwhile
        mine = p;
        pending.set(p.challengeId, p);
        state = 'response';
        send(message);
        return;
      }
      if (state === 'response') {
        if (type !== 'response') throw new KlError('KL_PROTOCOL', 'expected response');
        const response = checkShape<ChallengeResponse>(msg, RESPONSE_SHAPE, 'KL_PROTOCOL', 'response');
        // Single use: the challenge is burnt before anything is checked.
        const p = mine && pending.get(response.challengeId) === mine ? mine : undefined;
        if (mine) pending.delete(mine.challengeId);
        mine = undefined;
        if (!p)
          throw new KlError(
            'KL_CHALLENGE_UNKNOWN',
            'this is not the challenge that was sent on this connection',
          );
        let login: Awaited<ReturnType<typeof verifyChallengeResponse>>;
        try {
          login = await verifyChallengeResponse({
            pending: p,
            response,
            ledger: ctx.ledger,
            serverKey: ctx.serverKey,
            keys: ctx.keys,
            now: ctx.now(),
          });
        } catch (err) {
          ctx.audit('login_failed', p.id, { reason: isKlError(err) ? err.code : 'internal' });
          throw err;
        }
        ctx.limits.loginPerIdentity.take(login.id);
        session = ctx.sessions.create({
          id: login.id,
          fingerprint: login.fingerprint,
          ip,
          keys: login.keys,
          transcriptHash: login.transcriptHash,
          socket: ws,
        });
        stopTimer();
        state = 'established';
        // Key confirmation: the first frame under the new server→client key.
        const finished = {
          type: 'finished',
          sessionId: session.sessionId,
          expiresAt: session.expiresAt,
          idleTimeoutMs: ctx.sessions.policy.idleTimeoutMs,
          transcriptHash: login.transcriptHash.toString('hex'),
        };
        send(
          sealFrame({
            key: login.keys.s2cKey,
            iv: login.keys.s2cIv,
            sid: session.sessionId,
            epoch: 0,
            seq: 0,
            dir: 's2c',
            plaintext: Buffer.from(canonicalize(finished), 'utf8'),
          }),
        );
        ctx.audit('session_start', login.id, { session: sha256Hex(session.sessionId).slice(0, 32) });
        return;
      }
      throw new KlError('KL_PROTOCOL', 'unexpected message');
    }
  }

  return {
    close: async () => {
      clearInterval(sweep);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
    pendingChallenges: () => pending.size,
  };
}

/** `text` as a canonical identity, or undefined when it is not one. */
function identityOrUndefined(text: string): string | undefined {
  try {
    return canonicalIdentity(text);
  } catch {
    return undefined;
  }
}
