/**
 * `keyledger status`: what the ledger holds for this home's identity now.
 */
import { advanceCheckpoint } from '../../client/checkpoint.js';
import { onServers } from '../../client/failover.js';
import { ClientHome } from '../../client/home.js';
import { fetchKeyRecordProof, fetchServerInfo } from '../../client/register.js';
import { withLearnt } from '../../client/server-list.js';
import { acceptedServerKey } from '../../client/server-trust.js';
import type { ServerFile } from '../../client/store.js';
import { isServerVerdict } from '../../client/unverified-answer.js';
import { holdsKey } from '../../ledger/devices.js';
import { verifyKeyRecordProof } from '../../ledger/proofs.js';
import { KlError } from '../../protocol/errors.js';
import { out } from '../io.js';
import type { ClientOptions } from './client-options.js';

/**
 * `keyledger status`: identity, pinned keys, and what the ledger says about us now. Exit codes (also
 * in its --help and the README), so scripts can act on them: 0 the ledger holds this key, active,
 * and the server presents the pinned key; 1 a check failed (the server presents another key, or the
 * ledger's proof does not verify); 2 error (e.g. `KL_CHECKPOINT_INVALID` "history cut short");
 * 3 the ledger holds ANOTHER key for this identity; 4 the key is revoked; 5 unknown: not registered
 * from this home, or no record on the ledger.
 */
export async function status(o: ClientOptions): Promise<number> {
  const STATUS_EXIT = { ok: 0, checkFailed: 1, anotherKey: 3, revoked: 4, unknown: 5 } as const;
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  if (!home.hasServer()) {
    if (o.json)
      out(JSON.stringify({ id: identity.id, fingerprint: identity.fingerprint, registered: false }));
    else out(`${identity.id}: not registered yet`);
    return STATUS_EXIT.unknown;
  }
  // One server answers all of it: the preferred one, or the next while servers are out. A proof
  // that does not verify, or a server key other than the pinned one, is no answer either (its path
  // can rewrite both): the next server is asked, and the check is reported failed only when none
  // passed it.
  type Answer = Awaited<ReturnType<typeof answerOf>>;
  const answerOf = async (server: ServerFile) => {
    const info = await fetchServerInfo(server.url, server.chain);
    // Refuses a ledger whose history was rewritten or cut short (KL_CHECKPOINT_INVALID, exit 2).
    const checkpoint = await advanceCheckpoint(home, server);
    const proof = await fetchKeyRecordProof(server.url, identity.id);
    const pinnedOk = acceptedServerKey(server, info.server) !== null;
    const check = verifyKeyRecordProof({ genesis: server.genesis, servers: server.admitted ?? [], proof });
    // The proof must be about us, at a checkpoint no older than the one just accepted.
    const proofOk = check.verified && proof.id === identity.id && check.height >= checkpoint.header.height;
    return {
      server,
      info,
      checkpoint,
      pinnedOk,
      proofOk,
      record: proofOk && check.verified ? check.record : null,
    };
  };
  let failedCheck: Answer | undefined;
  let answer: Answer;
  try {
    answer = await onServers(
      home,
      async (server) => {
        const found = await answerOf(server);
        if (found.pinnedOk && found.proofOk) return found;
        failedCheck ??= found;
        throw new KlError('KL_PROOF_INVALID', `${server.url} gave no verified answer`);
      },
      o.server !== undefined ? { only: o.server } : {},
    );
  } catch (err) {
    // What a server signed stands (a rewritten history); otherwise the first failed check is told.
    if (!failedCheck || isServerVerdict(err)) throw err;
    answer = failedCheck;
  }
  const { server, info, checkpoint, pinnedOk, proofOk, record } = answer;
  // The servers it lists join the list, each checked before its first use.
  if (info.servers?.length) home.writeServer(withLearnt(home.readServer(), info.servers));
  const state: keyof typeof STATUS_EXIT =
    !pinnedOk || !proofOk
      ? 'checkFailed'
      : !record
        ? 'unknown'
        : !holdsKey(record, identity.fingerprint)
          ? 'anotherKey'
          : record.status !== 'active'
            ? 'revoked'
            : 'ok';
  const data = {
    id: identity.id,
    fingerprint: identity.fingerprint,
    server: server.url,
    chain: server.chain,
    pinnedServerFingerprint: server.server.fingerprint,
    serverKeyMatchesPin: pinnedOk,
    checkpoint: { height: checkpoint.header.height, hash: checkpoint.hash },
    ledger: {
      verified: proofOk,
      status: record?.status ?? 'absent',
      fingerprint: record?.fingerprint ?? null,
      matchesLocalKey: record ? holdsKey(record, identity.fingerprint) : false,
    },
    state,
    exitCode: STATUS_EXIT[state],
  };
  if (o.json) out(JSON.stringify(data));
  else {
    out(`identity       ${identity.id}`);
    out(`fingerprint    ${identity.fingerprint}`);
    out(`server         ${server.url}`);
    out(
      `server key     ${server.server.fingerprint} (pinned${pinnedOk ? ', server still presents it' : ', SERVER PRESENTS ANOTHER KEY'})`,
    );
    out(
      `ledger         chain ${server.chain.slice(0, 16)}…, checkpoint block ${checkpoint.header.height} (history only appended to)`,
    );
    out(
      `on the ledger  ${record ? `${record.status === 'active' ? 'active' : 'REVOKED'}, ${holdsKey(record, identity.fingerprint) ? 'same key as here' : `ANOTHER KEY ${record.fingerprint}`}` : 'not found'} (state proof ${proofOk ? 'verified' : 'INVALID'})`,
    );
  }
  return STATUS_EXIT[state];
}
