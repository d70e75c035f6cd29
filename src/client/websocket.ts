/**
 * The WebSocket client (`ws`), loaded when the first connection is made: a command that stops
 * before it connects (not registered, wrong passphrase) starts without it.
 */
import type WebSocket from 'ws';

let loading: Promise<typeof WebSocket> | undefined;

/** The `ws` WebSocket class, imported on first use. */
export function loadWebSocket(): Promise<typeof WebSocket> {
  loading ??= import('ws').then((m) => m.default);
  return loading;
}
