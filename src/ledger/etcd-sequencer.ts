/**
 * The etcd engine's sequencer (docs/deploy-etcd.md): an etcd cluster orders the ledger's
 * transactions. Each write is one etcd transaction, a compare-and-swap on the head key
 * (`<prefix>/head`, the next sequence number) that also puts the entry `<prefix>/tx/<seq>` (the
 * envelope texts and a time); etcd commits it on a quorum (Raft) before it answers, so an answered
 * write is durable. Every server follows the entries in sequence order and feeds each one to the
 * ledger's `ingest` as one block: the same entries give every server the same blocks. The follower
 * learns of a new head through etcd's watch on the head key and reads at once; a slower poll stays
 * as the fallback (docs/deploy-etcd.md "The follower"). Audit events written while the cluster
 * cannot commit wait in the durable outbox (docs/reliability.md "The chain away").
 *
 * Spoken through etcd's v3 JSON gateway over HTTP (`/v3/kv/range`, `/v3/kv/txn`, `/v3/watch`: etcd
 * 3.4 serves it on its client URLs), so no gRPC client is needed.
 */
import { toHex } from '../protocol/bytes.js';
import { isKlError, KlError } from '../protocol/errors.js';
import type { ChainOutbox } from './chain-outbox.js';
import {
  entryHash,
  entryKey,
  isEntryKey,
  MAX_ENTRY_BYTES,
  MAX_ENTRY_READ_BYTES,
  MAX_ENTRY_TEXTS,
  nextEntryCount,
  parseEntry,
  parseHead,
} from './etcd-entry.js';
import { b64, EtcdGateway, type KvAnswer, MAX_ANSWER_BYTES, unb64 } from './etcd-gateway.js';
import { EtcdHeadWatch } from './etcd-watch.js';
import { leafHash } from './merkle.js';
import { OutboxSender, type OutboxTransport, waitsForNobody } from './outbox-sender.js';
import type { ChainChange, ChainStatus, Sequencer } from './sequencer-adapter.js';
import { MAX_TX_CLOCK_SKEW_MS } from './state-machine.js';
import type { TxEnvelope } from './transactions.js';

/** Options of {@link EtcdSequencer}. */
export interface EtcdSequencerOptions {
  /** Client URLs of the cluster's members (`http://host:2379`); any member serves. */
  endpoints: string[];
  /** The key prefix of this ledger (the genesis's `engine.prefix`), e.g. `/keyledger/<chainId>`. */
  prefix: string;
  /** The clock (the time written with each entry, and the bound on an entry's time when read; default `Date.now`). */
  now?: () => number;
  /**
   * How often the follower reads the head without being woken by the watch, ms (the fallback;
   * default 1000). With `watch: false`, how often it polls.
   */
  pollMs?: number;
  /** Whether the follower watches the head key (default true). */
  watch?: boolean;
  /** One request to a member gives up after this long, ms (default 3000). */
  requestTimeoutMs?: number;
  /** Told about transactions the cluster ordered but the ledger's rules refused. */
  onRefused?: (txid: string, reason: string) => void;
  log?: (line: string) => void;
}

/** What the follower feeds: one entry's transactions, its time and the position after it. */
export type EtcdIngest = (batch: { texts: string[]; time: number; cursor: string }) => unknown;

/** Entries read per range request while catching up (fewer while their answers are too large). */
const RANGE_LIMIT = 256;
/** The bytes of one range answer read at most while catching up (past it, fewer entries are asked for). */
const RANGE_ANSWER_BYTES = 8 * 1024 * 1024;
/** Keys under the prefix that are no entry key, logged once each, at most this many. */
const STRAY_KEYS_LOGGED = 100;

/** The txid of an envelope text (the RFC 6962 leaf hash of its bytes). */
const txidOf = (text: string) => toHex(leafHash(Buffer.from(text, 'utf8')));
/** Every shorter prefix that ends at a `/` of `prefix` (`/a/b/c`: `/a`, `/a/b`). */
const ancestorsOf = (prefix: string) =>
  prefix
    .split('/')
    .slice(1, -1)
    .map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`);

/** A follower position: the last entry read and the hash of its stored value. */
export interface EtcdCursor {
  seq: number;
  hash: string;
}

/**
 * Reads a stored follower position `SEQ:HASH` (null before the first entry).
 * @throws KlError `KL_LEDGER_CORRUPT` for anything else.
 */
export function parseEtcdCursor(cursor: string | null): EtcdCursor | null {
  if (cursor === null) return null;
  const m = /^([0-9]{1,15}):([0-9a-f]{64})$/.exec(cursor);
  if (!m)
    throw new KlError('KL_LEDGER_CORRUPT', 'the stored etcd position is not a sequence number and hash');
  return { seq: Number(m[1]), hash: m[2]! };
}

type Fault = { key: string; detail: string };
type Waiting = { text: string; resolve: () => void; reject: (e: unknown) => void };

/** Orders keyledger transactions in an etcd cluster and follows what it ordered. */
export class EtcdSequencer implements Sequencer {
  /** When the follower last read the cluster up to its head (wall clock, ms). */
  lastSyncAt = 0;
  /** Readiness: stale after this many ms without a full read (the server's `maxLedgerStalenessMs`). */
  staleAfterMs = 30_000;
  private readonly now: () => number;
  /**
   * The latest time this server wrote with an entry: its own entries are never beyond its clock as
   * it was when it wrote them, also after that clock stepped back (an NTP step, a test's clock).
   */
  private latestOwnTime = Number.NEGATIVE_INFINITY;
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  private readonly prefix: string;
  private readonly headKey: string;
  private readonly chainKey: string;
  private readonly txPrefix: string;
  private readonly gateway: EtcdGateway;
  /** The ledger this sequencer bound the prefix to (checked at every read and write), or null. */
  private boundChain: string | null = null;
  private cursor: EtcdCursor | null = null;
  /** The cluster's last entry at the last read (head - 1), or null. */
  private head: number | null = null;
  private fault: Fault | null = null;
  /** Failed closed until restart ({@link failClosed}): nothing clears the fault. */
  private closedForGood = false;
  /** An entry found where the next write goes (not written by this engine), or null. */
  private blockedSlot: number | null = null;
  /** Keys under the prefix that are no entry key, logged once. */
  private readonly strayKeys = new Set<string>();
  private lastError: string | null = null;
  private unreachableTold = false;
  private readonly listeners = new Set<(change: ChainChange) => void>();
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private following: Promise<void> | null = null;
  /** Writes waiting for the next entry, and the entry being written. */
  private queue: Waiting[] = [];
  private writing: Promise<void> | null = null;
  /** Writes nobody waits for, through the outbox (null: none given). */
  private sender: OutboxSender | null = null;
  private ingest: EtcdIngest | null = null;
  /** A read runs; another is asked for after it (woken meanwhile). */
  private reading = false;
  private readAgain = false;
  private readonly watchEnabled: boolean;
  /** The watch on the head key (while following with `watch`), or null. */
  private headWatch: EtcdHeadWatch | null = null;

  constructor(private readonly o: EtcdSequencerOptions) {
    this.now = o.now ?? Date.now;
    this.watchEnabled = o.watch ?? true;
    this.pollMs = o.pollMs ?? (this.watchEnabled ? 1000 : 100);
    this.timeoutMs = o.requestTimeoutMs ?? 3000;
    this.gateway = new EtcdGateway(o.endpoints, this.timeoutMs);
    this.prefix = o.prefix.replace(/\/+$/, '');
    this.headKey = `${this.prefix}/head`;
    this.chainKey = `${this.prefix}/chain`;
    this.txPrefix = `${this.prefix}/tx/`;
  }

  /** The key of entry `seq`. */
  private txKey(seq: number): string {
    return entryKey(this.txPrefix, seq);
  }

  /** One gateway call (see {@link EtcdGateway.call}). */
  private call(path: string, body: unknown, maxBytes = MAX_ANSWER_BYTES): Promise<KvAnswer> {
    return this.gateway.call(path, body, maxBytes);
  }

  /**
   * Binds the prefix to the ledger `chainId` (`<prefix>/chain`) on first use, or checks it holds
   * that ledger: two deployments on one prefix would interleave their orders. A first binding is
   * refused for a prefix nested in another deployment's, or one that holds keys already
   * (docs/deploy-etcd.md "What a cluster writer cannot do").
   * @throws KlError `KL_LEDGER_CORRUPT` when the prefix orders another ledger; `KL_CONFIG_INVALID`
   *   for a nested or used prefix; `KL_LEDGER_UNAVAILABLE`.
   */
  async bind(chainId: string): Promise<void> {
    const own = b64(this.chainKey);
    const none = (key: string, rangeEnd?: string) => ({
      key,
      ...(rangeEnd ? { range_end: rangeEnd } : {}),
      target: 'CREATE',
      result: 'EQUAL',
      create_revision: '0',
    });
    const answer = await this.call('/v3/kv/txn', {
      compare: [
        none(own),
        ...ancestorsOf(this.prefix).map((p) => none(b64(`${p}/chain`))),
        none(b64(`${this.prefix}/`), b64(`${this.prefix}0`)),
      ],
      success: [{ request_put: { key: own, value: b64(chainId) } }],
      failure: [{ request_range: { key: own } }],
    });
    if (!answer.succeeded) {
      const bound = answer.responses?.[0]?.response_range?.kvs?.[0];
      if (!bound) {
        const conflict = await this.prefixConflict();
        throw conflict
          ? new KlError('KL_CONFIG_INVALID', conflict)
          : new KlError('KL_LEDGER_UNAVAILABLE', `the etcd prefix ${this.prefix} changed while binding it`);
      }
      const ledger = unb64(bound.value);
      if (ledger !== chainId)
        throw new KlError(
          'KL_LEDGER_CORRUPT',
          `the etcd prefix ${this.prefix} orders another ledger (${ledger.slice(0, 16)}…) than this one (${chainId.slice(0, 16)}…)`,
        );
    }
    this.boundChain = chainId;
  }

  /**
   * Why the prefix cannot be bound to a new ledger — it is nested in another deployment's prefix,
   * or holds keys though it orders no ledger — or null when it can (or already orders one).
   * @throws KlError `KL_LEDGER_UNAVAILABLE`
   */
  async prefixConflict(): Promise<string | null> {
    const ancestors = ancestorsOf(this.prefix);
    const got = await this.call('/v3/kv/txn', {
      success: [
        { request_range: { key: b64(this.chainKey), keys_only: true } },
        {
          request_range: {
            key: b64(`${this.prefix}/`),
            range_end: b64(`${this.prefix}0`),
            keys_only: true,
            limit: 1,
          },
        },
        ...ancestors.map((p) => ({ request_range: { key: b64(`${p}/chain`), keys_only: true } })),
      ],
    });
    const [own, inside, ...outer] = (got.responses ?? []).map((r) => r.response_range?.kvs ?? []);
    if (own && own.length > 0) return null;
    const at = ancestors.findIndex((_, i) => (outer[i]?.length ?? 0) > 0);
    if (at >= 0)
      return `the etcd prefix ${this.prefix} is nested in ${ancestors[at]}, the prefix of another keyledger deployment: give this ledger a prefix of its own, outside every other one (--etcd-prefix)`;
    const used = inside?.[0]?.key;
    if (used !== undefined)
      return `the etcd prefix ${this.prefix} orders no ledger but holds keys (${unb64(used).slice(0, 200)}): another deployment's prefix is nested in it, or its binding was deleted; give this ledger a prefix of its own (--etcd-prefix)`;
    return null;
  }

  /**
   * The ledger the prefix is bound to (`<prefix>/chain`), or null when none is yet.
   * @throws KlError `KL_LEDGER_UNAVAILABLE`
   */
  async boundLedger(): Promise<string | null> {
    const answer = await this.call('/v3/kv/range', { key: b64(this.chainKey) });
    const kv = answer.kvs?.[0];
    return kv ? unb64(kv.value) : null;
  }

  /** The connection to the cluster (see {@link ChainStatus}). */
  status(): ChainStatus {
    const read = this.cursor?.seq ?? null;
    const stalenessMs = Date.now() - this.lastSyncAt;
    return {
      head: this.head,
      read,
      lag: this.head !== null ? Math.max(0, this.head - (read ?? -1)) : null,
      stalenessMs,
      fault: this.fault?.detail ?? null,
      queued: this.sender?.size() ?? 0,
      refusedWrites: this.sender?.refusedCount() ?? 0,
      ok: this.fault === null && stalenessMs <= this.staleAfterMs,
    };
  }

  /** Tells `listener` each change of the cluster connection; returns the unsubscribe function. */
  onChange(listener: (change: ChainChange) => void): () => void {
    this.listeners.add(listener);
    if (this.fault) listener({ kind: 'fault', detail: this.fault.detail });
    if (this.unreachableTold) listener({ kind: 'unreachable', detail: this.lastError ?? 'no answer' });
    return () => this.listeners.delete(listener);
  }

  private tell(change: ChainChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // a listener never stops the follower
      }
    }
  }

  /**
   * Keeps writes nobody waits for (audit events) in `outbox` until they are read back from an entry
   * (docs/reliability.md "The chain away"); `onLedger` tells whether a txid is on the ledger already
   * (checked before every resend).
   */
  useOutbox(outbox: ChainOutbox, onLedger: (txid: string) => Promise<boolean>): void {
    this.sender = new OutboxSender({
      outbox,
      onLedger,
      engine: 'the etcd cluster',
      label: 'etcd follower',
      // Only a request the cluster refuses itself is a refusal; anything else waits for it.
      isRefusal: (err) => err instanceof KlError && err.code === 'KL_NOT_PERMITTED',
      ...(this.o.log ? { log: this.o.log } : {}),
      ...(this.o.onRefused ? { onRefused: this.o.onRefused } : {}),
    });
  }

  /** How the outbox sender sends a queued write: into the next entry. */
  private readonly transport: OutboxTransport = {
    send: (_envelope, text) => this.enqueue(text).then(() => ({ handle: null })),
  };

  /**
   * Orders one transaction: it joins the next entry (writes waiting together share one etcd
   * transaction); resolves once the cluster committed that entry. Refused at once while the cluster
   * is faulted. A write nobody waits for (an audit event, with an outbox) is queued durably first:
   * if the cluster cannot take it, it fails with `KL_LEDGER_UNAVAILABLE` and details
   * `{ queued: true }`, and is sent when the cluster is back.
   */
  submit({ envelope, text, txid }: { envelope: TxEnvelope; text: string; txid: string }): Promise<void> {
    if (this.stopped) return Promise.reject(new KlError('KL_LEDGER_UNAVAILABLE', 'the ledger is closing'));
    const faulted = this.fault
      ? `the etcd cluster this server follows is faulted (${this.fault.detail})`
      : null;
    if (this.sender && waitsForNobody(envelope))
      return this.sender.submit(txid, text, faulted, () => this.enqueue(text).then(() => ({ handle: null })));
    if (faulted)
      return Promise.reject(
        new KlError('KL_LEDGER_UNAVAILABLE', `${faulted}: writes are refused until it is back`),
      );
    return this.enqueue(text);
  }

  /** Adds a text to the next entry; resolves once the cluster committed it. */
  private enqueue(text: string): Promise<void> {
    if (this.stopped) return Promise.reject(new KlError('KL_LEDGER_UNAVAILABLE', 'the ledger is closing'));
    return new Promise((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      this.writing ??= this.drainQueue();
    });
  }

  /** Writes queued texts as entries, one etcd transaction each, until the queue is empty. */
  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0) {
      const n = nextEntryCount(this.queue.slice(0, MAX_ENTRY_TEXTS).map((w) => w.text));
      const batch = this.queue.splice(0, n);
      try {
        await this.append(batch.map((w) => w.text));
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.writing = null;
  }

  /**
   * Appends one entry: reads the head, then a transaction that puts the entry and moves the head if
   * the head is unchanged (compare-and-swap on its mod revision), the entry's key holds nothing (an
   * entry is never written over) and the prefix still names this ledger; a conflict (another server
   * wrote first) reads the head again. Nothing is written to a cluster whose head is no number or
   * below the entry this server read last. Gives up with `KL_LEDGER_UNAVAILABLE` after 10 s.
   */
  private async append(texts: string[]): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (let attempt = 0; ; attempt++) {
      const got = await this.call('/v3/kv/txn', {
        success: [
          { request_range: { key: b64(this.headKey) } },
          { request_range: { key: b64(this.chainKey), keys_only: true } },
        ],
      });
      const [kv, chainKv] = (got.responses ?? []).map((r) => r.response_range?.kvs?.[0]);
      const next = kv ? parseHead(unb64(kv.value)) : 0;
      if (next === null) throw this.refusedWrite('the etcd head key holds no sequence number');
      if (this.cursor && next <= this.cursor.seq)
        throw this.refusedWrite(
          `the etcd cluster went back below entry ${this.cursor.seq}, which this server read`,
        );
      const slot = b64(this.txKey(next));
      const answer = await this.call('/v3/kv/txn', {
        compare: [
          { key: b64(this.headKey), target: 'MOD', result: 'EQUAL', mod_revision: kv?.mod_revision ?? '0' },
          { key: slot, target: 'CREATE', result: 'EQUAL', create_revision: '0' },
          // The binding as read with the head: still this ledger's, or still none (deleted).
          ...(this.boundChain
            ? [
                chainKv
                  ? { key: b64(this.chainKey), target: 'VALUE', result: 'EQUAL', value: b64(this.boundChain) }
                  : { key: b64(this.chainKey), target: 'CREATE', result: 'EQUAL', create_revision: '0' },
              ]
            : []),
        ],
        success: [
          { request_put: { key: slot, value: b64(JSON.stringify({ time: this.ownTime(), texts })) } },
          { request_put: { key: b64(this.headKey), value: b64(String(next + 1)) } },
        ],
        failure: [
          { request_range: { key: b64(this.headKey), keys_only: true } },
          { request_range: { key: slot, keys_only: true } },
        ],
      });
      if (answer.succeeded) return;
      const [headNow, slotNow] = (answer.responses ?? []).map((r) => r.response_range?.kvs?.[0]);
      if ((headNow?.mod_revision ?? '0') === (kv?.mod_revision ?? '0')) {
        // Not another server's write: the entry's key is taken, or the prefix names another ledger.
        if (slotNow) {
          this.blockedSlot = next;
          throw this.refusedWrite(`entry ${next} exists already beyond the etcd head`);
        }
        throw this.refusedWrite(`the etcd prefix ${this.prefix} names another ledger than this one`);
      }
      if (Date.now() > deadline)
        throw new KlError(
          'KL_LEDGER_UNAVAILABLE',
          'the etcd cluster is too busy: the write kept conflicting',
        );
      await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt * 5) * Math.random()));
    }
  }

  /** The time written with an entry of this server (the clock), remembered as its latest. */
  private ownTime(): number {
    const time = this.now();
    this.latestOwnTime = Math.max(this.latestOwnTime, time);
    return time;
  }

  /** A write refused because the cluster holds what this engine did not write; the follower reads at once (and reports it). */
  private refusedWrite(why: string): KlError {
    this.wake();
    return new KlError('KL_LEDGER_UNAVAILABLE', `${why}: nothing is written to the cluster`);
  }

  /**
   * Feeds `ingest` every entry after `cursor` (the ledger's stored position), in order, one entry
   * per call; then reads again whenever the watch on the head key tells of a change, and every
   * `pollMs` in any case (the fallback). Each read first checks that the cluster still holds the
   * entry last read with the same value (else a fault: restored from an older snapshot, or
   * replaced), then sends the writes queued in the outbox. Resolves after the first read.
   */
  follow(ingest: EtcdIngest, cursor: string | null): Promise<void> {
    this.cursor = parseEtcdCursor(cursor);
    this.ingest = ingest;
    if (this.watchEnabled)
      this.headWatch ??= new EtcdHeadWatch({
        endpoints: this.o.endpoints,
        key: this.headKey,
        preferredMember: () => this.gateway.preferredMember(),
        timeoutMs: this.timeoutMs,
        pollMs: this.pollMs,
        onChange: () => this.wake(),
        ...(this.o.log ? { log: this.o.log } : {}),
      });
    this.following = this.read();
    this.headWatch?.start();
    return this.following;
  }

  /** Reads now (or right after the read running); the fallback read is timed from its end. */
  private wake(): void {
    if (this.stopped || !this.ingest) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.following = this.read();
  }

  /** Reads until no read is asked for, then times the fallback read. */
  private async read(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.reading = true;
    try {
      do {
        this.readAgain = false;
        try {
          await this.poll(this.ingest!);
        } catch (err) {
          this.failed(err);
        }
      } while (this.readAgain && !this.stopped);
    } finally {
      this.reading = false;
    }
    if (!this.stopped) this.timer = setTimeout(() => this.wake(), this.pollMs);
  }

  /**
   * One read of the follower: the head, the entry last read, the binding and a taken entry key in
   * one linearizable transaction; a fault found there stops the read; else the entries after the
   * cursor are read (a fault found among them stops it too), then the outbox is sent.
   */
  private async poll(ingest: EtcdIngest): Promise<void> {
    const blocked = this.blockedSlot;
    const ask: Array<{ name: string; key: string; keysOnly?: boolean }> = [
      { name: 'head', key: this.headKey },
    ];
    if (this.cursor) ask.push({ name: 'cursor', key: this.txKey(this.cursor.seq) });
    if (this.boundChain) ask.push({ name: 'chain', key: this.chainKey });
    if (blocked !== null) ask.push({ name: 'slot', key: this.txKey(blocked), keysOnly: true });
    let got: KvAnswer;
    try {
      got = await this.call('/v3/kv/txn', {
        success: ask.map((a) => ({
          request_range: { key: b64(a.key), ...(a.keysOnly ? { keys_only: true } : {}) },
        })),
      });
    } catch (err) {
      if (!isKlError(err, 'KL_TOO_LARGE')) throw err;
      this.answered();
      this.setFault({
        key: 'oversized read',
        detail: `the etcd head or entry ${this.cursor?.seq} answered over ${MAX_ANSWER_BYTES} bytes: not what this server read`,
      });
      return;
    }
    const kv = new Map(ask.map((a, i) => [a.name, got.responses?.[i]?.response_range?.kvs?.[0]]));
    const headKv = kv.get('head');
    const next = headKv ? parseHead(unb64(headKv.value)) : 0;
    if (next !== null) this.head = next - 1;
    this.answered();
    this.headWatch?.noteRead(Number(got.header?.revision ?? 0), Number(headKv?.mod_revision ?? 0));
    const fault =
      this.checkBinding(kv.get('chain')?.value) ??
      (next === null
        ? {
            key: 'head',
            detail: `the etcd head key holds no sequence number (${JSON.stringify(unb64(headKv?.value).slice(0, 40))}): nothing is read or written until it does`,
          }
        : (this.checkCursor(next, kv.get('cursor')?.value) ?? this.checkSlot(next, blocked, kv.get('slot'))));
    if (fault || next === null) {
      this.setFault(fault);
      return;
    }
    const reading = await this.catchUp(ingest, next);
    this.setFault(reading);
    if (reading) return;
    this.lastSyncAt = Date.now();
    await this.sender?.flush(this.transport, () => !this.stopped && !this.fault);
  }

  /** Whether the cluster still holds the entry last read, with the value read. */
  private checkCursor(next: number, value: string | undefined): Fault | null {
    const c = this.cursor;
    if (!c) return null;
    if (next <= c.seq || value === undefined)
      return {
        key: `behind ${c.seq}`,
        detail: `the etcd cluster went back: it no longer holds entry ${c.seq}, which this server already read (restored from an older snapshot, or its data lost)`,
      };
    if (entryHash(unb64(value)) !== c.hash)
      return {
        key: `replaced ${c.seq}`,
        detail: `entry ${c.seq} in the etcd cluster is not the entry this server read: the cluster's data was replaced`,
      };
    return null;
  }

  /**
   * Whether the prefix names another ledger than the one it was bound to here. A binding deleted
   * is no fault: the entries are checked by the cursor (a cluster whose data went back loses it
   * too), and a new ledger cannot be bound to a prefix that holds keys.
   */
  private checkBinding(value: string | undefined): Fault | null {
    if (value === undefined || this.boundChain === null || unb64(value) === this.boundChain) return null;
    return {
      key: 'binding',
      detail: `the etcd prefix ${this.prefix} names another ledger (${unb64(value).slice(0, 16)}…) than this one (${this.boundChain.slice(0, 16)}…): nothing is read or written until it names this one again`,
    };
  }

  /** Whether an entry not written by this engine still takes the key the next write goes to. */
  private checkSlot(next: number, blocked: number | null, taken: unknown): Fault | null {
    if (blocked === null) return null;
    if (blocked === next && taken)
      return {
        key: `slot ${blocked}`,
        detail: `entry ${blocked} exists beyond the etcd head (${next}), written by something other than a keyledger server: writes are refused until it is deleted`,
      };
    this.blockedSlot = null;
    return null;
  }

  /**
   * Reads the entries after the cursor up to `next - 1`, feeding each one as a block. Only the key
   * of the entry expected next is taken (any other key under the prefix is skipped and logged
   * once); an entry missing below the head, written over, too large to read or timed beyond this
   * server's clock is a fault, returned (the entries before it are read). Ranges whose answer is
   * over {@link RANGE_ANSWER_BYTES} are asked again for fewer entries, down to one.
   */
  private async catchUp(ingest: EtcdIngest, next: number): Promise<Fault | null> {
    let from = this.cursor ? this.cursor.seq + 1 : 0;
    let start = this.txKey(from);
    let limit = RANGE_LIMIT;
    const time = { last: 0 };
    while (from < next && !this.stopped) {
      let got: KvAnswer;
      try {
        got =
          limit === 1
            ? await this.call('/v3/kv/range', { key: b64(this.txKey(from)) })
            : await this.call(
                '/v3/kv/range',
                { key: b64(start), range_end: b64(this.txKey(next)), limit },
                RANGE_ANSWER_BYTES,
              );
      } catch (err) {
        if (!isKlError(err, 'KL_TOO_LARGE')) throw err;
        if (limit === 1) return this.oversized(from);
        limit = Math.max(1, Math.floor(limit / 8));
        continue;
      }
      const kvs = got.kvs ?? [];
      for (const kv of kvs) {
        const key = unb64(kv.key);
        if (key !== this.txKey(from)) {
          if (isEntryKey(this.txPrefix, key)) return this.missing(from, next);
          this.noteStrayKey(key);
          start = `${key}\0`;
          continue;
        }
        const fault = await this.readEntry(ingest, from, kv, time);
        if (fault) return fault;
        from++;
        start = this.txKey(from);
      }
      if (from < next && (limit === 1 ? kvs.length === 0 : !got.more)) return this.missing(from, next);
      if (limit < RANGE_LIMIT && kvs.length > 0) limit = Math.min(RANGE_LIMIT, limit * 2);
    }
    return null;
  }

  /** The fault of an entry over {@link MAX_ENTRY_READ_BYTES} (the same on every server: its size decides). */
  private oversized(seq: number): Fault {
    return {
      key: `oversized ${seq}`,
      detail: `entry ${seq} in the etcd cluster is over ${MAX_ENTRY_READ_BYTES} bytes (a server writes ${MAX_ENTRY_BYTES} at most): not read until it is replaced`,
    };
  }

  /** The fault of an entry missing below the head. */
  private missing(seq: number, next: number): Fault {
    return {
      key: `missing ${seq}`,
      detail: `entry ${seq} is missing from the etcd cluster below its head (${next}): deleted, or the head moved by something other than a keyledger server`,
    };
  }

  /** Logs a key under the entries' prefix that is no entry key, once (it is never read). */
  private noteStrayKey(key: string): void {
    if (this.strayKeys.has(key) || this.strayKeys.size >= STRAY_KEYS_LOGGED) return;
    this.strayKeys.add(key);
    this.o.log?.(
      `etcd follower: ignored ${JSON.stringify(key.slice(0, 200))}: not an entry key of this ledger (written by something else under its prefix)`,
    );
  }

  /**
   * Feeds entry `seq` as one block, with its time (never decreasing: `time.last`), unless it is a
   * fault: written more than once, or timed beyond this server's clock and the allowed clock skew
   * (read once the clock reaches it, so every server derives the same blocks: docs/deploy-etcd.md
   * "What a cluster writer cannot do"). A value that is no ordered batch is an empty block, told to
   * `onRefused`.
   */
  private async readEntry(
    ingest: EtcdIngest,
    seq: number,
    kv: { value?: string; version?: string },
    time: { last: number },
  ): Promise<Fault | null> {
    if (kv.version !== undefined && kv.version !== '1')
      return {
        key: `rewritten ${seq}`,
        detail: `entry ${seq} in the etcd cluster was written over (version ${kv.version}): a keyledger server writes an entry once`,
      };
    const value = unb64(kv.value);
    if (Buffer.byteLength(value, 'utf8') > MAX_ENTRY_READ_BYTES) return this.oversized(seq);
    const parsed = parseEntry(value);
    if ('refused' in parsed) this.o.onRefused?.(`etcd entry ${seq}`, parsed.refused);
    const entry = 'refused' in parsed ? { time: 0, texts: [] } : parsed;
    if (entry.time > Math.max(this.now(), this.latestOwnTime) + MAX_TX_CLOCK_SKEW_MS)
      return {
        key: `future ${seq}`,
        detail: `entry ${seq} in the etcd cluster is timed ${new Date(entry.time).toISOString()}, beyond this server's clock and the allowed skew: not read until then (check the writers' and this server's clocks)`,
      };
    time.last = Math.max(time.last, entry.time);
    const hash = entryHash(value);
    const r = ingest({ texts: entry.texts, time: time.last, cursor: `${seq}:${hash}` }) as {
      refused?: Array<{ txid: string; reason: string }>;
    };
    this.cursor = { seq, hash };
    await this.sender?.readBack(entry.texts.map(txidOf), r?.refused);
    for (const x of r?.refused ?? []) this.o.onRefused?.(x.txid, x.reason);
    return null;
  }

  /**
   * Fails closed until the server restarts: a fault nothing clears (a prefix found bound to
   * another ledger while retrying at start), told to listeners like any other.
   */
  failClosed(detail: string): void {
    this.setFault({ key: 'closed', detail });
    this.closedForGood = true;
  }

  /** Records the fault state; tells a change once. */
  private setFault(fault: Fault | null): void {
    if (this.closedForGood || (fault?.key ?? null) === (this.fault?.key ?? null)) return;
    const was = this.fault;
    this.fault = fault;
    if (fault) {
      this.o.log?.(`etcd follower: FAULT ${fault.detail}; logins and writes are refused`);
      this.tell({ kind: 'fault', detail: fault.detail });
    } else if (was) {
      const detail = `the etcd cluster reads as this server expects again (entry ${this.cursor?.seq ?? 'none'} read): following it again`;
      this.o.log?.(`etcd follower: fault cleared, ${detail}`);
      this.tell({ kind: 'fault_cleared', detail });
    }
  }

  private answered(): void {
    if (this.lastError !== null) this.o.log?.('etcd follower: the cluster answers again');
    this.lastError = null;
    if (this.unreachableTold) {
      this.unreachableTold = false;
      this.tell({ kind: 'reachable', detail: 'the etcd cluster answers again' });
    }
  }

  private failed(err: unknown): void {
    const message = (err as Error).message ?? String(err);
    if (message !== this.lastError) this.o.log?.(`etcd follower: ${message}`);
    this.lastError = message;
    const limit = Number.isFinite(this.staleAfterMs) ? this.staleAfterMs : 30_000;
    if (!this.unreachableTold && Date.now() - this.lastSyncAt > limit) {
      this.unreachableTold = true;
      this.tell({ kind: 'unreachable', detail: message });
    }
  }

  /** Stops following and watching; writes still waiting fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.headWatch?.stop();
    await this.following?.catch(() => {});
    await this.writing?.catch(() => {});
  }
}
