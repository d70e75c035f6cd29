/**
 * What the server does with the frames of an established session (docs/protocol.md "Phases 3 and 4"):
 * dispatches application messages to the hooks (`server.onMessage`), answers requests, verifies and anchors
 * signed messages, renews keys, logs out, revokes keys on the owner's signed request, and watches
 * for hijacking (bad frames, abnormal rates). Every rejected frame counts as an anomaly.
 */
import type * as openpgp from 'openpgp';
import type { WebSocket } from 'ws';
import type { Ledger } from '../ledger/ledger.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import { acceptPublicKey } from '../pgp/key-policy.js';
import { verifyDetached } from '../pgp/messages.js';
import type { ChannelMessage } from '../protocol/channel.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { RevocationStatementSchema, RotationStatementSchema } from '../protocol/schemas/statements.js';
import { statementBytes } from '../protocol/statements.js';
import {
  approveDevice,
  type DeviceSessionContext,
  pendingDevice,
  revokeDevice,
  sessionDevice,
} from './device-session.js';
import type { ParsedKeyCache } from './handshake.js';
import { setRecoveryKey } from './recovery-session.js';
import { parseSessionStatement, STATEMENT_SKEW_MS } from './session-statement.js';
import type { Session, SessionTable } from './sessions.js';

/** What an application hook receives. */
export interface MessageContext {
  /** Authenticated identity. */
  id: string;
  sessionId: string;
  body: unknown;
  /** True for signed messages (already verified and anchored; `receipt` is set). */
  signed: boolean;
  receipt?: TransactionReceipt;
}

/** An application hook. A return value other than undefined answers a request. */
export type MessageHandler = (ctx: MessageContext) => unknown | Promise<unknown>;

/** Largest signed message body, characters. */
export const MAX_SIGNED_BODY = 48 * 1024;

/** What the session service needs. */
export interface SessionServiceContext {
  ledger: Ledger;
  keys: ParsedKeyCache;
  sessions: SessionTable;
  handlers: MessageHandler[];
  /** Device requests and approvals (docs/protocol.md "Devices"). */
  devices: DeviceSessionContext;
  now: () => number;
  audit: (event: string, id: string, detail?: Record<string, string | number | boolean>) => void;
  log: (line: string) => void;
}

/** Sends a sealed frame as one binary message (docs/protocol.md "Session frame wire format v2"). */
function send(ws: WebSocket | null, frame: Uint8Array): void {
  if (ws && ws.readyState === ws.OPEN) ws.send(frame);
}

/** Records a rejected frame; ends the session as hijacked past the threshold. */
function anomaly(ctx: SessionServiceContext, s: Session, why: string): void {
  const now = ctx.now();
  const { maxAnomalies, anomalyWindowMs } = ctx.sessions.hijack;
  s.anomalies = s.anomalies.filter((t) => now - t < anomalyWindowMs);
  s.anomalies.push(now);
  ctx.log(`session ${s.sessionId.slice(0, 8)}… rejected a frame: ${why}`);
  if (s.anomalies.length >= maxAnomalies) {
    ctx.audit('hijack_alarm', s.id, { reason: 'bad_frames', count: s.anomalies.length });
    ctx.sessions.end(
      s.sessionId,
      'hijack',
      `${s.anomalies.length} rejected frames within ${anomalyWindowMs / 1000} s`,
    );
  }
}

/**
 * Handles one message on an established session's connection: the bytes of a binary message, or
 * null for a text message, which after `finished` can only be injected plaintext (docs/protocol.md
 * "Session frame wire format v2") and counts as a rejected frame.
 */
export async function handleSessionMessage(
  ctx: SessionServiceContext,
  s: Session,
  frame: Uint8Array | null,
): Promise<void> {
  if (!ctx.sessions.get(s.sessionId))
    throw new KlError('KL_SESSION_EXPIRED', 'the session has ended: log in again');
  if (frame === null) {
    anomaly(ctx, s, 'a text message where a sealed frame was expected');
    return;
  }
  let m: ChannelMessage;
  try {
    m = s.channel.open(frame);
  } catch (err) {
    anomaly(ctx, s, isKlError(err) ? err.message : 'bad frame');
    return;
  }
  const now = ctx.now();
  s.lastActivity = now;
  // Abnormal activity (docs/protocol.md "Phases 3 and 4", Hijack detection): frames per window far above what
  // a person or a normal client sends, or far above this identity's own recent baseline.
  const { maxFramesPerWindow, rateWindowMs } = ctx.sessions.hijack;
  if (!s.recentWindow || now - s.recentWindow.start >= rateWindowMs)
    s.recentWindow = { start: now, count: 0 };
  s.recentWindow.count += 1;
  if (s.recentWindow.count > maxFramesPerWindow) {
    ctx.audit('hijack_alarm', s.id, { reason: 'rate', frames: s.recentWindow.count });
    ctx.sessions.end(
      s.sessionId,
      'hijack',
      `more than ${maxFramesPerWindow} frames in ${rateWindowMs / 1000} s`,
    );
    return;
  }
  const usual = ctx.sessions.baseline.record(s.id, now);
  if (usual.abnormal) {
    ctx.audit('hijack_alarm', s.id, {
      reason: 'baseline',
      frames: usual.count,
      baseline: Math.round(usual.mean),
    });
    ctx.sessions.end(
      s.sessionId,
      'hijack',
      `${usual.count} frames in ${rateWindowMs / 1000} s, against a usual ${Math.round(usual.mean)} for this identity`,
    );
    return;
  }
  await dispatch(ctx, s, m);
  requestRenewalIfDue(ctx, s);
}

function requestRenewalIfDue(ctx: SessionServiceContext, s: Session): void {
  if (s.channel.isClosed) return;
  const p = ctx.sessions.policy;
  const c = s.channel.counters;
  const due =
    c.framesReceived >= p.renewAfterFrames ||
    c.framesSent >= p.renewAfterFrames ||
    c.bytesReceived + c.bytesSent >= p.renewAfterBytes ||
    ctx.now() - c.epochStartedAt >= p.renewAfterMs;
  if (due && !s.renewalRequested) {
    s.renewalRequested = true;
    send(s.socket, s.channel.seal({ t: 'rekey-request' }));
  } else if (c.framesReceived >= 2 * p.renewAfterFrames) {
    ctx.sessions.end(s.sessionId, 'revoked', 'the client did not renew the session keys');
  }
}

async function dispatch(ctx: SessionServiceContext, s: Session, m: ChannelMessage): Promise<void> {
  switch (m.t) {
    case 'data': {
      const result = await runHandlers(ctx, {
        id: s.id,
        sessionId: s.sessionId,
        body: m.body,
        signed: false,
      });
      if (typeof m.id === 'number' && !s.channel.isClosed)
        send(s.socket, s.channel.seal({ t: 'reply', re: m.id, ...result }));
      return;
    }
    case 'signed':
      return answerWithReceipt(ctx, s, m.id, () => signedMessage(ctx, s, m));
    case 'rekey': {
      const ack = s.channel.acceptRekey(typeof m.ephemeral === 'string' ? m.ephemeral : '');
      s.renewalRequested = false;
      send(s.socket, ack);
      ctx.audit('session_renewal', s.id, {
        session: sha256Hex(s.sessionId).slice(0, 32),
        epoch: s.channel.epoch,
      });
      return;
    }
    case 'close': {
      send(s.socket, s.channel.seal({ t: 'close-ack' }));
      ctx.sessions.end(s.sessionId, 'logout', 'logged out');
      return;
    }
    case 'revoke-key':
      return answerWithReceipt(ctx, s, m.id, () => ownerRevocation(ctx, s, m));
    case 'rotate-key':
      return answerWithReceipt(ctx, s, m.id, () => ownerRotation(ctx, s, m));
    case 'device-pending':
      return answerWithReply(ctx, s, m.id, () => pendingDevice(ctx.devices, s, m));
    case 'add-device':
      return answerWithReceipt(ctx, s, m.id, () => approveDevice(ctx.devices, s, m));
    case 'revoke-device':
      return answerWithReceipt(ctx, s, m.id, () => revokeDevice(ctx.devices, s, m));
    case 'set-recovery-key':
      return answerWithReceipt(ctx, s, m.id, () => setRecoveryKey(ctx.devices, s, m));
    default: {
      // Described without String(): a hostile object here could make the conversion itself throw.
      const t = (m as { t: unknown }).t;
      anomaly(ctx, s, `unexpected message ${typeof t === 'string' ? t.slice(0, 40) : `of type ${typeof t}`}`);
    }
  }
}

async function runHandlers(
  ctx: SessionServiceContext,
  mc: MessageContext,
): Promise<{ body?: unknown; error?: { code: string; message: string } }> {
  try {
    for (const h of ctx.handlers) {
      const r = await h(mc);
      if (r !== undefined) return { body: r };
    }
    return { error: { code: 'KL_NOT_FOUND', message: 'no service answered this message' } };
  } catch (err) {
    if (isKlError(err)) return { error: { code: err.code, message: err.message } };
    ctx.log(`message handler failed: ${(err as Error)?.stack ?? String(err)}`);
    return { error: { code: 'KL_INTERNAL', message: 'internal error' } };
  }
}

/** Runs a request and answers it with a `reply` frame: its body, or the typed error that stopped it. */
async function answerWithReply(
  ctx: SessionServiceContext,
  s: Session,
  re: number,
  work: () => Promise<unknown>,
): Promise<void> {
  let out: { body: unknown } | { error: { code: string; message: string } };
  try {
    out = { body: await work() };
  } catch (err) {
    out = { error: wireError(ctx, err) };
  }
  if (!s.channel.isClosed) send(s.socket, s.channel.seal({ t: 'reply', re, ...out }));
}

/** A failure as the client is told it: a typed error as it is, anything else as internal (logged). */
function wireError(ctx: SessionServiceContext, err: unknown): { code: string; message: string } {
  if (!isKlError(err)) ctx.log(`session request failed: ${(err as Error)?.stack ?? String(err)}`);
  const e = isKlError(err) ? err : new KlError('KL_INTERNAL', 'internal error');
  return { code: e.code, message: e.message };
}

/**
 * Runs a request that writes to the ledger and answers it with a `receipt` frame: the receipt, or
 * the typed error that stopped it (never an internal detail).
 */
async function answerWithReceipt(
  ctx: SessionServiceContext,
  s: Session,
  re: number,
  work: () => Promise<{ receipt: TransactionReceipt; body?: unknown }>,
): Promise<void> {
  let out: { receipt: TransactionReceipt; body?: unknown } | { error: { code: string; message: string } };
  try {
    out = await work();
  } catch (err) {
    out = { error: wireError(ctx, err) };
  }
  if (!s.channel.isClosed) send(s.socket, s.channel.seal({ t: 'receipt', re, ...out }));
}

function verifyBy(ctx: SessionServiceContext, key: openpgp.PublicKey, data: Uint8Array, signature: unknown) {
  return verifyDetached({
    data,
    armoredSignature: signature,
    key,
    now: new Date(ctx.now()),
    maxSkewMs: STATEMENT_SKEW_MS,
  });
}

/** Parses a statement sent as JSON text and checks that it is for this session's identity and ledger. */
function parseStatement<S extends typeof RevocationStatementSchema | typeof RotationStatementSchema>(
  ctx: SessionServiceContext,
  s: Session,
  text: unknown,
  schema: S,
) {
  return parseSessionStatement(text, schema, { id: s.id, chain: ctx.ledger.chainId, now: ctx.now() });
}

/**
 * docs/protocol.md "Phases 3 and 4", Signed messages: verify the OpenPGP signature with the ledger's
 * key, anchor the hash, answer with the receipt.
 */
async function signedMessage(
  ctx: SessionServiceContext,
  s: Session,
  m: Extract<ChannelMessage, { t: 'signed' }>,
) {
  if (typeof m.body !== 'string' || m.body.length > MAX_SIGNED_BODY) {
    throw new KlError('KL_BAD_INPUT', `a signed message is text of at most ${MAX_SIGNED_BODY} characters`);
  }
  const device = await sessionDevice(ctx.ledger, s);
  const bytes = Buffer.from(m.body, 'utf8');
  await verifyBy(ctx, await ctx.keys.get(device.publicKey), bytes, m.signature);
  const receipt = await ctx.ledger.submit({
    type: 'HashAnchored',
    body: { hash: sha256Hex(bytes), algorithm: 'sha256', id: s.id, label: 'signed message' },
  });
  const handled = await runHandlers(ctx, {
    id: s.id,
    sessionId: s.sessionId,
    body: m.body,
    signed: true,
    receipt,
  });
  return { receipt, ...(handled.body !== undefined ? { body: handled.body } : {}) };
}

/** The owner revokes its own key from inside an authenticated session (`keyledger revoke-key`). */
async function ownerRevocation(
  ctx: SessionServiceContext,
  s: Session,
  m: Extract<ChannelMessage, { t: 'revoke-key' }>,
) {
  const statement = parseStatement(ctx, s, m.statement, RevocationStatementSchema);
  const device = await sessionDevice(ctx.ledger, s);
  if (statement.fingerprint !== device.fingerprint) {
    throw new KlError('KL_STATEMENT_INVALID', 'the revocation statement names another key');
  }
  await verifyBy(ctx, await ctx.keys.get(device.publicKey), statementBytes(statement), m.signature);
  const receipt = await ctx.ledger.submit({
    type: 'KeyRevoked',
    body: {
      id: s.id,
      fingerprint: device.fingerprint,
      reason: statement.reason,
      by: 'owner',
      ownerSignature: m.signature,
    },
  });
  return { receipt };
}

/**
 * The owner replaces its key (`keyledger rotate-key`): one statement signed by the key on the
 * ledger and by the new key, which must pass the same key policy as at registration. Writes
 * KeyRotated; every session of the identity then ends (they were opened with the old key).
 */
async function ownerRotation(
  ctx: SessionServiceContext,
  s: Session,
  m: Extract<ChannelMessage, { t: 'rotate-key' }>,
) {
  const statement = parseStatement(ctx, s, m.statement, RotationStatementSchema);
  const device = await sessionDevice(ctx.ledger, s);
  if (statement.oldFingerprint !== device.fingerprint) {
    throw new KlError('KL_STATEMENT_INVALID', 'the rotation statement does not name the key on the ledger');
  }
  const next = await acceptPublicKey(m.publicKey, new Date(ctx.now()));
  if (next.fingerprint !== statement.fingerprint) {
    throw new KlError('KL_STATEMENT_INVALID', 'the rotation statement names another new key');
  }
  const bytes = statementBytes(statement);
  await verifyBy(ctx, await ctx.keys.get(device.publicKey), bytes, m.oldKeySignature);
  await verifyBy(ctx, next.key, bytes, m.newKeySignature);
  const receipt = await ctx.ledger.submit({
    type: 'KeyRotated',
    body: {
      id: s.id,
      oldFingerprint: device.fingerprint,
      fingerprint: next.fingerprint,
      publicKey: next.armored,
      algorithm: next.algorithm,
      oldKeySignature: String(m.oldKeySignature),
      newKeySignature: String(m.newKeySignature),
    },
  });
  return { receipt };
}
