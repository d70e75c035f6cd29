/**
 * The client's WebSocket in Node: the `ws` package, loaded when the first connection is made (a
 * command that stops before it connects, not registered or a wrong passphrase, starts without it).
 * In a browser bundle the package.json `browser` field puts ./websocket-browser.ts (the global
 * WebSocket) in this module's place; both answer {@link openSocket} with a {@link ClientSocket}.
 */
import type WebSocket from 'ws';

/**
 * The part of a WebSocket the client uses: the subset of the `ws` API that the browser adapter
 * offers too. `message` listeners get the message's data and whether it is binary: for a text
 * message, data whose `toString()` is the text; for a binary one (a sealed session frame,
 * docs/protocol.md "Session frame wire format v2"), its bytes.
 */
export interface ClientSocket {
  readonly readyState: number;
  readonly OPEN: number;
  readonly CLOSED: number;
  /** Sends a string as a text message, bytes as a binary message. */
  send(data: string | Uint8Array): void;
  /** Closes with a closing handshake. */
  close(code?: number, reason?: string): void;
  /** Drops the connection at once; `close` follows. */
  terminate(): void;
  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: Uint8Array | string, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'close', listener: () => void): this;
  removeAllListeners(event?: 'open' | 'message' | 'close' | 'error'): this;
}

/** How a client connection is opened. */
export interface SocketOptions {
  /** Largest message accepted from the server, in bytes (docs/protocol.md). */
  maxPayload: number;
  /** How long the opening handshake may take, in milliseconds. */
  handshakeTimeout: number;
}

let loading: Promise<typeof WebSocket> | undefined;

/** Opens a WebSocket to `url` (ws: or wss:) with `ws`, imported on first use. */
export async function openSocket(url: string, o: SocketOptions): Promise<ClientSocket> {
  loading ??= import('ws').then((m) => m.default);
  const Socket = await loading;
  const socket: ClientSocket = new Socket(url, {
    maxPayload: o.maxPayload,
    handshakeTimeout: o.handshakeTimeout,
    // Nothing keyledger sends compresses (sealed frames are ciphertext), and the server offers no
    // compression: do not even ask for it.
    perMessageDeflate: false,
  });
  return socket;
}
