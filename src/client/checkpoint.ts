/**
 * Moving the client's kept checkpoint forward (docs/ledger.md "Proofs"): the server proves that its
 * ledger extends the checkpoint kept in server.json; a ledger that rewrote its history, or whose
 * history is now shorter than what the client already saw ("history cut short"), is refused with
 * `KL_CHECKPOINT_INVALID`.
 */
import type { SignedHeader } from '../ledger/block.js';
import { type ConsistencyProof, verifyLedgerExtends } from '../ledger/proofs.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { CheckpointReply } from '../protocol/schemas/http.js';
import { ConsistencyProofSchema } from '../protocol/schemas/ledger.js';
import { isOutage } from './failover.js';
import { callJson, endpoint } from './http.js';
import { checkReply } from './reply.js';
import type { ClientStore, ServerFile } from './store.js';
import { unverifiedAnswer } from './unverified-answer.js';

/**
 * Asks the server for a consistency proof from the kept checkpoint to its latest block, checks it
 * against the genesis, and keeps the new checkpoint. When the server refuses the proof (an honest
 * server whose ledger was cut short cannot give one), its latest signed header tells a truncated
 * history from a rewritten one.
 * @throws KlError `KL_CHECKPOINT_INVALID` (history cut short or rewritten), `KL_NETWORK`,
 *   `KL_LEDGER_BEHIND` (a server following a chain has not reached the kept checkpoint yet)
 */
export async function advanceCheckpoint(home: ClientStore, server: ServerFile): Promise<SignedHeader> {
  const kept = server.checkpoint;
  const url = (path: string) => endpoint(server.url, path);
  let proof: ConsistencyProof | undefined;
  let latest: unknown;
  let answer: unknown;
  try {
    answer = await callJson<unknown>('GET', url(`/v1/ledger/consistency?from=${kept.header.height}`));
  } catch (err) {
    // An outage (down, or a ledger not caught up yet: KL_LEDGER_BEHIND) is no answer about history.
    if (!isKlError(err) || isOutage(err)) throw err;
    const reply = await callJson<unknown>('GET', url('/v1/ledger/checkpoint'));
    latest = checkReply(
      CheckpointReply,
      reply,
      'KL_CHECKPOINT_INVALID',
      'GET /v1/ledger/checkpoint',
    ).checkpoint;
  }
  if (latest === undefined)
    proof = checkReply(ConsistencyProofSchema, answer, 'KL_CHECKPOINT_INVALID', 'GET /v1/ledger/consistency');
  const check = verifyLedgerExtends({
    genesis: server.genesis,
    servers: server.admitted ?? [],
    kept,
    ...(proof !== undefined ? { proof } : { latest }),
  });
  if (!check.verified) {
    const err = new KlError(check.code, check.reason, { kept: kept.header.height });
    // Without a proof, only a signed end below the kept checkpoint (history cut short: the one
    // reason verifyLedgerExtends gives for it) is evidence; "rewritten" would rest on the refusal of
    // the proof, an unauthenticated answer.
    const evidence = proof !== undefined || check.reason.startsWith('history cut short');
    throw evidence ? err : unverifiedAnswer(err);
  }
  await home.writeServer({ ...server, checkpoint: check.checkpoint });
  return check.checkpoint;
}
