/**
 * The first server of each organisation of a deployment with a joint genesis (docs/deploy-besu.md
 * "Several organisations"; the files are joint-genesis.ts's): its keys and contribution made before
 * any genesis, the proposal (deploying the KeyRegistry contract from the proposer's account), the
 * organisation's signature, and the adoption of the combined genesis, which finishes the data
 * directory and, on the governing organisation's side, binds the contract, writes the admissions
 * approved at genesis time and lets the other organisations' accounts write.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Contract, toUtf8String, type Wallet } from 'ethers';
import { dataPaths, readGenesisFile } from '../ledger/data-dir.js';
import { initAdoptedLedger, nodeKeysWithoutGenesis } from '../ledger/embedded-init.js';
import { bindChain, boundChain, setRegistrarAccount } from '../ledger/evm-governor.js';
import { deployRegistry, EvmSequencer, evmProvider, registryArtifact } from '../ledger/evm-sequencer.js';
import type { EvmEngineInfo } from '../ledger/genesis.js';
import {
  type Contribution,
  checkContribution,
  checkJointGenesis,
  checkProposal,
  checkProposalExpectations,
  type GenesisProposal,
  type GenesisSignature,
  type JointGenesis,
  makeContribution,
  makeProposal,
  signProposal,
} from '../ledger/joint-genesis.js';
import { leafHash } from '../ledger/merkle.js';
import { checkJoinRequest, type NodeAdmission } from '../ledger/node-admission.js';
import { openKeyFile, writeFileAtomic } from '../ledger/sealed-key-file.js';
import { signTransactionBytes } from '../ledger/transactions.js';
import { fromUtf8, toHex } from '../protocol/bytes.js';
import { canonicalize } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { fundDevAccount, nodeAccount } from './evm-node.js';
import { checkServerKey } from './server-admission.js';
import { createServerKey, loadServerKey, serverKeyPath } from './server-key.js';

/**
 * Makes (or opens) the node keys of an organisation's first server, without a genesis: validator
 * and registrar keys, OpenPGP server key, Ethereum account, all sealed under `passphrase`, and
 * writes its contribution (DATA/contribution.json), signed by its validator key.
 * @throws KlError `KL_DATA_DIR` (a ledger there already), `KL_BAD_INPUT`, `KL_PASSPHRASE_WRONG`
 */
export async function contributeNode(o: {
  dataDir: string;
  passphrase: string;
  org: string;
  url?: string;
  now?: () => number;
}): Promise<Contribution> {
  const { validator, registrar } = nodeKeysWithoutGenesis(o.dataDir, o.passphrase);
  const server = existsSync(serverKeyPath(o.dataDir))
    ? await loadServerKey(o.dataDir, o.passphrase).then((k) => ({
        fingerprint: k.fingerprint,
        publicKey: k.armoredPublicKey,
      }))
    : await createServerKey(o.dataDir, o.passphrase, { now: new Date((o.now ?? Date.now)()) });
  const account = nodeAccount(o.dataDir, o.passphrase).address;
  const contribution = makeContribution({
    org: o.org,
    validator,
    registrar: registrar.info(),
    node: { server, account, ...(o.url ? { url: o.url } : {}) },
  });
  writeFileAtomic(dataPaths(o.dataDir).contribution, `${JSON.stringify(contribution, null, 2)}\n`);
  return contribution;
}

/** This data directory's contribution (DATA/contribution.json). */
function ownContribution(dataDir: string): Contribution {
  const path = dataPaths(dataDir).contribution;
  if (!existsSync(path))
    throw new KlError(
      'KL_DATA_DIR',
      `${dataDir} holds no contribution: run \`keyledger genesis contribute\` there first`,
    );
  return checkContribution(JSON.parse(readFileSync(path, 'utf8')));
}

/** Options of {@link proposeGenesis}. */
export interface ProposeGenesisOptions {
  /** The contributions read from their files, the proposer's first. */
  contributions: unknown[];
  quorum: number;
  name: string;
  rpcUrl: string;
  /** Attach to this contract (its deployer governs it) instead of deploying one. */
  contract?: { address: string; fromBlock: number };
  /** Without `contract`: the proposer's data directory, whose account deploys (and governs) the contract. */
  dataDir?: string;
  passphrase?: string;
  /**
   * Pay for every contribution's account from this development key (anvil, Hardhat: public keys)
   * before the contract is deployed. Development chains only.
   */
  insecureDevFunderKey?: string;
  now?: () => number;
}

/**
 * Checks every contribution (signatures, OpenPGP server keys) and writes the proposal: the genesis
 * they make, ordered by a KeyRegistry contract deployed from the proposer's account (its governor)
 * or the one given.
 * @throws KlError `KL_BAD_INPUT`, `KL_CONFIG_INVALID` (a contract already bound), `KL_LEDGER_UNAVAILABLE`
 */
export async function proposeGenesis(o: ProposeGenesisOptions): Promise<GenesisProposal> {
  // Everything but the contract is checked before one is deployed for it: a dry run.
  const placeholder: EvmEngineInfo = {
    type: 'evm',
    chainId: 1,
    contract: `0x${'0'.repeat(40)}`,
    fromBlock: 0,
  };
  const { contributions } = makeProposal({ ...o, createdAt: 0, engine: placeholder });
  for (const c of contributions) await checkServerKey(c.node.server, `the contribution of ${c.org}`);
  if (o.insecureDevFunderKey)
    for (const c of contributions) await fundDevAccount(o.rpcUrl, o.insecureDevFunderKey, c.node.account);
  const proposer = contributions[0]!;
  let engine: EvmEngineInfo;
  if (o.contract) {
    engine = {
      type: 'evm',
      chainId: await chainIdAt(o.rpcUrl),
      contract: o.contract.address.toLowerCase(),
      fromBlock: o.contract.fromBlock,
    };
    if ((await boundChain(o.rpcUrl, engine)) !== null)
      throw new KlError(
        'KL_CONFIG_INVALID',
        `the contract ${engine.contract} already orders a keyledger ledger`,
      );
  } else {
    if (!o.dataDir || !o.passphrase)
      throw new KlError(
        'KL_BAD_INPUT',
        "give the proposer's data directory (--data), whose account deploys the contract, or --contract",
      );
    if (ownContribution(o.dataDir).node.account !== proposer.node.account)
      throw new KlError(
        'KL_BAD_INPUT',
        `the first contribution is not the one of ${o.dataDir}: the proposer's comes first`,
      );
    const account = nodeAccount(o.dataDir, o.passphrase);
    engine = await deployRegistry({ rpcUrl: o.rpcUrl, privateKey: account.privateKey });
  }
  return makeProposal({
    contributions,
    quorum: o.quorum,
    name: o.name,
    createdAt: (o.now ?? Date.now)(),
    engine,
  });
}

/** The EIP-155 chain id the node at `rpcUrl` serves. */
async function chainIdAt(rpcUrl: string): Promise<number> {
  const provider = evmProvider(rpcUrl);
  try {
    return Number((await provider.getNetwork()).chainId);
  } catch (err) {
    throw new KlError(
      'KL_LEDGER_UNAVAILABLE',
      `cannot reach ${rpcUrl}: ${(err as Error).message}`.slice(0, 300),
    );
  } finally {
    provider.destroy();
  }
}

/**
 * The organisation of `dataDir` signs a proposal, once it has checked the proposal is what the
 * contributions make and that its own contribution is in it as it made it.
 * @throws KlError `KL_BAD_INPUT`, `KL_PASSPHRASE_WRONG`
 */
export function signGenesisProposal(o: {
  dataDir: string;
  passphrase: string;
  proposal: unknown;
  /** Every organisation expected, by name, with its validator key id (given out of band). */
  expected?: ReadonlyMap<string, string>;
}): GenesisSignature {
  const proposal = checkProposal(o.proposal);
  if (o.expected) checkProposalExpectations(proposal, o.expected);
  const own = canonicalize(ownContribution(o.dataDir));
  if (!proposal.contributions.some((c) => canonicalize(c) === own))
    throw new KlError(
      'KL_BAD_INPUT',
      'this organisation’s contribution is not in the proposal as it made it',
    );
  return signProposal(proposal, openKeyFile(dataPaths(o.dataDir).validatorKey, o.passphrase, 'validator'));
}

/** What {@link adoptGenesis} did. */
export interface Adopted {
  chain: string;
  /** `proposer`: the genesis pins this server; `member`: an admission made at genesis time does. */
  role: 'proposer' | 'member';
  /** True when this organisation's account governs the contract (and did the chain's steps). */
  governor: boolean;
}

/**
 * Finishes an organisation's data directory from the joint genesis: checks the genesis names this
 * directory's keys (the proposer's as genesis registrar and server, any other's in an admission),
 * checks the contract orders no other ledger, writes the ledger files (and, for a member, its join
 * request, its admission's public part), then, if this account governs the contract, binds it,
 * writes the admissions not on the chain yet and lets their accounts write.
 * @throws KlError `KL_BAD_INPUT` (a genesis without this directory's keys), `KL_CONFIG_INVALID`,
 * `KL_DATA_DIR`, `KL_LEDGER_UNAVAILABLE`
 */
export async function adoptGenesis(o: {
  dataDir: string;
  passphrase: string;
  joint: unknown;
  rpcUrl: string;
  log?: (line: string) => void;
}): Promise<Adopted> {
  const joint = checkJointGenesis(o.joint);
  const { genesis, chain } = joint;
  const engine = genesis.engine as EvmEngineInfo;
  const paths = dataPaths(o.dataDir);
  const own = ownContribution(o.dataDir);
  const role = roleIn(joint, own);
  const bound = await boundChain(o.rpcUrl, engine);
  if (bound !== null && bound !== chain)
    throw new KlError(
      'KL_CONFIG_INVALID',
      `the contract ${engine.contract} orders another ledger (${bound.slice(0, 16)}…)`,
    );
  if (!existsSync(paths.genesis))
    initAdoptedLedger({ dataDir: o.dataDir, passphrase: o.passphrase, genesis });
  else if (readGenesisFile(paths.genesis).chainId !== chain)
    throw new KlError('KL_DATA_DIR', `${o.dataDir} holds another ledger`);
  writeFileSync(paths.evmSettings, `${JSON.stringify({ rpcUrl: o.rpcUrl, confirmations: 1 }, null, 2)}\n`, {
    mode: 0o600,
  });
  if (role.admission) {
    const { approvals: _a, govSeq: _g, ...request } = role.admission;
    const file = checkJoinRequest({ v: 1, chain, ...request });
    writeFileSync(paths.joinRequest, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  }
  const account = nodeAccount(o.dataDir, o.passphrase);
  const governor = await governs(o.rpcUrl, engine, account.address);
  if (governor) await governorSteps({ ...o, joint, engine, account });
  else if (bound === null)
    (o.log ?? (() => {}))(
      'the contract is not bound yet: the governing organisation binds it when it adopts this genesis',
    );
  return { chain, role: role.admission ? 'member' : 'proposer', governor };
}

/** Where this directory's keys are in the joint genesis: as its server (proposer) or admitted. */
function roleIn(joint: JointGenesis, own: Contribution): { admission?: NodeAdmission } {
  const { genesis } = joint;
  const missing = () =>
    new KlError('KL_BAD_INPUT', `this genesis does not contain this data directory's keys (${own.org})`);
  if (!genesis.validators.some((v) => v.keyId === own.node.validator.keyId)) throw missing();
  if (
    genesis.registrars.some((r) => r.keyId === own.registrar.keyId) &&
    genesis.server?.fingerprint === own.node.server.fingerprint
  )
    return {};
  const admission = joint.admissions.find((a) => a.keyId === own.registrar.keyId);
  const { approvals: _a, govSeq: _g, ...admitted } = admission ?? { approvals: [], govSeq: 0 };
  if (
    !admission ||
    canonicalize(admitted) !== canonicalize({ ...own.registrar, name: own.org, node: own.node })
  )
    throw missing();
  return { admission };
}

/** True when `address` governs the contract. */
async function governs(rpcUrl: string, engine: EvmEngineInfo, address: string): Promise<boolean> {
  const provider = evmProvider(rpcUrl);
  try {
    const contract = new Contract(engine.contract, registryArtifact().abi, provider);
    return String(await contract.getFunction('governor')()).toLowerCase() === address.toLowerCase();
  } catch (err) {
    throw new KlError(
      'KL_LEDGER_UNAVAILABLE',
      `cannot read the contract's governor: ${(err as Error).message}`.slice(0, 300),
    );
  } finally {
    provider.destroy();
  }
}

/**
 * The governor's steps, each done only if not done yet (adopt can run again after a failure):
 * bind the contract, write the admissions (envelopes signed by the genesis registrar), then let
 * the admitted accounts write.
 */
async function governorSteps(o: {
  dataDir: string;
  passphrase: string;
  rpcUrl: string;
  joint: JointGenesis;
  engine: EvmEngineInfo;
  account: Wallet;
  log?: (line: string) => void;
}): Promise<void> {
  const log = o.log ?? (() => {});
  const { chain, admissions } = o.joint;
  const chainOpts = { rpcUrl: o.rpcUrl, privateKey: o.account.privateKey, engine: o.engine };
  if ((await boundChain(o.rpcUrl, o.engine)) === null) {
    await bindChain({ ...chainOpts, chain });
    log(`contract ${o.engine.contract} bound to ledger ${chain.slice(0, 16)}…`);
  }
  const registrar = openKeyFile(dataPaths(o.dataDir).registrarKey, o.passphrase, 'registrar');
  const sequencer = new EvmSequencer(chainOpts);
  try {
    const written = await admittedOnChain(sequencer.contract, o.engine.fromBlock);
    for (const admission of admissions) {
      if (written.has(admission.keyId)) continue;
      const { envelope, bytes } = signTransactionBytes({
        chain,
        intent: { type: 'RegistrarAdded', body: admission },
        signer: registrar,
        now: Date.now(),
        nonce: randomBytes(16).toString('hex'),
      });
      await sequencer.submit({ envelope, text: fromUtf8(bytes), txid: toHex(leafHash(bytes)) });
      log(`admission of ${admission.name} written`);
    }
  } finally {
    await sequencer.stop();
  }
  for (const a of admissions)
    if (a.node.account) await setRegistrarAccount({ ...chainOpts, account: a.node.account, allowed: true });
}

/** The registrar key ids of the `RegistrarAdded` transactions the contract ordered. */
async function admittedOnChain(contract: Contract, fromBlock: number): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const event of await contract.queryFilter(contract.filters.KeyledgerTx!(), fromBlock)) {
    try {
      const text = toUtf8String((event as unknown as { args: { envelope: string } }).args.envelope);
      const { tx } = JSON.parse(text) as { tx: { type: string; body: { keyId?: string } } };
      if (tx.type === 'RegistrarAdded' && tx.body.keyId) keys.add(tx.body.keyId);
    } catch {
      // not a keyledger transaction: the ledger leaves it out too
    }
  }
  return keys;
}
