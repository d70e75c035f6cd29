/**
 * The genesis document: the root of trust of a ledger. It names the validators (who sign blocks), the
 * quorum, the first registrars (who may write) and, optionally, the server's OpenPGP key. Its hash
 * is the chain id that every transaction and block header carries. Clients and auditors need only
 * this document to verify anything the ledger says.
 */
import { canonicalize } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { sha256Hex } from '../protocol/hash.js';
import { check } from '../protocol/schemas/check.js';
import { GenesisSchema } from '../protocol/schemas/ledger.js';
import { keyIdMatches, type PublicKeyInfo } from './signing-keys.js';

/** A registrar named in the genesis or added by governance. */
export interface RegistrarInfo extends PublicKeyInfo {
  name: string;
}

/** The genesis document. */
export interface Genesis {
  v: 1;
  /** Human name of the ledger. */
  name: string;
  /** Creation time, milliseconds since the epoch. */
  createdAt: number;
  /** Validators that sign blocks. */
  validators: PublicKeyInfo[];
  /** How many distinct validator signatures a block (or a governance change) needs. */
  quorum: number;
  /** Registrars allowed to write from the start. */
  registrars: RegistrarInfo[];
  /** The authentication server's OpenPGP public key, pinned for clients (docs/protocol.md "Trust"). */
  server?: { fingerprint: string; publicKey: string };
  /**
   * Where transactions are ordered when not by this node alone (docs/architecture.md "The EVM engine"):
   * an EVM chain and the KeyRegistry contract on it, or an etcd cluster's key prefix
   * (docs/deploy-etcd.md). Absent: the embedded engine.
   */
  engine?: EngineInfo;
}

/** A distributed engine that orders a ledger: an EVM chain or an etcd cluster. */
export type EngineInfo = EvmEngineInfo | EtcdEngineInfo;

/** The EVM chain a ledger is ordered by. */
export interface EvmEngineInfo {
  type: 'evm';
  /** EIP-155 chain id. */
  chainId: number;
  /** Address of the KeyRegistry contract (0x…, lowercase). */
  contract: string;
  /** Block the contract was deployed in: where followers start reading. */
  fromBlock: number;
}

/**
 * The etcd cluster a ledger is ordered by (docs/deploy-etcd.md): only its key prefix; the cluster's
 * endpoints are a node setting (DATA/etcd.json).
 */
export interface EtcdEngineInfo {
  type: 'etcd';
  /** The key prefix under which the ledger's order is stored, e.g. `/keyledger/example`. */
  prefix: string;
}

/** The EVM engine info of `genesis`, or undefined (embedded or etcd engine). */
export function evmEngineOf(genesis: Genesis): EvmEngineInfo | undefined {
  return genesis.engine?.type === 'evm' ? genesis.engine : undefined;
}

/**
 * Checks a genesis document: shape, key ids, distinct validators, a quorum that is a strict majority
 * (more than two thirds for BFT with four or more validators is the operator's choice; at least a
 * majority is enforced).
 * @throws KlError `KL_BAD_INPUT`
 */
export function checkGenesis(value: unknown): Genesis {
  const g: Genesis = check(GenesisSchema, value, 'KL_BAD_INPUT', 'genesis');
  const ids = new Set(g.validators.map((v) => v.keyId));
  if (ids.size !== g.validators.length) throw new KlError('KL_BAD_INPUT', 'genesis names a validator twice');
  if (g.quorum > g.validators.length || g.quorum * 2 <= g.validators.length) {
    throw new KlError(
      'KL_BAD_INPUT',
      'genesis quorum must be a majority of the validators and no more than all',
    );
  }
  for (const k of [...g.validators, ...g.registrars]) {
    if (!keyIdMatches(k))
      throw new KlError('KL_BAD_INPUT', `genesis key id ${k.keyId} does not match its key`);
  }
  return g;
}

/** The chain id: SHA-256 of the genesis in canonical JSON, hex. */
export function chainIdOf(genesis: Genesis): string {
  return sha256Hex(canonicalize(genesis));
}
