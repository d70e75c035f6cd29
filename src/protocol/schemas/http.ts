/**
 * The HTTP API's request bodies and replies (docs/protocol.md "Phase 1", docs/ledger.md "Proofs"). The
 * server's routes validate bodies against the same schema objects (Fastify compiles them with Ajv);
 * the client checks every reply against them before using it.
 */
import { type Static, Type } from 'typebox';
import { ArmoredKey, ArmoredSignature, Fingerprint, Hash, Identity, Time } from './fields.js';
import { GenesisSchema, ReceiptSchema, SignedHeaderSchema } from './ledger.js';
import {
  DeviceAdditionStatementSchema,
  MAX_SEALED_PROOF,
  ProofMethod,
  RegistrationStatementSchema,
} from './statements.js';
import { TX_BODY_SCHEMAS } from './transactions.js';

const closed = { additionalProperties: false } as const;

/** At most this many servers in `/v1/info` `servers`. */
export const MAX_LISTED_SERVERS = 16;

/** A server's public URL: http: or https:, bounded. */
export const ServerUrl = Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$' });

/** The server's OpenPGP key as it publishes it. */
const ServerKey = Type.Object({ fingerprint: Fingerprint, publicKey: ArmoredKey }, closed);

/** POST /v1/register/begin: the identity to register. */
export const RegisterBeginBody = Type.Object({ id: Identity }, closed);

/** POST /v1/enroll/email: the identity (an email address) to send a code to. */
export const EnrollEmailBody = RegisterBeginBody;

/** POST /v1/register/complete (docs/protocol.md "Phase 1", step 4). */
export const RegisterCompleteBody = Type.Object(
  {
    statement: RegistrationStatementSchema,
    signature: ArmoredSignature,
    publicKey: ArmoredKey,
  },
  closed,
);
/** A register/complete request. */
export type RegistrationRequest = Static<typeof RegisterCompleteBody>;

/** GET /v1/info: the server key, the ledger's genesis and latest checkpoint, the registration methods. */
export const InfoReply = Type.Object(
  {
    server: ServerKey,
    chain: Hash,
    genesis: GenesisSchema,
    checkpoint: Type.Union([Type.Null(), SignedHeaderSchema]),
    methods: Type.Array(ProofMethod, { maxItems: 8 }),
    challengeTtlMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    /**
     * Public URLs of the servers of this deployment, this one first (docs/protocol.md "Several
     * servers"). A client checks each (same chain, a server key it accepts) before it uses it.
     */
    servers: Type.Optional(Type.Array(ServerUrl, { maxItems: MAX_LISTED_SERVERS })),
    /**
     * The admissions of the deployment's further servers (chain-ordered ledgers; node-admission.ts):
     * certificates a client checks with the genesis alone before it trusts those servers' keys.
     */
    admitted: Type.Optional(Type.Array(TX_BODY_SCHEMAS.RegistrarAdded, { maxItems: MAX_LISTED_SERVERS })),
    /** Removal certificates of removed servers: a client stops trusting those for good. */
    removed: Type.Optional(Type.Array(TX_BODY_SCHEMAS.RegistrarRemoved, { maxItems: 256 })),
  },
  closed,
);
/** What /v1/info answers. */
export type InfoReply = Static<typeof InfoReply>;

/** POST /v1/register/begin: the nonce to sign, until when, and who the server says it is. */
export const RegisterBeginReply = Type.Object(
  {
    nonce: Type.String({ maxLength: 43, pattern: '^[A-Za-z0-9_-]{43}$' }),
    expiresAt: Type.Optional(Time),
    chain: Hash,
    server: ServerKey,
  },
  closed,
);

/** POST /v1/register/complete: what was registered, with the receipt of the ledger transaction. */
export const RegisterCompleteReply = Type.Object(
  {
    id: Identity,
    name: Type.String({ maxLength: 128 }),
    fingerprint: Fingerprint,
    algorithm: Type.String({ maxLength: 32 }),
    server: ServerKey,
    receipt: ReceiptSchema,
  },
  closed,
);

/** POST /v1/enroll/email: a code was sent, or none because codes sent minutes ago are still valid. */
export const EnrollEmailReply = Type.Union([
  Type.Object({ sent: Type.Literal(true), expiresAt: Time }, closed),
  Type.Object({ sent: Type.Literal(false), reason: Type.Literal('recently-sent') }, closed),
]);

/** GET /v1/ledger/checkpoint: the latest signed block header (null before the first block). */
export const CheckpointReply = Type.Object(
  { checkpoint: Type.Union([Type.Null(), SignedHeaderSchema]) },
  closed,
);

/** A block height in a query string (text: query values are never coerced). */
const HeightText = Type.String({ pattern: '^[1-9][0-9]{0,15}$' });

/** GET /v1/ledger/consistency?from=&to= */
export const ConsistencyQuery = Type.Object({ from: HeightText, to: Type.Optional(HeightText) }, closed);

/** GET /v1/ledger/keys/:id */
export const KeyRecordParams = Type.Object({ id: Identity }, closed);

/** GET /v1/ledger/tx/:txid */
export const TxParams = Type.Object({ txid: Hash }, closed);

/** Longest device request statement accepted, characters (its JSON text). */
const MAX_DEVICE_STATEMENT = 1024;

/**
 * POST /v1/devices/requests (docs/protocol.md "Devices"): a new device asks to be added to an
 * identity. `statement` is the JSON text of a DeviceAdditionStatement, `signature` the new key's
 * detached signature over its canonical bytes.
 */
export const DeviceRequestBody = Type.Object(
  {
    statement: Type.String({ minLength: 2, maxLength: MAX_DEVICE_STATEMENT }),
    publicKey: ArmoredKey,
    signature: ArmoredSignature,
    /**
     * An operator's invitation for a further device (`keyledger admin invite --device`), instead of an
     * approval: a DeviceInvite sealed to the server key (armored OpenPGP message).
     */
    invite: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_SEALED_PROOF })),
  },
  closed,
);
/** A device request as sent. */
export type DeviceRequestBody = Static<typeof DeviceRequestBody>;

/** The short code a person types on the approving device: 8 Crockford base32 characters. */
export const DeviceCode = Type.String({
  maxLength: 9,
  pattern: '^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$',
});

/** POST /v1/devices/requests, answered: the code to approve with, the requester's poll token. */
export const DeviceRequestReply = Type.Object(
  { code: DeviceCode, poll: Type.String({ maxLength: 43, pattern: '^[A-Za-z0-9_-]{43}$' }), expiresAt: Time },
  closed,
);

/** GET /v1/devices/requests/{poll}: pending, added (with the DeviceAdded receipt), or refused. */
export const DeviceRequestStatusReply = Type.Union([
  Type.Object({ status: Type.Literal('pending'), expiresAt: Time }, closed),
  Type.Object({ status: Type.Literal('added'), receipt: ReceiptSchema }, closed),
  Type.Object(
    {
      status: Type.Literal('refused'),
      error: Type.Object(
        { code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 1024 }) },
        closed,
      ),
    },
    closed,
  ),
]);
/** A device request's status. */
export type DeviceRequestStatusReply = Static<typeof DeviceRequestStatusReply>;

/** What an enrolled device is shown of a pending device request (session message `device-pending`). */
export const PendingDeviceReply = Type.Object(
  { statement: DeviceAdditionStatementSchema, publicKey: ArmoredKey, signature: ArmoredSignature },
  closed,
);
