/**
 * One side of an established session channel (docs/protocol.md "Phases 3 and 4"): seals outgoing
 * messages into AEAD frames (binary, docs/protocol.md "Session frame wire format v2") and opens
 * incoming ones, enforcing the direction, the session handle, the epoch and a strictly increasing
 * sequence number per direction, so a replayed, reordered, dropped, forged, reflected or foreign frame
 * is refused and never reaches the application.
 *
 * Key renewal (docs/protocol.md "Phases 3 and 4", Renewal): the client starts it with a fresh X25519
 * key in a `rekey` message; the server answers `rekey-ack` with its own key as the last frame of the
 * old epoch; both derive the next epoch's keys from the new ECDH secret salted with the previous
 * chain hash, reset the sequence numbers and wipe the old keys. Frames of the old epoch still in
 * flight towards the server are accepted until the client's first new-epoch frame arrives.
 *
 * Resumption on a new connection (docs/protocol.md "Resumption"): the server moves to the next epoch
 * at once ({@link Channel.resume}) but keeps the state the resumption started from until the client
 * shows it left it; the client derives the next epoch on the side ({@link Channel.resumed}) and
 * keeps its current state until a frame sealed by the server in the new epoch opens.
 * Pure: no I/O.
 */
import { allocBytes, equalBytes, utf8 } from './bytes.js';
import { canonicalize } from './canonical-json.js';
import { KlError } from './errors.js';
import {
  type Direction,
  dataPlaintext,
  jsonPlaintext,
  openWire,
  PlainType,
  readPlaintext,
  readWireHeader,
  sealWire,
  sessionHandle,
} from './frame-wire.js';
import { sha256 } from './hash.js';
import { deriveSessionKeys, type SessionKeys, wipeSessionKeys } from './key-schedule.js';
import { type EphemeralKey, generateEphemeral, sharedSecret } from './x25519.js';

/**
 * A message inside a frame. A `data` message without `id` whose body is a string or bytes travels
 * as application data in the sealed plaintext (frame-wire.ts); every other message as JSON.
 */
export type ChannelMessage =
  | { t: 'data'; id?: number; body: unknown }
  | { t: 'reply'; re: number; body?: unknown; error?: { code: string; message: string } }
  | { t: 'signed'; id: number; body: string; signature: string }
  | { t: 'receipt'; re: number; receipt?: unknown; error?: { code: string; message: string } }
  | { t: 'rekey'; ephemeral: string }
  | { t: 'rekey-ack'; ephemeral: string }
  | { t: 'rekey-request' }
  | { t: 'revoke-key'; id: number; reason: string; signature: string; statement: string }
  | {
      t: 'rotate-key';
      id: number;
      statement: string;
      publicKey: string;
      oldKeySignature: string;
      newKeySignature: string;
    }
  | { t: 'device-pending'; id: number; code: string }
  | { t: 'add-device'; id: number; code: string; signature: string }
  | { t: 'revoke-device'; id: number; statement: string; signature: string }
  | {
      t: 'set-recovery-key';
      id: number;
      statement: string;
      /** The session's device's signature over the statement. */
      signature: string;
      publicKey: string;
      /** The recovery key's signature over the statement. */
      keySignature: string;
      /** The current recovery key's signature over the statement, when it is replaced. */
      replacesSignature?: string;
    }
  | { t: 'close'; reason: string }
  | { t: 'close-ack' }
  | { t: 'alert'; code: string; message: string };

/** Counters of what went through, for renewal triggers and hijack detection. */
export interface ChannelCounters {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  epochStartedAt: number;
}

/** Options of {@link Channel}. */
export interface ChannelOptions {
  role: 'client' | 'server';
  sid: string;
  /** Copied: the caller wipes them once it no longer needs them. */
  keys: SessionKeys;
  /** Chain hash: the handshake transcript hash, then folded with each renewal. */
  chain: Uint8Array;
  /** First sequence numbers (the server's finished frame used s2c seq 0). */
  nextSendSeq?: number;
  nextRecvSeq?: number;
  now: () => number;
}

/**
 * A copy in memory of its own. `copyBytes` may place a small copy in Node's shared 8 KiB pool, and a
 * long-lived 32-byte slice then keeps a whole pool slab alive: one per idle session.
 */
function ownCopy(bytes: Uint8Array): Uint8Array {
  const out = allocBytes(bytes.length);
  out.set(bytes);
  return out;
}

// Offsets of the keys in a channel's packed key array (key-schedule.ts sizes).
const C2S_KEY = 0;
const C2S_IV = 32;
const S2C_KEY = 44;
const S2C_IV = 76;
const RESUME_KEY = 88;
const CHAIN = 120;
const HANDLE = 152;
const MATERIAL_LENGTH = 168;

/**
 * The keys of an epoch, the chain hash and the session handle copied into one array of their own
 * (the caller wipes the arrays it gave once it no longer needs them). Keys of length 0 (a channel a
 * resumption fills) stay zero.
 */
function packKeys(k: SessionKeys, chain: Uint8Array, handle: Uint8Array): Uint8Array {
  if (chain.length !== HANDLE - CHAIN) throw new KlError('KL_PROTOCOL', 'malformed chain hash');
  const out = allocBytes(MATERIAL_LENGTH);
  out.set(chain, CHAIN);
  out.set(handle, HANDLE);
  const parts: Array<[Uint8Array, number, number]> = [
    [k.c2sKey, C2S_KEY, 32],
    [k.c2sIv, C2S_IV, 12],
    [k.s2cKey, S2C_KEY, 32],
    [k.s2cIv, S2C_IV, 12],
    [k.resumeKey, RESUME_KEY, 32],
  ];
  for (const [key, at, length] of parts) {
    if (key.length !== length && key.length !== 0) throw new KlError('KL_PROTOCOL', 'malformed session keys');
    out.set(key, at);
  }
  return out;
}

/** A state a resumption can start from: an epoch, its resume key and its chain hash. */
interface ResumePoint {
  epoch: number;
  resumeKey: Uint8Array;
  chain: Uint8Array;
}

/** One side of a session channel. */
export class Channel {
  readonly role: 'client' | 'server';
  readonly sid: string;
  epoch = 0;
  /**
   * The epoch's keys, the chain hash and the session handle packed in one array of their own
   * ({@link packKeys}): little to keep per idle session.
   */
  private material: Uint8Array;
  private previousRecv: { key: Uint8Array; iv: Uint8Array; epoch: number; nextSeq: number } | null = null;
  private sendSeq: number;
  private recvSeq: number;
  private pendingRekey: EphemeralKey | null = null;
  /**
   * Server: the state the last resumption started from, kept until a client frame of epoch `until`
   * (or later) opens, which the client can only seal once it has taken the resumption as done.
   */
  private fallback: (ResumePoint & { until: number }) | null = null;
  private closed = false;
  readonly counters: ChannelCounters;
  private readonly now: () => number;

  constructor(o: ChannelOptions) {
    this.role = o.role;
    this.sid = o.sid;
    this.material = packKeys(o.keys, o.chain, sessionHandle(o.sid));
    this.sendSeq = o.nextSendSeq ?? 0;
    this.recvSeq = o.nextRecvSeq ?? 0;
    this.now = o.now;
    this.counters = {
      framesSent: 0,
      framesReceived: 0,
      bytesSent: 0,
      bytesReceived: 0,
      epochStartedAt: o.now(),
    };
  }

  /** The epoch's keys, as views of {@link material} (for inspection; the hot paths slice it directly). */
  private get keys(): SessionKeys {
    const m = this.material;
    return {
      c2sKey: m.subarray(C2S_KEY, C2S_IV),
      c2sIv: m.subarray(C2S_IV, S2C_KEY),
      s2cKey: m.subarray(S2C_KEY, S2C_IV),
      s2cIv: m.subarray(S2C_IV, RESUME_KEY),
      resumeKey: m.subarray(RESUME_KEY, CHAIN),
    };
  }
  /** Chain hash: the handshake transcript hash, then folded with each renewal. */
  private get chain(): Uint8Array {
    return this.material.subarray(CHAIN, HANDLE);
  }
  /** The session id's 16 raw bytes: the handle in every frame header. */
  private get handle(): Uint8Array {
    return this.material.subarray(HANDLE, MATERIAL_LENGTH);
  }

  private get sendDir(): Direction {
    return this.role === 'client' ? 'c2s' : 's2c';
  }
  private get recvDir(): Direction {
    return this.role === 'client' ? 's2c' : 'c2s';
  }
  private sendKey() {
    return this.role === 'client'
      ? { key: this.material.subarray(C2S_KEY, C2S_IV), iv: this.material.subarray(C2S_IV, S2C_KEY) }
      : { key: this.material.subarray(S2C_KEY, S2C_IV), iv: this.material.subarray(S2C_IV, RESUME_KEY) };
  }
  private recvKey() {
    return this.role === 'client'
      ? { key: this.material.subarray(S2C_KEY, S2C_IV), iv: this.material.subarray(S2C_IV, RESUME_KEY) }
      : { key: this.material.subarray(C2S_KEY, C2S_IV), iv: this.material.subarray(C2S_IV, S2C_KEY) };
  }

  /** Seals a message into the next frame: the bytes of one binary WebSocket message. */
  seal(message: ChannelMessage): Uint8Array {
    if (this.closed) throw new KlError('KL_PROTOCOL', 'the session is closed');
    const body = (message as { body?: unknown }).body;
    const plaintext =
      message.t === 'data' &&
      message.id === undefined &&
      (typeof body === 'string' || body instanceof Uint8Array)
        ? dataPlaintext(body)
        : // Plain JSON, not RFC 8785: the AEAD tag authenticates these exact bytes and nothing
          // re-encodes them to check a signature, so canonical form would only cost time.
          jsonPlaintext(JSON.stringify(message));
    const { key, iv } = this.sendKey();
    const frame = sealWire({
      key,
      iv,
      handle: this.handle,
      epoch: this.epoch,
      seq: this.sendSeq,
      dir: this.sendDir,
      plaintext,
    });
    this.sendSeq += 1;
    this.counters.framesSent += 1;
    this.counters.bytesSent += plaintext.length;
    return frame;
  }

  /**
   * Opens an incoming frame (the bytes of a binary WebSocket message). Refuses (and never decrypts
   * twice) anything that is not exactly the next frame of this session: not a v2 frame, wrong
   * direction, wrong session, old or future epoch, replayed or skipped sequence number, failed
   * authentication.
   * @throws KlError `KL_FRAME_REJECTED` (not a frame), `KL_PROTOCOL` (out of order / foreign) or
   * `KL_DECRYPTION_FAILED` (forged)
   */
  open(bytes: Uint8Array): ChannelMessage {
    if (this.closed) throw new KlError('KL_PROTOCOL', 'the session is closed');
    const frame = readWireHeader(bytes);
    if (frame.dir !== this.recvDir) throw new KlError('KL_PROTOCOL', 'frame sent in the wrong direction');
    if (!equalBytes(frame.handle, this.handle))
      throw new KlError('KL_PROTOCOL', 'frame belongs to another session');
    let key: { key: Uint8Array; iv: Uint8Array };
    let expected: number;
    const prev = this.previousRecv;
    const usePrevious = prev !== null && frame.epoch === prev.epoch;
    if (usePrevious) {
      key = prev;
      expected = prev.nextSeq;
    } else {
      if (frame.epoch !== this.epoch)
        throw new KlError('KL_PROTOCOL', `frame epoch ${frame.epoch} is not the current epoch ${this.epoch}`);
      key = this.recvKey();
      expected = this.recvSeq;
    }
    if (frame.seq !== expected) {
      throw new KlError(
        'KL_PROTOCOL',
        frame.seq < expected ? 'replayed frame' : 'frame out of order (a frame is missing)',
      );
    }
    const plain = openWire(key.key, key.iv, bytes, frame.seq);
    if (usePrevious) prev.nextSeq += 1;
    else {
      this.recvSeq += 1;
      if (prev) {
        // The peer's first frame of the new epoch: the old receive key is no longer needed.
        prev.key.fill(0);
        prev.iv.fill(0);
        this.previousRecv = null;
      }
      // The client has taken the resumption as done: it will never resume from the older state.
      if (this.fallback && frame.epoch >= this.fallback.until) this.dropFallback();
    }
    this.counters.framesReceived += 1;
    this.counters.bytesReceived += plain.length;
    const p = readPlaintext(plain);
    if (p.type !== PlainType.json) return { t: 'data', body: p.body };
    let message: ChannelMessage;
    try {
      message = JSON.parse(p.json) as ChannelMessage;
    } catch {
      throw new KlError('KL_PROTOCOL', 'frame does not hold a message');
    }
    if (
      typeof message !== 'object' ||
      message === null ||
      typeof (message as { t?: unknown }).t !== 'string'
    ) {
      throw new KlError('KL_PROTOCOL', 'frame does not hold a message');
    }
    return message;
  }

  /** Client: starts a renewal; returns the rekey message to seal and send. */
  startRekey(): ChannelMessage {
    if (this.role !== 'client') throw new KlError('KL_PROTOCOL', 'only the client starts a renewal');
    if (this.pendingRekey) throw new KlError('KL_PROTOCOL', 'a renewal is already in progress');
    this.pendingRekey = generateEphemeral();
    return { t: 'rekey', ephemeral: this.pendingRekey.publicKey };
  }

  /** True while the client waits for rekey-ack. */
  get rekeyPending(): boolean {
    return this.pendingRekey !== null;
  }

  /**
   * Server: answers a client's rekey. Returns the rekey-ack frame, sealed as the last frame of the
   * old epoch; afterwards this side sends in the new epoch.
   */
  acceptRekey(clientEphemeral: string): Uint8Array {
    if (this.role !== 'server') throw new KlError('KL_PROTOCOL', 'only the server answers a renewal');
    const mine = generateEphemeral();
    // The peer's key is checked before anything is sent: a bad one leaves the channel as it was.
    const secret = sharedSecret(mine.privateKey, clientEphemeral);
    const ack = this.seal({ t: 'rekey-ack', ephemeral: mine.publicKey });
    // If the ack is lost, the client stays in this epoch and resumes from it: keep it resumable until
    // a client frame of the new epoch opens (a resumption's own fallback, older, is kept instead).
    this.fallback ??= {
      epoch: this.epoch,
      resumeKey: ownCopy(this.resumeKey),
      chain: ownCopy(this.chain),
      until: this.epoch + 1,
    };
    this.advance(secret, clientEphemeral, mine.publicKey, true);
    return ack;
  }

  /** Client: completes a renewal on rekey-ack. */
  completeRekey(serverEphemeral: string): void {
    const mine = this.pendingRekey;
    if (!mine) throw new KlError('KL_PROTOCOL', 'unexpected rekey-ack');
    this.pendingRekey = null;
    this.advance(sharedSecret(mine.privateKey, serverEphemeral), mine.publicKey, serverEphemeral, false);
  }

  private advance(
    secret: Uint8Array,
    clientEphemeral: string,
    serverEphemeral: string,
    keepOldRecv: boolean,
  ): void {
    const chain = sha256(
      this.chain,
      utf8(canonicalize({ sid: this.sid, epoch: this.epoch + 1, clientEphemeral, serverEphemeral })),
    );
    const next = deriveSessionKeys(secret, chain);
    secret.fill(0);
    const old = this.material;
    const oldRecv = this.recvKey();
    if (keepOldRecv) {
      // Server: client frames of the old epoch may still be in flight.
      this.previousRecv = {
        key: ownCopy(oldRecv.key),
        iv: ownCopy(oldRecv.iv),
        epoch: this.epoch,
        nextSeq: this.recvSeq,
      };
    }
    this.material = packKeys(next, chain, this.handle);
    old.fill(0);
    wipeSessionKeys(next);
    this.epoch += 1;
    this.sendSeq = 0;
    this.recvSeq = 0;
    this.counters.epochStartedAt = this.now();
    this.counters.framesSent = 0;
    this.counters.framesReceived = 0;
    this.counters.bytesSent = 0;
    this.counters.bytesReceived = 0;
  }

  /**
   * Server: moves to the next epoch after a resumption on a new connection whose proof was made in
   * epoch `from` (one of {@link resumePoints}): keys from HKDF over that epoch's resume key, salted
   * with the chain hash and both nonces; sequence numbers restart. The client renews with a fresh
   * ECDH exchange at once. The state resumed from is kept (docs/protocol.md "Resumption"): until a
   * client frame of the epoch after the new one opens, the client may not have learnt that the
   * resumption succeeded (its `resumed` or the renewal's answer lost), and resumes from it again.
   * @throws KlError `KL_PROTOCOL` if this channel cannot resume from epoch `from`
   */
  resume(clientNonce: string, serverNonce: string, from = this.epoch): void {
    if (this.role !== 'server') throw new KlError('KL_PROTOCOL', 'the client resumes with resumed()');
    let point: ResumePoint;
    if (from === this.epoch) {
      point = {
        epoch: this.epoch,
        resumeKey: ownCopy(this.resumeKey),
        chain: ownCopy(this.chain),
      };
      this.dropFallback();
    } else if (this.fallback && this.fallback.epoch === from) point = this.fallback;
    else throw new KlError('KL_PROTOCOL', `no resumable state of epoch ${from}`);
    this.fallback = { ...point, until: point.epoch + 2 };
    this.resumeFrom(point, clientNonce, serverNonce);
  }

  /**
   * Client: the channel of the next epoch after a resumption on a new connection, derived on the
   * side as {@link resume} derives it; this channel is left as it was. The caller swaps to it only
   * once a frame the server sealed in the new epoch opens (the plaintext `resumed` is not the
   * server's word), and closes it otherwise.
   */
  resumed(clientNonce: string, serverNonce: string): Channel {
    if (this.role !== 'client') throw new KlError('KL_PROTOCOL', 'the server resumes with resume()');
    if (this.closed) throw new KlError('KL_PROTOCOL', 'the session is closed');
    // Nothing of this channel's keys is shared with (or wiped by) the next one: resumeFrom copies.
    const none = allocBytes(0);
    const next = new Channel({
      role: 'client',
      sid: this.sid,
      keys: { c2sKey: none, c2sIv: none, s2cKey: none, s2cIv: none, resumeKey: none },
      chain: this.chain,
      now: this.now,
    });
    next.resumeFrom(
      { epoch: this.epoch, resumeKey: this.resumeKey, chain: this.chain },
      clientNonce,
      serverNonce,
    );
    return next;
  }

  private resumeFrom(point: ResumePoint, clientNonce: string, serverNonce: string): void {
    this.epoch = point.epoch;
    this.material.set(point.chain, CHAIN);
    this.advance(ownCopy(point.resumeKey), `resume:${clientNonce}`, `resume:${serverNonce}`, false);
    if (this.previousRecv) {
      this.previousRecv.key.fill(0);
      this.previousRecv.iv.fill(0);
      this.previousRecv = null;
    }
    this.pendingRekey = null;
  }

  private dropFallback(): void {
    this.fallback?.resumeKey.fill(0);
    this.fallback = null;
  }

  /** The resume key of the current epoch (for resumption on a new connection). */
  get resumeKey(): Uint8Array {
    return this.keys.resumeKey;
  }

  /**
   * The states a resumption may start from, the current epoch first: on the server also the state
   * the last resumption started from, while the client may still hold it (see {@link resume}).
   */
  resumePoints(): Array<{ epoch: number; resumeKey: Uint8Array }> {
    const points = [{ epoch: this.epoch, resumeKey: this.resumeKey }];
    if (this.fallback) points.push({ epoch: this.fallback.epoch, resumeKey: this.fallback.resumeKey });
    return points;
  }

  /** Ends the channel and wipes every key. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.material.fill(0);
    if (this.previousRecv) {
      this.previousRecv.key.fill(0);
      this.previousRecv.iv.fill(0);
    }
    this.dropFallback();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
