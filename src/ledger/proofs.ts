/**
 * Proofs a client or auditor checks alone, with nothing but the genesis document (docs/ledger.md
 * "Proofs"). Every verifier is pure and never throws: it returns `{ verified: true, ... }` with what
 * the caller should keep, or `{ verified: false, code, reason }`.
 */
import { fromHex, toHex } from '../protocol/bytes.js';
import { canonicalBytes } from '../protocol/canonical-json.js';
import { type ErrorCode, isKlError } from '../protocol/errors.js';
import { HASH_HEX, hashFromHex } from '../protocol/hash.js';
import { type BlockSigners, type SignedHeader, verifySignedHeader } from './block.js';
import { chainIdOf, type Genesis } from './genesis.js';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
import { blockSigners, verifyNodeAdmission } from './node-admission.js';
import { identityKey, type KeyRecord, stateTreeKey, stateValueHash } from './state-machine.js';
import { type StateProof, verifyStateProof } from './state-tree.js';
import type { TxEnvelope } from './transactions.js';

/** A failed verification. */
export interface Unverified {
  verified: false;
  code: ErrorCode;
  reason: string;
}

/** Proof that a transaction is in a block. */
export interface TransactionReceipt {
  envelope: TxEnvelope;
  txid: string;
  /** Position of the transaction in its block. */
  index: number;
  /** RFC 6962 audit path to the block's txRoot, hex, bottom-up. */
  proof: string[];
  /** The signed header of the block that holds the transaction. */
  block: SignedHeader;
}

/** Proof of an identity's key record (or of its absence) against a checkpoint. */
export interface KeyRecordProof {
  id: string;
  record: KeyRecord | null;
  proof: StateProof;
  checkpoint: SignedHeader;
}

/** Proof that checkpoint `newer` extends checkpoint `older`. */
export interface ConsistencyProof {
  older: SignedHeader;
  newer: SignedHeader;
  /** RFC 6962 consistency proof between the history trees (sizes older.height-1 → newer.height-1). */
  consistency: string[];
  /** Audit path of older's block hash (leaf older.height-1) in newer's history tree. */
  inclusion: string[];
}

function fail(code: ErrorCode, reason: string): Unverified {
  return { verified: false, code, reason };
}

function hexList(list: unknown): Uint8Array[] | null {
  if (!Array.isArray(list) || list.length > 128) return null;
  if (!list.every((x) => typeof x === 'string' && HASH_HEX.test(x))) return null;
  return list.map((x) => hashFromHex(x as string));
}

/**
 * Whose header signatures count: the genesis validators, and on a ledger ordered by a chain, the
 * servers admitted by governance whose admissions (certificates checked here with the genesis
 * alone, node-admission.ts) the caller passes — a client passes those of the servers it uses.
 */
function signersOf(genesis: Genesis, servers: readonly unknown[] | undefined): BlockSigners {
  if (!genesis.engine || !servers || servers.length === 0) return blockSigners(genesis);
  const chain = chainIdOf(genesis);
  const keys = [];
  for (const admission of servers.slice(0, 64)) {
    const result = verifyNodeAdmission({ genesis, chain, admission });
    if (result.verified) keys.push(result.admission.node.validator);
  }
  return blockSigners(genesis, keys);
}

function checkHeader(
  genesis: Genesis,
  value: unknown,
  servers?: readonly unknown[],
): SignedHeader | Unverified {
  try {
    return verifySignedHeader(value, signersOf(genesis, servers), chainIdOf(genesis));
  } catch (err) {
    return fail('KL_CHECKPOINT_INVALID', isKlError(err) ? err.message : 'checkpoint is malformed');
  }
}

/** Verifies a transaction receipt against the genesis. */
function verifyTransactionReceiptUnguarded({
  genesis,
  receipt,
  servers,
}: {
  genesis: Genesis;
  receipt: TransactionReceipt;
  /** Admissions of further servers of a chain-ordered ledger whose signatures count (node-admission.ts). */
  servers?: readonly unknown[];
}): { verified: true; txid: string; height: number; envelope: TxEnvelope } | Unverified {
  const block = checkHeader(genesis, receipt?.block, servers);
  if ('verified' in block) return block;
  const path = hexList(receipt.proof);
  if (!path) return fail('KL_PROOF_INVALID', 'receipt proof is malformed');
  let bytes: Uint8Array;
  try {
    bytes = canonicalBytes(receipt.envelope);
  } catch {
    return fail('KL_PROOF_INVALID', 'receipt transaction is malformed');
  }
  const txid = toHex(leafHash(bytes));
  if (txid !== receipt.txid) return fail('KL_PROOF_INVALID', 'receipt transaction does not match its id');
  if (receipt.envelope?.tx?.chain !== block.header.chain)
    return fail('KL_PROOF_INVALID', 'transaction belongs to another ledger');
  const ok = verifyInclusion({
    leafHash: fromHex(txid),
    index: receipt.index,
    treeSize: block.header.txCount,
    proof: path,
    root: hashFromHex(block.header.txRoot),
  });
  if (!ok) return fail('KL_PROOF_INVALID', 'transaction is not included in the block');
  return { verified: true, txid, height: block.header.height, envelope: receipt.envelope };
}

/** Verifies an identity's key record (or its absence) against a signed checkpoint. */
function verifyKeyRecordProofUnguarded({
  genesis,
  proof,
  servers,
}: {
  genesis: Genesis;
  proof: KeyRecordProof;
  /** Admissions of further servers of a chain-ordered ledger whose signatures count (node-admission.ts). */
  servers?: readonly unknown[];
}): { verified: true; record: KeyRecord | null; height: number } | Unverified {
  const cp = checkHeader(genesis, proof?.checkpoint, servers);
  if ('verified' in cp) return cp;
  if (typeof proof.id !== 'string') return fail('KL_PROOF_INVALID', 'proof names no identity');
  if (proof.record && proof.record.id !== proof.id)
    return fail('KL_PROOF_INVALID', 'record belongs to another identity');
  let value: Uint8Array | null = null;
  try {
    value = proof.record ? stateValueHash(proof.record) : null;
  } catch {
    return fail('KL_PROOF_INVALID', 'record is malformed');
  }
  const ok = verifyStateProof({
    key: stateTreeKey(identityKey(proof.id)),
    value,
    proof: proof.proof,
    root: hashFromHex(cp.header.stateRoot),
  });
  if (!ok) return fail('KL_PROOF_INVALID', 'key record does not match the checkpoint’s state root');
  return { verified: true, record: proof.record, height: cp.header.height };
}

/**
 * Verifies that `newer` extends `older`: both signed, and the history tree of `newer` contains that
 * of `older` plus `older` itself. A client that keeps its last checkpoint refuses a ledger for which
 * this fails (history was rewritten).
 */
function verifyCheckpointConsistencyUnguarded({
  genesis,
  proof,
  servers,
}: {
  genesis: Genesis;
  proof: ConsistencyProof;
  /** Admissions of further servers of a chain-ordered ledger whose signatures count (node-admission.ts). */
  servers?: readonly unknown[];
}): { verified: true; checkpoint: SignedHeader } | Unverified {
  const older = checkHeader(genesis, proof?.older, servers);
  if ('verified' in older) return older;
  const newer = checkHeader(genesis, proof.newer, servers);
  if ('verified' in newer) return newer;
  const a = older.header.height;
  const b = newer.header.height;
  if (a > b) return fail('KL_PROOF_INVALID', 'the newer checkpoint is older');
  if (a === b) {
    return older.hash === newer.hash
      ? { verified: true, checkpoint: newer }
      : fail('KL_PROOF_INVALID', 'two different blocks at the same height');
  }
  const consistency = hexList(proof.consistency);
  const inclusion = hexList(proof.inclusion);
  if (!consistency || !inclusion) return fail('KL_PROOF_INVALID', 'consistency proof is malformed');
  const consistent = verifyConsistency({
    size1: a - 1,
    size2: b - 1,
    root1: hashFromHex(older.header.historyRoot),
    root2: hashFromHex(newer.header.historyRoot),
    proof: consistency,
  });
  if (!consistent) return fail('KL_PROOF_INVALID', 'the newer checkpoint does not extend the older one');
  const included = verifyInclusion({
    leafHash: leafHash(hashFromHex(older.hash)),
    index: a - 1,
    treeSize: b - 1,
    proof: inclusion,
    root: hashFromHex(newer.header.historyRoot),
  });
  if (!included) return fail('KL_PROOF_INVALID', 'the older checkpoint is not in the newer history');
  return { verified: true, checkpoint: newer };
}

/** What a client got when it asked whether the ledger extends the checkpoint it keeps. */
export interface ExtensionAnswer {
  genesis: Genesis;
  /** The checkpoint the client kept (already verified when it was kept). */
  kept: SignedHeader;
  /** The consistency proof from `kept`'s height to the latest block, when the server gave one. */
  proof?: ConsistencyProof;
  /** The server's latest signed header, fetched when it refused the proof. */
  latest?: unknown;
  /** Admissions of further servers of a chain-ordered ledger whose signatures count (node-admission.ts). */
  servers?: readonly unknown[];
}

/**
 * Decides whether the ledger only grew since the client's kept checkpoint (docs/ledger.md "Proofs"):
 * verified with the new checkpoint to keep; or `KL_CHECKPOINT_INVALID` saying "history cut short"
 * when the ledger's signed history now ends below the kept height (a truncated ledger), or "history
 * was rewritten" when it holds another block there or gives no valid proof.
 */
function verifyLedgerExtendsUnguarded({
  genesis,
  kept,
  proof,
  latest,
  servers,
}: ExtensionAnswer): { verified: true; checkpoint: SignedHeader } | Unverified {
  const a = kept.header.height;
  const cutShort = (b: number) =>
    fail(
      'KL_CHECKPOINT_INVALID',
      `history cut short: the ledger now ends at block ${b}, but this client already saw block ${a}`,
    );
  const rewritten = fail(
    'KL_CHECKPOINT_INVALID',
    `the ledger does not extend the checkpoint kept at block ${a}: history was rewritten`,
  );
  // Only a header signed by the validators counts as the ledger's end: anyone can claim a height.
  const end = (value: unknown) => {
    const h = checkHeader(genesis, value, servers);
    return 'verified' in h ? null : h.header.height;
  };
  if (proof === undefined) {
    const b = end(latest);
    return b !== null && b < a ? cutShort(b) : rewritten;
  }
  const b = end(proof?.newer);
  if (b !== null && b < a) return cutShort(b);
  const check = verifyCheckpointConsistencyUnguarded({ genesis, proof, ...(servers ? { servers } : {}) });
  if (!check.verified) return rewritten;
  if (proof.older.hash !== kept.hash || proof.older.header.height !== a) return rewritten;
  return check;
}

/**
 * Verifiers never throw (docs/architecture.md): anything a malformed input makes the checking code
 * trip over is a failed verification, not an exception (found by fuzzing: docs/reliability.md "Fuzzing").
 */
function guarded<A, R>(check: (a: A) => R | Unverified): (a: A) => R | Unverified {
  return (a) => {
    try {
      return check(a);
    } catch {
      return fail('KL_PROOF_INVALID', 'the proof is malformed');
    }
  };
}

/** Verifies a transaction receipt against the genesis. */
export const verifyTransactionReceipt = guarded(verifyTransactionReceiptUnguarded);
/** Verifies an identity's key record (or its absence) against a signed checkpoint. */
export const verifyKeyRecordProof = guarded(verifyKeyRecordProofUnguarded);
/** Verifies that a newer checkpoint extends an older one (see verifyCheckpointConsistencyUnguarded). */
export const verifyCheckpointConsistency = guarded(verifyCheckpointConsistencyUnguarded);
/** Decides whether the ledger only grew since a kept checkpoint (see verifyLedgerExtendsUnguarded). */
export const verifyLedgerExtends = guarded(verifyLedgerExtendsUnguarded);
