/**
 * What a real chain does to the EVM engine (issue 6), on anvil (a real EVM node, started and stopped
 * here): a write the contract refuses for lack of permission (clear error, nothing half-done, retry
 * works once permitted), the RPC node down (clear error, no half-registered user, retry safe), a node
 * restart with its state kept, a keyledger server restart that re-derives nothing twice, and replicas
 * sharing one account (nonce clashes resolved). The contract's own rules are checked directly too.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Contract, Wallet } from 'ethers';
import { register } from '../src/client/register.js';
import { connect } from '../src/client/session.js';
import { dataPaths, readGenesisFile } from '../src/ledger/data-dir.js';
import { deployRegistry, EvmSequencer, evmProvider, registryArtifact } from '../src/ledger/evm-sequencer.js';
import { evmEngineOf } from '../src/ledger/genesis.js';
import { openKeyFile, openSecretFile } from '../src/ledger/sealed-key-file.js';
import { signTransaction } from '../src/ledger/transactions.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { startServer } from '../src/server/app.js';
import { initEvmNode } from '../src/server/evm-node.js';
import { PASSPHRASE, registration, tempDir, until } from './helpers.js';
import { ANVIL_FUNDER_KEY, type Anvil, anvilsStoppedAfter } from './support/anvil.js';
import { CLIENT_PASSPHRASE, evmTestServer, invite, newClient, registeredClient } from './support/server.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const chain = anvilsStoppedAfter();

/** The node account's private key, from its sealed file. */
function accountKey(dataDir: string): string {
  return `0x${openSecretFile(dataPaths(dataDir).evmAccountKey, PASSPHRASE, 'evm-account').toString('hex')}`;
}

const evmServer = (anvil: Anvil) => evmTestServer(anvil);

describe('EVM engine against a real chain (anvil)', () => {
  it('the contract enforces the write rules itself: a stranger cannot write, a registrar cannot govern', async () => {
    const anvil = await chain();
    const srv = await evmServer(anvil);
    const { genesis } = readGenesisFile(dataPaths(srv.dataDir).genesis);
    const provider = evmProvider(anvil.url);
    const stranger = new Wallet(Wallet.createRandom().privateKey, provider);
    await (
      await new Wallet(ANVIL_FUNDER_KEY, provider).sendTransaction({
        to: stranger.address,
        value: 10n ** 18n,
      })
    ).wait();
    const asStranger = new Contract(evmEngineOf(genesis)!.contract, registryArtifact().abi, stranger);
    const revert = (name: string) => (e: unknown) => {
      assert.equal(asStranger.interface.parseError((e as { data: string }).data)?.name, name);
      return true;
    };
    await assert.rejects(asStranger.auditEvent!(new Uint8Array([1])), revert('NotRegistrar'));
    await assert.rejects(asStranger.setRegistrar!(stranger.address, true), revert('NotGovernor'));
    const record = await asStranger.record!(`0x${'0'.repeat(64)}`);
    assert.equal(record.status, 0n);
    provider.destroy();
    await srv.close();
  });

  it('reads check what was written: a key stored on chain under another key hash is left out of the ledger', async () => {
    const anvil = await chain();
    const srv = await evmServer(anvil);
    const home = await registeredClient(srv, 'ok@example.org');
    // A writer with the registrar's keys stores one key hash on chain while the envelope carries another key.
    const { genesis } = readGenesisFile(dataPaths(srv.dataDir).genesis);
    const registrar = openKeyFile(dataPaths(srv.dataDir).registrarKey, PASSPHRASE, 'registrar');
    const body = registration('forged@example.org');
    const env = signTransaction({
      chain: srv.ledger.chainId,
      intent: { type: 'KeyRegistered', body },
      signer: registrar,
      now: Date.now(),
      nonce: randomBytes(16).toString('hex'),
    });
    const text = canonicalize(env);
    const provider = evmProvider(anvil.url);
    const asRegistrar = new Contract(
      evmEngineOf(genesis)!.contract,
      registryArtifact().abi,
      new Wallet(accountKey(srv.dataDir), provider),
    );
    const h = (t: string) => `0x${sha256Hex(t)}`;
    await srv.ledger.drain(); // the server's own audit writes use the same account: let them land
    for (let tries = 0; ; tries++) {
      try {
        await (
          await asRegistrar.registerKey!(
            h(body.id),
            h(body.fingerprint),
            h('some other key'),
            Buffer.from(text, 'utf8'),
          )
        ).wait();
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'NONCE_EXPIRED' || tries > 10) throw err;
      }
    }
    provider.destroy();
    // The follower reads that block and refuses it; the server's own writes go on.
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.sendSigned('after the forged write');
    await s.close();
    assert.equal((await srv.ledger.getKeyRecord('forged@example.org')).record, null);
    await srv.close();
  });

  it('a write the contract refuses for lack of permission fails clearly, leaves nothing, and works once permitted', async () => {
    const anvil = await chain();
    // A contract deployed by a governor of its own (the funder), not bound to a ledger yet: node B
    // attaches to it, and its account is made a registrar only later.
    const engine = await deployRegistry({ rpcUrl: anvil.url, privateKey: ANVIL_FUNDER_KEY });
    const bDir = join(tempDir('kl-evm-'), 'data');
    const b = await initEvmNode({
      dataDir: bDir,
      passphrase: PASSPHRASE,
      rpcUrl: anvil.url,
      contract: { address: engine.contract, fromBlock: engine.fromBlock },
      insecureDevFunderKey: ANVIL_FUNDER_KEY,
    });
    const bServer = await startServer({
      dataDir: bDir,
      passphrase: PASSPHRASE,
      host: '127.0.0.1',
      port: 0,
      evm: { pollMs: 20 },
    });
    const home = await newClient('perm@example.org');
    const code1 = invite(bServer, 'perm@example.org');
    await assert.rejects(
      register({
        home,
        server: bServer.url,
        proof: { method: 'invite', code: code1 },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'KL_NOT_PERMITTED');
        assert.match(e.message, /not a registrar of the contract/);
        return true;
      },
    );
    assert.equal(await bServer.ledger.checkpoint(), null, 'no half-registered user: nothing was written');
    // The governor makes B a registrar; the same invitation now works.
    const provider = evmProvider(anvil.url);
    const governor = new Contract(
      engine.contract,
      registryArtifact().abi,
      new Wallet(ANVIL_FUNDER_KEY, provider),
    );
    await (await governor.setRegistrar!(b.account, true)).wait();
    provider.destroy();
    const r = await register({
      home,
      server: bServer.url,
      proof: { method: 'invite', code: code1 },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(r.verified, true);
    await bServer.close();
  });

  it('the RPC node down: a clear error, no half-registered user; after a restart with its state, retry works', async () => {
    const stateFile = join(tempDir('kl-anvil-'), 'state.json');
    let anvil = await chain({ stateFile });
    const srv = await evmServer(anvil);
    const before = await registeredClient(srv, 'first@example.org');
    await new Promise((r) => setTimeout(r, 1_200)); // anvil writes its state file every second
    await anvil.stop();
    const home = await newClient('down@example.org');
    const code1 = invite(srv, 'down@example.org');
    await assert.rejects(
      register({
        home,
        server: srv.url,
        proof: { method: 'invite', code: code1 },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'KL_LEDGER_UNAVAILABLE');
        assert.match(e.message, /EVM node cannot be reached/);
        return true;
      },
    );
    assert.equal((await srv.ledger.getKeyRecord('down@example.org')).record, null);
    // The node comes back on the same port with its chain; the server's follower picks up again.
    anvil = await chain({ stateFile, port: anvil.port });
    const r = await register({
      home,
      server: srv.url,
      proof: { method: 'invite', code: code1 },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(r.verified, true, 'the same invitation works: it was not used up by the failed attempt');
    const s = await connect({ home: before, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await srv.close();
  });

  it('logins fail closed while the chain cannot be read (a revocation could be missed), and work again after', async () => {
    const stateFile = join(tempDir('kl-anvil-'), 'state.json');
    let anvil = await chain({ stateFile });
    // A limit well above a poll's gap on a loaded machine (the test process runs both servers,
    // their followers and the clients): staleness is read again at each hello.
    const limitMs = 1_000;
    const srv = await evmTestServer(anvil, { maxLedgerStalenessMs: limitMs });
    const open = await evmTestServer(anvil, { insecureAllowStaleLedger: true });
    const home = await registeredClient(srv, 'closed@example.org');
    const other = await registeredClient(open, 'open@example.org');
    await new Promise((r) => setTimeout(r, 1_200)); // anvil writes its state every second
    await anvil.stop();
    await until(() => srv.ledger.staleness() > limitMs);
    await assert.rejects(connect({ home, passphrase: CLIENT_PASSPHRASE }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KL_LEDGER_UNAVAILABLE');
      return true;
    });
    // Opted out by name: availability over revocation freshness.
    (await connect({ home: other, passphrase: CLIENT_PASSPHRASE })).close();
    anvil = await chain({ stateFile, port: anvil.port });
    // Back once the follower has read the chain again: the only refusal meanwhile is the same one.
    let session: Awaited<ReturnType<typeof connect>> | undefined;
    await until(
      async () => {
        try {
          session = await connect({ home, passphrase: CLIENT_PASSPHRASE });
          return true;
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'KL_LEDGER_UNAVAILABLE');
          return false;
        }
      },
      20_000,
      100,
    );
    assert.equal(srv.ledger.chainStatus()!.fault, null);
    await session!.close();
    await open.close();
    await srv.close();
  });

  it('a restarted keyledger server derives the same ledger from the chain and adds nothing twice', async () => {
    const anvil = await chain();
    const srv = await evmServer(anvil);
    const home = await registeredClient(srv, 'again@example.org');
    await new Promise((r) => setTimeout(r, 300)); // the registration's audit event lands too
    await srv.close();
    const before = verifyLedgerData({ dataDir: srv.dataDir });
    const again = await startServer({
      dataDir: srv.dataDir,
      passphrase: PASSPHRASE,
      host: '127.0.0.1',
      port: Number(new URL(srv.url).port), // the client pinned this address
      evm: { pollMs: 20 },
    });
    await new Promise((r) => setTimeout(r, 300));
    const after = verifyLedgerData({ dataDir: srv.dataDir });
    // Read again from its cursor: the same blocks and transactions, none twice, none lost.
    assert.deepEqual([after.blocks, after.transactions], [before.blocks, before.transactions]);
    assert.ok(before.transactions >= 2);
    const s = await connect({ home, passphrase: CLIENT_PASSPHRASE });
    await s.close();
    await again.close();
    const check = verifyLedgerData({ dataDir: srv.dataDir });
    assert.equal(check.ok, true, check.problem?.reason);
  });

  it('replicas sharing one account: concurrent writes with clashing nonces all land, in one order', async () => {
    const anvil = await chain();
    const srv = await evmServer(anvil);
    const { genesis } = readGenesisFile(dataPaths(srv.dataDir).genesis);
    const key = accountKey(srv.dataDir);
    const replicas = [0, 1].map(
      () =>
        new EvmSequencer({ rpcUrl: anvil.url, engine: evmEngineOf(genesis)!, privateKey: key, pollMs: 20 }),
    );
    const before = (await srv.ledger.checkpoint())?.header.height ?? 0;
    // The server's sequencer and two replicas with the same account all start from the same nonce.
    const anchors = Array.from({ length: 16 }, (_, i) =>
      srv.ledger.submit({
        type: 'HashAnchored',
        body: { hash: `${i}`.padStart(64, 'c'), algorithm: 'sha256' },
      }),
    );
    // Other writers on the same account, racing the server's own sequencer.
    const junk = replicas.flatMap((rep, r) =>
      Array.from({ length: 4 }, (_, i) =>
        rep.submit({
          envelope: { tx: { type: 'AuditEvent' } } as never,
          text: `{"not":"a keyledger envelope ${r}-${i}"}`,
          txid: '',
        }),
      ),
    );
    const receipts = await Promise.all(anchors);
    await Promise.all(junk);
    for (const rep of replicas) await rep.stop();
    assert.ok((await srv.ledger.checkpoint())!.header.height > before);
    for (const r of receipts) assert.equal((await srv.ledger.getTransaction(r.txid)).txid, r.txid);
    // The junk the replicas wrote is on the chain but never enters the ledger (not a signed envelope).
    const check = verifyLedgerData({ dataDir: srv.dataDir });
    assert.equal(check.ok, true, check.problem?.reason);
    await srv.close();
  });
});

describe('EVM engine through the CLI', () => {
  it('ledger deploy, serve, invite, init, register, login: the README flow on a chain', async () => {
    const anvil = await chain();
    const data = join(tempDir('kl-evm-cli-'), 'data');
    const home = join(tempDir('kl-evm-cli-'), 'home');
    const env = {
      ...process.env,
      KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE,
      KEYLEDGER_PASSPHRASE: 'evm user pw',
    };
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [bin, ...args], { env, encoding: 'utf8' }).catch(
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const deployed = await run([
      'ledger',
      'deploy',
      '--data',
      data,
      '--rpc',
      anvil.url,
      '--insecure-dev-funder-key',
      ANVIL_FUNDER_KEY,
      '--json',
    ]);
    const info = JSON.parse(deployed.stdout) as { contract: string; chainId: number };
    assert.match(info.contract, /^0x[0-9a-f]{40}$/);
    assert.equal(info.chainId, 31337);
    // An initialised directory keeps its contract.
    const wrong = (await run([
      'serve',
      '--data',
      data,
      '--port',
      '0',
      '--contract',
      `0x${'1'.repeat(40)}`,
    ])) as {
      code?: number;
      stderr: string;
    };
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /error KL_CONFIG_INVALID: .* is bound to contract 0x[0-9a-f]{40}/);
    const child = spawn(process.execPath, [bin, 'serve', '--data', data, '--port', '0', '--json'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (c) => {
          out += c;
          if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { url: string }).url);
        });
        child.on('exit', (c) => reject(new Error(`serve exited ${c}`)));
      });
      const inv = JSON.parse(
        (await run(['admin', 'invite', 'cli@example.org', '--data', data, '--json'])).stdout,
      ) as { code: string };
      assert.equal((await run(['init', '--id', 'cli@example.org', '--home', home])).stdout.length > 0, true);
      const reg = await run(['register', '--server', url, '--invite', inv.code, '--home', home]);
      assert.match(reg.stdout, /receipt verified against the genesis/);
      const login = JSON.parse((await run(['login', '--home', home, '--json'])).stdout) as {
        verified: boolean;
      };
      assert.equal(login.verified, true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    const verified = await run(['ledger', 'verify', '--data', data, '--json']);
    assert.equal(JSON.parse(verified.stdout).ok, true);
  });
});
