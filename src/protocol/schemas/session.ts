/**
 * What the server sends inside an established session's sealed frames (docs/protocol.md "Phases 3
 * and 4"): sealed means it came from the server, not that the server is bug-free, so the client
 * checks each message against these before acting on it. Also the answer to the built-in
 * `session.list` request.
 */
import { type Static, Type } from 'typebox';
import { B64url32, Count, Fingerprint, Id16, Time } from './fields.js';

const closed = { additionalProperties: false } as const;

/**
 * A typed error as sent on the wire (`KlError.toJSON().error`): any object; `errorFromWire` reads
 * its code and message, and turns anything else into the caller's fallback code.
 */
const WireErrorBody = Type.Object({});

/** Server → client, sealed: every message the server may send on a session. */
export const ServerChannelMessage = Type.Union([
  Type.Object(
    { t: Type.Literal('data'), id: Type.Optional(Count), body: Type.Optional(Type.Unknown()) },
    closed,
  ),
  Type.Object(
    {
      t: Type.Literal('reply'),
      re: Count,
      body: Type.Optional(Type.Unknown()),
      error: Type.Optional(WireErrorBody),
    },
    closed,
  ),
  Type.Object(
    {
      t: Type.Literal('receipt'),
      re: Count,
      // Checked against ReceiptSchema by the caller, so a malformed one is KL_RECEIPT_INVALID.
      receipt: Type.Optional(Type.Unknown()),
      body: Type.Optional(Type.Unknown()),
      error: Type.Optional(WireErrorBody),
    },
    closed,
  ),
  Type.Object({ t: Type.Literal('rekey-ack'), ephemeral: B64url32 }, closed),
  Type.Object({ t: Type.Literal('rekey-request') }, closed),
  Type.Object({ t: Type.Literal('close-ack') }, closed),
  Type.Object(
    {
      t: Type.Literal('alert'),
      code: Type.String({ maxLength: 64 }),
      message: Type.String({ maxLength: 4096 }),
    },
    closed,
  ),
]);
/** A message the server sends on a session. */
export type ServerChannelMessage = Static<typeof ServerChannelMessage>;

/** One of the caller's sessions, as `session.list` answers. */
export const ListedSessionSchema = Type.Object(
  {
    sessionId: Id16,
    /** The device key the session logged in with (docs/protocol.md "Devices"). */
    fingerprint: Type.Optional(Fingerprint),
    ip: Type.String({ maxLength: 100 }),
    createdAt: Time,
    lastActivity: Time,
    current: Type.Boolean(),
  },
  closed,
);

/** The answer to `session.list`: the caller's live sessions. */
export const SessionListReply = Type.Array(ListedSessionSchema, { maxItems: 10_000 });
