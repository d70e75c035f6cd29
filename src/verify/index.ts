/**
 * `keyledger/verify`: the proofs a client or auditor checks alone, with nothing but the genesis
 * document (docs/ledger.md "Proofs"). Every `verify…` function is pure and synchronous: no I/O, no
 * server code, no storage. The proof verifiers never throw; they return `{ verified: true, … }` or
 * `{ verified: false, code, reason }`. Merkle checks follow RFC 6962 §2.1.1 (inclusion) and §2.1.2
 * (consistency).
 *
 * Runs in Node and in browsers: bytes are `Uint8Array`, no `Buffer`, no Node built-in. SHA-256 and
 * Ed25519 come from the crypto backend: node:crypto in Node (src/protocol/crypto/node.ts), @noble/*
 * in a browser bundle, which the package.json `browser` map selects (src/protocol/crypto/web.ts).
 */
export type { BlockHeader, SignedHeader } from '../ledger/block.js';
export { blockHashOf, verifySignedHeader } from '../ledger/block.js';
export type { Genesis, RegistrarInfo } from '../ledger/genesis.js';
export { chainIdOf, checkGenesis } from '../ledger/genesis.js';
export type { ConsistencyCheck, InclusionCheck } from '../ledger/merkle.js';
export { leafHash, nodeHash, verifyConsistency, verifyInclusion } from '../ledger/merkle.js';
export type {
  ConsistencyProof,
  ExtensionAnswer,
  KeyRecordProof,
  TransactionReceipt,
  Unverified,
} from '../ledger/proofs.js';
export {
  verifyCheckpointConsistency,
  verifyKeyRecordProof,
  verifyLedgerExtends,
  verifyTransactionReceipt,
} from '../ledger/proofs.js';
export type { KeyRecord, TxRef } from '../ledger/state-machine.js';
export type { StateProof, StateProofCheck } from '../ledger/state-tree.js';
export { verifyStateProof } from '../ledger/state-tree.js';
export type { TxBodies, TxEnvelope, TxType } from '../ledger/transactions.js';
export type { ErrorCode } from '../protocol/errors.js';
