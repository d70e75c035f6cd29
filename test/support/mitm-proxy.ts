/**
 * A man in the middle on 127.0.0.1 for attack tests of the session: relays HTTP and the login
 * WebSocket to a real server, and can inject, hold back, swallow or answer messages (and HTTP
 * requests) itself.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type * as openpgp from 'openpgp';
import WebSocket, { WebSocketServer } from 'ws';
import type { ClientHome } from '../../src/client/home.js';
import { encryptAndSign, readPublicKey } from '../../src/pgp/messages.js';
import { type ChallengePayload, hashOf, statementBytes } from '../../src/protocol/statements.js';
import { generateEphemeral } from '../../src/protocol/x25519.js';
import type { RunningServer } from '../../src/server/app.js';
import { registeredClient } from './server.js';

/** One relayed connection: the client's side (the proxy speaks to the client) and the server's. */
export interface Pair {
  client: WebSocket;
  upstream: WebSocket;
  /** Resolves when the server's side of this connection has closed. */
  upstreamClosed: Promise<void>;
  /**
   * While set, the server's messages are kept here instead of reaching the client: text as a
   * string, a binary message (a sealed session frame) as its bytes.
   */
  held: Array<string | Buffer> | null;
}

/**
 * What the proxy does with one message from the server to the client on a relayed connection:
 * relay it, swallow it and cut both sides (the client's and the server's) at once, or send the
 * client something else in its place (text, or bytes as a binary message).
 */
export type S2cRule = (
  text: string,
  index: number,
) => 'relay' | 'swallow-and-cut' | { replace: string | Buffer };

/** An HTTP answer the proxy writes itself instead of relaying (`null`: relay this request). */
export type HttpForgery = (
  method: string,
  path: string,
) => { status: number; body: unknown } | null | Promise<{ status: number; body: unknown } | null>;

/**
 * A man in the middle on 127.0.0.1: relays HTTP and the login WebSocket to `target`, and can inject
 * messages toward the client, hold the server's messages back, close the client's side with any
 * code and reason, or take over the next WebSocket connections itself.
 */
export async function mitmProxy(target: string) {
  const up = new URL(target);
  const pairs: Pair[] = [];
  let takeOver: ((client: WebSocket) => void) | null = null;
  let rule: S2cRule | null = null;
  let forge: HttpForgery | null = null;
  const http: Server = createServer(async (req, res) => {
    const forged = await forge?.(req.method ?? 'GET', req.url ?? '/');
    if (forged) {
      req.resume();
      res.writeHead(forged.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(forged.body));
      return;
    }
    const fwd = request(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  const wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (client) => {
      client.on('error', () => {});
      if (takeOver) {
        takeOver(client);
        return;
      }
      const s2c = rule;
      let index = 0;
      const upstream = new WebSocket(`ws://${up.host}${req.url}`);
      upstream.on('error', () => {});
      const early: Array<{ data: WebSocket.RawData; binary: boolean }> = [];
      client.on('message', (data, binary) => {
        if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary });
        else early.push({ data, binary });
      });
      upstream.on('open', () => {
        for (const m of early.splice(0)) upstream.send(m.data, { binary: m.binary });
      });
      const pair: Pair = {
        client,
        upstream,
        upstreamClosed: new Promise<void>((r) => upstream.on('close', () => r())),
        held: null,
      };
      upstream.on('message', (data, binary) => {
        const action = s2c ? s2c(data.toString(), index++) : 'relay';
        if (action === 'swallow-and-cut') {
          client.terminate();
          upstream.terminate();
        } else if (action !== 'relay') {
          if (client.readyState === WebSocket.OPEN)
            client.send(action.replace, { binary: Buffer.isBuffer(action.replace) });
        } else if (pair.held) pair.held.push(binary ? Buffer.from(data as Buffer) : data.toString());
        else if (client.readyState === WebSocket.OPEN) client.send(data, { binary });
      });
      client.on('close', () => upstream.terminate());
      upstream.on('close', (c, reason) => {
        if (client.readyState !== WebSocket.OPEN) return;
        if (c === 1005 || c === 1006) client.terminate();
        else client.close(c, reason);
      });
      pairs.push(pair);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  const last = () => {
    const p = pairs.at(-1);
    assert.ok(p, 'no relayed connection yet');
    return p;
  };
  return {
    url,
    pairs,
    last,
    /** Sends `data` (text or bytes) to the client on the newest relayed connection. */
    inject(data: string | Buffer) {
      last().client.send(data, { binary: Buffer.isBuffer(data) });
    },
    /** Holds back the server's messages on the newest connection (a stalled path); returns them. */
    hold(): Array<string | Buffer> {
      const p = last();
      p.held = [];
      return p.held;
    },
    /** The next WebSocket connections are answered by `handler` (null: relay again). */
    takeOver(handler: ((client: WebSocket) => void) | null) {
      takeOver = handler;
    },
    /** The next relayed connections apply `r` to the server's messages (null: relay all). */
    rule(r: S2cRule | null) {
      rule = r;
    },
    /** HTTP requests are answered by `f` where it returns an answer (null: relay every request). */
    forgeHttp(f: HttpForgery | null) {
      forge = f;
    },
    async close() {
      for (const p of pairs) {
        p.client.terminate();
        p.upstream.terminate();
      }
      wss.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}
/** A running {@link mitmProxy}. */
export type MitmProxy = Awaited<ReturnType<typeof mitmProxy>>;

/** A client registered with `server` directly, whose server.json then points at `proxy`. */
export async function registeredBehind(
  proxy: { url: string },
  server: RunningServer,
  id: string,
): Promise<ClientHome> {
  const home = await registeredClient(server, id);
  home.writeServer({ ...home.readServer(), url: proxy.url });
  return home;
}

/**
 * A login challenge as a server writes it (docs/protocol.md "Phase 2", step 2), for the client of
 * `home` and its `hello`, signed by `signer`: with the home's server key it is genuine and bound to
 * this login, with another key a forgery. `payload` overrides fields of the signed statement.
 */
export async function signedChallenge(o: {
  home: ClientHome;
  hello: { id: string; ephemeral: string };
  signer: openpgp.PrivateKey;
  payload?: Partial<ChallengePayload>;
}): Promise<string> {
  const saved = o.home.readServer();
  const challengeId = randomBytes(16).toString('base64url');
  const payload: ChallengePayload = {
    type: 'keyledger/challenge',
    v: 1,
    chain: saved.chain,
    challengeId,
    rs: randomBytes(32).toString('base64url'),
    serverEphemeral: generateEphemeral().publicKey,
    id: o.hello.id,
    fingerprint: o.home.readIdentity().fingerprint,
    server: saved.server.fingerprint,
    expiresAt: Date.now() + 60_000,
    helloHash: hashOf(o.hello),
    ...o.payload,
  };
  const client = await readPublicKey(o.home.readIdentity().publicKey);
  const message = await encryptAndSign(statementBytes(payload), client, o.signer, new Date());
  return JSON.stringify({ type: 'challenge', challengeId, message });
}

/**
 * Writes `home`'s server list as `first` (the man in the middle's URL, preferred) and then `then`,
 * each with the server key the home pinned: the client tries `first` and fails over in order.
 */
export function serversInOrder(home: ClientHome, first: string, ...then: string[]): void {
  const saved = home.readServer();
  const fingerprint = saved.server.fingerprint;
  home.writeServer({
    ...saved,
    url: first,
    servers: [first, ...then].map((url) => ({ url, fingerprint })),
  });
}
