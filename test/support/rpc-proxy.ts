/**
 * A lying EVM node for follower attack tests: a JSON-RPC proxy on 127.0.0.1 in front of a real node
 * (anvil). It relays every call, counts calls by method, can rewrite the result of one method (e.g.
 * hide, repeat or reorder `eth_getLogs` entries) and can act unreachable.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';

/** A JSON-RPC log entry as a node answers it (hex quantities). */
export interface RpcLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: string;
  blockHash: string;
  transactionHash: string;
  transactionIndex: string;
  logIndex: string;
  removed?: boolean;
}

/** Rewrites one call's result (`params` as sent); returns the result to answer. */
export type RpcRewrite = (result: unknown, params: unknown[]) => unknown;

interface RpcRequest {
  jsonrpc: '2.0';
  id: number | string | null;
  method: string;
  params?: unknown[];
}

interface RpcResponse {
  id: number | string | null;
  result?: unknown;
  error?: unknown;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a proxy to the JSON-RPC node at `target`; stop it with `close()`. */
export async function rpcProxy(target: string) {
  const counts = new Map<string, number>();
  const rewrites = new Map<string, RpcRewrite>();
  const delays = new Map<string, number>();
  let down = false;
  const answer = async (calls: RpcRequest[]): Promise<RpcResponse[]> => {
    for (const c of calls) counts.set(c.method, (counts.get(c.method) ?? 0) + 1);
    const wait = Math.max(0, ...calls.map((c) => delays.get(c.method) ?? 0));
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const r = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(calls),
    });
    const replies = (await r.json()) as RpcResponse[];
    return replies.map((reply) => {
      const call = calls.find((c) => c.id === reply.id);
      const rewrite = call && rewrites.get(call.method);
      if (!rewrite || reply.result === undefined) return reply;
      return { ...reply, result: rewrite(reply.result, call.params ?? []) };
    });
  };
  const http: Server = createServer((req, res) => {
    if (down) {
      req.destroy();
      return;
    }
    bodyOf(req)
      .then(async (text) => {
        const parsed = JSON.parse(text) as RpcRequest | RpcRequest[];
        const batch = Array.isArray(parsed);
        const replies = await answer(batch ? parsed : [parsed]);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(batch ? replies : replies[0]));
      })
      .catch(() => res.destroy());
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  return {
    url,
    /** How many calls of `method` were relayed so far. */
    count: (method: string) => counts.get(method) ?? 0,
    /** Rewrites every later result of `method` with `f` (null: relay it as the node answers). */
    rewrite(method: string, f: RpcRewrite | null) {
      if (f) rewrites.set(method, f);
      else rewrites.delete(method);
    },
    /** Answers every later call of `method` `ms` late (0: at once): a slow node. */
    delay(method: string, ms: number) {
      delays.set(method, ms);
    },
    /** While set, every connection is cut without an answer (the node is unreachable). */
    setDown(value: boolean) {
      down = value;
      if (value) http.closeAllConnections();
    },
    async close() {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

/** A running {@link rpcProxy}. */
export type RpcProxy = Awaited<ReturnType<typeof rpcProxy>>;
