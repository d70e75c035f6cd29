/** A bare WebSocket client for attack tests: send any message, read answers one by one. */
import WebSocket from 'ws';

export interface RawSocket {
  send(msg: unknown): void;
  sendText(text: string): void;
  next(): Promise<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
  ws: WebSocket;
}

/** Opens a bare client; `localAddress` makes it come from another loopback address (127.0.0.2, …). */
export async function rawSocket(url: string, localAddress?: string): Promise<RawSocket> {
  return rawSocketWith(url, localAddress ? { localAddress } : {});
}

/** Opens a bare client that sends extra HTTP headers with its upgrade request (as a proxy would). */
export async function rawSocketWithHeaders(url: string, headers: Record<string, string>): Promise<RawSocket> {
  return rawSocketWith(url, { headers });
}

async function rawSocketWith(url: string, options: WebSocket.ClientOptions): Promise<RawSocket> {
  const ws = new WebSocket(url, options);
  const queue: Array<Record<string, unknown>> = [];
  const waiters: Array<(m: Record<string, unknown>) => void> = [];
  ws.on('message', (d, isBinary) => {
    // After `finished` the server sends sealed frames as binary messages (docs/protocol.md "Session
    // frame wire format v2"): handed over as their bytes.
    const m = isBinary ? { type: 'binary', bytes: Buffer.from(d as Buffer) } : JSON.parse(d.toString());
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    closed,
    send: (msg) => ws.send(JSON.stringify(msg)),
    sendText: (text) => ws.send(text),
    next: () => {
      const m = queue.shift();
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        waiters.push(resolve);
        closed.then(() => reject(new Error('closed without answer')));
      });
    },
  };
}
