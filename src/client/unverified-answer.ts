/**
 * Answers nothing authenticated (docs/protocol.md "Several servers"): an HTTP error body, a
 * plaintext error on the login socket, a reply that does not even have the shape of an answer —
 * anyone on the path can write them. They fail the attempt with the code they carry, but they are
 * not a server's verdict: when the home has other servers of the ledger, the next one is asked
 * (failover.ts). The mark is kept beside the error, never in its details, which come off the wire.
 */
import { isKlError, type KlError } from '../protocol/errors.js';

const unverified = new WeakSet<KlError>();

/** Marks `err` as made from an unauthenticated answer; returns it. */
export function unverifiedAnswer<E extends KlError>(err: E): E {
  unverified.add(err);
  return err;
}

/**
 * Whether `err` was made from an unauthenticated answer: marked by {@link unverifiedAnswer}, or a
 * plaintext error revived with `errorFromWire(…, { authenticated: false })`.
 */
export function isUnverifiedAnswer(err: unknown): err is KlError {
  return isKlError(err) && (unverified.has(err) || err.details?.authenticated === false);
}
