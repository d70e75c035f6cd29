/**
 * The client's side of a session (seed phases 3–4): `connect()` logs in and returns a
 * {@link ClientSession} that sends and receives application messages over the AEAD channel, makes
 * requests, sends OpenPGP-signed messages and verifies their ledger receipts, renews keys, resumes
 * on a new connection, revokes its own key, and logs out. Events: `message` (body), `alert`
 * ({ code, message }), `renewed` (epoch), `close` ({ code, reason, alert }).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { type TransactionReceipt, verifyTransactionReceipt } from '../ledger/proofs.js';
import type { Transaction, TxBodies } from '../ledger/transactions.js';
import { Channel, type ChannelMessage } from '../protocol/channel.js';
import { ERROR_CODES, type ErrorCode, KlError } from '../protocol/errors.js';
import { encodeFrame, type Frame } from '../protocol/frame.js';
import { sha256Hex } from '../protocol/hash.js';
import { MAX_WS_MESSAGE } from '../protocol/messages.js';
import { resumeProof } from '../protocol/resume.js';
import { type RevocationStatement, type RotationStatement, statementBytes } from '../protocol/statements.js';
import type { ClientKey } from './client-key.js';
import { type LoginOptions, type LoginResult, login } from './login.js';

/** A verified receipt for a signed message. */
export interface SignedMessageReceipt {
  verified: true;
  txid: string;
  height: number;
  /** SHA-256 of the message, as anchored. */
  hash: string;
  /** The detached signature that was sent (keep it with the message: non-repudiation). */
  signature: string;
  receipt: TransactionReceipt;
  /** The service's answer, if any. */
  body?: unknown;
}

/** A verified receipt for a key revocation or rotation. */
export interface KeyChangeReceipt {
  verified: true;
  txid: string;
  height: number;
  /** Keep it: proof that the ledger recorded the change. */
  receipt: TransactionReceipt;
}

function klError(e: { code?: string; message?: string } | undefined, fallback: ErrorCode): KlError {
  const code = e?.code && e.code in ERROR_CODES ? (e.code as ErrorCode) : fallback;
  return new KlError(code, String(e?.message ?? 'the server refused the request').slice(0, 500));
}

/** An authenticated, encrypted session. */
export class ClientSession extends EventEmitter {
  readonly sessionId: string;
  readonly id: string;
  readonly expiresAt: number;
  private readonly channel: Channel;
  private socket: WebSocket;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: ChannelMessage) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }
  >();
  private renewing: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private closing: (() => void) | null = null;
  private ended: KlError | null = null;
  private lastAlert: { code: string; message: string } | null = null;

  constructor(
    private readonly login: LoginResult,
    private readonly now: () => number,
  ) {
    super();
    this.sessionId = login.sessionId;
    this.id = login.id;
    this.expiresAt = login.expiresAt;
    this.channel = new Channel({
      role: 'client',
      sid: login.sessionId,
      keys: login.keys,
      chain: login.transcriptHash,
      nextRecvSeq: 1,
      now,
    });
    this.socket = login.socket;
    this.attach(this.socket);
  }

  /** Current key epoch (0 after login, +1 per renewal or resumption). */
  get epoch(): number {
    return this.channel.epoch;
  }

  /** True once the session has ended (logout, expiry, revocation, alarm, connection loss). */
  get isClosed(): boolean {
    return this.ended !== null;
  }

  private attach(ws: WebSocket): void {
    // Drop the login's listeners too: they hold the whole handshake (parsed keys, transcript).
    for (const event of ['open', 'error', 'message', 'close'] as const) ws.removeAllListeners(event);
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
    ws.on('error', () => {});
  }

  private onMessage(text: string): void {
    let m: ChannelMessage;
    try {
      const raw = JSON.parse(text) as { type?: string; code?: string; message?: string };
      if (raw.type === 'error') {
        this.lastAlert = { code: String(raw.code), message: String(raw.message) };
        return;
      }
      m = this.channel.open(raw as Frame);
    } catch (err) {
      // A frame we cannot open means the connection is not trustworthy: drop it.
      this.emit('alert', { code: 'KL_FRAME_REJECTED', message: (err as Error).message });
      this.socket.terminate();
      return;
    }
    switch (m.t) {
      case 'data':
        this.emit('message', m.body);
        return;
      case 'reply':
      case 'receipt': {
        const p = this.pending.get(m.re);
        if (!p) return;
        this.pending.delete(m.re);
        clearTimeout(p.timer);
        p.resolve(m);
        return;
      }
      case 'rekey-ack':
        this.channel.completeRekey(m.ephemeral);
        this.renewing?.resolve();
        this.renewing = null;
        this.emit('renewed', this.channel.epoch);
        return;
      case 'rekey-request':
        if (!this.channel.rekeyPending) this.renew().catch(() => {});
        return;
      case 'alert':
        this.lastAlert = { code: m.code, message: m.message };
        this.emit('alert', this.lastAlert);
        return;
      case 'close-ack':
        this.closing?.();
        return;
    }
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.socket) return;
    const err = this.lastAlert
      ? klError(this.lastAlert, 'KL_SESSION_REVOKED')
      : code === 1000
        ? new KlError('KL_SESSION_REVOKED', 'the session is closed')
        : new KlError(
            'KL_NETWORK',
            `the connection was lost (${code}${reason ? ` ${reason}` : ''}): resume() or log in again`,
          );
    // A lost connection (no alert, not a normal close) can be resumed: keep the keys.
    const resumable = !this.lastAlert && code !== 1000 && code !== 4000 && !this.closing;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.renewing?.reject(err);
    this.renewing = null;
    this.closing?.();
    if (!resumable) {
      this.ended = err;
      this.channel.close();
    }
    this.emit('close', { code, reason, alert: this.lastAlert, resumable });
  }

  private sendMessage(m: ChannelMessage): void {
    if (this.ended) throw this.ended;
    if (this.socket.readyState !== WebSocket.OPEN)
      throw new KlError('KL_NETWORK', 'not connected: resume() or log in again');
    this.socket.send(encodeFrame(this.channel.seal(m)));
  }

  private call(m: ChannelMessage & { id: number }, timeoutMs: number): Promise<ChannelMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(m.id);
        reject(new KlError('KL_NETWORK', 'no answer from the server in time'));
      }, timeoutMs);
      this.pending.set(m.id, { resolve, reject, timer });
      try {
        this.sendMessage(m);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(m.id);
        reject(err);
      }
    });
  }

  /** Sends an application message (no answer expected). */
  send(body: unknown): void {
    this.sendMessage({ t: 'data', body });
  }

  /** Sends an application message and waits for the service's answer. */
  async request<T = unknown>(body: unknown, { timeoutMs = 30_000 } = {}): Promise<T> {
    const id = this.nextId++;
    const r = (await this.call({ t: 'data', id, body }, timeoutMs)) as Extract<
      ChannelMessage,
      { t: 'reply' }
    >;
    if (r.error) throw klError(r.error, 'KL_INTERNAL');
    return r.body as T;
  }

  /**
   * Sends a message signed with KprivC (seed phase 4 step 4, non-repudiation). The server verifies
   * it with the key on the ledger and anchors its hash; the receipt is verified here against the
   * pinned genesis before this resolves.
   */
  async sendSigned(text: string, { timeoutMs = 30_000 } = {}): Promise<SignedMessageReceipt> {
    const signature = await this.login.key.signDetached(Buffer.from(text, 'utf8'), new Date(this.now()));
    const id = this.nextId++;
    const r = (await this.call({ t: 'signed', id, body: text, signature }, timeoutMs)) as Extract<
      ChannelMessage,
      { t: 'receipt' }
    >;
    if (r.error) throw klError(r.error, 'KL_INTERNAL');
    const receipt = r.receipt as TransactionReceipt;
    const check = verifyTransactionReceipt({ genesis: this.login.server.genesis, receipt });
    if (!check.verified)
      throw new KlError('KL_RECEIPT_INVALID', `the anchoring receipt does not verify: ${check.reason}`);
    const hash = sha256Hex(Buffer.from(text, 'utf8'));
    const body = check.envelope.tx.body as TxBodies['HashAnchored'];
    if (check.envelope.tx.type !== 'HashAnchored' || body.hash !== hash || body.id !== this.id) {
      throw new KlError('KL_RECEIPT_INVALID', 'the receipt anchors another message');
    }
    return {
      verified: true,
      txid: check.txid,
      height: check.height,
      hash,
      signature,
      receipt,
      ...((r as { body?: unknown }).body !== undefined ? { body: (r as { body?: unknown }).body } : {}),
    };
  }

  /** Renews the session keys with a fresh X25519 exchange inside the channel (seed phase 4 step 3). */
  renew(): Promise<void> {
    if (this.renewing) return Promise.reject(new KlError('KL_PROTOCOL', 'a renewal is already in progress'));
    return new Promise((resolve, reject) => {
      this.renewing = { resolve, reject };
      try {
        this.sendMessage(this.channel.startRekey());
      } catch (err) {
        this.renewing = null;
        reject(err);
      }
    });
  }

  /** Revokes this identity's key on the ledger, signed by the key itself; every session ends. */
  async revokeKey(
    reason: RevocationStatement['reason'] = 'compromised',
    { timeoutMs = 30_000 } = {},
  ): Promise<KeyChangeReceipt> {
    const statement: RevocationStatement = {
      type: 'keyledger/revoke',
      v: 1,
      chain: this.login.server.chain,
      id: this.id,
      fingerprint: this.login.key.fingerprint,
      reason,
      time: this.now(),
    };
    const signature = await this.login.key.signDetached(statementBytes(statement), new Date(statement.time));
    const id = this.nextId++;
    return this.keyChange(
      { t: 'revoke-key', id, reason, statement: JSON.stringify(statement), signature },
      timeoutMs,
      (tx) =>
        tx.type === 'KeyRevoked' && (tx.body as TxBodies['KeyRevoked']).fingerprint === statement.fingerprint,
    );
  }

  /**
   * Replaces this identity's key on the ledger by `newKey` (KeyRotated): one statement signed by the
   * current key and by the new key. Every session of the identity ends once it is written (they
   * were opened with the old key); log in again with the new key. Keeping the new private key is
   * the caller's job ({@link rotateKey} in client/rotate.ts does it for a home directory).
   */
  async rotateKey(newKey: ClientKey, { timeoutMs = 30_000 } = {}): Promise<KeyChangeReceipt> {
    const statement: RotationStatement = {
      type: 'keyledger/rotate',
      v: 1,
      chain: this.login.server.chain,
      id: this.id,
      oldFingerprint: this.login.key.fingerprint,
      fingerprint: newKey.fingerprint,
      time: this.now(),
    };
    const bytes = statementBytes(statement);
    const date = new Date(statement.time);
    const oldKeySignature = await this.login.key.signDetached(bytes, date);
    const newKeySignature = await newKey.signDetached(bytes, date);
    const id = this.nextId++;
    return this.keyChange(
      {
        t: 'rotate-key',
        id,
        statement: JSON.stringify(statement),
        publicKey: newKey.publicKey,
        oldKeySignature,
        newKeySignature,
      },
      timeoutMs,
      (tx) => {
        const b = tx.body as TxBodies['KeyRotated'];
        return (
          tx.type === 'KeyRotated' &&
          b.id === this.id &&
          b.oldFingerprint === statement.oldFingerprint &&
          b.fingerprint === statement.fingerprint
        );
      },
    );
  }

  /** Sends a key revocation or rotation and verifies that the receipt proves exactly that change. */
  private async keyChange(
    message: ChannelMessage & { id: number },
    timeoutMs: number,
    expected: (tx: Transaction) => boolean,
  ): Promise<KeyChangeReceipt> {
    const r = (await this.call(message, timeoutMs)) as Extract<ChannelMessage, { t: 'receipt' }>;
    if (r.error) throw klError(r.error, 'KL_INTERNAL');
    const check = verifyTransactionReceipt({
      genesis: this.login.server.genesis,
      receipt: r.receipt as TransactionReceipt,
    });
    if (!check.verified || !expected(check.envelope.tx))
      throw new KlError('KL_RECEIPT_INVALID', 'the receipt does not prove the requested key change');
    return {
      verified: true,
      txid: check.txid,
      height: check.height,
      receipt: r.receipt as TransactionReceipt,
    };
  }

  /**
   * Resumes the session on a new connection after the old one dropped, by proving the resume key
   * (DESIGN "Resumption"). Renews the keys with a fresh ECDH exchange right after.
   */
  async resume({ timeoutMs = 30_000 } = {}): Promise<void> {
    if (this.ended) throw this.ended;
    const url = `${this.login.server.url.replace(/^http/, 'ws').replace(/\/$/, '')}/v1/login`;
    const ws = new WebSocket(url, { maxPayload: MAX_WS_MESSAGE, handshakeTimeout: timeoutMs });
    const clientNonce = randomBytes(16).toString('base64url');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new KlError('KL_NETWORK', 'resumption took too long')),
        timeoutMs,
      );
      const done = (err?: unknown) => {
        clearTimeout(timer);
        if (err) {
          ws.terminate();
          reject(err);
        } else resolve();
      };
      ws.on('error', (e) => done(new KlError('KL_NETWORK', `cannot reach the server: ${e.message}`)));
      ws.on('close', () => done(new KlError('KL_NETWORK', 'the server closed the connection')));
      ws.on('open', () =>
        ws.send(JSON.stringify({ type: 'resume', sid: this.sessionId, nonce: clientNonce })),
      );
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as {
          type: string;
          nonce?: string;
          epoch?: number;
          code?: string;
          message?: string;
        };
        if (m.type === 'error') return done(klError(m, 'KL_AUTH_FAILED'));
        if (m.type === 'resume-challenge' && typeof m.nonce === 'string') {
          const serverNonce = m.nonce;
          const proof = resumeProof(this.channel.resumeKey, {
            sid: this.sessionId,
            epoch: this.channel.epoch,
            clientNonce,
            serverNonce,
          });
          ws.once('message', (d2) => {
            const r = JSON.parse(d2.toString()) as { type: string; code?: string; message?: string };
            if (r.type !== 'resumed') return done(klError(r, 'KL_AUTH_FAILED'));
            this.channel.resume(clientNonce, serverNonce);
            done();
          });
          ws.send(JSON.stringify({ type: 'resume-proof', proof }));
        }
      });
    });
    ws.removeAllListeners();
    this.socket = ws;
    this.lastAlert = null;
    this.attach(ws);
    await this.renew();
  }

  /** Logs out: an encrypted close frame, acknowledged; keys wiped (seed phase 3 step 3). */
  async close({ timeoutMs = 5_000 } = {}): Promise<void> {
    if (this.ended) return;
    const acked = new Promise<void>((resolve) => {
      this.closing = resolve;
      setTimeout(resolve, timeoutMs).unref();
    });
    try {
      this.sendMessage({ t: 'close', reason: 'logout' });
      await acked;
    } catch {
      // already disconnected: still wipe locally
    }
    this.ended = new KlError('KL_SESSION_REVOKED', 'the session is closed (logged out)');
    this.channel.close();
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(1000, 'logout');
  }

  /** For tests: drop the connection without logging out (simulates a network failure). */
  dropConnection(): void {
    this.socket.terminate();
  }
}

/** Logs in and opens a session (`const session = await connect({ home })`). */
export async function connect(o: LoginOptions): Promise<ClientSession> {
  const result = await login(o);
  return new ClientSession(result, o.now ?? Date.now);
}
