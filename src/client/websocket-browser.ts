/**
 * The client's WebSocket in a browser: the global `WebSocket` behind the same {@link ClientSocket}
 * interface as the `ws` package in Node. The package.json `browser` field puts this module in the
 * place of ./websocket.ts in browser bundles; it loads nothing from Node.
 */
import { KlError } from '../protocol/errors.js';
import type { ClientSocket, SocketOptions } from './websocket.js';

export type { ClientSocket, SocketOptions } from './websocket.js';

/** What this module uses of the browser's WebSocket (the DOM type is not in this project's libs). */
interface DomWebSocket {
  readonly readyState: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: { data?: unknown; code?: number }) => void): void;
}
type DomWebSocketClass = new (url: string) => DomWebSocket;

type Event = 'open' | 'message' | 'close' | 'error';
type Listener = (...args: never[]) => void;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** A browser WebSocket with the `ws`-style API of {@link ClientSocket}. */
class BrowserSocket implements ClientSocket {
  readonly OPEN = OPEN;
  readonly CLOSED = CLOSED;
  private readonly ws: DomWebSocket;
  private readonly listeners = new Map<Event, { fn: Listener; once: boolean }[]>();
  /** Set by terminate(): the socket counts as closed at once, whatever the browser does next. */
  private dropped = false;
  private closed = false;

  constructor(Ctor: DomWebSocketClass, url: string, o: SocketOptions) {
    this.ws = new Ctor(url);
    this.ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => {
      if (this.ws.readyState !== CONNECTING) return;
      this.emit('error', new Error('the WebSocket handshake timed out'));
      this.terminate();
    }, o.handshakeTimeout);
    this.ws.addEventListener('open', () => {
      clearTimeout(timer);
      if (!this.dropped) this.emit('open');
    });
    this.ws.addEventListener('message', (e) => {
      if (this.dropped) return;
      // The browser cannot refuse a large message before it arrives: it is refused here, as `ws`
      // does with maxPayload (docs/protocol.md "Limits and rate limits"). A string has at least as
      // many UTF-8 bytes as UTF-16 units.
      const size = typeof e.data === 'string' ? e.data.length : (e.data as ArrayBuffer).byteLength;
      if (size > o.maxPayload) {
        this.terminate();
        return;
      }
      // Text stays text; a binary message (a sealed session frame) is handed over as its bytes.
      if (typeof e.data === 'string') this.emit('message', e.data, false);
      else this.emit('message', new Uint8Array(e.data as ArrayBuffer), true);
    });
    this.ws.addEventListener('error', () => {
      if (!this.dropped) this.emit('error', new Error('the WebSocket connection failed'));
    });
    this.ws.addEventListener('close', (e) => {
      clearTimeout(timer);
      this.closeOnce(typeof e.code === 'number' ? e.code : 1006);
    });
  }

  get readyState(): number {
    return this.dropped || this.closed ? CLOSED : this.ws.readyState;
  }

  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    if (this.dropped || this.closed) return;
    this.dropped = true;
    try {
      this.ws.close();
    } catch {
      // already closing
    }
    this.closeOnce(1006);
  }

  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: Uint8Array | string, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: Event, listener: Listener): this {
    return this.add(event, listener, false);
  }

  once(event: 'close', listener: () => void): this {
    return this.add(event, listener, true);
  }

  removeAllListeners(event?: Event): this {
    if (event) this.listeners.delete(event);
    else this.listeners.clear();
    return this;
  }

  private add(event: Event, fn: Listener, once: boolean): this {
    const list = this.listeners.get(event) ?? [];
    list.push({ fn, once });
    this.listeners.set(event, list);
    return this;
  }

  private closeOnce(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', code);
  }

  private emit(event: Event, ...args: unknown[]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const l of [...list]) {
      if (l.once) list.splice(list.indexOf(l), 1);
      (l.fn as (...a: unknown[]) => void)(...args);
    }
  }
}

/** Opens a WebSocket to `url` (ws: or wss:) with the browser's global WebSocket. */
export async function openSocket(url: string, o: SocketOptions): Promise<ClientSocket> {
  const Ctor = (globalThis as { WebSocket?: DomWebSocketClass }).WebSocket;
  if (!Ctor) throw new KlError('KL_NETWORK', 'this environment has no WebSocket');
  return new BrowserSocket(Ctor, url, o);
}
