/**
 * The server side of several servers of one ledger (docs/configuration.md `peers`,
 * `ledger.behindWait`): `keyledger serve --peer URL`, the configuration file and KEYLEDGER_PEERS
 * list the other servers in `/v1/info` `servers` after the server's own public URL; a peer that is
 * not an http(s) URL is refused at start.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isKlError } from '../src/protocol/errors.js';
import { startServer } from '../src/server/app.js';
import { type ConfigFile, loadConfig, serverOptionsOf } from '../src/server/config.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { killServer, serveCli } from './support/serve-cli.js';

describe('peers: the other servers of a ledger, listed in /v1/info', () => {
  it('keyledger serve --peer URL (repeatable) lists them after its own URL', async () => {
    const s = await serveCli(join(tempDir('kl-peers-'), 'data'), [
      '--port',
      '0',
      '--peer',
      'https://kl2.example.org/',
      '--peer',
      'https://kl3.example.org/auth',
    ]);
    try {
      const info = (await (await fetch(`${s.url}/v1/info`)).json()) as { servers: string[] };
      assert.deepEqual(info.servers, [s.url, 'https://kl2.example.org', 'https://kl3.example.org/auth']);
    } finally {
      await killServer(s);
    }
  });

  it('KEYLEDGER_PEERS and the configuration file set peers; ledger.behindWait sets the wait', () => {
    const c = loadConfig({
      env: { KEYLEDGER_PEERS: 'https://a.example.org, https://b.example.org' },
      flags: { ledger: { behindWait: '500ms' } } as ConfigFile,
    });
    const o = serverOptionsOf(c);
    assert.deepEqual(o.peers, ['https://a.example.org', 'https://b.example.org']);
    assert.equal(o.ledgerBehindWaitMs, 500);
  });

  it('a peer that is not an http(s) URL is refused at start (KL_CONFIG_INVALID)', async () => {
    await assert.rejects(
      startServer({
        dataDir: join(tempDir('kl-peers-'), 'data'),
        passphrase: PASSPHRASE,
        host: '127.0.0.1',
        port: 0,
        adminSocket: false,
        peers: ['ftp://kl2.example.org'],
      }),
      (e: unknown) =>
        isKlError(e, 'KL_CONFIG_INVALID') && /peers: "ftp:\/\/kl2\.example\.org"/.test(e.message),
    );
  });
});
