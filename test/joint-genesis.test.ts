/**
 * Several organisations on one deployment (docs/deploy-besu.md "Several organisations"), on a real
 * chain (anvil), through the `keyledger genesis` and `keyledger admin governance` commands: two
 * organisations contribute their keys, one proposes (deploying the contract), both sign, the
 * signatures are combined, both adopt and start their servers; a client of one logs in on the
 * other, trusting its server key through the genesis alone; governance needs both approvals; a
 * tampered file, and a genesis without an organisation's keys, are refused.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { login } from '../src/client/login.js';
import { register } from '../src/client/register.js';
import { dataPaths } from '../src/ledger/data-dir.js';
import { evmProvider } from '../src/ledger/evm-sequencer.js';
import { chainIdOf, type Genesis } from '../src/ledger/genesis.js';
import {
  approvedChange,
  makeGovernanceProposal,
  signGovernanceProposal,
} from '../src/ledger/governance-proposal.js';
import {
  type Contribution,
  checkContribution,
  checkJointGenesis,
  checkProposal,
  combineProposal,
  makeProposal,
  signProposal,
} from '../src/ledger/joint-genesis.js';
import { openKeyFile } from '../src/ledger/sealed-key-file.js';
import { SigningKey } from '../src/ledger/signing-keys.js';
import type { RunningServer } from '../src/server/app.js';
import { adoptGenesis, contributeNode } from '../src/server/joint-node.js';
import { PASSPHRASE, rejection, tempDir, until } from './helpers.js';
import { ANVIL_FUNDER_KEY, type Anvil, anvilsStoppedAfter } from './support/anvil.js';
import { runCliAsync } from './support/cli.js';
import { CLIENT_PASSPHRASE, invite, newClient, registeredClient, startOn } from './support/server.js';

const startAnvil = anvilsStoppedAfter();

/** `keyledger ARGS…` in a child process (the servers of this process keep running). */
/** `keyledger ARGS…` in a child process, without blocking this process's servers. */
const cli = (args: string[]) => runCliAsync(args, { env: { KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE } });

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 0, `keyledger ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function refusal(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.fail('expected a refusal');
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('a genesis made by two organisations (EVM engine, anvil)', () => {
  let anvil: Anvil;
  let work: string;
  let dirA: string;
  let dirB: string;
  let a: RunningServer & { dataDir: string };
  let b: RunningServer & { dataDir: string };
  const servers: RunningServer[] = [];
  const file = (name: string) => join(work, name);
  before(async () => {
    anvil = await startAnvil();
    work = tempDir('kl-jg-');
    dirA = join(work, 'a');
    dirB = join(work, 'b');
  });
  after(async () => {
    for (const s of servers) await s.close().catch(() => {});
  });

  it('contribute, propose, sign, combine and adopt with the commands; both servers start', async () => {
    await ok(['genesis', 'contribute', '--data', dirA, '--org', 'org-a']);
    await ok(['genesis', 'contribute', '--data', dirB, '--org', 'org-b', '--url', 'http://127.0.0.1:9']);
    // A data directory that contributed is not given a genesis of its own by `serve`.
    assert.equal((await rejection(startOn(dirB, {}))).code, 'KL_DATA_DIR');
    const contribs = [dataPaths(dirA).contribution, dataPaths(dirB).contribution];
    // On a development chain, propose pays for every organisation's account from anvil's public key.
    const common = [
      '--name',
      'joint',
      '--rpc',
      anvil.url,
      '--data',
      dirA,
      '--insecure-dev-funder-key',
      ANVIL_FUNDER_KEY,
    ];
    // Two organisations, a quorum of 1: either could change the governance alone.
    const one = await cli(['genesis', 'propose', ...contribs, '--quorum', '1', ...common]);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /KL_BAD_INPUT.*quorum/);
    await ok(['genesis', 'propose', ...contribs, '--quorum', '2', ...common, '--out', file('p.json')]);
    const [ca, cb] = [dirA, dirB].map((d) => readJson(dataPaths(d).contribution) as Contribution);
    const funded = evmProvider(anvil.url);
    for (const c of [ca!, cb!])
      assert.ok((await funded.getBalance(c.node.account)) > 0n, `${c.org} paid for`);
    funded.destroy();
    // The signer sees every organisation's keys, and can pin them: one with another validator key,
    // or one more than expected (a proposer's made-up organisation), is refused before signing.
    const [va, vb] = [ca!.node.validator.keyId, cb!.node.validator.keyId];
    const sign = (dir: string, ...more: string[]) =>
      cli(['genesis', 'sign', file('p.json'), '--data', dir, '--out', file('refused.json'), ...more]);
    const wrongKey = await sign(dirB, '--expect', `org-a=${vb}`, '--expect', `org-b=${vb}`);
    assert.equal(wrongKey.code, 2);
    assert.match(wrongKey.stderr, new RegExp(`KL_BAD_INPUT.*org-a has validator key ${va}, not ${vb}`));
    const extra = await sign(dirB, '--expect', `org-b=${vb}`);
    assert.match(extra.stderr, /KL_BAD_INPUT.*organisations not expected: org-a/);
    assert.equal(existsSync(file('refused.json')), false, 'nothing signed');
    const signedA = await ok(['genesis', 'sign', file('p.json'), '--data', dirA, '--out', file('sa.json')]);
    for (const c of [ca!, cb!])
      assert.match(
        signedA,
        new RegExp(
          `${c.org}: validator ${c.node.validator.keyId}, registrar ${c.registrar.keyId}, account ${c.node.account}, server ${c.node.server.fingerprint}`,
        ),
      );
    await ok([
      'genesis',
      'sign',
      file('p.json'),
      '--data',
      dirB,
      '--expect',
      `org-a=${va}`,
      '--expect',
      `org-b=${vb}`,
      '--out',
      file('sb.json'),
    ]);
    const missing = await cli([
      'genesis',
      'combine',
      file('p.json'),
      file('sa.json'),
      '--out',
      file('x.json'),
    ]);
    assert.match(missing.stderr, /KL_QUORUM_NOT_MET.*org-b/);
    await ok([
      'genesis',
      'combine',
      file('p.json'),
      file('sa.json'),
      file('sb.json'),
      '--out',
      file('j.json'),
    ]);
    assert.match(
      await ok(['genesis', 'adopt', file('j.json'), '--data', dirA, '--rpc', anvil.url]),
      /governs the contract/,
    );
    assert.match(
      await ok(['genesis', 'adopt', file('j.json'), '--data', dirB, '--rpc', anvil.url]),
      /admitted at genesis/,
    );
    a = await startOn(dirA, {});
    servers.push(a);
    b = await startOn(dirB, {});
    servers.push(b);
    const genesis = a.ledger.genesis;
    assert.equal(genesis.quorum, 2);
    assert.equal(genesis.validators.length, 2);
    assert.equal(b.ledger.chainId, a.ledger.chainId);
    await until(() => b.ledger.registrars().some((r) => r.name === 'org-b' && r.active && r.node?.url));
  });

  it("a client registered on A logs in on B, verifying B's server key with the genesis alone; B writes", async () => {
    const alice = await registeredClient(a, 'alice@example.org');
    const onB = await login({ home: alice, passphrase: CLIENT_PASSPHRASE, server: b.url });
    assert.equal(onB.verified, true);
    const kept = await alice.readServer();
    const bServer = readJson(dataPaths(dirB).contribution).node.server.fingerprint;
    // B is not the server the genesis pins: the client trusts it through its admission.
    assert.notEqual(kept.genesis.server?.fingerprint, bServer);
    assert.ok(kept.admitted?.some((x) => x.name === 'org-b' && x.node.server.fingerprint === bServer));
    const carol = await newClient('carol@example.org');
    const registered = await register({
      home: carol,
      server: b.url,
      proof: { method: 'invite', code: invite(b, 'carol@example.org') },
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(registered.verified, true);
    await until(async () => (await a.ledger.getKeyRecord('carol@example.org')).record?.status === 'active');
  });

  it('governance needs both approvals: one is refused, two land; stale, foreign, duplicate and outside approvals are refused', async () => {
    // The single-approval command says what to do instead.
    const single = await cli(['admin', 'grant', 'alice@example.org', '--data', dirA]);
    assert.match(single.stderr, /KL_QUORUM_NOT_MET.*admin governance propose/);
    await ok([
      'admin',
      'governance',
      'propose',
      'role',
      'grant',
      'alice@example.org',
      '--data',
      dirA,
      '--out',
      file('g.json'),
    ]);
    // The validator sees every field of what it approves.
    const shown = await ok([
      'admin',
      'governance',
      'sign',
      file('g.json'),
      '--data',
      dirA,
      '--out',
      file('ga.json'),
    ]);
    assert.match(
      shown,
      /approving RoleGranted on ledger [0-9a-f]+:\n {2}id: alice@example.org\n {2}role: admin\n {2}govSeq: \d+/,
    );
    await ok(['admin', 'governance', 'sign', file('g.json'), '--data', dirB, '--out', file('gb.json')]);
    const submit = (...sigs: string[]) =>
      cli(['admin', 'governance', 'submit', file('g.json'), ...sigs.map(file), '--data', dirA]);
    assert.match((await submit('ga.json')).stderr, /KL_QUORUM_NOT_MET/);
    assert.match((await submit('ga.json', 'ga.json')).stderr, /KL_BAD_INPUT.*twice/);
    assert.match(
      await ok([
        'admin',
        'governance',
        'submit',
        file('g.json'),
        file('ga.json'),
        file('gb.json'),
        '--data',
        dirA,
      ]),
      /RoleGranted written/,
    );
    await until(
      async () =>
        (await b.ledger.getKeyRecord('alice@example.org')).record?.roles?.includes('admin') ?? false,
    );
    // The same proposal again: its governance sequence is past.
    assert.match((await submit('ga.json', 'gb.json')).stderr, /KL_GOVERNANCE_STALE/);
    // Function level: another ledger's proposal, and a key that is no validator.
    const genesis = a.ledger.genesis;
    const validatorA = openKeyFile(dataPaths(dirA).validatorKey, PASSPHRASE, 'validator');
    const foreign = makeGovernanceProposal(
      'f'.repeat(64),
      { type: 'RegistrarRemoved', body: { keyId: '0'.repeat(32) } },
      1,
    );
    assert.equal(
      refusal(() => signGovernanceProposal(foreign, genesis, validatorA)).code,
      'KL_TX_WRONG_CHAIN',
    );
    const proposal = makeGovernanceProposal(
      a.ledger.chainId,
      { type: 'RoleRevoked', body: { id: 'alice@example.org', role: 'admin' } },
      1,
    );
    const outsider = SigningKey.generate();
    const forged = {
      ...signGovernanceProposal(proposal, genesis, validatorA),
      approval: { validator: outsider.keyId, sig: outsider.sign('x', new Uint8Array(1)) },
    };
    assert.equal(refusal(() => approvedChange(proposal, genesis, [forged])).code, 'KL_NOT_PERMITTED');
    assert.equal(refusal(() => signGovernanceProposal(proposal, genesis, outsider)).code, 'KL_NOT_PERMITTED');
  });

  it('2 of 3 validators approve a change; 1 of 3 does not', () => {
    const keys = [SigningKey.generate(), SigningKey.generate(), SigningKey.generate()];
    const genesis: Genesis = {
      v: 1,
      name: 'x',
      createdAt: 0,
      validators: keys.map((k) => k.info()),
      quorum: 2,
      registrars: [],
    };
    const p = makeGovernanceProposal(
      chainIdOf(genesis),
      { type: 'RoleGranted', body: { id: 'x@example.org', role: 'admin' } },
      0,
    );
    const sigs = keys.map((k) => signGovernanceProposal(p, genesis, k));
    assert.equal(approvedChange(p, genesis, [sigs[0], sigs[2]]).body.approvals.length, 2);
    assert.equal(refusal(() => approvedChange(p, genesis, [sigs[1]])).code, 'KL_QUORUM_NOT_MET');
  });

  it('a tampered contribution, proposal or signature is refused', () => {
    const proposal = readJson(file('p.json'));
    const [ca] = proposal.contributions as Contribution[];
    assert.doesNotThrow(() => checkContribution(ca));
    assert.match(
      refusal(() => checkContribution({ ...ca!, org: 'org-z' })).message,
      /not signed by its validator/,
    );
    const otherServer = proposal.contributions[1].node.server;
    assert.equal(
      refusal(() => checkContribution({ ...ca!, node: { ...ca!.node, server: otherServer } })).code,
      'KL_BAD_INPUT',
    );
    // The genesis changed (another server pinned), or the admissions dropped.
    const lowered = { ...proposal, genesis: { ...proposal.genesis, server: otherServer } };
    assert.match(refusal(() => checkProposal(lowered)).message, /not the genesis its contributions make/);
    assert.equal(refusal(() => checkProposal({ ...proposal, admissions: [] })).code, 'KL_BAD_INPUT');
    const checked = checkProposal(proposal);
    const sa = readJson(file('sa.json'));
    const sb = readJson(file('sb.json'));
    const flipped = { ...sa, sig: sb.sig };
    assert.match(refusal(() => combineProposal(checked, [flipped, sb])).message, /does not verify/);
    const noAdmission = { ...sb, approvals: [sa.approvals[0]] };
    assert.match(
      refusal(() => combineProposal(checked, [sa, noAdmission])).message,
      /approval of org-b does not verify/,
    );
    const joint = readJson(file('j.json'));
    assert.doesNotThrow(() => checkJointGenesis(joint));
    const altered = {
      ...joint,
      admissions: [
        { ...joint.admissions[0], node: { ...joint.admissions[0].node, url: 'https://evil.example' } },
      ],
    };
    assert.equal(refusal(() => checkJointGenesis(altered)).code, 'KL_BAD_INPUT');
    // The consents sign the chain id alone: admissions dropped after signing are still refused.
    assert.match(
      refusal(() => checkJointGenesis({ ...joint, admissions: [] })).message,
      /admits 0 servers for 1 other organisations/,
    );
  });

  it("a genesis that does not contain the data directory's keys is refused at adopt", async () => {
    const dirC = join(work, 'c');
    const cc = await contributeNode({ dataDir: dirC, passphrase: PASSPHRASE, org: 'org-c' });
    const ca = readJson(dataPaths(dirA).contribution);
    const proposal = makeProposal({
      contributions: [ca, cc],
      quorum: 2,
      name: 'without b',
      createdAt: Date.now(),
      engine: a.ledger.genesis.engine as never,
    });
    const sigs = [dirA, dirC].map((d) =>
      signProposal(proposal, openKeyFile(dataPaths(d).validatorKey, PASSPHRASE, 'validator')),
    );
    const joint = combineProposal(proposal, sigs);
    const err = await rejection(
      adoptGenesis({ dataDir: join(work, 'b2'), passphrase: PASSPHRASE, joint, rpcUrl: anvil.url }),
    );
    assert.equal(err.code, 'KL_DATA_DIR'); // no contribution there at all
    const dirB3 = join(work, 'b3');
    await contributeNode({ dataDir: dirB3, passphrase: PASSPHRASE, org: 'org-b' });
    const refused = await rejection(
      adoptGenesis({ dataDir: dirB3, passphrase: PASSPHRASE, joint, rpcUrl: anvil.url }),
    );
    assert.equal(refused.code, 'KL_BAD_INPUT');
    assert.match(refused.message, /does not contain this data directory's keys/);
  });
});
