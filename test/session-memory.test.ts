/**
 * What an idle session keeps on the server (docs/protocol.md "Session frame wire format v2"; the
 * figure itself is `npm run bench:session`): its keys in one array of their own (not a slice of
 * Node's shared 8 KiB pool, which one live 32-byte copy would pin per session), nothing of the HTTP
 * upgrade, and no compression state (the server never negotiates permessage-deflate).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { connect } from '../src/client/session.js';
import { Channel } from '../src/protocol/channel.js';
import { CLIENT_PASSPHRASE, registeredClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
before(async () => {
  server = await testServer();
});
after(async () => {
  await server.close();
});

/** The array behind a channel's keys, chain hash and session handle (test-only access). */
const materialOf = (c: Channel) => (c as unknown as { material: Uint8Array }).material;

describe('an idle session keeps little', () => {
  it("the channel's keys, chain hash and handle live in one array of their own, even when given pooled copies", () => {
    // Small Buffer.from copies share Node's pool: these come from it.
    const pooled = (n: number, v: number) => Buffer.from(Buffer.alloc(n, v));
    assert.equal(pooled(32, 1).buffer.byteLength, Buffer.poolSize);
    const channel = new Channel({
      role: 'server',
      sid: Buffer.alloc(16, 7).toString('base64url'),
      keys: {
        c2sKey: pooled(32, 1),
        c2sIv: pooled(12, 2),
        s2cKey: pooled(32, 3),
        s2cIv: pooled(12, 4),
        resumeKey: pooled(32, 5),
      },
      chain: pooled(32, 6),
      now: Date.now,
    });
    const m = materialOf(channel);
    assert.equal(m.length, 168);
    assert.equal(m.buffer.byteLength, 168, 'not a slice of a shared pool');
    channel.close();
    assert.ok(
      m.every((b) => b === 0),
      'wiped on close',
    );
  });

  it('a logged-in connection keeps nothing of the HTTP upgrade and negotiates no compression', async () => {
    const home = await registeredClient(server, 'idle@example.org');
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    const live = server.sessions.get(s.sessionId);
    assert.ok(live?.socket);
    const ws = live.socket as unknown as WebSocket & { _socket: { _httpMessage: unknown } };
    assert.equal(ws._socket._httpMessage, null, "the upgrade's ServerResponse is detached");
    // Only the connection's own error listener (the plugin's held the request and the reply).
    assert.equal(ws.listenerCount('error'), 1);
    assert.equal(ws.extensions, '');
    assert.equal(materialOf(live.channel).buffer.byteLength, 168);
    // A client that offers permessage-deflate gets none either.
    const offer = new WebSocket(server.wsUrl, { perMessageDeflate: true });
    await new Promise((r) => offer.once('open', r));
    assert.equal(offer.extensions, '');
    offer.terminate();
    await s.close();
  });
});
