/**
 * Several servers of one deployment on the EVM engine (docs/deploy-besu.md "A second server"), on a
 * real chain (anvil): a second server made from the deployment's public facts with keys of its own
 * (`keyledger node join`), admitted by the governor (`keyledger admin registrar add`), deriving the
 * same headers and proofs; its blocks trusted through its admission alone; a removed registrar that
 * can no longer write; data directories and genesis files that do not match the contract, refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Contract, toUtf8Bytes, Wallet } from 'ethers';
import { login } from '../src/client/login.js';
import { register } from '../src/client/register.js';
import { verifiedAdmissions, withAdmitted } from '../src/client/server-trust.js';
import { connect } from '../src/client/session.js';
import { dataPaths } from '../src/ledger/data-dir.js';
import { GOVERNANCE_DOMAIN } from '../src/ledger/domains.js';
import { bindChain } from '../src/ledger/evm-governor.js';
import { deployRegistry, evmProvider, registryArtifact } from '../src/ledger/evm-sequencer.js';
import { chainIdOf, evmEngineOf } from '../src/ledger/genesis.js';
import { verifyNodeAdmission } from '../src/ledger/node-admission.js';
import { openKeyFile, openSecretFile } from '../src/ledger/sealed-key-file.js';
import { governanceMessage } from '../src/ledger/state-machine.js';
import { signTransaction } from '../src/ledger/transactions.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { isKlError } from '../src/protocol/errors.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { callAdmin } from '../src/server/admin-socket.js';
import type { RunningServer } from '../src/server/app.js';
import { initEvmNode, joinEvmNode } from '../src/server/evm-node.js';
import { PASSPHRASE, rejection, tempDir, until } from './helpers.js';
import { ANVIL_FUNDER_KEY, type Anvil, startAnvil } from './support/anvil.js';
import { runCliAsync } from './support/cli.js';
import {
  CLIENT_PASSPHRASE,
  evmTestServer,
  invite,
  newClient,
  registeredClient,
  startOn,
} from './support/server.js';

/** `keyledger ARGS…` in a child process, without blocking this process's servers. */
const cli = (args: string[]) => runCliAsync(args, { env: { KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE } });

const height = async (s: RunningServer) => (await s.ledger.checkpoint())?.header.height ?? 0;
const audit = (at: number) => ({ type: 'AuditEvent' as const, body: { event: 'join_test', at } });

describe('a second server of one deployment (EVM engine, anvil)', () => {
  let anvil: Anvil;
  let a: RunningServer & { dataDir: string };
  let b: RunningServer & { dataDir: string };
  /** A client that trusted B while it was admitted. */
  let bob: Awaited<ReturnType<typeof registeredClient>>;
  const servers: RunningServer[] = [];
  before(async () => {
    anvil = await startAnvil();
    a = await evmTestServer(anvil);
    servers.push(a);
  });
  after(async () => {
    for (const s of servers) await s.close().catch(() => {});
    await anvil?.stop();
  });

  it('joins from the public genesis with keys of its own, follows the chain, and cannot write until admitted', async () => {
    await registeredClient(a, 'alice@example.org');
    const dataDir = join(tempDir('kl-join-'), 'data');
    writeFileSync(join(dataDir, '..', 'genesis.json'), JSON.stringify(a.ledger.genesis));
    const r = await cli([
      'node',
      'join',
      '--data',
      dataDir,
      '--rpc',
      anvil.url,
      '--genesis',
      join(dataDir, '..', 'genesis.json'),
      '--chain',
      a.ledger.chainId,
      '--name',
      'kl2',
      '--url',
      'http://127.0.0.1:9',
      '--insecure-dev-funder-key',
      ANVIL_FUNDER_KEY,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /keyledger admin registrar add .*join-request\.json/);
    const request = JSON.parse(readFileSync(dataPaths(dataDir).joinRequest, 'utf8'));
    // Keys of its own: none of them is one the genesis names.
    assert.notEqual(request.node.server.fingerprint, a.ledger.genesis.server!.fingerprint);
    assert.ok(!a.ledger.genesis.validators.some((v) => v.keyId === request.node.validator.keyId));
    assert.ok(!a.ledger.genesis.registrars.some((v) => v.keyId === request.keyId));
    b = await startOn(dataDir, {});
    servers.push(b);
    await until(async () => (await height(b)) === (await height(a)));
    assert.equal((await b.ledger.getKeyRecord('alice@example.org')).record?.status, 'active');
    // Not admitted: the contract refuses its account, nothing is written.
    const refused = await rejection(b.ledger.submit(audit(1)));
    assert.equal(refused.code, 'KL_NOT_PERMITTED');
    // An auditor cannot vouch for its blocks yet: they are signed by a key nobody admitted.
    const early = verifyLedgerData({ dataDir });
    assert.equal(early.ok, false);
    assert.match(early.problem?.reason ?? '', /not signed by a quorum of validators/);
  });

  it('the governor admits it with `keyledger admin registrar add`; both derive the same headers and it writes', async () => {
    const file = dataPaths(b.dataDir).joinRequest;
    const r = await cli(['admin', 'registrar', 'add', file, '--data', a.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /server kl2 admitted/);
    await until(() => b.ledger.registrars().some((x) => x.name === 'kl2' && x.active));
    const receipt = await b.ledger.submit(audit(2));
    await until(async () => (await height(a)) >= receipt.block.header.height);
    const top = await height(a);
    assert.equal(await height(b), top);
    for (let h = 1; h <= top; h++) {
      const [x, y] = await Promise.all([a.ledger.getBlock(h), b.ledger.getBlock(h)]);
      assert.deepEqual(y.block.header, x.block.header, `block ${h}`);
      assert.equal(y.block.hash, x.block.hash);
      assert.notEqual(y.block.signatures[0]!.validator, x.block.signatures[0]!.validator);
    }
    // Its whole ledger now verifies, including the blocks it signed before its admission.
    assert.deepEqual(
      {
        ok: verifyLedgerData({ dataDir: b.dataDir }).ok,
        blocks: verifyLedgerData({ dataDir: b.dataDir }).blocks,
      },
      { ok: true, blocks: top },
    );
    const list = await cli(['admin', 'registrar', 'list', '--data', a.dataDir, '--json']);
    const kl2 = (JSON.parse(list.stdout) as Array<{ name: string; server?: { url?: string } }>).find(
      (x) => x.name === 'kl2',
    );
    assert.equal(kl2?.server?.url, 'http://127.0.0.1:9');
  });

  it('a height no chain could give this ledger is answered at once, not waited for', async () => {
    const started = Date.now();
    const res = await fetch(`${b.url}/v1/ledger/consistency?from=999999999999`);
    assert.equal(res.status, 400);
    // The wait for a lagging follower is 3 s; this answer holds no waiter.
    assert.ok(Date.now() - started < 2_500, `${Date.now() - started} ms`);
    // Within reach (the next block), it waits and then says behind: retryable.
    const next = (await height(b)) + 1;
    const behind = await fetch(`${b.url}/v1/ledger/consistency?from=${next}`);
    assert.equal(behind.status, 503);
    assert.equal(((await behind.json()) as { error: { code: string } }).error.code, 'KL_LEDGER_BEHIND');
  });

  it('a registrar account cannot lock an identity out by writing garbage for it on the contract', async () => {
    // B's account (a registrar of the contract) writes key changes for an identity, with envelopes
    // the ledger refuses; the contract's storage changes, but nothing refuses the real owner.
    const key = openSecretFile(dataPaths(b.dataDir).evmAccountKey, PASSPHRASE, 'evm-account');
    const provider = evmProvider(anvil.url);
    const contract = new Contract(
      evmEngineOf(a.ledger.genesis)!.contract,
      registryArtifact().abi,
      new Wallet(`0x${key.toString('hex')}`, provider),
    );
    const id = `0x${sha256Hex('victim@example.org')}`;
    const fake = `0x${'11'.repeat(32)}`;
    await (
      await contract.getFunction('registerKey')(id, fake, fake, toUtf8Bytes('not a transaction'))
    ).wait();
    await (await contract.getFunction('revokeKey')(id, fake, toUtf8Bytes('nor this'))).wait();
    provider.destroy();
    const victim = await registeredClient(a, 'victim@example.org');
    assert.equal((await victim.readServer()).registration.receipt.envelope.tx.type, 'KeyRegistered');
    assert.equal((await a.ledger.getKeyRecord('victim@example.org')).record?.status, 'active');
  });

  it('its admission is a certificate checked with the genesis alone; a forged or altered one is refused', async () => {
    const record = b.ledger.registrars().find((x) => x.name === 'kl2')!;
    const admission = {
      keyId: record.keyId,
      publicKey: record.publicKey,
      name: record.name,
      node: record.node,
      ...record.admission,
    };
    const ok = verifyNodeAdmission({ genesis: a.ledger.genesis, chain: a.ledger.chainId, admission });
    assert.equal(ok.verified, true);
    // Another server key swapped in (or another URL): the approvals no longer cover it.
    const swapped = { ...admission, node: { ...admission.node!, server: a.ledger.genesis.server! } };
    const moved = { ...admission, node: { ...admission.node!, url: 'https://evil.example' } };
    assert.equal(
      verifyNodeAdmission({ genesis: a.ledger.genesis, chain: a.ledger.chainId, admission: moved }).verified,
      false,
    );
    assert.equal(
      verifyNodeAdmission({ genesis: a.ledger.genesis, chain: a.ledger.chainId, admission: swapped })
        .verified,
      false,
    );
    // Approved by a key the genesis does not name (the joined server's own validator).
    const own = openKeyFile(dataPaths(b.dataDir).validatorKey, PASSPHRASE, 'validator');
    const { approvals: _approvals, ...body } = swapped;
    const selfApproved = {
      ...swapped,
      approvals: [
        {
          validator: own.keyId,
          sig: own.sign(GOVERNANCE_DOMAIN, governanceMessage(a.ledger.chainId, 'RegistrarAdded', body)),
        },
      ],
    };
    assert.equal(
      verifyNodeAdmission({ genesis: a.ledger.genesis, chain: a.ledger.chainId, admission: selfApproved })
        .verified,
      false,
    );
  });

  it('clients trust the admitted server through its admission alone: log in, register, revocation through A ends sessions on B', async () => {
    // Registered through A: A lists B's admission; the client checks it against the genesis.
    bob = await registeredClient(a, 'bob@example.org');
    const onB = await login({ home: bob, passphrase: CLIENT_PASSPHRASE, server: b.url });
    assert.equal(onB.verified, true);
    assert.ok((await bob.readServer()).admitted?.some((x) => x.name === 'kl2'));
    // A new client registers through B (its own key; receipts signed by its own validator)...
    const carol = await newClient('carol@example.org');
    const registered = await register({
      home: carol,
      server: b.url,
      proof: { method: 'invite', code: invite(b, 'carol@example.org') },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(registered.verified, true);
    // ...and logs in through A at once (the genesis's key).
    assert.equal((await login({ home: carol, passphrase: CLIENT_PASSPHRASE, server: a.url })).verified, true);
    // A session on B ends within 2 s of a revocation written through A.
    const session = await connect({ home: carol, passphrase: CLIENT_PASSPHRASE, server: b.url });
    assert.equal(b.sessions.list().filter((x) => x.id === 'carol@example.org').length, 1);
    const started = Date.now();
    await callAdmin(a.dataDir, 'POST', `/keys/${encodeURIComponent('carol@example.org')}/revoke`, {
      reason: 'compromised',
    });
    await until(() => b.sessions.list().every((x) => x.id !== 'carol@example.org'), 2_000);
    assert.ok(Date.now() - started < 2_000);
    await session.close().catch(() => {});
  });

  it('a joined server nobody admitted is refused by clients, not failed over to', async () => {
    const dataDir = join(tempDir('kl-join3-'), 'data');
    await joinEvmNode({
      dataDir,
      passphrase: PASSPHRASE,
      rpcUrl: anvil.url,
      genesis: a.ledger.genesis,
      name: 'kl3',
      insecureDevFunderKey: ANVIL_FUNDER_KEY,
    });
    const stranger = await startOn(dataDir, {});
    servers.push(stranger);
    const bob = await newClient('dave@example.org');
    const refusedRegistration = await rejection(
      register({
        home: bob,
        server: stranger.url,
        proof: { method: 'invite', code: invite(stranger, 'dave@example.org') },
        passphrase: CLIENT_PASSPHRASE,
      }),
    );
    assert.equal(refusedRegistration.code, 'KL_SERVER_KEY_MISMATCH');
    const home = await registeredClient(a, 'erin@example.org');
    const refusedLogin = await rejection(
      login({ home, passphrase: CLIENT_PASSPHRASE, server: stranger.url }),
    );
    assert.equal(refusedLogin.code, 'KL_SERVER_KEY_MISMATCH');
  });

  it('a registrar removed by governance can no longer write, through its own account or another', async () => {
    const r = await cli(['admin', 'registrar', 'remove', 'kl2', '--data', a.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    await until(() => b.ledger.registrars().some((x) => x.name === 'kl2' && !x.active));
    // Its account is stopped by the contract.
    assert.equal((await rejection(b.ledger.submit(audit(3)))).code, 'KL_NOT_PERMITTED');
    // Its registrar key is refused by the ledger's rules even when another account carries it.
    const key = openKeyFile(dataPaths(b.dataDir).registrarKey, PASSPHRASE, 'registrar');
    const envelope = signTransaction({
      chain: a.ledger.chainId,
      intent: audit(4),
      signer: key,
      now: Date.now(),
      nonce: randomBytes(16).toString('hex'),
    });
    const err = await rejection(a.ledger.submitSigned(envelope));
    assert.equal(err.code, 'KL_NOT_PERMITTED');
    // The last registrar cannot be removed.
    const last = await callAdmin(
      a.dataDir,
      'POST',
      `/registrars/${encodeURIComponent(a.ledger.genesis.registrars[0]!.keyId)}/remove`,
    ).catch((e) => e);
    assert.ok(isKlError(last, 'KL_NOT_PERMITTED'), String(last));
  });

  it('clients stop trusting a removed server for good: its removal is a certificate any server shows', async () => {
    // Bob trusted B while it was admitted; talking to A shows him B's removal.
    const before = await bob.readServer();
    assert.ok(
      before.admitted?.some((x) => x.name === 'kl2'),
      'kept before',
    );
    assert.equal((await login({ home: bob, passphrase: CLIENT_PASSPHRASE, server: a.url })).verified, true);
    const after = await bob.readServer();
    assert.ok(!after.admitted?.some((x) => x.name === 'kl2'), 'dropped after');
    const refused = await rejection(login({ home: bob, passphrase: CLIENT_PASSPHRASE, server: b.url }));
    assert.equal(refused.code, 'KL_SERVER_KEY_MISMATCH');
    // Showing the old admission again does not bring it back: the removal wins.
    const record = a.ledger.registrars().find((x) => x.name === 'kl2')!;
    const admission = {
      keyId: record.keyId,
      publicKey: record.publicKey,
      name: record.name,
      node: record.node,
      ...record.admission,
    };
    const again = withAdmitted(after, verifiedAdmissions(after.genesis, after.chain, [admission]));
    assert.ok(!again.admitted?.some((x) => x.name === 'kl2'), 'not again');
    // A client new to the ledger learns it at registration.
    const frank = await registeredClient(a, 'frank@example.org');
    assert.ok((await frank.readServer()).removed?.includes(record.keyId), 'new client knows');
    // An auditor counts B's signatures only up to the block that removed it.
    await until(async () => (await height(b)) === (await height(a)));
    const audit = verifyLedgerData({ dataDir: b.dataDir });
    assert.equal(audit.ok, false);
    assert.match(audit.problem?.reason ?? '', /not signed by a quorum of validators/);
    assert.equal(verifyLedgerData({ dataDir: a.dataDir }).ok, true);
  });

  it('refuses a new genesis on a contract that already orders a ledger, and a join whose genesis the contract does not order', async () => {
    const attach = await rejection(
      initEvmNode({
        dataDir: join(tempDir('kl-attach-'), 'data'),
        passphrase: PASSPHRASE,
        rpcUrl: anvil.url,
        contract: { address: evmEngineOf(a.ledger.genesis)!.contract, fromBlock: 0 },
        insecureDevFunderKey: ANVIL_FUNDER_KEY,
      }),
    );
    assert.equal(attach.code, 'KL_CONFIG_INVALID');
    assert.match(attach.message, /node join/);
    // A genesis altered in any way is another ledger: the contract does not order it.
    const altered = { ...a.ledger.genesis, name: 'not the same' };
    const join1 = await rejection(
      joinEvmNode({
        dataDir: join(tempDir('kl-j2-'), 'data'),
        passphrase: PASSPHRASE,
        rpcUrl: anvil.url,
        genesis: altered,
        name: 'x',
      }),
    );
    assert.equal(join1.code, 'KL_CONFIG_INVALID');
    assert.match(join1.message, /orders another ledger/);
  });

  it('refuses to start a data directory whose genesis the contract it names does not order', async () => {
    // A contract deployed by the funder (its governor), then two data directories attached to it
    // while it is unbound; the governor binds it to the first: the second is refused at start.
    const engine = await deployRegistry({ rpcUrl: anvil.url, privateKey: ANVIL_FUNDER_KEY });
    const dirs = [join(tempDir('kl-x-'), 'data'), join(tempDir('kl-y-'), 'data')];
    const made = [];
    for (const dataDir of dirs)
      made.push(
        await initEvmNode({
          dataDir,
          passphrase: PASSPHRASE,
          rpcUrl: anvil.url,
          contract: { address: engine.contract, fromBlock: engine.fromBlock },
          insecureDevFunderKey: ANVIL_FUNDER_KEY,
        }),
      );
    await bindChain({
      rpcUrl: anvil.url,
      privateKey: ANVIL_FUNDER_KEY,
      engine: evmEngineOf(made[0]!.genesis)!,
      chain: chainIdOf(made[0]!.genesis),
    });
    const err = await rejection(startOn(dirs[1]!, {}));
    assert.equal(err.code, 'KL_CONFIG_INVALID');
    assert.match(err.message, /orders another ledger/);
    assert.match(err.message, /does not belong to that deployment/);
  });
});
