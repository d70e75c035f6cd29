/**
 * Admitting a further server of a chain-ordered deployment, and removing a registrar
 * (docs/deploy-besu.md "A second server"): `keyledger admin registrar add|remove|list` through the
 * governor's DATA/admin.sock. Admitting writes `RegistrarAdded` with the server (approved by this
 * node's validator), then lets the server's Ethereum account write to the contract; removing stops
 * the account first, then writes `RegistrarRemoved`, so a removed registrar can no longer write.
 * With a genesis quorum above one, the same changes are proposed, signed offline by the validators
 * and submitted (`keyledger admin governance`, docs/ledger.md "Governance").
 */
import * as openpgp from 'openpgp';
import type { EmbeddedLedger } from '../ledger/embedded-ledger.js';
import {
  approvedChange,
  checkGovernanceProposal,
  type GovernanceProposal,
  makeGovernanceProposal,
  quorumNeeded,
} from '../ledger/governance-proposal.js';
import type { GovernanceIntent } from '../ledger/ledger.js';
import { checkJoinRequest } from '../ledger/node-admission.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import type { RegistrarRecord } from '../ledger/state-machine.js';
import type { Approval, IdentityRole, NodeInfo } from '../ledger/transactions.js';
import { KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';

/** What the governor does on the chain: let an Ethereum account write to the contract, or stop it. */
export interface RegistrarAccounts {
  setAccount(account: string, allowed: boolean): Promise<void>;
}

/** A registrar as operators see it. */
export interface RegistrarView {
  keyId: string;
  name: string;
  active: boolean;
  /** Height of the block that added it (0: the genesis). */
  since: number;
  /** The server it runs, for servers admitted to a chain-ordered deployment. */
  server?: { fingerprint: string; validator: string; account?: string; url?: string };
}

/** The registrars of the ledger, genesis first. */
export function listRegistrars(ledger: EmbeddedLedger): RegistrarView[] {
  return ledger
    .registrars()
    .map(view)
    .sort((a, b) => a.since - b.since || a.name.localeCompare(b.name));
}

function view(r: RegistrarRecord): RegistrarView {
  return {
    keyId: r.keyId,
    name: r.name,
    active: r.active,
    since: r.since,
    ...(r.node
      ? {
          server: {
            fingerprint: r.node.server.fingerprint,
            validator: r.node.validator.keyId,
            ...(r.node.account ? { account: r.node.account } : {}),
            ...(r.node.url ? { url: r.node.url } : {}),
          },
        }
      : {}),
  };
}

/**
 * Checks that an OpenPGP server key reads and has the fingerprint it claims.
 * @throws KlError `KL_BAD_INPUT`
 */
export async function checkServerKey(
  server: { fingerprint: string; publicKey: string },
  what: string,
): Promise<void> {
  let fingerprint: string;
  try {
    fingerprint = (await openpgp.readKey({ armoredKey: server.publicKey })).getFingerprint();
  } catch {
    throw new KlError('KL_BAD_INPUT', `the server key of ${what} is not a readable OpenPGP key`);
  }
  if (fingerprint !== server.fingerprint)
    throw new KlError('KL_BAD_INPUT', `the server key of ${what} does not have the fingerprint it claims`);
}

/** The body that admits a join request's server, checked for this ledger. */
async function admissionBody(ledger: EmbeddedLedger, value: unknown): Promise<AdmissionBody> {
  const request = checkJoinRequest(value);
  if (!ledger.genesis.engine)
    throw new KlError('KL_NOT_PERMITTED', 'only a ledger ordered by a chain can have further servers');
  if (request.chain !== ledger.chainId)
    throw new KlError('KL_BAD_INPUT', 'this join request is for another ledger than this server’s');
  const body = { keyId: request.keyId, publicKey: request.publicKey, name: request.name, node: request.node };
  await checkNewServer(ledger, body);
  return body;
}

/** A registrar with its server, as RegistrarAdded names it. */
type AdmissionBody = { keyId: string; publicKey: string; name: string; node: NodeInfo };

/** Its server key reads, and no active registrar has its key or name. */
async function checkNewServer(ledger: EmbeddedLedger, body: AdmissionBody): Promise<void> {
  await checkServerKey(body.node.server, 'the join request');
  const known = ledger.registrars().find((r) => r.keyId === body.keyId || r.name === body.name);
  if (known?.active)
    throw new KlError(
      'KL_REGISTRAR_EXISTS',
      `a registrar with this key or the name ${body.name} is already active`,
    );
}

/**
 * Writes an admission, then lets its account write (an account is let write only once its server
 * is on the ledger: a failed admission leaves no account able to write). On an EVM chain only the
 * contract's governor can; other engines have no accounts.
 */
async function writeAdmission(
  ledger: EmbeddedLedger,
  accounts: RegistrarAccounts | undefined,
  body: AdmissionBody,
  approved?: Approved,
): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }> {
  if (ledger.genesis.engine?.type === 'evm' && !accounts)
    throw new KlError('KL_NOT_PERMITTED', 'this server cannot let accounts write to the contract');
  const receipt = await ledger.governance({ type: 'RegistrarAdded', body }, approved);
  if (body.node.account && accounts) await accounts.setAccount(body.node.account, true);
  const added = ledger.registrars().find((r) => r.keyId === body.keyId);
  return { receipt, registrar: view(added!) };
}

/** Approvals given offline (governance-proposal.ts), for the governance sequence they name. */
type Approved = { govSeq: number; approvals: Approval[] };

/**
 * Admits the server of a join request: checks it is for this ledger, that its OpenPGP key reads and
 * has the fingerprint it claims, and that it is not a registrar yet; writes its admission, then
 * lets its account write.
 * @throws KlError `KL_BAD_INPUT` (another ledger, a bad key), `KL_REGISTRAR_EXISTS`,
 * `KL_NOT_PERMITTED` (not the governor), `KL_QUORUM_NOT_MET` (several approvals needed),
 * `KL_LEDGER_UNAVAILABLE`
 */
export async function admitServer(o: {
  ledger: EmbeddedLedger;
  accounts: RegistrarAccounts | undefined;
  request: unknown;
}): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }> {
  return writeAdmission(o.ledger, o.accounts, await admissionBody(o.ledger, o.request));
}

/** The active registrar `which` names (key id or name). */
function activeRegistrar(ledger: EmbeddedLedger, which: string): RegistrarRecord {
  const matches = ledger.registrars().filter((r) => r.active && (r.keyId === which || r.name === which));
  if (matches.length === 0)
    throw new KlError('KL_REGISTRAR_UNKNOWN', `no active registrar has the key id or name ${which}`);
  if (matches.length > 1)
    throw new KlError('KL_BAD_INPUT', `several registrars are named ${which}: give the key id`);
  if (ledger.registrars().filter((r) => r.active).length === 1)
    throw new KlError(
      'KL_NOT_PERMITTED',
      'the last active registrar cannot be removed: nobody could write any more',
    );
  return matches[0]!;
}

/** Stops the registrar's account, then writes its removal. */
async function writeRemoval(
  ledger: EmbeddedLedger,
  accounts: RegistrarAccounts | undefined,
  target: RegistrarRecord,
  approved?: Approved,
): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }> {
  if (!approved && ledger.genesis.quorum > 1) throw quorumNeeded(ledger.genesis.quorum);
  if (target.node?.account && accounts) await accounts.setAccount(target.node.account, false);
  const receipt = await ledger.governance(
    { type: 'RegistrarRemoved', body: { keyId: target.keyId } },
    approved,
  );
  return { receipt, registrar: { ...view(target), active: false } };
}

/**
 * Removes a registrar (by key id or name): its account stops writing on the chain, then
 * `RegistrarRemoved` is written; its server's later writes are refused by the contract and by the
 * ledger's rules.
 * @throws KlError `KL_REGISTRAR_UNKNOWN`, `KL_NOT_PERMITTED`, `KL_QUORUM_NOT_MET`, `KL_LEDGER_UNAVAILABLE`
 */
export async function removeRegistrar(o: {
  ledger: EmbeddedLedger;
  accounts: RegistrarAccounts | undefined;
  which: string;
}): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }> {
  return writeRemoval(o.ledger, o.accounts, activeRegistrar(o.ledger, o.which));
}

/** A governance change as an operator asks for it (`keyledger admin governance propose`). */
export type ChangeRequest =
  | { type: 'RegistrarAdded'; request: unknown }
  | { type: 'RegistrarRemoved'; which: string }
  | { type: 'RoleGranted' | 'RoleRevoked'; id: string; role: IdentityRole };

/**
 * The proposal of a change at the ledger's current governance sequence, checked as the change
 * itself would be (a join request for this ledger, an active registrar), for validators to sign.
 * @throws KlError `KL_BAD_INPUT`, `KL_REGISTRAR_UNKNOWN`, `KL_REGISTRAR_EXISTS`, `KL_TX_MALFORMED`
 */
export async function proposeChange(
  ledger: EmbeddedLedger,
  change: ChangeRequest,
): Promise<GovernanceProposal> {
  const intent: GovernanceIntent =
    change.type === 'RegistrarAdded'
      ? { type: 'RegistrarAdded', body: await admissionBody(ledger, change.request) }
      : change.type === 'RegistrarRemoved'
        ? { type: 'RegistrarRemoved', body: { keyId: activeRegistrar(ledger, String(change.which)).keyId } }
        : { type: change.type, body: { id: canonicalIdentity(String(change.id)), role: change.role } };
  return makeGovernanceProposal(ledger.chainId, intent, ledger.governanceSeq());
}

/**
 * Writes a proposal once a quorum of the genesis validators signed it (`keyledger admin governance
 * submit`): an admission lets its account write after it is written, a removal stops the account
 * first, as {@link admitServer} and {@link removeRegistrar} do.
 * @throws KlError `KL_QUORUM_NOT_MET`, `KL_GOVERNANCE_STALE`, `KL_TX_WRONG_CHAIN`, `KL_NOT_PERMITTED`,
 * `KL_BAD_INPUT`, and the ledger's refusals
 */
export async function submitChange(o: {
  ledger: EmbeddedLedger;
  accounts: RegistrarAccounts | undefined;
  proposal: unknown;
  signatures: unknown;
}): Promise<{ receipt: TransactionReceipt; type: string; registrar?: RegistrarView }> {
  const proposal = checkGovernanceProposal(o.proposal);
  if (!Array.isArray(o.signatures)) throw new KlError('KL_BAD_INPUT', 'signatures must be a list');
  const { type, body } = approvedChange(proposal, o.ledger.genesis, o.signatures);
  const { approvals, govSeq, ...rest } = body;
  const approved = { govSeq, approvals };
  if (type === 'RegistrarAdded') {
    const admission = rest as AdmissionBody;
    if (!admission.node) throw new KlError('KL_BAD_INPUT', 'this proposal admits no server');
    await checkNewServer(o.ledger, admission);
    return { type, ...(await writeAdmission(o.ledger, o.accounts, admission, approved)) };
  }
  if (type === 'RegistrarRemoved') {
    const target = activeRegistrar(o.ledger, (rest as { keyId: string }).keyId);
    return { type, ...(await writeRemoval(o.ledger, o.accounts, target, approved)) };
  }
  const role = rest as { id: string; role: IdentityRole };
  return { type, receipt: await o.ledger.governance({ type, body: role }, approved) };
}
