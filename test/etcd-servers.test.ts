/**
 * Several servers of one deployment on the etcd engine (docs/deploy-etcd.md "A second server"), on a
 * real 3-member etcd cluster on loopback: B joins from the public genesis with keys of its own and
 * is admitted by A; a registration on A logs in on B at once; a data directory pointed at another
 * deployment's prefix is refused at start; a registrar removed by governance can no longer write.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { login } from '../src/client/login.js';
import { dataPaths } from '../src/ledger/data-dir.js';
import { initEmbeddedLedger } from '../src/ledger/embedded-init.js';
import { openKeyFile } from '../src/ledger/sealed-key-file.js';
import { signTransaction } from '../src/ledger/transactions.js';
import { callAdmin } from '../src/server/admin-socket.js';
import { initEtcdNode, joinEtcdNode, writeEtcdSettings } from '../src/server/etcd-node.js';
import { createServerKey } from '../src/server/server-key.js';
import { PASSPHRASE, rejection, tempDir, until } from './helpers.js';
import { type EtcdCluster, sharedEtcdCluster, type TwoEtcdServers, twoEtcdServers } from './support/etcd.js';
import { CLIENT_PASSPHRASE, registeredClient, startOn } from './support/server.js';

const audit = (at: number) => ({ type: 'AuditEvent' as const, body: { event: 'etcd_test', at } });

describe('two servers of one deployment (etcd engine, 3-member cluster)', () => {
  let cluster: EtcdCluster;
  let pair: TwoEtcdServers;
  before(async () => {
    cluster = await sharedEtcdCluster();
    pair = await twoEtcdServers({ cluster, admit: false });
  });
  after(async () => {
    await pair?.close();
    await cluster?.stop();
  });

  it('B joins with keys of its own, follows A, cannot write until admitted, then writes once A admits it', async () => {
    const { a, b, request } = pair;
    assert.notEqual(request.node.server.fingerprint, a.ledger.genesis.server!.fingerprint);
    assert.equal(request.node.account, undefined);
    assert.equal((await rejection(b.ledger.submit(audit(1)))).code, 'KL_NOT_PERMITTED');
    await pair.admit();
    const receipt = await b.ledger.submit(audit(2));
    await until(
      async () => ((await a.ledger.checkpoint())?.header.height ?? 0) >= receipt.block.header.height,
    );
    const x = await a.ledger.getBlock(receipt.block.header.height);
    assert.equal(x.block.hash, receipt.block.hash);
  });

  it('a registration on A logs in on B at once', async () => {
    const home = await registeredClient(pair.a, 'alice@example.org');
    const r = await login({ home, passphrase: CLIENT_PASSPHRASE, server: pair.b.url });
    assert.equal(r.verified, true);
  });

  it('a data directory pointed at another deployment’s prefix is refused at start, saying so', async () => {
    const { engine } = pair.a.ledger.genesis;
    assert.equal(engine?.type, 'etcd');
    // A ledger of its own whose genesis names A's prefix (made by hand, as a copied configuration would).
    const dataDir = join(tempDir('kl-etcd-other-'), 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    const server = await createServerKey(dataDir, PASSPHRASE);
    initEmbeddedLedger({ dataDir, passphrase: PASSPHRASE, server, engine: engine! });
    writeEtcdSettings(dataDir, { endpoints: cluster.endpoints });
    const err = await rejection(startOn(dataDir, {}));
    assert.equal(err.code, 'KL_CONFIG_INVALID');
    assert.match(err.message, /orders another ledger/);
    assert.match(err.message, /does not belong to the deployment/);
    // Made through initEtcdNode on a prefix in use, or joined with a genesis that is not the prefix's: refused.
    const again = await rejection(
      initEtcdNode({
        dataDir: join(tempDir('kl-etcd-again-'), 'data'),
        passphrase: PASSPHRASE,
        endpoints: cluster.endpoints,
        prefix: engine?.type === 'etcd' ? engine.prefix : '',
      }),
    );
    assert.equal(again.code, 'KL_CONFIG_INVALID');
    assert.match(again.message, /already orders a keyledger ledger/);
    const joined = await rejection(
      joinEtcdNode({
        dataDir: join(tempDir('kl-etcd-j-'), 'data'),
        passphrase: PASSPHRASE,
        endpoints: cluster.endpoints,
        genesis: { ...pair.a.ledger.genesis, name: 'not the same' },
        name: 'x',
      }),
    );
    assert.equal(joined.code, 'KL_CONFIG_INVALID');
    assert.match(joined.message, /orders another ledger/);
  });

  it('a registrar removed by governance can no longer write', async () => {
    const { a, b } = pair;
    await callAdmin(a.dataDir, 'POST', '/registrars/kl2/remove');
    await until(() => b.ledger.registrars().some((x) => x.name === 'kl2' && !x.active));
    assert.equal((await rejection(b.ledger.submit(audit(3)))).code, 'KL_NOT_PERMITTED');
    const key = openKeyFile(dataPaths(b.dataDir).registrarKey, PASSPHRASE, 'registrar');
    const envelope = signTransaction({
      chain: a.ledger.chainId,
      intent: audit(4),
      signer: key,
      now: Date.now(),
      nonce: randomBytes(16).toString('hex'),
    });
    assert.equal((await rejection(a.ledger.submitSigned(envelope))).code, 'KL_NOT_PERMITTED');
  });
});
