/**
 * Moving the client's kept checkpoint forward (docs/ledger.md "Proofs"): the server proves that its
 * ledger extends the checkpoint kept in server.json; a ledger that does not is refused with
 * `KL_CHECKPOINT_INVALID` ("history cut short" when its signed end is below what the client saw).
 *
 * Only a signed fork is evidence that the ledger was rewritten: a header the validators signed at
 * the kept height with another hash (two blocks at one height are never both genuine, whoever
 * replays them). Anything else that fails is an unverified answer (unverified-answer.ts): a
 * consistency proof is not signed (its hashes can be rewritten on the path), and a signed header
 * below the kept one proves nothing about the ledger now (every old checkpoint is signed and public,
 * so anyone can replay one). The next server is then asked (failover.ts).
 */
import type { SignedHeader } from '../ledger/block.js';
import { type ConsistencyProof, verifyCheckpointConsistency, verifyLedgerExtends } from '../ledger/proofs.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { CheckpointReply } from '../protocol/schemas/http.js';
import { ConsistencyProofSchema } from '../protocol/schemas/ledger.js';
import { isOutage } from './failover.js';
import { callJson, endpoint } from './http.js';
import { checkReply } from './reply.js';
import type { ClientStore, ServerFile } from './store.js';
import { serverVerdict, unverifiedAnswer } from './unverified-answer.js';

/** What the server gave: a consistency proof, or (when it refused one) its latest header. */
type ExtensionEvidence = { proof: ConsistencyProof } | { latest: unknown };

/**
 * Asks the server for a consistency proof from the kept checkpoint to its latest block, checks it
 * against the genesis, and keeps the new checkpoint. When the server refuses the proof (an honest
 * server whose ledger was cut short cannot give one), its latest signed header tells a truncated
 * history from a rewritten one.
 * @throws KlError `KL_CHECKPOINT_INVALID`: a signed fork at the kept height (a verdict), or, as an
 *   unverified answer, a history cut short or no valid proof; `KL_NETWORK`, `KL_LEDGER_BEHIND` (a
 *   server following a chain has not reached the kept checkpoint yet).
 */
export async function advanceCheckpoint(home: ClientStore, server: ServerFile): Promise<SignedHeader> {
  const kept = server.checkpoint;
  const given = await extensionEvidence(server);
  const check = verifyLedgerExtends({
    genesis: server.genesis,
    servers: server.admitted ?? [],
    kept,
    ...given,
  });
  if (check.verified) {
    await home.writeServer({ ...server, checkpoint: check.checkpoint });
    return check.checkpoint;
  }
  const a = kept.header.height;
  const fork = await signedFork(server, given);
  if (fork)
    throw serverVerdict(
      new KlError(
        'KL_CHECKPOINT_INVALID',
        `history was rewritten: the ledger signed block ${fork.hash} at height ${a}, but this client kept block ${kept.hash} there`,
        { kept: a },
      ),
    );
  // "History cut short" is said as it is (the server's signed end is below the kept height); any
  // other failure is only the absence of a valid proof.
  const reason = check.reason.startsWith('history cut short')
    ? check.reason
    : `no valid proof that the ledger extends the checkpoint kept at block ${a}`;
  throw unverifiedAnswer(new KlError(check.code, reason, { kept: a }));
}

/** The server's consistency proof from the kept height, or its latest header when it refuses one. */
async function extensionEvidence(server: ServerFile): Promise<ExtensionEvidence> {
  const url = (path: string) => endpoint(server.url, path);
  let answer: unknown;
  try {
    answer = await callJson<unknown>(
      'GET',
      url(`/v1/ledger/consistency?from=${server.checkpoint.header.height}`),
    );
  } catch (err) {
    // An outage (down, or a ledger not caught up yet: KL_LEDGER_BEHIND) is no answer about history.
    if (!isKlError(err) || isOutage(err)) throw err;
    const reply = await callJson<unknown>('GET', url('/v1/ledger/checkpoint'));
    const latest = checkReply(CheckpointReply, reply, 'KL_CHECKPOINT_INVALID', 'GET /v1/ledger/checkpoint');
    return { latest: latest.checkpoint };
  }
  return {
    proof: checkReply(ConsistencyProofSchema, answer, 'KL_CHECKPOINT_INVALID', 'GET /v1/ledger/consistency'),
  };
}

/**
 * A header validly signed for this ledger at the kept height whose hash is not the kept one, if the
 * server gave one: among the headers of its answer, or else, when it signed a later end, the header
 * it gives for the kept height alone (`consistency?from=H&to=H`, asked once; any failure there is
 * no evidence).
 */
async function signedFork(server: ServerFile, given: ExtensionEvidence): Promise<SignedHeader | null> {
  const a = server.checkpoint.header.height;
  const headers = ('proof' in given ? [given.proof.older, given.proof.newer] : [given.latest])
    .map((h) => signedHeader(server, h))
    .filter((h): h is SignedHeader => h !== null);
  const other = (h: SignedHeader) => h.header.height === a && h.hash !== server.checkpoint.hash;
  const found = headers.find(other);
  if (found) return found;
  if (!headers.some((h) => h.header.height > a)) return null;
  try {
    const answer = await callJson<unknown>(
      'GET',
      endpoint(server.url, `/v1/ledger/consistency?from=${a}&to=${a}`),
    );
    const atKept = signedHeader(server, (answer as { older?: unknown } | null)?.older);
    return atKept && other(atKept) ? atKept : null;
  } catch (err) {
    if (!isKlError(err)) throw err;
    return null;
  }
}

/**
 * `value` as a header validly signed for this ledger (by its validators or a server whose admission
 * the home holds), or null. A header's consistency with itself checks exactly its signatures
 * (proofs.ts).
 */
function signedHeader(server: ServerFile, value: unknown): SignedHeader | null {
  const check = verifyCheckpointConsistency({
    genesis: server.genesis,
    servers: server.admitted ?? [],
    proof: { older: value as SignedHeader, newer: value as SignedHeader, consistency: [], inclusion: [] },
  });
  return check.verified ? check.checkpoint : null;
}
