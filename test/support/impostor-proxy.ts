/**
 * An impostor on 127.0.0.1 for the several-servers tests: it answers HTTP as a real server of the
 * ledger (relayed to `http`), with `GET /v1/info` rewritten to present another server key, and
 * relays the login WebSocket to `ws` (a server holding that other key). A client must refuse it,
 * never take it for one of its servers, nor quietly use another server in its place.
 */
import { createServer, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

/** Starts the impostor; `serverKey` is the key it presents in /v1/info. */
export async function impostorProxy(o: {
  http: string;
  ws: string;
  serverKey: { fingerprint: string; publicKey: string };
}) {
  const up = new URL(o.http);
  const wsUp = new URL(o.ws);
  const sockets = new Set<Socket>();
  const srv: Server = createServer((req, res) => {
    const fwd = request(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        if (req.url !== '/v1/info') {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const info = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          const body = JSON.stringify({ ...info, server: o.serverKey });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(body);
        });
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  srv.on('upgrade', (req, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    const upstream = connect(Number(wsUp.port), wsUp.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    sockets.add(upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  return {
    url,
    /** WebSocket connections it relayed. */
    get upgrades() {
      return [...sockets].length / 2;
    },
    async close() {
      for (const s of sockets) s.destroy();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    },
  };
}
