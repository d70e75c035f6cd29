/**
 * The etcd follower's watch on the ledger head (docs/deploy-etcd.md "The follower"): a stream on
 * etcd's v3 JSON gateway (`/v3/watch`) that tells of each change of the head key, so the follower
 * reads at once rather than at its next poll. Kept open on one member after the other; re-established
 * when it ends, when it was compacted past the revision asked for, or when it lags the reads.
 */
import { b64 } from './etcd-gateway.js';

/**
 * The watch stream's bytes buffered at most while waiting for the end of one answer (an answer on
 * the head key is a few hundred bytes): a stream that sends more without ending an answer is dropped.
 */
export const WATCH_MAX_BUFFER = 64 * 1024;
/** The watch is re-established when it lagged the reads for this long (a member that stopped hearing). */
const WATCH_LAG_MS = 2_000;

/** Options of {@link EtcdHeadWatch}. */
export interface EtcdHeadWatchOptions {
  /** Client URLs of the cluster's members (`http://host:2379`). */
  endpoints: string[];
  /** The key watched (the ledger's `<prefix>/head`). */
  key: string;
  /** The index in `endpoints` of the member watched first (asked when the watch starts). */
  preferredMember: () => number;
  /** Establishing one stream gives up after this long, ms. */
  timeoutMs: number;
  /** How often the follower reads without the watch, ms (told in the log when a stream ends). */
  pollMs: number;
  /** Wakes the follower's read: a change of the key, the watch established, or a compaction. */
  onChange: () => void;
  log?: (line: string) => void;
}

/** One answer on the watch stream (the fields used). */
interface WatchAnswer {
  result?: {
    header?: { revision?: string };
    created?: boolean;
    canceled?: boolean;
    compact_revision?: string;
    cancel_reason?: string;
    events?: Array<{ kv?: { mod_revision?: string } }>;
  };
  error?: { message?: string; grpc_code?: number; http_code?: number };
}

/** Why a watch stream ended, and whether it had been established. */
type WatchEnd = { why: string; established: boolean; compacted?: boolean };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Watches the etcd head key for the follower: {@link start} keeps a stream open until
 * {@link stop}; the follower tells it each read ({@link noteRead}), so the watch starts after the
 * revision last read and is re-established when it lags the reads.
 */
export class EtcdHeadWatch {
  private stopped = false;
  /** The store revision of the last read (the watch starts after it), or null. */
  private readRevision: number | null = null;
  /** The highest store revision the watch stream told of, or null while none is established. */
  private watchRevision: number | null = null;
  /** Since when the reads see a head the watch has not told of (wall clock, ms), or null. */
  private watchBehindSince: number | null = null;
  private watchAbort: AbortController | null = null;
  private watching: Promise<void> | null = null;
  private watchError: string | null = null;

  constructor(private readonly o: EtcdHeadWatchOptions) {}

  /** Starts watching (once); runs until {@link stop}. */
  start(): void {
    this.watching ??= this.watchLoop();
  }

  /**
   * Notes the store revision of a read (the watch restarts after it) and the head's: a watch that
   * has not told of a head the reads have seen for {@link WATCH_LAG_MS} is re-established (its
   * member may have lost the others while the stream stays open).
   */
  noteRead(store: number, headMod: number): void {
    if (Number.isSafeInteger(store) && store > 0) this.readRevision = store;
    if (this.watchRevision === null || headMod <= this.watchRevision) {
      this.watchBehindSince = null;
      return;
    }
    this.watchBehindSince ??= Date.now();
    if (Date.now() - this.watchBehindSince < WATCH_LAG_MS) return;
    this.watchBehindSince = null;
    this.o.log?.('etcd follower: the watch lags the reads: re-establishing it');
    this.watchAbort?.abort();
  }

  /** Stops watching: ends the stream open and resolves once the watch loop has returned. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watchAbort?.abort();
    await this.watching?.catch(() => {});
  }

  /**
   * Keeps a watch on the head key open, on one member after the other: each answer that tells of a
   * change (or of the watch established) wakes a read. Re-established at once when a stream ends
   * (a member died, lost its leader, or the watch was cancelled: after a compaction past the
   * revision asked for, from the current revision), after a growing pause (at most 1 s) when
   * establishing fails.
   */
  private async watchLoop(): Promise<void> {
    let at = this.o.preferredMember();
    let failures = 0;
    while (!this.stopped) {
      const end = await this.watchOnce(this.o.endpoints[at]!);
      this.watchRevision = null;
      if (this.stopped) break;
      if (end.why !== this.watchError)
        this.o.log?.(
          `etcd follower: the watch on ${this.o.endpoints[at]} ended (${end.why}): reading every ${this.o.pollMs} ms until it is back`,
        );
      this.watchError = end.why;
      failures = end.established ? 0 : failures + 1;
      if (!end.compacted) at = (at + 1) % this.o.endpoints.length;
      if (failures > 0) await sleep(Math.min(1000, 50 * 2 ** failures));
    }
  }

  /** One watch stream on `url`, until it ends (see {@link watchLoop}). */
  private async watchOnce(url: string): Promise<WatchEnd> {
    const abort = new AbortController();
    this.watchAbort = abort;
    const after = this.readRevision;
    const body = {
      create_request: {
        key: b64(this.o.key),
        ...(after !== null ? { start_revision: String(after + 1) } : {}),
      },
    };
    let established = false;
    let timedOut = false;
    // Until the watch is established, as long as any request; once open, only an abort ends it.
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.o.timeoutMs);
    try {
      const r = await fetch(`${url.replace(/\/+$/, '')}/v3/watch`, {
        method: 'POST',
        // A member without a leader ends the stream rather than keep it silent (etcd's "hasleader").
        headers: { 'content-type': 'application/json', 'grpc-metadata-hasleader': 'true' },
        body: JSON.stringify(body),
        signal: abort.signal,
      });
      if (!r.ok || !r.body) return { why: `HTTP ${r.status}`, established };
      return await this.readWatch(r.body, abort, () => {
        established = true;
        clearTimeout(timer);
      });
    } catch (err) {
      const why = timedOut ? 'no answer in time' : abort.signal.aborted ? 'dropped' : (err as Error).message;
      return { why, established };
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  /**
   * Reads one watch stream: newline-separated JSON answers, at most {@link WATCH_MAX_BUFFER} bytes
   * buffered. Ends on an error answer, a cancelled watch, the stream's end or an abort.
   */
  private async readWatch(
    stream: ReadableStream<Uint8Array>,
    abort: AbortController,
    onEstablished: () => void,
  ): Promise<WatchEnd> {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    let established = false;
    abort.signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
    for (;;) {
      const { value, done } = await reader.read();
      if (done || abort.signal.aborted)
        return { why: abort.signal.aborted ? 'dropped' : 'the stream ended', established };
      buffered += decoder.decode(value, { stream: true });
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        let answer: WatchAnswer;
        try {
          answer = JSON.parse(line) as WatchAnswer;
        } catch {
          return { why: 'an answer that is not JSON', established };
        }
        if (answer.error) return { why: answer.error.message ?? 'an error', established };
        const result = answer.result ?? {};
        if (result.canceled) {
          // Compacted past the revision asked for: watch from now on, and read at once (the reads
          // go from the stored position, never from a revision, so nothing is missed).
          const compacted = result.compact_revision !== undefined && result.compact_revision !== '0';
          if (compacted) this.readRevision = null;
          this.o.onChange();
          return {
            why: compacted
              ? `compacted past the revision asked for (compact revision ${result.compact_revision})`
              : `cancelled: ${result.cancel_reason ?? 'no reason given'}`,
            established,
            compacted,
          };
        }
        const revision = Number(result.header?.revision ?? 0);
        if (Number.isSafeInteger(revision)) this.watchRevision = Math.max(this.watchRevision ?? 0, revision);
        if (result.created) {
          established = true;
          onEstablished();
          if (this.watchError !== null) this.o.log?.('etcd follower: watching the head again');
          this.watchError = null;
        }
        // Established (changes since the last read) or a change: read now.
        if (result.created || (result.events?.length ?? 0) > 0) this.o.onChange();
      }
      if (buffered.length > WATCH_MAX_BUFFER)
        return { why: `over ${WATCH_MAX_BUFFER} bytes without the end of an answer`, established };
    }
  }
}
