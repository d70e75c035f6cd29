/**
 * The server's open routes: health, readiness and metrics for operations, and public information and
 * ledger reads (docs/protocol.md; every answer that carries ledger data carries its proof).
 */
import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import type { NodeAdmission, NodeRemoval } from '../ledger/node-admission.js';
import type { ChainStatus } from '../ledger/sequencer-adapter.js';
import type { StorageFault } from '../ledger/storage-fault.js';
import { canonicalIdentity } from '../protocol/identity.js';
import { MAX_LISTED_SERVERS } from '../protocol/schemas/http.js';
import { ledgerBehind, type ReachHeight } from './ledger-reach.js';
import type { ServerMetrics } from './metrics.js';
import type { ServerKey } from './server-key.js';

/** A ledger, and for an engine that has one, its storage fault state. */
export type ServedLedger = Ledger & {
  storageFault?(): { fault: StorageFault; since: number } | null;
  /** Admissions of the further servers of a chain-ordered ledger (node-admission.ts). */
  admittedServers?(): NodeAdmission[];
  /** Removal certificates of the servers removed from it. */
  removedServers?(): NodeRemoval[];
  /** The chain connection of a chain-ordered ledger, or null (docs/deploy-besu.md "The follower"). */
  chainStatus?(): ChainStatus | null;
};

/** What the public routes need. */
export interface PublicRoutesContext {
  ledger: ServedLedger;
  serverKey: ServerKey;
  metrics: ServerMetrics;
  /** Registration methods on offer. */
  methods: () => string[];
  challengeTtlMs: number;
  /** Whether the server accepts logins yet (readiness). */
  ready: () => boolean;
  /** Public URLs of the servers of this deployment, this one first (docs/protocol.md "Several servers"). */
  servers: () => string[];
  /** Waits, briefly, for the ledger to reach a height a client already saw (ledger-reach.ts). */
  reachHeight: ReachHeight;
}

/** /healthz, /readyz, /metrics. */
export function registerOperationsRoutes(app: FastifyInstance, ctx: PublicRoutesContext): void {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness: the process answers', tags: ['operations'] } },
    async () => ({
      ok: true,
    }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the ledger is open and the server accepts logins',
        tags: ['operations'],
      },
    },
    async (_req, reply) => {
      const checkpoint = await ctx.ledger.checkpoint().catch(() => undefined);
      // EVM and etcd engines: the chain (cluster) connection (docs/deploy-besu.md "The follower",
      // docs/deploy-etcd.md "The follower"); null for the embedded engine. A faulted chain, or one
      // not read for longer than the staleness limit, is not ready.
      const chain = ctx.ledger.chainStatus?.() ?? null;
      const ok = ctx.ready() && checkpoint !== undefined && (chain === null || chain.ok);
      // Logins (reads) go on while the disk is full, so readiness stays; `storage` says it.
      const storage = ctx.ledger.storageFault?.()?.fault ?? 'ok';
      return reply.status(ok ? 200 : 503).send({
        ready: ok,
        height: checkpoint?.header.height ?? 0,
        storage,
        chain: chain && {
          head: chain.head,
          read: chain.read,
          lag: chain.lag,
          stalenessMs: chain.stalenessMs,
          fault: chain.fault,
          queued: chain.queued,
          refusedWrites: chain.refusedWrites ?? 0,
        },
      });
    },
  );
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics (text exposition format)', tags: ['operations'] } },
    async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.text()),
  );
}

const HEIGHT = { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } as const;

/**
 * The deployment's servers as /v1/info lists them: this one and its configured peers first, then the
 * servers admitted on the ledger, with their admissions (checked by clients against the genesis).
 */
function listedServers(ctx: PublicRoutesContext): {
  servers: string[];
  admitted?: NodeAdmission[];
  removed?: NodeRemoval[];
} {
  const admitted = (ctx.ledger.admittedServers?.() ?? []).slice(0, MAX_LISTED_SERVERS);
  const removed = (ctx.ledger.removedServers?.() ?? []).slice(-256);
  const urls = [...ctx.servers(), ...admitted.flatMap((a) => (a.node.url ? [a.node.url] : []))];
  const servers = [...new Set(urls)].slice(0, MAX_LISTED_SERVERS);
  return {
    servers,
    ...(admitted.length > 0 ? { admitted } : {}),
    ...(removed.length > 0 ? { removed } : {}),
  };
}

/** Blocks allowed for beyond the chain's known lag (the chain moves between reads of its head). */
const LAG_SLACK_BLOCKS = 64;

/** How many more blocks the chain could give the ledger now: its known lag, and some slack. */
function reachableBlocks(status: ChainStatus | null): number {
  return (status?.lag ?? 0) + LAG_SLACK_BLOCKS;
}

const currentHeight = async (ledger: Ledger) => (await ledger.checkpoint())?.header.height ?? 0;

/** /v1/info and the ledger reads under /v1/ledger. */
export function registerPublicRoutes(app: FastifyInstance, ctx: PublicRoutesContext): void {
  const { ledger } = ctx;
  app.get(
    '/v1/info',
    { schema: { summary: 'Server key, ledger genesis, checkpoint, registration methods', tags: ['public'] } },
    async () => ({
      server: { fingerprint: ctx.serverKey.fingerprint, publicKey: ctx.serverKey.armoredPublicKey },
      chain: ledger.chainId,
      genesis: ledger.genesis,
      checkpoint: await ledger.checkpoint(),
      methods: ctx.methods(),
      challengeTtlMs: ctx.challengeTtlMs,
      ...listedServers(ctx),
    }),
  );
  app.get(
    '/v1/ledger/genesis',
    { schema: { summary: 'The ledger genesis', tags: ['ledger'] } },
    async () => ledger.genesis,
  );
  app.get(
    '/v1/ledger/checkpoint',
    { schema: { summary: 'The latest signed block header', tags: ['ledger'] } },
    async () => ({ checkpoint: await ledger.checkpoint() }),
  );
  app.get<{ Querystring: { from: number; to?: number } }>(
    '/v1/ledger/consistency',
    {
      schema: {
        summary: 'Consistency proof between two checkpoints (RFC 6962 over block hashes)',
        tags: ['ledger'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['from'],
          properties: { from: HEIGHT, to: HEIGHT },
        },
      },
    },
    async (req, reply) => {
      const from = Number(req.query.from);
      const to = req.query.to === undefined ? undefined : Number(req.query.to);
      // A ledger that follows a chain may not have read yet the block a client saw on another
      // server: wait for it briefly, then say so (retryable), never "bad input" nor "cut short".
      // The embedded engine orders its own writes: a client ahead of it saw a longer history.
      if (ledger.genesis.engine) {
        const wanted = Math.max(from, to ?? from);
        // A height beyond all the chain could still give this ledger (each chain block adds at most
        // one block) is no lag to wait for: answered at once, as the ledger is (no waiter is held
        // for it; the client then decides from the signed checkpoint).
        if (wanted > (await currentHeight(ledger)) + reachableBlocks(ledger.chainStatus?.() ?? null))
          return ledger.consistency(from, to);
        const top = await ctx.reachHeight(wanted, req.ip);
        if (top < wanted)
          return reply.status(503).header('retry-after', '1').send(ledgerBehind(wanted, top).toJSON());
      }
      return ledger.consistency(from, to);
    },
  );
  app.get<{ Params: { id: string } }>(
    '/v1/ledger/keys/:id',
    {
      schema: {
        summary: "An identity's key record (or its absence) with a state proof",
        tags: ['ledger'],
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['id'],
          properties: { id: { type: 'string', minLength: 3, maxLength: 254 } },
        },
      },
    },
    async (req) => ledger.getKeyRecord(canonicalIdentity(req.params.id)),
  );
  app.get<{ Params: { txid: string } }>(
    '/v1/ledger/tx/:txid',
    {
      schema: {
        summary: 'A transaction with its inclusion proof and signed block header',
        tags: ['ledger'],
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['txid'],
          properties: { txid: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
        },
      },
    },
    async (req) => ledger.getTransaction(req.params.txid),
  );
}
