/**
 * A genesis made jointly by several organisations (docs/deploy-besu.md "Several organisations"), as
 * files passed around offline: each organisation's **contribution** (its validator, registrar and
 * server keys and Ethereum account, signed by its validator), the **proposal** (the exact genesis
 * the contributions make, and the admissions of the other organisations' servers), each
 * organisation's **signature** (its validator's consent to the chain id, and its approvals of those
 * admissions), and the **joint genesis** that combines them.
 *
 * The genesis names every organisation's validator (the governance quorum is counted among them),
 * the proposer's registrar and server key; the other organisations' servers are admitted by
 * `RegistrarAdded` transactions with their `node`, approved at genesis time by every validator:
 * certificates that clients and auditors check with the genesis alone (node-admission.ts).
 */
import { utf8 } from '../protocol/bytes.js';
import { canonicalize } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { check } from '../protocol/schemas/check.js';
import { TX_BODY_SCHEMAS } from '../protocol/schemas/transactions.js';
import { GENESIS_CONTRIBUTION_DOMAIN, GENESIS_SIGNATURE_DOMAIN, GOVERNANCE_DOMAIN } from './domains.js';
import { chainIdOf, checkGenesis, type EvmEngineInfo, type Genesis } from './genesis.js';
import { PLACEHOLDER_APPROVAL } from './governance-proposal.js';
import { type NodeAdmission, verifyNodeAdmission } from './node-admission.js';
import { keyIdMatches, type PublicKeyInfo, type SigningKey, verifySignature } from './signing-keys.js';
import { governanceMessage } from './state-machine.js';
import type { Approval, NodeInfo } from './transactions.js';

/** One organisation's keys, signed by its validator key. */
export interface Contribution {
  v: 1;
  kind: 'keyledger-genesis-contribution';
  /** The organisation's name: its registrar's name in the ledger. */
  org: string;
  registrar: PublicKeyInfo;
  /** Its first server: validator key, OpenPGP server key, Ethereum account, public URL. */
  node: NodeInfo & { account: string };
  /** The validator's signature over the rest (GENESIS_CONTRIBUTION_DOMAIN ‖ JCS). */
  sig: string;
}

/** An admission made at genesis time, before its approvals. */
export type PendingAdmission = Omit<NodeAdmission, 'approvals'>;

/** The exact genesis the contributions make, and the admissions of the servers it does not pin. */
export interface GenesisProposal {
  v: 1;
  kind: 'keyledger-genesis-proposal';
  genesis: Genesis;
  chain: string;
  contributions: Contribution[];
  admissions: PendingAdmission[];
}

/** An organisation's consent: its validator's signature of the chain id and its admission approvals. */
export interface GenesisSignature {
  v: 1;
  kind: 'keyledger-genesis-signature';
  chain: string;
  validator: string;
  sig: string;
  /** One approval signature per admission of the proposal, in its order. */
  approvals: string[];
}

/** The final file: the genesis, every validator's signature of it, and the approved admissions. */
export interface JointGenesis {
  v: 1;
  kind: 'keyledger-joint-genesis';
  genesis: Genesis;
  chain: string;
  signatures: Approval[];
  admissions: NodeAdmission[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Refuses anything that is not an object of `kind`, v1 (what file was given, said plainly). */
function expectKind(value: unknown, kind: string, what: string): Record<string, unknown> {
  if (!isObject(value) || value.v !== 1 || value.kind !== kind)
    throw new KlError('KL_BAD_INPUT', `this is not a ${what} (${kind})`);
  return value;
}

const contributionMessage = (c: Omit<Contribution, 'sig'>): Uint8Array =>
  utf8(canonicalize({ v: c.v, kind: c.kind, org: c.org, registrar: c.registrar, node: c.node }));

/** The contribution of an organisation whose keys these are, signed by `validator`. */
export function makeContribution(o: {
  org: string;
  validator: SigningKey;
  registrar: PublicKeyInfo;
  node: Omit<NodeInfo, 'validator'> & { account: string };
}): Contribution {
  const body: Omit<Contribution, 'sig'> = {
    v: 1,
    kind: 'keyledger-genesis-contribution',
    org: o.org,
    registrar: o.registrar,
    node: { ...o.node, validator: o.validator.info(), account: o.node.account.toLowerCase() },
  };
  checkContributionShape(body);
  return { ...body, sig: o.validator.sign(GENESIS_CONTRIBUTION_DOMAIN, contributionMessage(body)) };
}

/** Shape and key ids, as a server admission would be checked (the RegistrarAdded body schema). */
function checkContributionShape(c: Omit<Contribution, 'sig'>): void {
  if (!isObject(c.node) || !isObject(c.registrar))
    throw new KlError('KL_BAD_INPUT', 'the contribution names no registrar or no server');
  check(
    TX_BODY_SCHEMAS.RegistrarAdded,
    { ...c.registrar, name: c.org, node: c.node, govSeq: 0, approvals: [PLACEHOLDER_APPROVAL] },
    'KL_BAD_INPUT',
    'contribution',
  );
  if (!c.node.account) throw new KlError('KL_BAD_INPUT', 'the contribution names no Ethereum account');
  if (!keyIdMatches(c.registrar) || !keyIdMatches(c.node.validator))
    throw new KlError('KL_BAD_INPUT', 'a key id of the contribution does not match its key');
}

/**
 * Checks a contribution: its shape, key ids, and its validator's signature.
 * @throws KlError `KL_BAD_INPUT` naming what is wrong.
 */
export function checkContribution(value: unknown): Contribution {
  const v = expectKind(value, 'keyledger-genesis-contribution', 'genesis contribution');
  const keys = Object.keys(v).sort().join(',');
  if (keys !== 'kind,node,org,registrar,sig,v')
    throw new KlError('KL_BAD_INPUT', 'the contribution has other fields than a contribution has');
  const c = v as unknown as Contribution;
  checkContributionShape(c);
  if (
    !verifySignature(c.node.validator.publicKey, GENESIS_CONTRIBUTION_DOMAIN, contributionMessage(c), c.sig)
  )
    throw new KlError(
      'KL_BAD_INPUT',
      `the contribution of ${c.org} is not signed by its validator key (altered, or made by someone else)`,
    );
  return c;
}

/** Options of {@link makeProposal}. */
export interface ProposalOptions {
  /** The contributions, the proposer's first: its registrar and server are the genesis's. */
  contributions: readonly unknown[];
  quorum: number;
  name: string;
  createdAt: number;
  /** The EVM chain and contract that order the ledger. */
  engine: EvmEngineInfo;
}

/** Each contribution, none naming what another names, and the quorum several organisations need. */
function checkContributions(o: ProposalOptions): Contribution[] {
  const contributions = o.contributions.map(checkContribution);
  if (contributions.length === 0)
    throw new KlError('KL_BAD_INPUT', 'a genesis needs at least one contribution');
  const fields: Array<[string, (c: Contribution) => string]> = [
    ['organisation name', (c) => c.org],
    ['validator key', (c) => c.node.validator.keyId],
    ['registrar key', (c) => c.registrar.keyId],
    ['server key', (c) => c.node.server.fingerprint],
    ['account', (c) => c.node.account],
  ];
  for (const [field, of] of fields) {
    const values = contributions.map(of);
    if (new Set(values).size !== values.length)
      throw new KlError('KL_BAD_INPUT', `two contributions have the same ${field}`);
  }
  // The genesis's own rule (a majority) refuses it too; this says why in the operator's words.
  if (contributions.length > 1 && o.quorum < 2)
    throw new KlError(
      'KL_BAD_INPUT',
      'several organisations with a quorum of 1 would let any one of them change the governance alone: give --quorum 2 or more (a majority)',
    );
  return contributions;
}

/**
 * The genesis that contributions make, and the admissions of the servers of all but the first
 * (govSeq 0, 1, … in order).
 * @throws KlError `KL_BAD_INPUT` (a key or organisation named twice, a quorum that is not a
 * majority, or of 1 for several organisations unless allowed).
 */
export function makeProposal(o: ProposalOptions): GenesisProposal {
  const contributions = checkContributions(o);
  const first = contributions[0]!;
  const genesis = checkGenesis({
    v: 1,
    name: o.name,
    createdAt: o.createdAt,
    validators: contributions.map((c) => c.node.validator),
    quorum: o.quorum,
    registrars: [{ ...first.registrar, name: first.org }],
    server: first.node.server,
    engine: o.engine,
  });
  const admissions = contributions
    .slice(1)
    .map((c, govSeq): PendingAdmission => ({ ...c.registrar, name: c.org, node: c.node, govSeq }));
  return {
    v: 1,
    kind: 'keyledger-genesis-proposal',
    genesis,
    chain: chainIdOf(genesis),
    contributions,
    admissions,
  };
}

/**
 * Checks a proposal: every contribution, and that its genesis and admissions are exactly the ones
 * those contributions make (nothing added, dropped or changed).
 * @throws KlError `KL_BAD_INPUT`
 */
export function checkProposal(value: unknown): GenesisProposal {
  const p = expectKind(value, 'keyledger-genesis-proposal', 'genesis proposal') as unknown as GenesisProposal;
  if (!Array.isArray(p.contributions) || !isObject(p.genesis))
    throw new KlError('KL_BAD_INPUT', 'the proposal holds no genesis or no contributions');
  const g = checkGenesis(p.genesis);
  if (g.engine?.type !== 'evm')
    throw new KlError('KL_BAD_INPUT', 'a joint genesis is ordered by an EVM chain (engine)');
  const made = makeProposal({
    contributions: p.contributions,
    quorum: g.quorum,
    name: g.name,
    createdAt: g.createdAt,
    engine: g.engine,
  });
  if (canonicalize(made) !== canonicalize(value))
    throw new KlError(
      'KL_BAD_INPUT',
      'the proposal is not the genesis its contributions make (its genesis, chain or admissions were changed)',
    );
  return made;
}

/** What a person checks of one organisation of a proposal before signing it. */
export interface OrganisationSummary {
  org: string;
  validator: string;
  registrar: string;
  account: string;
  serverFingerprint: string;
  url?: string;
}

/** One line of facts per organisation of `proposal`, the proposer's first. */
export function summariseProposal(proposal: GenesisProposal): OrganisationSummary[] {
  return proposal.contributions.map((c) => ({
    org: c.org,
    validator: c.node.validator.keyId,
    registrar: c.registrar.keyId,
    account: c.node.account,
    serverFingerprint: c.node.server.fingerprint,
    ...(c.node.url ? { url: c.node.url } : {}),
  }));
}

/**
 * Checks a proposal against what its signer knows from outside it: `expected` maps every
 * organisation the signer expects to its validator key id (given out of band), and nothing else may
 * be in the proposal (an organisation made up by the proposer would give it a second vote); a
 * (a quorum of 1 among several organisations is never made: see {@link makeProposal}).
 * @throws KlError `KL_BAD_INPUT`
 */
export function checkProposalExpectations(
  proposal: GenesisProposal,
  expected: ReadonlyMap<string, string>,
): void {
  const orgs = new Map(proposal.contributions.map((c) => [c.org, c.node.validator.keyId]));
  for (const [org, validator] of expected) {
    const found = orgs.get(org);
    if (found === undefined) throw new KlError('KL_BAD_INPUT', `the proposal has no organisation ${org}`);
    if (found.toLowerCase() !== validator.toLowerCase())
      throw new KlError('KL_BAD_INPUT', `organisation ${org} has validator key ${found}, not ${validator}`);
  }
  const unexpected = [...orgs.keys()].filter((org) => !expected.has(org));
  if (unexpected.length > 0)
    throw new KlError(
      'KL_BAD_INPUT',
      `the proposal has organisations not expected: ${unexpected.join(', ')}`,
    );
}

const admissionMessage = (chain: string, a: PendingAdmission) =>
  governanceMessage(chain, 'RegistrarAdded', a);

/**
 * An organisation signs a proposal with its validator key: the chain id (its consent to this
 * genesis) and an approval of every admission.
 * @throws KlError `KL_NOT_PERMITTED` when the key is not a validator of the proposed genesis.
 */
export function signProposal(proposal: GenesisProposal, validator: SigningKey): GenesisSignature {
  if (!proposal.genesis.validators.some((v) => v.keyId === validator.keyId))
    throw new KlError('KL_NOT_PERMITTED', 'this validator key is not one the proposed genesis names');
  return {
    v: 1,
    kind: 'keyledger-genesis-signature',
    chain: proposal.chain,
    validator: validator.keyId,
    sig: validator.sign(GENESIS_SIGNATURE_DOMAIN, utf8(proposal.chain)),
    approvals: proposal.admissions.map((a) =>
      validator.sign(GOVERNANCE_DOMAIN, admissionMessage(proposal.chain, a)),
    ),
  };
}

/** Checks one signature file against the proposal; returns its validator's key id. */
function checkSignature(proposal: GenesisProposal, value: unknown): GenesisSignature {
  const s = expectKind(
    value,
    'keyledger-genesis-signature',
    'genesis signature',
  ) as unknown as GenesisSignature;
  if (s.chain !== proposal.chain)
    throw new KlError('KL_BAD_INPUT', 'a signature is of another genesis than this proposal');
  const v = proposal.genesis.validators.find((x) => x.keyId === s.validator);
  if (!v) throw new KlError('KL_NOT_PERMITTED', `${String(s.validator)} is not a validator of this genesis`);
  if (!verifySignature(v.publicKey, GENESIS_SIGNATURE_DOMAIN, utf8(proposal.chain), s.sig))
    throw new KlError('KL_BAD_INPUT', `the genesis signature of validator ${v.keyId} does not verify`);
  if (!Array.isArray(s.approvals) || s.approvals.length !== proposal.admissions.length)
    throw new KlError('KL_BAD_INPUT', `validator ${v.keyId} did not approve every admission`);
  proposal.admissions.forEach((a, i) => {
    if (
      !verifySignature(v.publicKey, GOVERNANCE_DOMAIN, admissionMessage(proposal.chain, a), s.approvals[i]!)
    )
      throw new KlError('KL_BAD_INPUT', `validator ${v.keyId}'s approval of ${a.name} does not verify`);
  });
  return s;
}

/**
 * Combines a proposal and one signature from every contributing organisation into the joint
 * genesis.
 * @throws KlError `KL_BAD_INPUT` (a signature of another genesis, or that does not verify, or given
 * twice), `KL_NOT_PERMITTED` (not a validator), `KL_QUORUM_NOT_MET` (an organisation has not signed).
 */
export function combineProposal(proposal: GenesisProposal, signatures: readonly unknown[]): JointGenesis {
  const byValidator = new Map<string, GenesisSignature>();
  for (const value of signatures) {
    const s = checkSignature(proposal, value);
    if (byValidator.has(s.validator))
      throw new KlError('KL_BAD_INPUT', `validator ${s.validator} signed twice`);
    byValidator.set(s.validator, s);
  }
  const missing = proposal.contributions.filter((c) => !byValidator.has(c.node.validator.keyId));
  if (missing.length > 0)
    throw new KlError(
      'KL_QUORUM_NOT_MET',
      `not signed yet by: ${missing.map((c) => c.org).join(', ')} (every contributing organisation signs the genesis)`,
    );
  const ordered = proposal.genesis.validators.map((v) => byValidator.get(v.keyId)!);
  return {
    v: 1,
    kind: 'keyledger-joint-genesis',
    genesis: proposal.genesis,
    chain: proposal.chain,
    signatures: ordered.map((s) => ({ validator: s.validator, sig: s.sig })),
    admissions: proposal.admissions.map((a, i) => ({
      ...a,
      approvals: ordered.map((s) => ({ validator: s.validator, sig: s.approvals[i]! })),
    })),
  };
}

/**
 * Checks a joint genesis with itself alone: the genesis, a valid signature of its chain id by every
 * validator, and admissions that verify (node-admission.ts), numbered 0, 1, … in order.
 * @throws KlError `KL_BAD_INPUT`
 */
export function checkJointGenesis(value: unknown): JointGenesis {
  const j = expectKind(value, 'keyledger-joint-genesis', 'joint genesis') as unknown as JointGenesis;
  const genesis = checkGenesis(j.genesis);
  const chain = chainIdOf(genesis);
  if (j.chain !== chain)
    throw new KlError('KL_BAD_INPUT', 'the joint genesis names another chain id than its genesis');
  if (genesis.engine?.type !== 'evm')
    throw new KlError('KL_BAD_INPUT', 'a joint genesis is ordered by an EVM chain (engine)');
  if (!Array.isArray(j.signatures) || !Array.isArray(j.admissions))
    throw new KlError('KL_BAD_INPUT', 'the joint genesis holds no signatures or admissions');
  for (const v of genesis.validators) {
    const s = j.signatures.find((x) => isObject(x) && x.validator === v.keyId);
    if (!s || !verifySignature(v.publicKey, GENESIS_SIGNATURE_DOMAIN, utf8(chain), s.sig))
      throw new KlError('KL_BAD_INPUT', `validator ${v.keyId} has not signed this genesis`);
  }
  // Every organisation but the proposer (the first validator, whose server the genesis pins) has its
  // server admitted at genesis time, in the order of the validators: the consents are signatures of
  // the chain id alone, so an admission dropped after signing would otherwise go unnoticed.
  if (j.admissions.length !== genesis.validators.length - 1)
    throw new KlError(
      'KL_BAD_INPUT',
      `the joint genesis admits ${j.admissions.length} servers for ${genesis.validators.length - 1} other organisations`,
    );
  j.admissions.forEach((admission, i) => {
    const r = verifyNodeAdmission({ genesis, chain, admission });
    if (!r.verified) throw new KlError('KL_BAD_INPUT', `admission ${i}: ${r.reason}`);
    if (r.admission.govSeq !== i)
      throw new KlError('KL_BAD_INPUT', `admission ${i} is numbered ${r.admission.govSeq}`);
    if (r.admission.node?.validator.keyId !== genesis.validators[i + 1]?.keyId)
      throw new KlError(
        'KL_BAD_INPUT',
        `admission ${i} is not the server of validator ${i + 1}'s organisation`,
      );
  });
  return {
    v: 1,
    kind: 'keyledger-joint-genesis',
    genesis,
    chain,
    signatures: j.signatures,
    admissions: j.admissions,
  };
}
