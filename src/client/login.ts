/**
 * Logging in (docs/protocol.md "Phase 2"): one WebSocket to /v1/login carries hello → challenge → response →
 * finished. Before it, the client checks that the ledger only grew since the checkpoint it keeps
 * (docs/ledger.md "Proofs": a client keeps the last checkpoint it saw and refuses a ledger that rewrote
 * history).
 */
import { errorFromWire, isKlError, KlError } from '../protocol/errors.js';
import type { SessionKeys } from '../protocol/key-schedule.js';
import { MAX_WS_MESSAGE } from '../protocol/messages.js';
import { generateEphemeral } from '../protocol/x25519.js';
import { advanceCheckpoint } from './checkpoint.js';
import type { ClientKey } from './client-key.js';
import { onServers } from './failover.js';
import { answerChallenge, verifyFinished } from './handshake.js';
import { wsEndpoint } from './http.js';
import { openClientKey, pinnedServerKey } from './identity.js';
import { serverList } from './server-list.js';
import { acceptedServerKey } from './server-trust.js';
import type { ClientStore, IdentityFile, ServerFile } from './store.js';
import { isServerVerdict, unverifiedAnswer } from './unverified-answer.js';
import { type ClientSocket, openSocket } from './websocket.js';

/** An authenticated session (the encrypted channel over it: docs/protocol.md "Phases 3 and 4"). */
export interface LoginResult {
  verified: true;
  sessionId: string;
  expiresAt: number;
  idleTimeoutMs: number;
  id: string;
  /** Session keys: memory only. */
  keys: SessionKeys;
  /** SHA-256 of the signed login transcript (the channel's chain hash starts here). */
  transcriptHash: Uint8Array;
  /** The unlocked key (for signed messages and owner revocation). */
  key: ClientKey;
  /** What server.json pinned. */
  server: ServerFile;
  /** The login connection, which the session goes on using. */
  socket: ClientSocket;
  /** Closes the connection. */
  close(): void;
}

/** Options of {@link login}. */
export interface LoginOptions {
  home: ClientStore;
  passphrase?: string;
  /** An already unlocked key (skips unlocking; used by long-running clients and benchmarks). */
  key?: ClientKey;
  now?: () => number;
  /** Check the ledger's consistency with the kept checkpoint first (default true). */
  checkLedger?: boolean;
  timeoutMs?: number;
  /**
   * Log in on this server only (`--server URL`): it must serve the home's ledger with a server key
   * the client accepts (server-trust.ts). Default: the home's servers, preferred first, the next
   * one when a server is out (failover.ts).
   */
  server?: string;
}

/**
 * Runs the handshake with a server of the ledger the identity registered with: the preferred one,
 * or the next while servers are out (docs/protocol.md "Several servers").
 */
export async function login(o: LoginOptions): Promise<LoginResult> {
  await o.home.readServer(); // not registered: said before the key is unlocked
  const { identity, key } = o.key
    ? { identity: await o.home.readIdentity(), key: o.key }
    : await openClientKey(o.home, o.passphrase);
  return onServers(o.home, (server) => loginAt(o, server, identity, key), {
    ...(o.server !== undefined ? { only: o.server } : {}),
  });
}

/**
 * A failure of the handshake before the `finished` frame is verified, as failover.ts is to weigh
 * it: a verdict only when it rests on what the server signed or sealed for this login (handshake.ts
 * marks those); anything else, an error that is no typed error included, is an unverified answer
 * (docs/protocol.md "Several servers"). A lost connection stays what it is (an outage).
 */
function unlessVerdict(err: unknown): KlError {
  if (isKlError(err)) return isServerVerdict(err) ? err : unverifiedAnswer(err);
  return unverifiedAnswer(
    new KlError('KL_PROTOCOL', 'the login answer could not be checked', undefined, { cause: err }),
  );
}

/** The handshake with the server at `server.url`. */
async function loginAt(
  o: LoginOptions,
  server: ServerFile,
  identity: IdentityFile,
  key: ClientKey,
): Promise<LoginResult> {
  const now = o.now ?? Date.now;
  // The ledger must extend the checkpoint kept in server.json (docs/ledger.md "Proofs").
  if (o.checkLedger !== false) await advanceCheckpoint(o.home, server);
  // The key this server showed when it was checked, as the client accepts it (server-trust.ts).
  const shown = serverList(server).find((e) => e.url === server.url)?.fingerprint;
  const accepted = acceptedServerKey(server, { fingerprint: shown ?? server.server.fingerprint });
  if (!accepted)
    throw new KlError(
      'KL_SERVER_KEY_MISMATCH',
      `${server.url} presents a server key this client does not accept`,
    );
  const serverKey = await pinnedServerKey(accepted.publicKey);
  const url = wsEndpoint(server.url, 'v1/login');
  const socket = await openSocket(url, {
    maxPayload: MAX_WS_MESSAGE,
    handshakeTimeout: o.timeoutMs ?? 30_000,
  });
  const ephemeral = generateEphemeral();
  // The hello names this device's key (docs/protocol.md "Devices"): the challenge is encrypted to it.
  const hello = {
    type: 'hello' as const,
    v: 1 as const,
    id: identity.id,
    ephemeral: ephemeral.publicKey,
    fingerprint: key.fingerprint,
  };

  return new Promise<LoginResult>((resolve, reject) => {
    let step: 'challenge' | 'finished' | 'done' = 'challenge';
    let pending: Awaited<ReturnType<typeof answerChallenge>> | undefined;
    const timer = setTimeout(
      () => finish(new KlError('KL_NETWORK', 'the login took too long')),
      o.timeoutMs ?? 30_000,
    );
    function finish(err: unknown, result?: LoginResult): void {
      if (step === 'done') return;
      step = 'done';
      clearTimeout(timer);
      if (err) {
        socket.terminate();
        reject(unlessVerdict(err));
      } else resolve(result!);
    }
    socket.on('open', () => socket.send(JSON.stringify(hello)));
    socket.on('error', (err) =>
      finish(new KlError('KL_NETWORK', `cannot reach ${server.url}: ${err.message}`)),
    );
    socket.on('close', () => finish(new KlError('KL_NETWORK', 'the server closed the connection')));
    let chain = Promise.resolve();
    socket.on('message', (data, isBinary) => {
      // The finished frame, the session's first sealed frame, is a binary message (docs/protocol.md
      // "Session frame wire format v2"); everything before it is JSON text.
      const frame = isBinary && typeof data !== 'string' ? data : null;
      let msg: unknown = frame;
      if (!frame) {
        try {
          msg = JSON.parse(data.toString());
        } catch {
          finish(new KlError('KL_PROTOCOL', 'the server sent something that is not JSON'));
          return;
        }
      }
      if (!frame && (typeof msg !== 'object' || msg === null || Array.isArray(msg))) {
        finish(new KlError('KL_PROTOCOL', 'the server sent something that is not a login message'));
        return;
      }
      if (!frame && (msg as { type?: unknown }).type === 'error') {
        // Handled at once: the server closes the connection right after an error. A plaintext error
        // is not authenticated (anyone on the path can send one): it fails this attempt, and only
        // its code is shown, marked as unverified (docs/protocol.md).
        const err = errorFromWire(msg, 'KL_PROTOCOL', { authenticated: false });
        finish(unverifiedAnswer(err, `the login was refused in plaintext with ${err.code}`));
        return;
      }
      chain = chain
        .then(async () => {
          if (step === 'done') return;
          if (step === 'challenge') {
            pending = await answerChallenge({
              challenge: msg,
              hello,
              ephemeral,
              key,
              serverKey,
              serverFingerprint: accepted.fingerprint,
              chain: server.chain,
              now: now(),
            });
            step = 'finished';
            socket.send(JSON.stringify(pending.response));
            return;
          }
          if (step === 'finished' && pending) {
            const fin = verifyFinished({
              frame: frame ?? new Uint8Array(0),
              keys: pending.keys,
              transcriptHash: pending.transcriptHash,
            });
            finish(null, {
              verified: true,
              sessionId: fin.sessionId,
              expiresAt: fin.expiresAt,
              idleTimeoutMs: fin.idleTimeoutMs,
              id: identity.id,
              keys: pending.keys,
              transcriptHash: pending.transcriptHash,
              key,
              server,
              socket,
              close: () => socket.close(1000, 'logout'),
            });
          }
        })
        .catch((err) => finish(err));
    });
  });
}
