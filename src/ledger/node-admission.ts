/**
 * Servers of one deployment (docs/deploy-besu.md "A second server"): on a ledger ordered by a chain,
 * every server derives the same blocks from the chain and signs them with its own validator key. The
 * genesis names the first server's keys; every later one is admitted by a governance transaction,
 * `RegistrarAdded` with a `node`, that a quorum of the genesis validators approved. That admission
 * is a certificate anyone can check with the genesis alone — a client meeting a second server, an
 * auditor reading its ledger, the server itself at start — so nothing the admitted server says
 * about itself is needed to trust its blocks.
 */
import { KlError } from '../protocol/errors.js';
import { check } from '../protocol/schemas/check.js';
import { TX_BODY_SCHEMAS } from '../protocol/schemas/transactions.js';
import type { BlockSigners } from './block.js';
import type { Genesis } from './genesis.js';
import type { PublicKeyInfo } from './signing-keys.js';
import { keyIdMatches } from './signing-keys.js';
import { countApprovals, governanceMessage, type RegistrarRecord } from './state-machine.js';
import type { NodeInfo, TxBodies } from './transactions.js';

/** A server's admission: the `RegistrarAdded` body that admitted it, approvals included. */
export type NodeAdmission = TxBodies['RegistrarAdded'] & { node: NodeInfo };

/**
 * What a joining server hands the governor (DATA/join-request.json): the ledger it joins, its
 * registrar key and name, and its server. The governor's `admin registrar add` turns it into an
 * admission.
 */
export interface JoinRequest {
  v: 1;
  /** Chain id of the ledger joined. */
  chain: string;
  keyId: string;
  publicKey: string;
  name: string;
  node: NodeInfo;
}

/**
 * Checks a join request's shape and key ids (the governor's server checks the OpenPGP key and its
 * fingerprint, and the chain, before admitting it).
 * @throws KlError `KL_BAD_INPUT`
 */
export function checkJoinRequest(value: unknown): JoinRequest {
  const request = value as Partial<JoinRequest> | null;
  if (typeof request !== 'object' || request === null || request.v !== 1 || typeof request.chain !== 'string')
    throw new KlError('KL_BAD_INPUT', 'this is not a keyledger join request (join-request.json)');
  if (!/^[0-9a-f]{64}$/.test(request.chain))
    throw new KlError('KL_BAD_INPUT', 'the join request names no valid ledger (chain)');
  const { v: _v, chain, ...body } = request;
  const checked = check(
    TX_BODY_SCHEMAS.RegistrarAdded,
    { ...body, govSeq: 0, approvals: [{ validator: '0'.repeat(32), sig: 'A'.repeat(86) }] },
    'KL_BAD_INPUT',
    'join request',
  ) as NodeAdmission;
  if (!checked.node) throw new KlError('KL_BAD_INPUT', 'the join request names no server');
  if (!keyIdMatches(checked) || !keyIdMatches(checked.node.validator))
    throw new KlError('KL_BAD_INPUT', 'a key id of the join request does not match its key');
  return {
    v: 1,
    chain,
    keyId: checked.keyId,
    publicKey: checked.publicKey,
    name: checked.name,
    node: checked.node,
  };
}

/** A server's removal: the `RegistrarRemoved` body that removed it, approvals included. */
export type NodeRemoval = TxBodies['RegistrarRemoved'];

/** The removal certificate kept in a removed server's state record, or null. */
export function removalOf(record: RegistrarRecord): NodeRemoval | null {
  if (!record.node || !record.removal) return null;
  return { keyId: record.keyId, govSeq: record.removal.govSeq, approvals: record.removal.approvals };
}

/**
 * Checks a removal with the genesis alone (shape, a quorum of the genesis validators' approvals):
 * a client that sees one stops trusting that server for good, whoever showed it.
 */
export function verifyNodeRemoval(options: {
  genesis: Genesis;
  chain: string;
  removal: unknown;
}): { verified: true; removal: NodeRemoval } | { verified: false; reason: string } {
  let removal: NodeRemoval;
  try {
    removal = check(
      TX_BODY_SCHEMAS.RegistrarRemoved,
      options.removal,
      'KL_BAD_INPUT',
      'removal',
    ) as NodeRemoval;
  } catch (err) {
    return { verified: false, reason: (err as Error).message };
  }
  const message = governanceMessage(options.chain, 'RegistrarRemoved', removal);
  const valid = countApprovals(options.genesis, message, removal.approvals);
  if (valid < options.genesis.quorum)
    return { verified: false, reason: `the removal carries ${valid} valid validator approval(s)` };
  return { verified: true, removal };
}

/** The admission kept in a registrar's state record, or null for a registrar without a server. */
export function admissionOf(record: RegistrarRecord): NodeAdmission | null {
  if (!record.node || !record.admission) return null;
  return {
    keyId: record.keyId,
    publicKey: record.publicKey,
    name: record.name,
    node: record.node,
    govSeq: record.admission.govSeq,
    approvals: record.admission.approvals,
  };
}

/** Options of {@link verifyNodeAdmission}. */
export interface VerifyNodeAdmissionOptions {
  genesis: Genesis;
  /** The ledger's chain id (hash of the genesis). */
  chain: string;
  /** The admission as received (checked for shape here). */
  admission: unknown;
}

/** What {@link verifyNodeAdmission} found. */
export type NodeAdmissionResult =
  | { verified: true; admission: NodeAdmission }
  | { verified: false; reason: string };

/**
 * Checks an admission with the genesis alone: its shape, that the genesis orders the ledger on a
 * chain, that its key ids match their keys, and that a quorum of the genesis validators approved it.
 */
export function verifyNodeAdmission(options: VerifyNodeAdmissionOptions): NodeAdmissionResult {
  const { genesis, chain } = options;
  let admission: NodeAdmission;
  try {
    admission = check(
      TX_BODY_SCHEMAS.RegistrarAdded,
      options.admission,
      'KL_BAD_INPUT',
      'admission',
    ) as NodeAdmission;
  } catch (err) {
    return { verified: false, reason: (err as Error).message };
  }
  if (!admission.node) return { verified: false, reason: 'the admission names no server' };
  if (!genesis.engine) return { verified: false, reason: 'this ledger is not ordered by a chain' };
  if (!keyIdMatches(admission) || !keyIdMatches(admission.node.validator))
    return { verified: false, reason: 'a key id of the admission does not match its key' };
  const message = governanceMessage(chain, 'RegistrarAdded', admission);
  const valid = countApprovals(genesis, message, admission.approvals);
  if (valid < genesis.quorum)
    return {
      verified: false,
      reason: `the admission carries ${valid} valid validator approval(s); the genesis needs ${genesis.quorum}`,
    };
  return { verified: true, admission };
}

/**
 * The signers of block headers: the genesis validators, plus, on a ledger ordered by a chain, the
 * validator keys of admitted servers. There, the chain orders and finalises; a header signature is
 * one server's statement of what it derived from the chain, so one valid signature is enough
 * (docs/ledger.md "Servers of one deployment"). Otherwise the genesis quorum applies.
 */
export function blockSigners(genesis: Genesis, nodes: readonly PublicKeyInfo[] = []): BlockSigners {
  if (!genesis.engine) return { validators: genesis.validators, quorum: genesis.quorum };
  const validators = [...genesis.validators];
  for (const n of nodes) if (!validators.some((v) => v.keyId === n.keyId)) validators.push(n);
  return { validators, quorum: 1 };
}

/**
 * The validator keys of the servers whose admissions verify, from registrar records (those no
 * longer active included: the blocks such a server signed while admitted stay valid).
 * @throws never: an admission that does not verify is left out.
 */
export function admittedValidators(
  genesis: Genesis,
  chain: string,
  records: Iterable<RegistrarRecord>,
): PublicKeyInfo[] {
  const keys: PublicKeyInfo[] = [];
  for (const record of records) {
    const admission = admissionOf(record);
    if (!admission) continue;
    const result = verifyNodeAdmission({ genesis, chain, admission });
    if (result.verified) keys.push(result.admission.node.validator);
  }
  return keys;
}
