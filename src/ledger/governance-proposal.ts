/**
 * Governance changes approved by several organisations (docs/ledger.md "Governance"), as files: a
 * **proposal** (the change with the governance sequence it applies at), each validator's
 * **signature** of it (made offline with its sealed key), and the approved change they combine
 * into once a quorum of the genesis validators signed. The ledger's rules (state-machine.ts) decide
 * again when it is written: these checks only say early and clearly what they would refuse.
 */
import { KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { GOVERNANCE_DOMAIN } from './domains.js';
import { chainIdOf, type Genesis } from './genesis.js';
import type { GovernanceIntent } from './ledger.js';
import type { SigningKey } from './signing-keys.js';
import { verifySignature } from './signing-keys.js';
import { countApprovals, type GovernanceType, governanceMessage } from './state-machine.js';
import { type Approval, checkBody, type TxBodies } from './transactions.js';

/** Stands in for approvals when a governance body is checked before it has any. */
export const PLACEHOLDER_APPROVAL: Approval = { validator: '0'.repeat(32), sig: 'A'.repeat(86) };

/**
 * The refusal of a change approved by one validator where the genesis needs more, saying how to
 * gather the approvals.
 */
export function quorumNeeded(quorum: number): KlError {
  return new KlError(
    'KL_QUORUM_NOT_MET',
    `this ledger's governance needs ${quorum} validator approvals: write the change with \`keyledger admin governance propose\`, have the validators sign it (\`keyledger admin governance sign\`) and \`keyledger admin governance submit\` it`,
    { valid: 1, quorum },
  );
}

const GOVERNANCE_TYPES: readonly GovernanceType[] = [
  'RegistrarAdded',
  'RegistrarRemoved',
  'RoleGranted',
  'RoleRevoked',
];

/** A governance body without its approvals. */
export type UnapprovedBody<T extends GovernanceType = GovernanceType> = Omit<TxBodies[T], 'approvals'>;

/** A governance change waiting for approvals. */
export interface GovernanceProposal {
  v: 1;
  kind: 'keyledger-governance-proposal';
  chain: string;
  type: GovernanceType;
  /** The body, with the governance sequence it applies at, without approvals. */
  body: UnapprovedBody;
}

/** One validator's approval of a proposal. */
export interface GovernanceSignature {
  v: 1;
  kind: 'keyledger-governance-signature';
  chain: string;
  /** SHA-256 of the approved message, hex: says which proposal this signs. */
  proposal: string;
  approval: Approval;
}

/** A change with its approvals, ready to be written. */
export type ApprovedChange = { type: GovernanceType; body: TxBodies[GovernanceType] };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The proposal of `change` at governance sequence `govSeq` on ledger `chain`.
 * @throws KlError `KL_TX_MALFORMED` for a body its type does not allow.
 */
export function makeGovernanceProposal(
  chain: string,
  change: GovernanceIntent,
  govSeq: number,
): GovernanceProposal {
  const body = { ...change.body, govSeq } as UnapprovedBody;
  checkBody(change.type, { ...body, approvals: [PLACEHOLDER_APPROVAL] });
  return { v: 1, kind: 'keyledger-governance-proposal', chain, type: change.type, body };
}

/**
 * Checks a proposal read from a file.
 * @throws KlError `KL_BAD_INPUT`, `KL_TX_MALFORMED`
 */
export function checkGovernanceProposal(value: unknown): GovernanceProposal {
  if (!isObject(value) || value.v !== 1 || value.kind !== 'keyledger-governance-proposal')
    throw new KlError('KL_BAD_INPUT', 'this is not a governance proposal (keyledger-governance-proposal)');
  const { chain, type, body } = value;
  if (typeof chain !== 'string' || !/^[0-9a-f]{64}$/.test(chain))
    throw new KlError('KL_BAD_INPUT', 'the governance proposal names no valid ledger (chain)');
  if (!GOVERNANCE_TYPES.includes(type as GovernanceType))
    throw new KlError('KL_BAD_INPUT', 'the governance proposal is of no governance type');
  if (!isObject(body) || 'approvals' in body)
    throw new KlError('KL_BAD_INPUT', 'the governance proposal has no body, or one with approvals');
  checkBody(type as GovernanceType, { ...body, approvals: [PLACEHOLDER_APPROVAL] });
  return {
    v: 1,
    kind: 'keyledger-governance-proposal',
    chain,
    type: type as GovernanceType,
    body: body as UnapprovedBody,
  };
}

const messageOf = (p: GovernanceProposal) => governanceMessage(p.chain, p.type, p.body);

/** Refuses a proposal of another ledger than the genesis's. */
function sameChain(p: GovernanceProposal, genesis: Genesis): void {
  if (p.chain !== chainIdOf(genesis))
    throw new KlError('KL_TX_WRONG_CHAIN', 'this governance proposal is for another ledger than this one');
}

/**
 * A validator approves a proposal of its ledger.
 * @throws KlError `KL_TX_WRONG_CHAIN`, `KL_NOT_PERMITTED` (not a validator of the genesis)
 */
export function signGovernanceProposal(
  proposal: GovernanceProposal,
  genesis: Genesis,
  validator: SigningKey,
): GovernanceSignature {
  sameChain(proposal, genesis);
  if (!genesis.validators.some((v) => v.keyId === validator.keyId))
    throw new KlError(
      'KL_NOT_PERMITTED',
      'this key is not a validator of the ledger: its approval counts for nothing',
    );
  const message = messageOf(proposal);
  return {
    v: 1,
    kind: 'keyledger-governance-signature',
    chain: proposal.chain,
    proposal: sha256Hex(message),
    approval: { validator: validator.keyId, sig: validator.sign(GOVERNANCE_DOMAIN, message) },
  };
}

/**
 * Combines a proposal's signatures into the approved change.
 * @throws KlError `KL_TX_WRONG_CHAIN` (another ledger), `KL_BAD_INPUT` (a signature of another
 * proposal, one that does not verify, a validator twice), `KL_NOT_PERMITTED` (a key that is no
 * validator of the genesis), `KL_QUORUM_NOT_MET` (fewer valid approvals than the genesis quorum).
 */
export function approvedChange(
  proposal: GovernanceProposal,
  genesis: Genesis,
  signatures: readonly unknown[],
): ApprovedChange {
  sameChain(proposal, genesis);
  const message = messageOf(proposal);
  const digest = sha256Hex(message);
  const approvals: Approval[] = [];
  for (const s of signatures) {
    if (!isObject(s) || s.kind !== 'keyledger-governance-signature' || !isObject(s.approval))
      throw new KlError(
        'KL_BAD_INPUT',
        'this is not a governance signature (keyledger-governance-signature)',
      );
    if (s.chain !== proposal.chain)
      throw new KlError('KL_TX_WRONG_CHAIN', 'a signature is for another ledger');
    if (s.proposal !== digest)
      throw new KlError('KL_BAD_INPUT', 'a signature approves another proposal than this one');
    const a = s.approval as unknown as Approval;
    const v = genesis.validators.find((x) => x.keyId === a.validator);
    if (!v)
      throw new KlError(
        'KL_NOT_PERMITTED',
        `${String(a.validator).slice(0, 32)} is not a validator of this ledger`,
      );
    if (approvals.some((x) => x.validator === v.keyId))
      throw new KlError('KL_BAD_INPUT', `validator ${v.keyId} approved twice`);
    if (!verifySignature(v.publicKey, GOVERNANCE_DOMAIN, message, a.sig))
      throw new KlError('KL_BAD_INPUT', `the approval of validator ${v.keyId} does not verify`);
    approvals.push({ validator: v.keyId, sig: a.sig });
  }
  // The rule the ledger applies (state-machine.ts), asked before anything is written.
  const valid = countApprovals(genesis, message, approvals);
  if (valid < genesis.quorum)
    throw new KlError(
      'KL_QUORUM_NOT_MET',
      `${valid} validator approval(s); this ledger's governance needs ${genesis.quorum}`,
      { valid, quorum: genesis.quorum },
    );
  return { type: proposal.type, body: { ...proposal.body, approvals } as TxBodies[GovernanceType] };
}
