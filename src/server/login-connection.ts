/**
 * One login WebSocket connection (docs/protocol.md "Phase 2", "Phases 3 and 4", "Resumption"): the
 * handshake — hello → challenge → response → finished — or a resumption, then the session. Messages
 * are handled one at a time, in order; any error is sent as `{ type: "error", code, message }` and the
 * connection is closed.
 */

import { randomBytes } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { activeDevice } from '../ledger/devices.js';
import { canonicalize } from '../protocol/canonical-json.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { jsonPlaintext, sealWire, sessionHandle } from '../protocol/frame-wire.js';
import { sha256Hex } from '../protocol/hash.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { wipeSessionKeys } from '../protocol/key-schedule.js';
import { MAX_WS_MESSAGE } from '../protocol/messages.js';
import { checkResumeProof } from '../protocol/resume.js';
import { check } from '../protocol/schemas/check.js';
import {
  Hello as HelloSchema,
  ChallengeResponse as ResponseSchema,
  Resume,
  ResumeProof,
} from '../protocol/schemas/login.js';
import {
  createChallenge,
  type PendingChallenge,
  type VerifiedLogin,
  verifyChallengeResponse,
} from './handshake.js';
import type { LoginSocketContext } from './login-socket.js';
import { handleSessionMessage } from './session-service.js';
import type { Session } from './sessions.js';

/** The table of pending challenges all connections share (bounded: docs/protocol.md "Rate limits"). */
export interface ChallengeTable {
  pending: Map<string, PendingChallenge>;
  /** Challenges being made right now (reserved places in `pending`). */
  creating: number;
}

type State = 'hello' | 'response' | 'resume-proof' | 'established' | 'closed';

/** The server side of one login connection. */
export class LoginConnection {
  private state: State = 'hello';
  private mine: PendingChallenge | undefined;
  private session: Session | undefined;
  private resuming: { session: Session; clientNonce: string; serverNonce: string } | undefined;
  /** The identity this connection claims (hello) or resumes, for the refusal event. */
  private claimed: string | undefined;
  private queue = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param ip the client's address (after the proxy trust list); `source` is what per-source limits
   * are charged to (an IPv6 address by its /64).
   */
  constructor(
    private readonly ws: WebSocket,
    private readonly ip: string,
    private readonly source: string,
    private readonly ctx: LoginSocketContext,
    private readonly table: ChallengeTable,
  ) {
    this.timer = setTimeout(
      () => this.fail(new KlError('KL_PROTOCOL', 'the handshake took too long')),
      ctx.handshakeTimeoutMs,
    );
    this.timer.unref();
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.queue = this.queue.then(() => this.handle(data, isBinary)).catch((err) => this.fail(err));
    });
    ws.on('close', () => {
      this.state = 'closed';
      this.forget();
      // A dropped connection leaves the session alive for resumption until it times out.
      if (this.session && this.session.socket === ws) this.session.socket = null;
    });
    ws.on('error', () => ws.terminate());
  }

  /** Cleared and dropped once the handshake is over: an idle session keeps nothing of it. */
  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private forget(): void {
    this.stopTimer();
    if (this.mine) this.table.pending.delete(this.mine.challengeId);
  }

  private send(msg: object): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private fail(err: unknown): void {
    if (this.state === 'closed') return;
    const e = isKlError(err) ? err : new KlError('KL_INTERNAL', 'internal error');
    if (!isKlError(err)) this.ctx.log(`login socket error: ${(err as Error)?.stack ?? String(err)}`);
    // A hijack alarm is its own event (an alert naming the session).
    if (this.state !== 'established' && e.code !== 'KL_HIJACK_SUSPECTED') {
      const id = this.claimed ? { id: this.claimed } : {};
      this.ctx.event?.({
        kind: 'refused',
        at: this.ctx.now(),
        what: 'login',
        ip: this.ip,
        code: e.code,
        ...id,
      });
    }
    this.send({ type: 'error', code: e.code, message: e.message });
    this.state = 'closed';
    this.forget();
    this.ws.close(1008, e.code);
  }

  private async handle(data: RawData, isBinary: boolean): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'established' && this.session) {
      // After `finished` every message is a binary sealed frame (docs/protocol.md "Session frame
      // wire format v2"); a text message is injected plaintext, a rejected frame.
      await handleSessionMessage(this.ctx, this.session, isBinary ? asBytes(data) : null);
      if (!this.ctx.sessions.get(this.session.sessionId)) this.state = 'closed';
      return;
    }
    if (isBinary) throw new KlError('KL_PROTOCOL', 'messages are JSON text');
    const text = data.toString();
    // Also bounded here: a host app's own WebSocket settings may allow larger messages.
    if (Buffer.byteLength(text) > MAX_WS_MESSAGE)
      throw new KlError('KL_TOO_LARGE', 'the message is too large');
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      throw new KlError('KL_PROTOCOL', 'the message is not valid JSON');
    }
    const type = (msg as { type?: unknown })?.type;
    if (this.state === 'hello' && type === 'resume') return this.onResume(msg);
    if (this.state === 'resume-proof') return this.onResumeProof(msg, type);
    if (this.state === 'hello') return this.onHello(msg, type);
    if (this.state === 'response') return this.onResponse(msg, type);
    throw new KlError('KL_PROTOCOL', 'unexpected message');
  }

  private onResume(msg: unknown): void {
    const r = check(Resume, msg, 'KL_PROTOCOL', 'resume');
    // A resume is charged to its source only: it names a live session (an unknown id is refused at
    // once, cheaply) and proves its key, so a flood of hellos elsewhere must not keep live
    // sessions from coming back.
    this.ctx.limits.loginPerIp.take(this.source);
    const target = this.ctx.sessions.get(r.sid);
    if (!target) throw new KlError('KL_SESSION_UNKNOWN', 'no live session has this id: log in again');
    this.claimed = target.id;
    this.resuming = {
      session: target,
      clientNonce: r.nonce,
      serverNonce: randomBytes(16).toString('base64url'),
    };
    this.state = 'resume-proof';
    this.send({ type: 'resume-challenge', nonce: this.resuming.serverNonce, epoch: target.channel.epoch });
  }

  private onResumeProof(msg: unknown, type: unknown): void {
    if (type !== 'resume-proof' || !this.resuming) throw new KlError('KL_PROTOCOL', 'expected resume-proof');
    const r = check(ResumeProof, msg, 'KL_PROTOCOL', 'resume-proof');
    const { session: target, clientNonce, serverNonce } = this.resuming;
    const live = this.ctx.sessions.get(target.sessionId);
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
        this.ctx.audit('resume_failed', target.id, { session: sha256Hex(target.sessionId).slice(0, 32) });
      throw new KlError('KL_AUTH_FAILED', 'authentication failed');
    }
    this.checkHijack(target);
    target.channel.resume(clientNonce, serverNonce, from.epoch);
    target.socket = this.ws;
    target.lastActivity = this.ctx.now();
    this.session = target;
    this.resuming = undefined;
    this.stopTimer();
    this.state = 'established';
    this.send({ type: 'resumed', epoch: target.channel.epoch });
    this.ctx.audit('session_resume', target.id, { session: sha256Hex(target.sessionId).slice(0, 32) });
  }

  /**
   * docs/protocol.md "Phases 3 and 4", Hijack detection: one session from two connections, or from
   * another address, ends it.
   */
  private checkHijack(target: Session): void {
    const { ctx } = this;
    if (target.socket && target.socket.readyState === target.socket.OPEN) {
      ctx.audit('hijack_alarm', target.id, { reason: 'two_connections' });
      ctx.sessions.end(target.sessionId, 'hijack', 'the session was used from two connections at once');
      throw new KlError(
        'KL_HIJACK_SUSPECTED',
        'the session was used from two connections at once: it has been ended',
      );
    }
    if (target.ip !== this.ip && ctx.sessions.hijack.endOnIpChange) {
      ctx.audit('hijack_alarm', target.id, { reason: 'ip_change' });
      ctx.sessions.end(target.sessionId, 'hijack', 'the session was resumed from another address');
      throw new KlError(
        'KL_HIJACK_SUSPECTED',
        'the session was resumed from another address: it has been ended',
      );
    }
  }

  private async onHello(msg: unknown, type: unknown): Promise<void> {
    const { ctx, table } = this;
    if (type !== 'hello') throw new KlError('KL_PROTOCOL', 'expected hello');
    const hello = check(HelloSchema, msg, 'KL_PROTOCOL', 'hello');
    // Named in a refusal only as a well-formed identity: the hello's text is the client's word.
    this.claimed = identityOrUndefined(hello.id);
    ctx.limits.loginPerIp.take(this.source);
    ctx.limits.loginGlobal.take('*');
    // Only verified logins charge the identity's limit: a stranger's hellos for alice never do.
    // Once her own logins used it up, further hellos are refused before any work is spent.
    ctx.limits.loginPerIdentity.check(hello.id.toLowerCase());
    // Challenges being made count too: concurrent hellos must not overrun the bound.
    if (table.pending.size + table.creating >= ctx.maxPendingChallenges)
      throw new KlError('KL_RATE_LIMITED', 'the server is busy: try again shortly');
    // Fail closed: a key revoked on the chain while this server cannot read it must not log in; a
    // faulted chain (infinitely stale: it went back or was replaced) refuses even with the opt-out.
    const staleness = ctx.ledger.staleness();
    if (staleness > ctx.maxLedgerStalenessMs || staleness === Number.POSITIVE_INFINITY)
      throw new KlError(
        'KL_LEDGER_UNAVAILABLE',
        'the ledger cannot be read right now, so the key cannot be checked: try again shortly',
      );
    table.creating++;
    const { message, pending: p } = await createChallenge({
      hello,
      ledger: ctx.ledger,
      serverKey: ctx.serverKey,
      keys: ctx.keys,
      now: ctx.now(),
      ttlMs: ctx.challengeTtlMs,
    }).finally(() => table.creating--);
    if (this.state !== 'hello') return; // closed meanwhile
    this.mine = p;
    table.pending.set(p.challengeId, p);
    this.state = 'response';
    this.send(message);
  }

  private async onResponse(msg: unknown, type: unknown): Promise<void> {
    const { ctx } = this;
    if (type !== 'response') throw new KlError('KL_PROTOCOL', 'expected response');
    const response = check(ResponseSchema, msg, 'KL_PROTOCOL', 'response');
    // Single use: the challenge is burnt before anything is checked.
    const mine = this.mine;
    const p = mine && this.table.pending.get(response.challengeId) === mine ? mine : undefined;
    if (mine) this.table.pending.delete(mine.challengeId);
    this.mine = undefined;
    if (!p)
      throw new KlError('KL_CHALLENGE_UNKNOWN', 'this is not the challenge that was sent on this connection');
    let login: VerifiedLogin;
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
    this.establish(login);
    void this.recheckKey(login);
  }

  /**
   * Reads the ledger once more now that the session exists: a revocation (of the identity or of this
   * device) committed after the response was checked and before the session was created found no
   * session to end, while any committed from now on finds it (ledger-watch.ts).
   */
  private async recheckKey(login: VerifiedLogin): Promise<void> {
    const { ctx } = this;
    try {
      const { record } = await ctx.ledger.getKeyRecord(login.id);
      if (record?.status === 'active' && activeDevice(record, login.fingerprint)) return;
    } catch (err) {
      if (!isKlError(err, 'KL_IDENTITY_UNKNOWN')) return; // the ledger cannot be read: the watch decides
    }
    const s = this.session;
    if (s) ctx.sessions.end(s.sessionId, 'key_revoked', 'the key this session logged in with was revoked');
  }

  /** Opens the session and sends `finished`, the first frame under the new server→client key. */
  private establish(login: VerifiedLogin): void {
    const { ctx } = this;
    const session = ctx.sessions.create({
      id: login.id,
      fingerprint: login.fingerprint,
      ip: this.ip,
      keys: login.keys,
      transcriptHash: login.transcriptHash,
      socket: this.ws,
    });
    this.session = session;
    this.stopTimer();
    this.state = 'established';
    const finished = {
      type: 'finished',
      sessionId: session.sessionId,
      expiresAt: session.expiresAt,
      idleTimeoutMs: ctx.sessions.policy.idleTimeoutMs,
      transcriptHash: login.transcriptHash.toString('hex'),
    };
    // The session's first sealed frame, a binary message (docs/protocol.md "Session frame wire format v2").
    const frame = sealWire({
      key: login.keys.s2cKey,
      iv: login.keys.s2cIv,
      handle: sessionHandle(session.sessionId),
      epoch: 0,
      seq: 0,
      dir: 's2c',
      plaintext: jsonPlaintext(canonicalize(finished)),
    });
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(frame);
    // The channel holds its own copy of the keys.
    wipeSessionKeys(login.keys);
    // The device key that logged in (public, as on the key record): each device's last login is read
    // back from the trail (docs/ledger.md "Devices").
    ctx.audit('session_start', login.id, {
      session: sha256Hex(session.sessionId).slice(0, 32),
      fingerprint: login.fingerprint,
    });
  }
}

/** The bytes of a binary message as `ws` hands it over (a Buffer unless binaryType was changed). */
function asBytes(data: RawData): Uint8Array {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return new Uint8Array(data);
}

/** `text` as a canonical identity, or undefined when it is not one. */
function identityOrUndefined(text: string): string | undefined {
  try {
    return canonicalIdentity(text);
  } catch {
    return undefined;
  }
}
