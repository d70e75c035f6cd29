/**
 * A TCP relay on 127.0.0.1 in front of one address, that a test can cut (a network partition: every
 * relayed connection is destroyed and new ones are refused) and restore. For a server that must stay
 * up while it cannot reach its etcd cluster or chain node.
 */
import { connect, createServer, type Socket } from 'node:net';

/** A running relay. */
export interface TcpRelay {
  /** `http://127.0.0.1:PORT`: the address to give in place of the target. */
  url: string;
  /** Destroys every relayed connection and refuses new ones until {@link restore}. */
  cut(): void;
  /** Relays new connections again. */
  restore(): void;
  close(): Promise<void>;
}

/** Starts a relay to `target` (`http://host:port`). */
export async function tcpRelay(target: string): Promise<TcpRelay> {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  let cut = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(to.port), to.hostname);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
