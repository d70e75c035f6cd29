/**
 * Sending through the outbox (docs/reliability.md "The chain away"), the same for every engine that
 * orders the ledger elsewhere (an EVM chain, an etcd cluster): a write nobody waits for (an audit
 * event) is put in the outbox before it is sent; while the engine cannot take it, or while older
 * queued writes wait, it stays queued and the caller gets `KL_LEDGER_UNAVAILABLE` with
 * `{ queued: true }`. Each follower read that reaches the engine's end then sends the queue in
 * order ({@link OutboxSender.flush}), checking the ledger for each txid first; what the follower
 * reads back is removed ({@link OutboxSender.readBack}); what the engine or the ledger's rules refuse
 * is kept with the reason, counted and reported, never sent again. The engine supplies how one
 * write is sent ({@link OutboxTransport}).
 */
import { isKlError, KlError } from '../protocol/errors.js';
import type { ChainOutbox, OutboxEntry } from './chain-outbox.js';
import type { TxEnvelope } from './transactions.js';

/** One write handed to the engine. */
export interface Sent {
  /** The engine's handle of this send (the EVM chain transaction's hash), or null. */
  handle: string | null;
  /** Settles once the send is final on the engine (EVM: mined with its confirmations), if it tells. */
  final?: Promise<void>;
}

/** What the last send of a queued write became on the engine (see {@link OutboxTransport.lastSend}). */
export type LastSend = 'held' | 'gone' | { refused: string };

/** How an engine sends one queued write. */
export interface OutboxTransport {
  /** Hands one signed transaction to the engine, in call order. */
  send(envelope: TxEnvelope, text: string): Promise<Sent>;
  /**
   * For an entry sent before with a handle: `held` while the engine still carries that send (pending
   * or final: the follower reads it back, sending again would write it twice), `gone` when the
   * engine no longer knows it (send again), or refused with why.
   */
  lastSend?(entry: OutboxEntry): Promise<LastSend>;
}

/** Options of {@link OutboxSender}. */
export interface OutboxSenderOptions {
  outbox: ChainOutbox;
  /** Whether a txid is on the ledger already (checked before every resend). */
  onLedger: (txid: string) => Promise<boolean>;
  /** The engine as the operator reads it: `the chain`, `the etcd cluster`. */
  engine: string;
  /** The prefix of log lines (`EVM follower`). */
  label: string;
  /** Whether an error is the engine refusing the write for good (default: anything but unavailable). */
  isRefusal?: (err: unknown) => boolean;
  /** The wall clock (ms). */
  now?: () => number;
  log?: (line: string) => void;
  onRefused?: (txid: string, reason: string) => void;
}

/** Writes sent per flush at most (the next read sends the rest). */
const FLUSH_LIMIT = 500;

const isUnavailable = (err: unknown) => isKlError(err, 'KL_LEDGER_UNAVAILABLE');

/** Whether a transaction is one nobody waits for (queued durably, docs/reliability.md "The chain away"). */
export function waitsForNobody(envelope: TxEnvelope): boolean {
  return envelope.tx?.type === 'AuditEvent';
}

/** Queues, sends, resends and reads back the writes of one outbox (see the module comment). */
export class OutboxSender {
  /** A queued write handed to the engine but not read back within this long is sent again, ms. */
  resendAfterMs = 60_000;
  /** Queued writes wait to be sent: new queued writes join the queue (sent in order). */
  private backlog: boolean;
  private readonly now: () => number;
  private readonly isRefusal: (err: unknown) => boolean;
  /** Queued writes whose own send is under way: the flush leaves them (and those behind) to it. */
  private readonly sending = new Set<string>();
  /** Refusals not yet reported to `onRefused` (reported at most once a minute), and when last. */
  private refusalsUnreported = 0;
  private refusalReportedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: OutboxSenderOptions) {
    this.now = o.now ?? Date.now;
    this.isRefusal = o.isRefusal ?? ((err) => !isUnavailable(err));
    this.backlog = o.outbox.size() > 0;
  }

  /** The error of a write kept in the outbox because the engine cannot take it now. */
  private queued(txid: string, why: string): KlError {
    return new KlError(
      'KL_LEDGER_UNAVAILABLE',
      `${why}: the transaction is queued and will be sent when ${this.o.engine} is back`,
      { txid, queued: true },
    );
  }

  /**
   * Queues a write nobody waits for durably, then sends it unless the engine is faulted (`fault`:
   * why, or null) or older queued writes wait. Resolves once the send is final; fails with a queued
   * `KL_LEDGER_UNAVAILABLE` when it stays queued, or with the engine's refusal (then kept as refused).
   */
  async submit(txid: string, text: string, fault: string | null, send: () => Promise<Sent>): Promise<void> {
    const outbox = this.o.outbox;
    outbox.put(txid, text);
    if (fault !== null) throw this.queued(txid, fault);
    // Older queued writes go first: this one joins them.
    if (this.backlog) throw this.queued(txid, `earlier writes wait for ${this.o.engine}`);
    let sent: Sent;
    this.sending.add(txid);
    try {
      sent = await send();
      outbox.markSent(txid, this.now(), sent.handle);
    } catch (err) {
      if (!this.isRefusal(err)) {
        this.backlog = true;
        throw this.queued(txid, (err as Error).message);
      }
      this.refuse(txid, (err as Error).message);
      throw err;
    } finally {
      this.sending.delete(txid);
    }
    try {
      await sent.final;
    } catch (err) {
      if (this.isRefusal(err)) this.refuse(txid, (err as Error).message);
      throw err;
    }
  }

  /**
   * Keeps a queued write that was refused in the outbox with why (never sent again, counted by
   * {@link refusedCount}), and reports it: the first refusal at once, then at most one report a
   * minute with how many were refused since (a log line and `onRefused`).
   */
  refuse(txid: string, reason: string): void {
    this.o.outbox.markRefused(txid, reason, this.now());
    this.refusalsUnreported++;
    if (this.now() - this.refusalReportedAt < 60_000) return;
    const more =
      this.refusalsUnreported > 1 ? ` (${this.refusalsUnreported} refused since the last report)` : '';
    this.refusalsUnreported = 0;
    this.refusalReportedAt = this.now();
    this.o.log?.(`${this.o.label}: queued write ${txid} refused, kept in the outbox: ${reason}${more}`);
    this.o.onRefused?.(txid, `a queued write was refused: ${reason}${more}`);
  }

  /**
   * Sends the queued writes that are due, oldest first, one after the other (the engine orders them
   * as queued) while `canSend()`; a txid the ledger holds already is dropped, never sent twice, and
   * one whose last send the engine still holds is not sent again. A write the engine refuses is
   * kept as refused. Stops at the first the engine cannot take, throwing its error (the next read
   * tries again).
   */
  async flush(transport: OutboxTransport, canSend: () => boolean): Promise<void> {
    const outbox = this.o.outbox;
    let sent = 0;
    for (let i = 0; i < FLUSH_LIMIT && canSend(); i++) {
      const due = outbox.nextDue(this.now() - this.resendAfterMs);
      if (!due) break;
      // Its own send is under way (submit): the next flush goes on from it, never sending it twice.
      if (this.sending.has(due.txid)) break;
      if (await this.o.onLedger(due.txid)) {
        outbox.remove([due.txid]);
        continue;
      }
      if (due.chainTx !== null && transport.lastSend) {
        const last = await transport.lastSend(due);
        if (last === 'held') {
          outbox.markSent(due.txid, this.now());
          continue;
        }
        if (last !== 'gone') {
          this.refuse(due.txid, last.refused);
          continue;
        }
      }
      let envelope: TxEnvelope;
      try {
        envelope = JSON.parse(due.text) as TxEnvelope;
      } catch {
        this.refuse(due.txid, 'the queued text is not a transaction envelope');
        continue;
      }
      try {
        const s = await transport.send(envelope, due.text);
        outbox.markSent(due.txid, this.now(), s.handle);
        // Read back by the follower, not here; a refusal once final is kept as refused.
        s.final?.catch((err: unknown) => {
          if (this.isRefusal(err)) this.refuse(due.txid, (err as Error).message);
        });
        sent++;
      } catch (err) {
        if (!this.isRefusal(err)) throw err;
        // The engine refuses it (permissions changed): it can never be written; say so.
        this.refuse(due.txid, (err as Error).message);
      }
    }
    if (outbox.unsent() === 0) this.backlog = false;
    if (sent > 0) this.o.log?.(`${this.o.label}: ${sent} queued write(s) sent to ${this.o.engine}`);
  }

  /**
   * The follower read these txids back from the engine (`seen`), of which the ledger's rules refused
   * `refused`: what was read is removed from the outbox; a queued write the ledger refused is kept
   * with the reason, unless the ledger holds the txid (a second copy refused as a duplicate).
   */
  async readBack(
    seen: Iterable<string>,
    refused: Array<{ txid: string; reason: string }> = [],
  ): Promise<void> {
    const outbox = this.o.outbox;
    const why = new Map(refused.map((r) => [r.txid, r.reason]));
    outbox.remove([...seen].filter((txid) => !why.has(txid)));
    for (const [txid, reason] of why) {
      if (!outbox.waits(txid)) continue;
      if (await this.o.onLedger(txid)) outbox.remove([txid]);
      else this.refuse(txid, `the ledger's rules refused it: ${reason}`);
    }
  }

  /** How many writes wait (refused ones not counted). */
  size(): number {
    return this.o.outbox.size();
  }

  /** How many queued writes were refused. */
  refusedCount(): number {
    return this.o.outbox.refusedCount();
  }
}
