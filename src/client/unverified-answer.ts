/**
 * What an answer proves (docs/protocol.md "Several servers"). Until the login's `finished` frame is
 * verified, the client knows a server's word only from what it authenticated and bound to this
 * exchange: a challenge signed by the accepted server key that carries our hello's hash, this
 * challenge id and an unexpired time, or the finished frame sealed under keys only that server
 * could derive. Such a statement is a **verdict** ({@link serverVerdict}): no other server is asked
 * in its place. Everything else — an HTTP error body, a plaintext login error, a reply without the
 * shape of an answer, a signature that does not verify, a genuine statement replayed from another
 * exchange, a proof that does not verify — anyone on the path can write: it fails the attempt, but
 * it is an **unverified answer** ({@link unverifiedAnswer}), and the next server is asked
 * (failover.ts). Both marks are kept beside the error, never in its details, which come off the wire.
 */
import { isKlError, type KlError } from '../protocol/errors.js';

/** Unverified answers, each with what it was in the client's own words. */
const unverified = new WeakMap<KlError, string>();
const verdicts = new WeakSet<KlError>();

/**
 * Marks `err` as made from an answer nothing authenticated; returns it. An error already marked
 * keeps its first summary.
 * @param summary what the answer was, in the client's own words (shown when no server gave an
 *   authenticated answer); default the error's message, which must then be the client's own text.
 */
export function unverifiedAnswer<E extends KlError>(err: E, summary: string = err.message): E {
  if (!unverified.has(err)) unverified.set(err, summary);
  return err;
}

/** Whether `err` was marked by {@link unverifiedAnswer}. */
export function isUnverifiedAnswer(err: unknown): err is KlError {
  return isKlError(err) && unverified.has(err);
}

/** What the unverified answer `err` was, in the client's own words (its message if unmarked). */
export function unverifiedSummary(err: KlError): string {
  return unverified.get(err) ?? err.message;
}

/**
 * Marks `err` as resting on a statement the server authenticated (signed with a server key the
 * client accepts, or sealed with the session keys) and bound to this exchange; returns it.
 */
export function serverVerdict<E extends KlError>(err: E): E {
  verdicts.add(err);
  return err;
}

/** Whether `err` was marked by {@link serverVerdict}. */
export function isServerVerdict(err: unknown): boolean {
  return isKlError(err) && verdicts.has(err);
}
