/**
 * Fuzz targets over the network (issue 7): request bodies of every route and WebSocket handshake
 * messages, sent to a real server on 127.0.0.1. A response status of 500 or more, a dropped
 * connection without an answer, or a server that stops answering counts as a crash.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import type { RunningServer } from '../src/server/app.js';
import { type FuzzTarget, mutated, type Outcome } from './targets.js';

/** Thrown for a 5xx answer (counted separately from crashes by the runner). */
export class ServerError extends Error {}

async function post(url: string, body: string, contentType = 'application/json'): Promise<Outcome> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
  await r.arrayBuffer();
  if (r.status >= 500) throw new ServerError(`${url} answered ${r.status} to ${body.slice(0, 200)}`);
  return r.status < 300 ? 'accepted' : 'rejected';
}

const bodyOf = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? 'null');

/** HTTP and WebSocket targets against `server`. */
export function networkTargets(server: RunningServer): FuzzTarget[] {
  const validComplete = {
    statement: {
      type: 'keyledger/register',
      v: 2,
      chain: server.ledger.chainId,
      id: 'a@example.org',
      name: 'A',
      fingerprint: 'a'.repeat(40),
      nonce: 'A'.repeat(43),
      server: 'b'.repeat(40),
      time: 1,
      proof: {
        method: 'invite',
        sealed: '-----BEGIN PGP MESSAGE-----\n\nxx\n-----END PGP MESSAGE-----\n',
      },
    },
    publicKey: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n',
    signature: '-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n',
  };
  return [
    {
      name: 'HTTP POST /v1/register/begin',
      arbitrary: fc.oneof(mutated({ id: 'a@example.org' }), fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 200 })),
      run: (v) => post(`${server.url}/v1/register/begin`, bodyOf(v)),
    },
    {
      name: 'HTTP POST /v1/register/complete',
      arbitrary: fc.oneof(mutated(validComplete), fc.jsonValue({ maxDepth: 3 })),
      run: (v) => post(`${server.url}/v1/register/complete`, bodyOf(v)),
    },
    {
      name: 'HTTP POST /v1/enroll/email',
      arbitrary: fc.oneof(mutated({ id: 'a@example.org' }), fc.jsonValue({ maxDepth: 3 })),
      run: (v) => post(`${server.url}/v1/enroll/email`, bodyOf(v)),
    },
    {
      name: 'HTTP POST /v1/devices/requests',
      arbitrary: fc.oneof(
        mutated({
          statement: JSON.stringify({
            type: 'keyledger/add-device',
            v: 1,
            chain: server.ledger.chainId,
            id: 'a@example.org',
            name: 'phone',
            fingerprint: 'a'.repeat(40),
            time: Date.now(),
          }),
          publicKey: validComplete.publicKey,
          signature: validComplete.signature,
        }),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      run: (v) => post(`${server.url}/v1/devices/requests`, bodyOf(v)),
    },
    {
      name: 'HTTP GET ledger reads',
      arbitrary: fc.tuple(
        fc.constantFrom(
          '/v1/ledger/keys/',
          '/v1/ledger/tx/',
          '/v1/ledger/consistency?from=',
          '/admin/api/audit?since=',
          '/v1/devices/requests/',
        ),
        fc.string({ maxLength: 80 }),
      ),
      run: async ([path, arg]) => {
        const r = await fetch(`${server.url}${path}${encodeURIComponent(arg)}`);
        await r.arrayBuffer();
        if (r.status >= 500) throw new ServerError(`${path}${arg} answered ${r.status}`);
        return r.status < 300 ? 'accepted' : 'rejected';
      },
    },
    {
      name: 'WebSocket handshake messages',
      arbitrary: fc.array(
        fc.oneof(
          mutated({ type: 'hello', v: 1, id: 'a@example.org', ephemeral: 'A'.repeat(43) }),
          mutated({ type: 'hello', v: 1, id: 'a@example.org', ephemeral: 'A'.repeat(43), fingerprint: 'a'.repeat(40) }),
          mutated({ type: 'resume', sid: 'A'.repeat(22), nonce: 'B'.repeat(22) }),
          mutated({ type: 'frame', sid: 'A'.repeat(22), epoch: 0, seq: 1, ct: 'A'.repeat(40) }),
          fc.jsonValue({ maxDepth: 2 }),
          fc.string({ maxLength: 100 }),
        ),
        { minLength: 1, maxLength: 4 },
      ),
      run: (messages: unknown[]) =>
        new Promise<Outcome>((resolve, reject) => {
          const ws = new WebSocket(server.wsUrl);
          const timer = setTimeout(() => {
            ws.terminate();
            reject(new Error(`no answer and no close within 5 s to ${JSON.stringify(messages).slice(0, 200)}`));
          }, 5_000);
          let answered = false;
          ws.on('open', () => {
            for (const m of messages) ws.send(typeof m === 'string' ? m : JSON.stringify(m));
          });
          ws.on('message', (d) => {
            answered = true;
            const msg = JSON.parse(d.toString()) as { type?: string; code?: string };
            if (msg.type === 'error' && msg.code === 'KL_INTERNAL') {
              clearTimeout(timer);
              ws.terminate();
              reject(new ServerError(`internal error for ${JSON.stringify(messages).slice(0, 200)}`));
            }
            // A challenge means a hello was accepted: this input did its job, hang up.
            if (msg.type === 'challenge') ws.close();
          });
          ws.on('close', () => {
            clearTimeout(timer);
            resolve(answered ? 'rejected' : 'accepted');
          });
          ws.on('error', () => {});
        }),
    },
  ];
}
