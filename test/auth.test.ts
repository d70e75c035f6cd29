import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { login } from '../src/client/login.js';
import { register } from '../src/client/register.js';
import { verifyKeyRecordProof } from '../src/ledger/proofs.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { equalBytes } from '../src/protocol/bytes.js';
import type { RunningServer } from '../src/server/app.js';
import { CLIENT_PASSPHRASE, invite, newClient, testServer } from './support/server.js';

let server: RunningServer & { dataDir: string };
before(async () => {
  server = await testServer();
});
after(async () => {
  await server.close();
});

describe('registration and login, end to end over 127.0.0.1', () => {
  it('registers a new key (receipt verified, server key pinned) and logs in with mutual authentication', async () => {
    const home = await newClient('alice@example.org', 'Alice');
    const reg = await register({
      home,
      server: server.url,
      proof: { method: 'invite', code: invite(server, 'alice@example.org') },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(reg.verified, true);
    assert.equal(reg.id, 'alice@example.org');
    const pinned = home.readServer();
    assert.equal(pinned.server.fingerprint, server.ledger.genesis.server!.fingerprint);
    const proof = await server.ledger.getKeyRecord('alice@example.org');
    assert.ok(verifyKeyRecordProof({ genesis: pinned.genesis, proof }).verified);
    assert.equal(proof.record!.fingerprint, home.readIdentity().fingerprint);

    const session = await login({ home, passphrase: CLIENT_PASSPHRASE });
    assert.equal(session.verified, true);
    assert.match(session.sessionId, /^[A-Za-z0-9_-]{22}$/);
    const s = server.sessions.get(session.sessionId)!;
    assert.equal(s.id, 'alice@example.org');
    // Both sides hold the same fresh keys.
    const serverKeys = (s.channel as unknown as { keys: typeof session.keys }).keys;
    assert.ok(equalBytes(serverKeys.c2sKey, session.keys.c2sKey));
    assert.ok(equalBytes(serverKeys.s2cKey, session.keys.s2cKey));
    session.close();
    const again = await login({ home, passphrase: CLIENT_PASSPHRASE });
    assert.ok(!equalBytes(again.keys.c2sKey, session.keys.c2sKey), 'every login has new keys');
    again.close();
  });

  it('keeps every file of the data directory private (0600 files in a 0700 directory)', async () => {
    const { readdirSync, statSync } = await import('node:fs');
    assert.equal(statSync(server.dataDir).mode & 0o777, 0o700);
    for (const f of readdirSync(server.dataDir)) {
      if (f === 'genesis.json' || f === 'ledger.lock') continue;
      assert.equal(statSync(`${server.dataDir}/${f}`).mode & 0o777, 0o600, f);
    }
    assert.match(readFileSync(`${server.dataDir}/server-key.asc`, 'utf8'), /BEGIN PGP PRIVATE KEY BLOCK/);
    // The server key is encrypted at rest: it cannot be used without the passphrase.
    const key = await openpgp.readPrivateKey({
      armoredKey: readFileSync(`${server.dataDir}/server-key.asc`, 'utf8'),
    });
    assert.equal(key.isDecrypted(), false);
  });

  it('writes the registration and the session start to the ledger audit trail', async () => {
    // Audit events are written after the answer; wait until they are on the ledger (either engine).
    let audit = verifyLedgerData({ dataDir: server.dataDir });
    for (let i = 0; i < 100 && audit.transactions < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
      audit = verifyLedgerData({ dataDir: server.dataDir });
    }
    assert.ok(audit.ok, audit.problem?.reason);
    assert.ok(audit.transactions >= 3, `${audit.transactions} transactions`);
  });
});
