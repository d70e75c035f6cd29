/**
 * The etcd engine's stored values as its follower reads them (docs/deploy-etcd.md "What is stored
 * in etcd", "What a cluster writer cannot do"): the head, the entry keys and the entries, each
 * checked before it is used, so that a value put by anyone who can write to the cluster is never
 * taken for something the engine wrote.
 */
import { createHash } from 'node:crypto';

/** Width of the zero-padded sequence number in entry keys (keys sort as numbers). */
export const SEQ_WIDTH = 16;
/** Transactions in one entry at most (written and read). */
export const MAX_ENTRY_TEXTS = 256;
/**
 * Bytes of one entry's stored value at most as a server writes it (below etcd's default request
 * limit of 1.5 MiB, so one entry is one request the cluster takes).
 */
export const MAX_ENTRY_BYTES = 1024 * 1024;

/**
 * Bytes of one entry's stored value at most as a server reads it (more than a server writes, and
 * than etcd's default request limit lets in); a larger entry is a fault. Its answer fits in
 * etcd-gateway.ts's `MAX_ANSWER_BYTES`.
 */
export const MAX_ENTRY_READ_BYTES = 2 * 1024 * 1024;

/** One ordered entry as stored under `<prefix>/tx/<seq>`. */
export interface Entry {
  time: number;
  texts: string[];
}

/** The key of entry `seq` under `txPrefix` (`<prefix>/tx/`). */
export function entryKey(txPrefix: string, seq: number): string {
  return txPrefix + String(seq).padStart(SEQ_WIDTH, '0');
}

/** Whether `key` is an entry key of `txPrefix` as the engine writes them (exactly 16 digits). */
export function isEntryKey(txPrefix: string, key: string): boolean {
  if (!key.startsWith(txPrefix)) return false;
  return /^[0-9]{16}$/.test(key.slice(txPrefix.length));
}

/** The head's value as a sequence number (decimal digits, at most 15), or null for anything else. */
export function parseHead(value: string): number | null {
  return /^[0-9]{1,15}$/.test(value) ? Number(value) : null;
}

/** The sha-256 of an entry's stored value (hex): the follower's position names it. */
export function entryHash(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * An entry's stored value as an ordered batch: its time (0 when it has none) and texts; or why it
 * is none (not JSON, no array of texts, more than {@link MAX_ENTRY_TEXTS} texts).
 */
export function parseEntry(value: string): Entry | { refused: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { refused: 'the entry is not JSON' };
  }
  const { texts, time } = (parsed ?? {}) as { texts?: unknown; time?: unknown };
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string'))
    return { refused: 'the entry is not an ordered batch of transactions' };
  if (texts.length > MAX_ENTRY_TEXTS)
    return {
      refused: `the entry holds ${texts.length} transactions; a server writes ${MAX_ENTRY_TEXTS} at most`,
    };
  return { time: typeof time === 'number' && Number.isFinite(time) ? time : 0, texts: texts as string[] };
}

/**
 * The writes of `texts` that go into the next entry: as many from the start as keep the stored
 * value within {@link MAX_ENTRY_BYTES} and {@link MAX_ENTRY_TEXTS} (at least one).
 */
export function nextEntryCount(texts: readonly string[]): number {
  let bytes = 64; // {"time":…,"texts":[]}
  let n = 0;
  for (const text of texts) {
    if (n >= MAX_ENTRY_TEXTS) break;
    bytes += Buffer.byteLength(JSON.stringify(text), 'utf8') + 1;
    if (n > 0 && bytes > MAX_ENTRY_BYTES) break;
    n++;
  }
  return Math.max(1, n);
}
