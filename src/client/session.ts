/**
 * The client's side of a session (docs/protocol.md "Phases 3 and 4"): `connect()` logs in and returns a
 * {@link ClientSession} that sends and receives application messages over the AEAD channel, makes
 * requests, sends OpenPGP-signed messages and verifies their ledger receipts, renews keys, resumes
 * on a new connection, revokes its own key, and logs out. Events: `message` (body), `alert`
 * ({ code, message }), `renewed` (epoch), `resumed` (epoch), `close` ({ code, reason, alert,
 * resumable }).
 *
 * Once the login's `finished` frame is verified, only what the channel opens is the server's word
 * (docs/protocol.md "Phases 3 and 4"): a plaintext message (an `error` included), a frame that fails
 * its checks, garbage, a WebSocket close code or reason are all unauthenticated, so they can only
 * mean a lost connection, never a verdict. The session then drops that connection and resumes on a
 * new one. Only an `alert` sealed in the channel ends the session with the server's code.
 */
import { type TransactionReceipt, verifyTransactionReceipt } from '../ledger/proofs.js';
import type { Transaction, TxBodies } from '../ledger/transactions.js';
import { readPublicKey, signDetached, verifyDetached } from '../pgp/messages.js';
import type { RecoveryKeyPair } from '../pgp/recovery-key.js';
import { toBase64url, utf8 } from '../protocol/bytes.js';
import { Channel, type ChannelMessage } from '../protocol/channel.js';
import { randomBytes } from '../protocol/crypto/node.js';
import { deviceCheckNumber, normalizeDeviceCode } from '../protocol/device-check.js';
import { errorFromWire, isErrorCode, isKlError, KlError, wireText } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { wipeSessionKeys } from '../protocol/key-schedule.js';
import { MAX_WS_MESSAGE } from '../protocol/messages.js';
import { resumeProof } from '../protocol/resume.js';
import { check, fits } from '../protocol/schemas/check.js';
import { PendingDeviceReply } from '../protocol/schemas/http.js';
import { ReceiptSchema } from '../protocol/schemas/ledger.js';
import { ResumeChallenge, Resumed } from '../protocol/schemas/login.js';
import { ServerChannelMessage } from '../protocol/schemas/session.js';
import {
  type DeviceAdditionStatement,
  type DeviceRevocationStatement,
  type RecoveryKeyStatement,
  type RevocationStatement,
  type RotationStatement,
  statementBytes,
} from '../protocol/statements.js';
import type { ClientKey } from './client-key.js';
import { Emitter } from './emitter.js';
import { wsEndpoint } from './http.js';
import { type LoginOptions, type LoginResult, login } from './login.js';
import { checkReply } from './reply.js';
import { type ClientSocket, openSocket } from './websocket.js';

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

/** A device request waiting for approval, as {@link ClientSession.pendingDevice} shows it. */
export interface PendingDevice {
  /** The name the person gave the new device. */
  name: string;
  /** The new device's key fingerprint: compare it with what the new device shows. */
  fingerprint: string;
  publicKey: string;
  /** The statement the new key signed and the approval signs too. */
  statement: DeviceAdditionStatement;
  /**
   * The request's check number: approve only if the new device shows the same
   * (protocol/device-check.ts).
   */
  check: string;
}

/** At most this many automatic resumptions per minute; past that, resuming is left to the caller. */
const MAX_AUTO_RESUMES = 20;

/**
 * Checks the fields a sealed message must have before it is acted on (sealed means it came from the
 * server, not that the server is bug-free). Unknown message types are refused too.
 */
function wellFormed(m: ChannelMessage): boolean {
  return fits(ServerChannelMessage, m);
}

/** Lets Node exit while `timer` runs (browser timers have no such notion). */
function unref(timer: ReturnType<typeof setTimeout>): void {
  (timer as { unref?: () => void }).unref?.();
}

/** The JSON object in a plaintext message of the resume socket. */
function parseObject(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new KlError('KL_PROTOCOL', 'the server sent something that is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new KlError('KL_PROTOCOL', 'the server sent something that is not a message');
  return v as Record<string, unknown>;
}

/** An authenticated, encrypted session. */
export class ClientSession extends Emitter {
  readonly sessionId: string;
  readonly id: string;
  readonly expiresAt: number;
  /** The server's idle timeout: a session with no traffic for this long ends. */
  readonly idleTimeoutMs: number;
  private channel: Channel;
  private socket: ClientSocket;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    {
      resolve: (v: ChannelMessage) => void;
      reject: (e: unknown) => void;
      timer: ReturnType<typeof setTimeout>;
    }
  >();
  private renewing: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private closing: (() => void) | null = null;
  private ended: KlError | null = null;
  /** The alert the server sealed in the channel, if any: the only way it ends a session. */
  private sealedAlert: { code: string; message: string } | null = null;
  /** Set when this side dropped the connection because of unauthenticated input. */
  private droppedUntrusted = false;
  private resuming: Promise<void> | null = null;
  private autoResumes: number[] = [];

  constructor(
    private readonly login: LoginResult,
    private readonly now: () => number,
  ) {
    super();
    this.sessionId = login.sessionId;
    this.id = login.id;
    this.expiresAt = login.expiresAt;
    this.idleTimeoutMs = login.idleTimeoutMs;
    this.channel = new Channel({
      role: 'client',
      sid: login.sessionId,
      keys: login.keys,
      chain: login.transcriptHash,
      nextRecvSeq: 1,
      now,
    });
    // The channel holds its own copy of the keys.
    wipeSessionKeys(login.keys);
    this.socket = login.socket;
    this.attach(this.socket);
  }

  /** The server this session lives on (its resumptions go there too: sessions are per server). */
  get serverUrl(): string {
    return this.login.server.url;
  }

  /** Current key epoch (0 after login, +1 per renewal or resumption). */
  get epoch(): number {
    return this.channel.epoch;
  }

  /** True once the session has ended (logout, expiry, revocation, alarm, connection loss). */
  get isClosed(): boolean {
    return this.ended !== null;
  }

  private attach(ws: ClientSocket): void {
    // Drop the login's listeners too: they hold the whole handshake (parsed keys, transcript).
    for (const event of ['open', 'error', 'message', 'close'] as const) ws.removeAllListeners(event);
    ws.on('message', (data, isBinary) => this.onMessage(ws, data, isBinary));
    // The close code and reason are not authenticated: only the code is passed on, as a number.
    ws.on('close', (code) => this.onClose(ws, code));
    ws.on('error', () => {});
  }

  private onMessage(ws: ClientSocket, data: Uint8Array | string, isBinary: boolean): void {
    if (ws !== this.socket || ws.readyState !== ws.OPEN || this.ended) return;
    let m: ChannelMessage;
    try {
      // Sealed frames are binary messages (docs/protocol.md "Session frame wire format v2").
      if (!isBinary || typeof data === 'string') throw new KlError('KL_FRAME_REJECTED', 'plaintext');
      m = this.channel.open(data);
    } catch {
      // Not sealed by this channel: plaintext (an `error` too), a forged, replayed or foreign frame,
      // garbage. Anyone on the path can send that, so it is never the server's word: the
      // connection is treated as lost, and resumed.
      this.dropUntrusted();
      return;
    }
    if (!wellFormed(m)) {
      this.dropUntrusted();
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
      case 'rekey-ack': {
        if (!this.channel.rekeyPending) {
          this.dropUntrusted();
          return;
        }
        try {
          this.channel.completeRekey(m.ephemeral);
        } catch {
          this.renewing?.reject(new KlError('KL_PROTOCOL', 'the server answered the renewal with a bad key'));
          this.renewing = null;
          this.dropUntrusted();
          return;
        }
        this.renewing?.resolve();
        this.renewing = null;
        this.emit('renewed', this.channel.epoch);
        return;
      }
      case 'rekey-request':
        if (!this.channel.rekeyPending) this.renew().catch(() => {});
        return;
      case 'alert':
        this.takeAlert(m);
        return;
      case 'close-ack':
        this.closing?.();
        return;
    }
  }

  /** Records a sealed alert (the server's word: the session ends when the server closes) and tells. */
  private takeAlert(m: ChannelMessage): { code: string; message: string } {
    const a = m as { code?: unknown; message?: unknown };
    const alert = {
      code: isErrorCode(a.code) ? a.code : 'KL_SESSION_REVOKED',
      message: typeof a.message === 'string' ? wireText(a.message) : 'the server ended the session',
    };
    this.sealedAlert = alert;
    this.emit('alert', { ...alert });
    return alert;
  }

  /** Drops the current connection because of unauthenticated input; the close handler resumes. */
  private dropUntrusted(): void {
    this.droppedUntrusted = true;
    this.socket.terminate();
  }

  private failPending(err: KlError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.renewing?.reject(err);
    this.renewing = null;
  }

  private onClose(ws: ClientSocket, code: number): void {
    if (ws !== this.socket) return;
    const alert = this.sealedAlert;
    const untrusted = this.droppedUntrusted;
    this.droppedUntrusted = false;
    const loggingOut = this.closing !== null || this.ended !== null;
    // Only a sealed alert (or our own logout) ends the session; any other close, whatever its code
    // or reason, is a lost connection that can be resumed: keep the keys.
    const resumable = !alert && !loggingOut;
    const err = alert
      ? new KlError(isErrorCode(alert.code) ? alert.code : 'KL_SESSION_REVOKED', alert.message)
      : resumable
        ? new KlError('KL_NETWORK', 'the connection was lost: resume() or log in again')
        : new KlError('KL_SESSION_REVOKED', 'the session is closed');
    const reason = alert
      ? 'ended by the server'
      : loggingOut
        ? 'logged out'
        : untrusted
          ? 'unauthenticated data on the connection'
          : 'connection lost';
    this.failPending(err);
    this.closing?.();
    if (!resumable) {
      this.ended ??= err;
      this.channel.close();
    }
    // Started before the event, so that calls made from a `close` listener share the resumption.
    if (resumable && untrusted && this.mayAutoResume()) this.resume().catch(() => {});
    this.emit('close', { code, reason, alert: alert ? { ...alert } : null, resumable });
  }

  private mayAutoResume(): boolean {
    const now = this.now();
    this.autoResumes = this.autoResumes.filter((t) => now - t < 60_000);
    if (this.autoResumes.length >= MAX_AUTO_RESUMES) return false;
    this.autoResumes.push(now);
    return true;
  }

  /** Waits until a connection dropped for unauthenticated input is resumed (or fails to be). */
  private async settled(): Promise<void> {
    if (this.droppedUntrusted && this.socket.readyState !== this.socket.CLOSED) {
      const ws = this.socket;
      await new Promise<void>((r) => ws.once('close', () => r()));
    }
    if (this.resuming) await this.resuming.catch(() => {});
  }

  private sendMessage(m: ChannelMessage): void {
    if (this.ended) throw this.ended;
    if (this.socket.readyState !== this.socket.OPEN)
      throw new KlError('KL_NETWORK', 'not connected: resume() or log in again');
    this.socket.send(this.channel.seal(m));
  }

  private call(m: ChannelMessage & { id: number }, timeoutMs: number): Promise<ChannelMessage> {
    // Sent at once (in call order with send()) unless a resumption is under way.
    if (this.droppedUntrusted || this.resuming) return this.settled().then(() => this.callNow(m, timeoutMs));
    return this.callNow(m, timeoutMs);
  }

  private callNow(m: ChannelMessage & { id: number }, timeoutMs: number): Promise<ChannelMessage> {
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
    const r = await this.call({ t: 'data', id, body }, timeoutMs);
    if (r.t !== 'reply') throw new KlError('KL_PROTOCOL', 'the server answered a request with a receipt');
    if (r.error) throw errorFromWire(r.error, 'KL_INTERNAL');
    return r.body as T;
  }

  /**
   * Sends a message signed with KprivC (docs/protocol.md "Phases 3 and 4", Signed messages: non-repudiation).
   * The server verifies it with the key on the ledger and anchors its hash; the receipt is verified here
   * against the pinned genesis before this resolves.
   */
  async sendSigned(text: string, { timeoutMs = 30_000 } = {}): Promise<SignedMessageReceipt> {
    const signature = await this.login.key.signDetached(utf8(text), new Date(this.now()));
    const id = this.nextId++;
    const r = await this.call({ t: 'signed', id, body: text, signature }, timeoutMs);
    if (r.t !== 'receipt') throw new KlError('KL_PROTOCOL', 'the server did not answer with a receipt');
    if (r.error) throw errorFromWire(r.error, 'KL_INTERNAL');
    // The schema bounds the envelope; its body is checked for its transaction type by the verifier.
    const receipt = checkReply(
      ReceiptSchema,
      r.receipt,
      'KL_RECEIPT_INVALID',
      'a signed message',
    ) as TransactionReceipt;
    const check = verifyTransactionReceipt({
      genesis: this.login.server.genesis,
      servers: this.login.server.admitted ?? [],
      receipt,
    });
    if (!check.verified)
      throw new KlError('KL_RECEIPT_INVALID', `the anchoring receipt does not verify: ${check.reason}`);
    const hash = sha256Hex(text);
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

  /**
   * Renews the session keys with a fresh X25519 exchange inside the channel (docs/protocol.md
   * "Phases 3 and 4", Renewal). Without an answer in time the connection is dropped as lost (resume()
   * then starts afresh).
   */
  renew({ timeoutMs = 30_000 } = {}): Promise<void> {
    if (this.renewing) return Promise.reject(new KlError('KL_PROTOCOL', 'a renewal is already in progress'));
    return new Promise((resolve, reject) => {
      const ws = this.socket;
      const timer = setTimeout(() => {
        if (this.renewing !== entry) return;
        this.renewing = null;
        reject(new KlError('KL_NETWORK', 'no answer to the key renewal in time'));
        ws.terminate();
      }, timeoutMs);
      unref(timer);
      const entry = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.renewing = entry;
      try {
        this.sendMessage(this.channel.startRekey());
      } catch (err) {
        this.renewing = null;
        entry.reject(err);
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

  /**
   * What the device request under `code` asks (docs/protocol.md "Devices"), for the person to
   * confirm before {@link approveDevice}: checked here, the statement is for this identity and ledger
   * and the new key signed it.
   * @throws KlError `KL_DEVICE_CODE_INVALID` (unknown, used, expired or another identity's code)
   */
  async pendingDevice(code: string, { timeoutMs = 30_000 } = {}): Promise<PendingDevice> {
    const id = this.nextId++;
    const r = await this.call({ t: 'device-pending', id, code }, timeoutMs);
    if (r.t !== 'reply') throw new KlError('KL_PROTOCOL', 'the server did not answer with a reply');
    if (r.error) throw errorFromWire(r.error, 'KL_INTERNAL');
    const shown = checkReply(PendingDeviceReply, r.body, 'KL_PROTOCOL', 'a pending device');
    const statement = shown.statement as DeviceAdditionStatement;
    if (statement.id !== this.id || statement.chain !== this.login.server.chain)
      throw new KlError('KL_PROTOCOL', 'the server showed a device request for another identity or ledger');
    const key = await readPublicKey(shown.publicKey);
    if (key.getFingerprint() !== statement.fingerprint)
      throw new KlError('KL_PROTOCOL', 'the new device’s key is not the one its request names');
    await verifyDetached({
      data: statementBytes(statement),
      armoredSignature: shown.signature,
      key,
      now: new Date(statement.time),
    });
    // The code as the server gave it to the new device (the number depends on its exact form).
    const given = normalizeDeviceCode(code);
    if (given === undefined)
      throw new KlError('KL_DEVICE_CODE_INVALID', 'this is not a device code (XXXX-XXXX)');
    return {
      name: statement.name,
      fingerprint: statement.fingerprint,
      publicKey: shown.publicKey,
      statement,
      check: deviceCheckNumber(statement, given),
    };
  }

  /**
   * Approves the device request under `code` as shown by {@link pendingDevice}: this device signs
   * the same statement; the receipt proves exactly that DeviceAdded.
   */
  async approveDevice(
    code: string,
    pending: PendingDevice,
    { timeoutMs = 30_000 } = {},
  ): Promise<KeyChangeReceipt> {
    const { statement } = pending;
    const signature = await this.login.key.signDetached(statementBytes(statement), new Date(this.now()));
    const id = this.nextId++;
    return this.keyChange({ t: 'add-device', id, code, signature }, timeoutMs, (tx) => {
      const b = tx.body as TxBodies['DeviceAdded'];
      return (
        tx.type === 'DeviceAdded' &&
        b.id === this.id &&
        b.fingerprint === statement.fingerprint &&
        b.name === statement.name &&
        'device' in b.approvedBy &&
        b.approvedBy.device === this.login.key.fingerprint
      );
    });
  }

  /**
   * Revokes one device key of this identity (DeviceRevoked), signed by this session's key; the
   * sessions of that device end, this one too when it names itself. The identity's last device is
   * refused (`KL_LAST_DEVICE`: that is {@link revokeKey}) unless the identity has a recovery key.
   */
  async revokeDevice(
    fingerprint: string,
    reason: DeviceRevocationStatement['reason'] = 'retired',
    { timeoutMs = 30_000 } = {},
  ): Promise<KeyChangeReceipt> {
    const statement: DeviceRevocationStatement = {
      type: 'keyledger/revoke-device',
      v: 1,
      chain: this.login.server.chain,
      id: this.id,
      fingerprint,
      reason,
      time: this.now(),
    };
    const signature = await this.login.key.signDetached(statementBytes(statement), new Date(statement.time));
    const id = this.nextId++;
    return this.keyChange(
      { t: 'revoke-device', id, statement: JSON.stringify(statement), signature },
      timeoutMs,
      (tx) => {
        const b = tx.body as TxBodies['DeviceRevoked'];
        return tx.type === 'DeviceRevoked' && b.id === this.id && b.fingerprint === fingerprint;
      },
    );
  }

  /**
   * Makes `recovery` the identity's recovery key (RecoveryKeySet; docs/protocol.md "Recovery"),
   * signed by this session's key and by the recovery key; replacing the current recovery key takes
   * it too (`replaces`).
   */
  async setRecoveryKey(
    recovery: RecoveryKeyPair,
    { replaces, timeoutMs = 30_000 }: { replaces?: RecoveryKeyPair; timeoutMs?: number } = {},
  ): Promise<KeyChangeReceipt> {
    const statement: RecoveryKeyStatement = {
      type: 'keyledger/recovery-key',
      v: 1,
      chain: this.login.server.chain,
      id: this.id,
      fingerprint: recovery.fingerprint,
      time: this.now(),
    };
    const data = statementBytes(statement);
    const date = new Date(statement.time);
    const id = this.nextId++;
    return this.keyChange(
      {
        t: 'set-recovery-key',
        id,
        statement: JSON.stringify(statement),
        signature: await this.login.key.signDetached(data, date),
        publicKey: recovery.publicKey,
        keySignature: await signDetached(data, recovery.key, date),
        ...(replaces ? { replacesSignature: await signDetached(data, replaces.key, date) } : {}),
      },
      timeoutMs,
      (tx) => {
        const b = tx.body as TxBodies['RecoveryKeySet'];
        return (
          tx.type === 'RecoveryKeySet' &&
          b.id === this.id &&
          b.fingerprint === recovery.fingerprint &&
          b.replaces?.fingerprint === replaces?.fingerprint
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
    const r = await this.call(message, timeoutMs);
    if (r.t !== 'receipt') throw new KlError('KL_PROTOCOL', 'the server did not answer with a receipt');
    if (r.error) throw errorFromWire(r.error, 'KL_INTERNAL');
    const receipt = checkReply(
      ReceiptSchema,
      r.receipt,
      'KL_RECEIPT_INVALID',
      'a key change',
    ) as TransactionReceipt;
    const check = verifyTransactionReceipt({
      genesis: this.login.server.genesis,
      servers: this.login.server.admitted ?? [],
      receipt,
    });
    if (!check.verified || !expected(check.envelope.tx))
      throw new KlError('KL_RECEIPT_INVALID', 'the receipt does not prove the requested key change');
    return {
      verified: true,
      txid: check.txid,
      height: check.height,
      receipt,
    };
  }

  /**
   * Resumes the session on a new connection after the old one dropped, by proving the resume key
   * (docs/protocol.md "Resumption"). Renews the keys with a fresh ECDH exchange at once; the
   * renewal's answer, sealed in the new epoch, is what confirms the resumption, and only then does
   * the session take the new epoch. Calls made while a resumption runs share it; with a live
   * connection there is nothing to do. The resume socket's plaintext answers are not authenticated:
   * a refusal, or a `resumed` that no sealed frame confirms, only fails this attempt (the session
   * keeps its keys and stays resumable), with the code alone and no remote text.
   */
  resume({ timeoutMs = 30_000 } = {}): Promise<void> {
    if (this.ended) return Promise.reject(this.ended);
    if (this.resuming) return this.resuming;
    if (this.socket.readyState === this.socket.OPEN && !this.droppedUntrusted) return Promise.resolve();
    const run: Promise<void> = this.resumeOnNewConnection(timeoutMs).finally(() => {
      if (this.resuming === run) this.resuming = null;
    });
    this.resuming = run;
    return run;
  }

  private async resumeOnNewConnection(timeoutMs: number): Promise<void> {
    const url = wsEndpoint(this.login.server.url, 'v1/login');
    const ws = await openSocket(url, { maxPayload: MAX_WS_MESSAGE, handshakeTimeout: timeoutMs });
    const clientNonce = toBase64url(randomBytes(16));
    const current = this.channel;
    // The next epoch's channel, derived on the side: the plaintext `resumed` is anyone's word, so
    // this session keeps its current keys and epoch until a frame sealed in the new epoch opens
    // (docs/protocol.md "Resumption"). Until then a failure leaves it as it was, still resumable.
    let next: Channel | null = null;
    const alert = await new Promise<ChannelMessage | null>((resolve, reject) => {
      let step: 'challenge' | 'resumed' | 'confirm' | 'done' = 'challenge';
      let serverNonce = '';
      const done = (err?: unknown, sealedAlert: ChannelMessage | null = null) => {
        if (step === 'done') return;
        step = 'done';
        clearTimeout(timer);
        if (err) {
          ws.removeAllListeners('message');
          ws.terminate();
          next?.close();
          next = null;
          reject(err);
        } else resolve(sealedAlert);
      };
      // On time-out the resume socket is closed too, never left half open.
      const timer = setTimeout(() => done(new KlError('KL_NETWORK', 'resumption took too long')), timeoutMs);
      ws.on('error', (e) => done(new KlError('KL_NETWORK', `cannot reach the server: ${e.message}`)));
      ws.on('close', () => done(new KlError('KL_NETWORK', 'the server closed the connection')));
      ws.on('open', () =>
        ws.send(JSON.stringify({ type: 'resume', sid: this.sessionId, nonce: clientNonce })),
      );
      ws.on('message', (data, isBinary) => {
        if (step === 'done') return;
        try {
          if (this.ended) throw this.ended;
          if (step === 'confirm' && next) {
            const m = this.openConfirmation(next, data, isBinary);
            if (m === 'ignore') return;
            done(undefined, m === 'confirmed' ? null : m);
            return;
          }
          if (isBinary) throw new KlError('KL_PROTOCOL', 'the server answered the resumption wrongly');
          const m = parseObject(data.toString());
          if (m.type === 'error') {
            done(errorFromWire(m, 'KL_AUTH_FAILED', { authenticated: false }));
            return;
          }
          if (step === 'challenge') {
            serverNonce = check(ResumeChallenge, m, 'KL_PROTOCOL', 'resume-challenge').nonce;
            const proof = resumeProof(current.resumeKey, {
              sid: this.sessionId,
              epoch: current.epoch,
              clientNonce,
              serverNonce,
            });
            step = 'resumed';
            ws.send(JSON.stringify({ type: 'resume-proof', proof }));
            return;
          }
          const { epoch } = check(Resumed, m, 'KL_PROTOCOL', 'resumed');
          if (epoch !== current.epoch + 1)
            throw new KlError('KL_PROTOCOL', 'the server answered the resumption wrongly');
          // Renew at once with a fresh ECDH exchange; its answer, sealed in the new epoch, is what
          // confirms the resumption.
          next = current.resumed(clientNonce, serverNonce);
          step = 'confirm';
          ws.send(next.seal(next.startRekey()));
        } catch (err) {
          done(
            isKlError(err) ? err : new KlError('KL_PROTOCOL', 'the server answered the resumption wrongly'),
          );
        }
      });
    });
    ws.removeAllListeners();
    const confirmed = next as Channel | null;
    if (this.ended || !confirmed) {
      ws.terminate();
      confirmed?.close();
      throw this.ended ?? new KlError('KL_PROTOCOL', 'the resumption was not confirmed');
    }
    // Confirmed by the server: the new epoch replaces the old one, whose keys are wiped.
    // Answers still owed on the old connection will not come on the new one.
    this.failPending(new KlError('KL_NETWORK', 'the connection was lost before the answer came'));
    this.channel = confirmed;
    current.close();
    this.droppedUntrusted = false;
    this.socket = ws;
    this.sealedAlert = null;
    this.attach(ws);
    if (alert) {
      // The server ended the session during the resumption: its close follows and ends it here.
      const a = this.takeAlert(alert);
      throw new KlError(isErrorCode(a.code) ? a.code : 'KL_SESSION_REVOKED', a.message);
    }
    this.emit('renewed', this.channel.epoch);
    this.emit('resumed', this.channel.epoch);
  }

  /**
   * Opens a frame on a resume socket before the resumption is confirmed, with the next epoch's
   * channel. Returns 'confirmed' once the renewal's answer opens (the channel then moves on), a
   * sealed alert to act on, or 'ignore' for what no longer has a taker (answers owed on the old
   * connection, a renewal request). Anything that does not open throws: the attempt fails.
   */
  private openConfirmation(
    next: Channel,
    data: Uint8Array | string,
    isBinary: boolean,
  ): ChannelMessage | 'confirmed' | 'ignore' {
    let m: ChannelMessage;
    try {
      if (!isBinary || typeof data === 'string') throw new KlError('KL_FRAME_REJECTED', 'plaintext');
      m = next.open(data);
    } catch {
      throw new KlError('KL_NETWORK', 'the resumption was not confirmed by the server');
    }
    if (!wellFormed(m)) throw new KlError('KL_PROTOCOL', 'the server answered the resumption wrongly');
    switch (m.t) {
      case 'rekey-ack':
        try {
          next.completeRekey(m.ephemeral);
        } catch {
          throw new KlError('KL_PROTOCOL', 'the server answered the renewal with a bad key');
        }
        return 'confirmed';
      case 'alert':
        return m;
      case 'data':
        this.emit('message', m.body);
        return 'ignore';
      default:
        return 'ignore';
    }
  }

  /** Logs out: an encrypted close frame, acknowledged; keys wiped (docs/protocol.md "Phases 3 and 4"). */
  async close({ timeoutMs = 5_000 } = {}): Promise<void> {
    if (this.ended) return;
    const acked = new Promise<void>((resolve) => {
      this.closing = resolve;
      unref(setTimeout(resolve, timeoutMs));
    });
    try {
      this.sendMessage({ t: 'close', reason: 'logout' });
      await acked;
    } catch {
      // already disconnected: still wipe locally
    }
    this.ended = new KlError('KL_SESSION_REVOKED', 'the session is closed (logged out)');
    this.channel.close();
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(1000, 'logout');
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
