/**
 * The client SDK through a ClientStore other than a home directory: an identity kept in memory
 * registers, logs in, works in a session, rotates its key and logs in with the new one against a
 * real server, and nothing is written to any disk by the client (KEYLEDGER_HOME stays empty).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createIdentity } from '../src/client/identity.js';
import { register } from '../src/client/register.js';
import { rotateKey } from '../src/client/rotate.js';
import { connect } from '../src/client/session.js';
import { MemoryClientStore } from '../src/client/store.js';
import { tempDir } from './helpers.js';
import { CLIENT_PASSPHRASE, invite, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
const home = join(tempDir(), 'never-written');
const savedHome = process.env.KEYLEDGER_HOME;
before(async () => {
  process.env.KEYLEDGER_HOME = home;
  server = await testServer();
});
after(async () => {
  if (savedHome === undefined) delete process.env.KEYLEDGER_HOME;
  else process.env.KEYLEDGER_HOME = savedHome;
  await server.close();
});

describe('a client identity kept in memory (MemoryClientStore)', () => {
  it('registers, logs in, sends a signed message, rotates its key and logs in again; no file written', async () => {
    const store = new MemoryClientStore();
    const made = await createIdentity({
      home: store,
      id: 'mem@example.org',
      name: 'Mem',
      source: 'generate',
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(store.hasIdentity(), true);
    await assert.rejects(
      createIdentity({
        home: store,
        id: 'mem@example.org',
        name: 'Mem',
        source: 'generate',
        passphrase: 'x',
      }),
      (e: Error & { code?: string }) =>
        e.code === 'KL_BAD_INPUT' && /memory already holds an identity/.test(e.message),
    );
    const r = await register({
      home: store,
      server: server.url,
      proof: { method: 'invite', code: invite(server, 'mem@example.org') },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(r.fingerprint, made.fingerprint);
    assert.equal(
      store.snapshot().server?.chain,
      server.ledger.chainId,
      'the pinned server is kept in the store',
    );

    const session = await connect({ home: store, passphrase: CLIENT_PASSPHRASE });
    const signed = await session.sendSigned('kept in memory');
    assert.ok(signed.height > 0);
    await session.close();

    const rotated = await rotateKey({
      home: store,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'generate', passphrase: CLIENT_PASSPHRASE },
    });
    assert.equal(rotated.verified, true);
    assert.notEqual(rotated.identity.fingerprint, made.fingerprint);
    const after = store.snapshot();
    assert.equal(after.identity?.fingerprint, rotated.identity.fingerprint);
    assert.equal(after.retired.length, 1, 'the old private key is kept aside, as in a home directory');
    const again = await connect({ home: store, passphrase: CLIENT_PASSPHRASE });
    assert.equal(again.id, 'mem@example.org');
    await again.close();

    assert.equal(existsSync(home) ? readdirSync(home).length : 0, 0, 'nothing under KEYLEDGER_HOME');
  });

  it('a store holds copies: changing what was read does not change what it holds', async () => {
    const store = new MemoryClientStore();
    await createIdentity({
      home: store,
      id: 'copy@example.org',
      name: 'C',
      source: 'generate',
      passphrase: 'p',
    });
    const read = store.readIdentity();
    read.fingerprint = 'changed';
    assert.notEqual(store.readIdentity().fingerprint, 'changed');
    assert.throws(
      () => store.readServer(),
      (e: Error & { code?: string }) => e.code === 'KL_NOT_REGISTERED',
    );
  });
});
