/**
 * The ledger layer: transactions, permissions, blocks, RFC 6962 trees, state proofs, the embedded
 * engine and the pure verifiers that clients and auditors run.
 */
export type { BlockHeader, SignedHeader } from './block.js';
export { blockHashOf, verifySignedHeader } from './block.js';
export { dataPaths, isInitialised, readGenesisFile } from './data-dir.js';
export type { InitOptions, OpenOptions } from './embedded-ledger.js';
export { EmbeddedLedger, initEmbeddedLedger } from './embedded-ledger.js';
export type { Genesis, RegistrarInfo } from './genesis.js';
export { chainIdOf, checkGenesis } from './genesis.js';
export type { BlockView, CommittedTransaction, Ledger } from './ledger.js';
export { leafHash, MerkleTree, merkleRoot, nodeHash, verifyConsistency, verifyInclusion } from './merkle.js';
export { WRITE_PERMISSIONS } from './permissions.js';
export type { ConsistencyProof, KeyRecordProof, TransactionReceipt, Unverified } from './proofs.js';
export { verifyCheckpointConsistency, verifyKeyRecordProof, verifyTransactionReceipt } from './proofs.js';
export { SigningKey } from './signing-keys.js';
export type { KeyRecord, RegistrarRecord } from './state-machine.js';
export { governanceMessage } from './state-machine.js';
export type { TxBodies, TxEnvelope, TxIntent, TxType } from './transactions.js';
export { TX_TYPES } from './transactions.js';
export type { LedgerVerification } from './verify-ledger.js';
export { verifyLedgerData } from './verify-ledger.js';
