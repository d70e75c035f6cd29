/**
 * Schemas of the ledger documents a server hands to clients (docs/ledger.md): the genesis, signed
 * block headers, and the proofs built on them (transaction receipt, key record proof, consistency
 * proof). They bound the shape and size of what arrives; the ledger's verifiers (ledger/proofs.ts)
 * then check hashes and signatures against the genesis.
 */
import { Type } from 'typebox';
import {
  ArmoredKey,
  Count,
  DeviceName,
  DisplayName,
  Fingerprint,
  Hash,
  Height,
  Identity,
  MAX_ARMORED_KEY,
  Time,
} from './fields.js';

const closed = { additionalProperties: false } as const;

/** A validator's or registrar's key id (SHA-256 prefix, hex). */
export const KeyId = Type.String({ maxLength: 32, pattern: '^[0-9a-f]{32}$' });
/** An Ed25519 public key, base64url (32 bytes). */
const PublicKeyB64 = Type.String({ maxLength: 43, pattern: '^[A-Za-z0-9_-]{43}$' });
/** An Ed25519 signature, base64url (64 bytes). */
const SignatureB64 = Type.String({ maxLength: 86, pattern: '^[A-Za-z0-9_-]{86}$' });
/** At most this many hashes in one audit or consistency path (RFC 6962 §2.1; trees far beyond 2^64). */
const MAX_PATH = 128;
const HashPath = Type.Array(Hash, { maxItems: MAX_PATH });

const KeyInfo = { keyId: KeyId, publicKey: PublicKeyB64 };

/** An EVM chain and its KeyRegistry contract ordering a ledger (docs/deploy-besu.md). */
const EvmEngineSchema = Type.Object(
  {
    type: Type.Literal('evm'),
    chainId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    contract: Type.String({ maxLength: 42, pattern: '^0x[0-9a-f]{40}$' }),
    fromBlock: Count,
  },
  closed,
);

/**
 * An etcd cluster's key prefix ordering a ledger (docs/deploy-etcd.md): `/`-separated segments of
 * letters, digits and `._~:@+=-`, no empty segment, no trailing `/`, at most 128 characters.
 */
export const EtcdPrefix = Type.String({
  minLength: 2,
  maxLength: 128,
  pattern: '^(/[A-Za-z0-9._~:@+=-]+)+$',
});

const EtcdEngineSchema = Type.Object({ type: Type.Literal('etcd'), prefix: EtcdPrefix }, closed);

/** The genesis document (ledger/genesis.ts `Genesis`). */
export const GenesisSchema = Type.Object(
  {
    v: Type.Literal(1),
    name: Type.String({ minLength: 1, maxLength: 64 }),
    createdAt: Time,
    validators: Type.Array(Type.Object(KeyInfo, closed), { minItems: 1, maxItems: 64 }),
    quorum: Type.Integer({ minimum: 1, maximum: 64 }),
    registrars: Type.Array(
      Type.Object({ ...KeyInfo, name: Type.String({ minLength: 1, maxLength: 64 }) }, closed),
      { maxItems: 64 },
    ),
    server: Type.Optional(
      Type.Object(
        { fingerprint: Fingerprint, publicKey: Type.String({ maxLength: MAX_ARMORED_KEY }) },
        closed,
      ),
    ),
    engine: Type.Optional(Type.Union([EvmEngineSchema, EtcdEngineSchema])),
  },
  closed,
);

/** A block header with its hash and validator signatures (ledger/block.ts `SignedHeader`). */
export const SignedHeaderSchema = Type.Object(
  {
    header: Type.Object(
      {
        v: Type.Literal(1),
        chain: Hash,
        height: Height,
        prevHash: Hash,
        time: Count,
        txCount: Count,
        txRoot: Hash,
        stateRoot: Hash,
        historyRoot: Hash,
        proposer: KeyId,
      },
      closed,
    ),
    hash: Hash,
    signatures: Type.Array(Type.Object({ validator: KeyId, sig: SignatureB64 }, closed), {
      minItems: 1,
      maxItems: 64,
    }),
  },
  closed,
);

/**
 * A signed transaction (ledger/transactions.ts `TxEnvelope`): the outer shape; the body is checked per
 * transaction type by the ledger when the receipt is verified.
 */
export const TxEnvelopeSchema = Type.Object(
  {
    tx: Type.Object(
      {
        v: Type.Literal(1),
        chain: Hash,
        type: Type.String({ maxLength: 32, pattern: '^[A-Z][A-Za-z]{1,31}$' }),
        time: Time,
        nonce: Type.String({ maxLength: 32, pattern: '^[0-9a-f]{32}$' }),
        signer: KeyId,
        body: Type.Object({}, { maxProperties: 32 }),
      },
      closed,
    ),
    sig: SignatureB64,
  },
  closed,
);

/** Proof that a transaction is in a signed block (ledger/proofs.ts `TransactionReceipt`). */
export const ReceiptSchema = Type.Object(
  {
    envelope: TxEnvelopeSchema,
    txid: Hash,
    index: Count,
    proof: HashPath,
    block: SignedHeaderSchema,
  },
  closed,
);

const TxRef = Type.Object({ height: Height, txid: Hash, time: Time }, closed);

/** Who approved a device key: an active device, an operator, or the recovery key (docs/ledger.md "Devices"). */
const DeviceApproval = Type.Union([
  Type.Object({ device: Fingerprint }, closed),
  Type.Object({ admin: Identity }, closed),
  Type.Object({ recovery: Fingerprint }, closed),
]);

/** An identity's key record (ledger/state-machine.ts `KeyRecord`). */
export const KeyRecordSchema = Type.Object(
  {
    id: Identity,
    name: DisplayName,
    fingerprint: Fingerprint,
    publicKey: ArmoredKey,
    algorithm: Type.String({ maxLength: 32, pattern: '^[a-z0-9-]+$' }),
    status: Type.Enum(['active', 'revoked']),
    registered: TxRef,
    updated: TxRef,
    revocation: Type.Optional(
      Type.Object(
        {
          reason: Type.String({ maxLength: 16 }),
          by: Type.Enum(['owner', 'admin']),
          admin: Type.Optional(Identity),
          at: TxRef,
        },
        closed,
      ),
    ),
    roles: Type.Optional(Type.Array(Type.Enum(['admin']), { maxItems: 8 })),
    device: Type.Optional(DeviceName),
    deviceAdded: Type.Optional(
      Type.Object(
        {
          added: TxRef,
          approvedBy: DeviceApproval,
        },
        closed,
      ),
    ),
    devices: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: DeviceName,
            fingerprint: Fingerprint,
            publicKey: ArmoredKey,
            algorithm: Type.String({ maxLength: 32, pattern: '^[a-z0-9-]+$' }),
            added: TxRef,
            approvedBy: DeviceApproval,
          },
          closed,
        ),
        { maxItems: 64 },
      ),
    ),
    recovery: Type.Optional(
      Type.Object(
        {
          fingerprint: Fingerprint,
          publicKey: ArmoredKey,
          algorithm: Type.String({ maxLength: 32, pattern: '^[a-z0-9-]+$' }),
          added: TxRef,
          setBy: Type.Union([
            Type.Object({ device: Fingerprint }, closed),
            Type.Object({ recovery: Fingerprint }, closed),
          ]),
        },
        closed,
      ),
    ),
    history: Type.Array(
      Type.Object(
        {
          fingerprint: Fingerprint,
          algorithm: Type.String({ maxLength: 32, pattern: '^[a-z0-9-]+$' }),
          replaced: TxRef,
          reason: Type.Enum(['rotated', 'revoked']),
          device: Type.Optional(DeviceName),
          further: Type.Optional(Type.Literal(true)),
        },
        closed,
      ),
      { maxItems: 10_000 },
    ),
  },
  closed,
);

/** Proof of an identity's key record, or of its absence, against a checkpoint (ledger/proofs.ts `KeyRecordProof`). */
export const KeyRecordProofSchema = Type.Object(
  {
    id: Type.String({ maxLength: 254 }),
    record: Type.Union([Type.Null(), KeyRecordSchema]),
    proof: Type.Object(
      {
        siblings: Type.Array(Hash, { maxItems: 256 }),
        other: Type.Optional(Type.Object({ key: Hash, value: Hash }, closed)),
      },
      closed,
    ),
    checkpoint: SignedHeaderSchema,
  },
  closed,
);

/** Proof that one checkpoint extends another (ledger/proofs.ts `ConsistencyProof`, RFC 6962 §2.1.2). */
export const ConsistencyProofSchema = Type.Object(
  { older: SignedHeaderSchema, newer: SignedHeaderSchema, consistency: HashPath, inclusion: HashPath },
  closed,
);
