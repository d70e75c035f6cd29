/**
 * etcd's v3 JSON gateway as the etcd engine speaks it (docs/deploy-etcd.md "Node settings"): one
 * POST to one member after the other, each answer read up to a byte limit, so a member (or anyone
 * who wrote a huge value to the cluster) cannot make a server hold more than that in memory
 * (docs/deploy-etcd.md "What a cluster writer cannot do").
 */
import { readBounded } from '../protocol/bytes.js';
import { type ErrorCode, KlError } from '../protocol/errors.js';

/** A range or txn answer of the gateway (the fields used). */
export interface KvAnswer {
  header?: { revision?: string };
  kvs?: Array<{ key?: string; value?: string; mod_revision?: string; version?: string }>;
  more?: boolean;
  succeeded?: boolean;
  responses?: Array<{ response_range?: KvAnswer }>;
  error?: string;
  code?: number;
  message?: string;
}

/** The bytes of one answer read at most unless a call asks for more or less (one entry fits). */
export const MAX_ANSWER_BYTES = 3 * 1024 * 1024;

/**
 * gRPC status codes (as the JSON gateway answers them) that refuse the request itself, for good:
 * InvalidArgument (e.g. a request over the cluster's size limit), PermissionDenied, Unauthenticated.
 */
const REFUSING_CODES: Record<number, ErrorCode> = {
  3: 'KL_NOT_PERMITTED',
  7: 'KL_NOT_PERMITTED',
  16: 'KL_NOT_PERMITTED',
};

/** UTF-8 text as the gateway's base64 bytes. */
export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
/** The gateway's base64 bytes as UTF-8 text (absent: empty). */
export const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

/**
 * The body of `res` parsed as JSON, read up to `maxBytes`.
 * @throws KlError `KL_TOO_LARGE` past the limit (the rest is not read)
 */
export async function boundedJson(res: Response, maxBytes: number): Promise<unknown> {
  if (!res.body) return {};
  const bytes = await readBounded(res.body, maxBytes);
  if (!bytes) throw new KlError('KL_TOO_LARGE', `an answer of the etcd cluster is over ${maxBytes} bytes`);
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** The cluster's members behind one JSON gateway client. */
export class EtcdGateway {
  /** The member that answered last (tried first). */
  private preferred = 0;

  constructor(
    readonly endpoints: string[],
    private readonly timeoutMs: number,
  ) {
    if (endpoints.length === 0)
      throw new KlError('KL_BAD_INPUT', 'the etcd engine needs at least one endpoint');
  }

  /** The index of the member that answered last. */
  preferredMember(): number {
    return this.preferred;
  }

  /**
   * One gateway call, to the member that answered last, then to the others. A member without a
   * quorum answers with an error (or not at all): the next is tried; when none commits, the call
   * fails with `KL_LEDGER_UNAVAILABLE`. A member that refuses the request itself (too large, not
   * permitted) fails it at once with `KL_NOT_PERMITTED`; an answer over `maxBytes` fails it at once
   * with `KL_TOO_LARGE` (every member holds the same data).
   */
  async call(path: string, body: unknown, maxBytes = MAX_ANSWER_BYTES): Promise<KvAnswer> {
    const n = this.endpoints.length;
    let last = 'no member answered';
    for (let i = 0; i < n; i++) {
      const at = (this.preferred + i) % n;
      const url = this.endpoints[at]!;
      try {
        const r = await fetch(`${url.replace(/\/+$/, '')}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const answer = (await boundedJson(r, maxBytes)) as KvAnswer;
        if (!r.ok || answer.error) {
          last = answer.message ?? answer.error ?? `HTTP ${r.status}`;
          const refusal = answer.code === undefined ? undefined : REFUSING_CODES[answer.code];
          if (refusal) throw new KlError(refusal, `the etcd cluster refused the request: ${last}`);
          continue;
        }
        this.preferred = at;
        return answer;
      } catch (err) {
        if (err instanceof KlError) throw err;
        last = (err as Error).name === 'TimeoutError' ? 'no answer in time' : (err as Error).message;
      }
    }
    throw new KlError(
      'KL_LEDGER_UNAVAILABLE',
      `the etcd cluster cannot commit or serve now (no quorum, or no member reachable): ${last}`,
    );
  }
}
