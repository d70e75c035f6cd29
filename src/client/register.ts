/**
 * Client side of registration (docs/protocol.md "Phase 1"): authenticate the server (the pin the
 * invitation carries, or an expected chain id; otherwise trust on first use) → begin → seal the
 * identity proof to the server key and sign the statement that carries it with KprivC (proof of
 * possession) → complete → verify the receipt against the genesis, and pin the genesis and server key.
 * docs/protocol.md "Registration on a hostile network".
 */
import type { SignedHeader } from '../ledger/block.js';
import { chainIdOf, checkGenesis, type Genesis } from '../ledger/genesis.js';
import type { NodeAdmission } from '../ledger/node-admission.js';
import {
  type KeyRecordProof,
  type TransactionReceipt,
  verifyKeyRecordProof,
  verifyTransactionReceipt,
} from '../ledger/proofs.js';
import type { TxBodies } from '../ledger/transactions.js';
import { readPublicKey } from '../pgp/messages.js';
import { sealTo } from '../pgp/sealed.js';
import { canonicalBytes } from '../protocol/canonical-json.js';
import { isKlError, KlError } from '../protocol/errors.js';
import { chainMatchesPin, parseInvitation } from '../protocol/invitation.js';
import { fits } from '../protocol/schemas/check.js';
import { DeviceName } from '../protocol/schemas/fields.js';
import {
  EnrollEmailReply,
  InfoReply,
  RegisterBeginReply,
  RegisterCompleteReply,
} from '../protocol/schemas/http.js';
import { KeyRecordProofSchema } from '../protocol/schemas/ledger.js';
import { identityProofPayload, type RegistrationStatement, statementBytes } from '../protocol/statements.js';
import type { ClientKey } from './client-key.js';
import { callJson, endpoint } from './http.js';
import { openClientKey } from './identity.js';
import { checkReply } from './reply.js';
import { serverUrl, withLearnt } from './server-list.js';
import { trustedServerKey, verifiedAdmissions, verifiedRemovals, withAdmitted } from './server-trust.js';
import type { ClientStore, IdentityFile, ServerFile } from './store.js';

/** What the server publishes at /v1/info. */
export interface ServerInfo {
  server: { fingerprint: string; publicKey: string };
  chain: string;
  genesis: Genesis;
  checkpoint: SignedHeader | null;
  methods: string[];
  /** The servers of this deployment the server lists (docs/protocol.md "Several servers"), not checked. */
  servers?: string[];
  /** Admissions of further servers it listed that verify against the genesis (node-admission.ts). */
  admitted: NodeAdmission[];
  /** Registrar key ids of the removed servers it listed (removals verified). */
  removed: string[];
}

/** Options of {@link register}. */
export interface RegisterOptions {
  home: ClientStore;
  /** Base URL, e.g. http://127.0.0.1:7420 */
  server: string;
  /**
   * The invitation or emailed code exactly as received: `CODE.PIN` pins the server (the PIN is the
   * start of the ledger's chain id); a bare code trusts the server on first use.
   */
  proof: { method: 'invite' | 'email'; code: string };
  passphrase?: string;
  /** Expected chain id, learnt out of band; without it (or a pin) the first contact is trusted. */
  expectChain?: string;
  /**
   * Told who the server is before anything secret is sent: `pinned` when the invitation's pin or
   * `expectChain` authenticated it, `first-use` when nothing did (the CLI says so plainly).
   */
  onServer?: (server: {
    url: string;
    chain: string;
    fingerprint: string;
    trust: ServerTrust;
  }) => void | Promise<void>;
  now?: () => number;
}

/** How the client knows the server it registers with. */
export type ServerTrust = 'pinned' | 'first-use';

/** Result: what was registered and verified. */
export interface RegisterResult {
  verified: true;
  id: string;
  fingerprint: string;
  height: number;
  txid: string;
  server: { fingerprint: string };
  chain: string;
  /** Whether the server was authenticated by a pin before the identity proof was sent. */
  trust: ServerTrust;
  /** The name of this device as the ledger holds it (docs/ledger.md "Devices"), when the home has one. */
  device?: string;
}

/** What register/begin answers. */
export interface RegistrationBegun {
  nonce: string;
  chain: string;
  server: { fingerprint: string; publicKey: string };
}

/**
 * Builds the body of register/complete: the identity proof sealed to the server key (bound to this
 * identity, key, nonce and server) inside the statement, and the statement signed by the key being
 * registered. `serverPublicKey` must be the key the client authenticated (pinned or checked against
 * the genesis), never one taken from the same answer unchecked. The home's device name, if any, goes
 * in the statement, so the signature covers it (docs/ledger.md "Devices").
 * @throws KlError `KL_BAD_INPUT` for a device name the ledger would refuse.
 */
export async function buildRegistrationRequest(o: {
  identity: Pick<IdentityFile, 'id' | 'name' | 'fingerprint' | 'publicKey' | 'device'>;
  key: Pick<ClientKey, 'signDetached'>;
  chain: string;
  nonce: string;
  server: { fingerprint: string; publicKey: string };
  proof: { method: 'invite' | 'email'; code: string };
  time: number;
}): Promise<{ statement: RegistrationStatement; signature: string; publicKey: string }> {
  const device = checkedDeviceName(o.identity.device);
  const serverKey = await readPublicKey(o.server.publicKey);
  if (serverKey.getFingerprint() !== o.server.fingerprint)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server key does not have the pinned fingerprint');
  const base = {
    type: 'keyledger/register' as const,
    v: 2 as const,
    chain: o.chain,
    id: o.identity.id,
    name: o.identity.name,
    fingerprint: o.identity.fingerprint,
    ...(device !== undefined ? { device } : {}),
    nonce: o.nonce,
    server: o.server.fingerprint,
    time: o.time,
  };
  // A code given with its pin is checked against this ledger here too, then sent without it.
  const { code, pin } = parseInvitation(o.proof.code);
  if (pin && !chainMatchesPin(o.chain, pin))
    throw new KlError('KL_SERVER_KEY_MISMATCH', "the code names another ledger than this server's");
  const sealed = await sealTo(
    canonicalBytes(identityProofPayload(base, { method: o.proof.method, code })),
    serverKey,
    new Date(o.time),
  );
  const statement: RegistrationStatement = { ...base, proof: { method: o.proof.method, sealed } };
  const signature = await o.key.signDetached(statementBytes(statement), new Date(o.time));
  return { statement, signature, publicKey: o.identity.publicKey };
}

/**
 * The home's device name as the registration statement carries it: undefined without one; refused
 * before anything is sent when the ledger would refuse it (the schema's DeviceName).
 * @throws KlError `KL_BAD_INPUT`
 */
function checkedDeviceName(device: string | undefined): string | undefined {
  if (device === undefined) return undefined;
  const shown = JSON.stringify(String(device).slice(0, 60));
  if (!fits(DeviceName, device))
    throw new KlError(
      'KL_BAD_INPUT',
      `the device name ${shown} in identity.json is not one the ledger takes: ` +
        '1 to 40 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit ' +
        '(keyledger init --device NAME sets it)',
    );
  return device;
}

/** Fetches and checks the server's genesis and key: the key must be the one the genesis pins. */
export async function fetchServerInfo(server: string, expectChain?: string): Promise<ServerInfo> {
  const info = checkReply(
    InfoReply,
    await callJson<unknown>('GET', endpoint(server, 'v1/info')),
    'KL_PROTOCOL',
    'GET /v1/info',
  );
  const genesis = checkGenesis(info.genesis);
  const chain = chainIdOf(genesis);
  if (chain !== info.chain)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server sent a genesis that does not match its chain id');
  if (expectChain && chain !== expectChain)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server belongs to another ledger than expected');
  // The key the genesis pins, or that of a further server admitted by governance (its admission
  // verified against the genesis alone: node-admission.ts).
  const removed = verifiedRemovals(genesis, chain, info.removed);
  const admitted = verifiedAdmissions(genesis, chain, info.admitted).filter(
    (a) => !removed.includes(a.keyId),
  );
  if (!genesis.server || !trustedServerKey(genesis, admitted, info.server)) {
    throw new KlError(
      'KL_SERVER_KEY_MISMATCH',
      'the server key is neither the one pinned in the ledger genesis nor one of an admitted server',
    );
  }
  return { ...info, genesis, chain, admitted, removed };
}

/** Registers the identity in `home` with `server`. */
export async function register(o: RegisterOptions): Promise<RegisterResult> {
  const now = o.now ?? Date.now;
  const { code, pin } = parseInvitation(o.proof.code);
  const { identity, key } = await openClientKey(o.home, o.passphrase);
  // A name the ledger would refuse is said before the server is even asked.
  checkedDeviceName(identity.device);
  const { info, trust } = await authenticateServer(
    o,
    pin,
    o.proof.method === 'invite' ? 'invitation' : 'code',
  );
  const begun: RegistrationBegun = checkReply(
    RegisterBeginReply,
    await callJson<unknown>('POST', endpoint(o.server, 'v1/register/begin'), { id: identity.id }),
    'KL_PROTOCOL',
    'POST /v1/register/begin',
  );
  if (begun.server.fingerprint !== info.server.fingerprint || begun.chain !== info.chain) {
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server changed its key during registration');
  }
  const request = await buildRegistrationRequest({
    identity,
    key,
    chain: info.chain,
    nonce: begun.nonce,
    server: info.server,
    proof: { method: o.proof.method, code },
    time: now(),
  });
  const answer = await callJson<unknown>('POST', endpoint(o.server, 'v1/register/complete'), request).catch(
    async (err: unknown) => {
      throw await explainRefusal(err, {
        server: o.server,
        genesis: info.genesis,
        admitted: info.admitted,
        id: identity.id,
        trust,
      });
    },
  );
  const { receipt, height, txid } = checkRegistrationAnswer(answer, info, identity);
  await pinServer(o.home, { server: o.server, info, receipt, at: now() });
  return {
    verified: true,
    id: identity.id,
    fingerprint: identity.fingerprint,
    height,
    txid,
    server: { fingerprint: info.server.fingerprint },
    chain: info.chain,
    trust,
    ...(identity.device !== undefined ? { device: identity.device } : {}),
  };
}

/**
 * Keeps what a verified receipt of this identity's key proved about the ledger (server.json): the
 * genesis and the server key it pins, the receipt's block as the first checkpoint, and the server
 * (with the others it lists, checked before their first use: failover.ts). Used once a registration
 * or a device addition (device-request.ts) is committed and its receipt verified against `info`.
 */
export async function pinServer(
  home: ClientStore,
  o: { server: string; info: ServerInfo; receipt: TransactionReceipt; at: number },
): Promise<void> {
  const { info, receipt } = o;
  const registered: ServerFile = {
    v: 1,
    url: serverUrl(o.server),
    chain: info.chain,
    genesis: info.genesis,
    // The key the genesis pins; a further server's own key is trusted through its admission.
    server: info.genesis.server!,
    checkpoint: receipt.block,
    registration: { receipt, at: o.at },
    servers: [{ url: serverUrl(o.server), fingerprint: info.server.fingerprint }],
  };
  await home.writeServer(
    withAdmitted(withLearnt(registered, info.servers ?? []), info.admitted, info.removed),
  );
}

/** What {@link authenticateServer} needs: the server, and what may pin it or accept it unpinned. */
export type ServerAuthentication = Pick<RegisterOptions, 'server' | 'expectChain' | 'onServer'>;

/**
 * Authenticates the server before anything secret leaves: the invitation's pin (or `expectChain`)
 * names the ledger, whose genesis names the server key (docs/protocol.md "Registration on a hostile
 * network"). Without either, `onServer` decides whether to go on trusting on first use.
 * @param what what carried the pin, for the message when it names another ledger.
 */
export async function authenticateServer(
  o: ServerAuthentication,
  pin?: string,
  what = 'invitation',
): Promise<{ info: ServerInfo; trust: ServerTrust }> {
  const info = await fetchServerInfo(o.server, o.expectChain);
  if (pin && !chainMatchesPin(info.chain, pin))
    throw new KlError(
      'KL_SERVER_KEY_MISMATCH',
      `the server at ${o.server} is not the one your ${what} names ` +
        '(its ledger has another chain id): someone may be intercepting the connection. Nothing was sent.',
    );
  const trust: ServerTrust = pin || o.expectChain ? 'pinned' : 'first-use';
  // It may refuse (throw) a server it was not told to trust: nothing has been sent yet.
  await o.onServer?.({ url: o.server, chain: info.chain, fingerprint: info.server.fingerprint, trust });
  return { info, trust };
}

/**
 * `receipt` verified against the genesis and admitted servers of `info` (what the client checked of
 * the server before sending anything); its transaction is the caller's to check.
 * @param what the change it should prove, for the message ("registration", "device addition").
 * @throws KlError `KL_RECEIPT_INVALID` when it does not verify.
 */
export function verifiedReceipt(
  info: Pick<ServerInfo, 'genesis' | 'admitted'>,
  receipt: TransactionReceipt,
  what: string,
): Extract<ReturnType<typeof verifyTransactionReceipt>, { verified: true }> {
  const check = verifyTransactionReceipt({ genesis: info.genesis, receipt, servers: info.admitted });
  if (!check.verified)
    throw new KlError('KL_RECEIPT_INVALID', `the ${what} receipt does not verify: ${check.reason}`);
  return check;
}

/**
 * docs/protocol.md "Phase 1", step 5, the acknowledgment, checked: the receipt proves KeyRegistered(id → this
 * key, under exactly this device name or none) is in a block signed by the ledger's validators, and the
 * server answered with the key it pinned.
 */
function checkRegistrationAnswer(
  answer: unknown,
  info: ServerInfo,
  identity: { id: string; fingerprint: string; device?: string },
): { receipt: TransactionReceipt; height: number; txid: string } {
  const a = checkReply(RegisterCompleteReply, answer, 'KL_RECEIPT_INVALID', 'POST /v1/register/complete');
  // The schema bounds the envelope; its body is checked for its transaction type by the verifier.
  const receipt = a.receipt as TransactionReceipt;
  const check = verifiedReceipt(info, receipt, 'registration');
  const tx = check.envelope.tx;
  const body = tx.body as TxBodies['KeyRegistered'];
  if (tx.type !== 'KeyRegistered' || body.id !== identity.id || body.fingerprint !== identity.fingerprint) {
    throw new KlError('KL_RECEIPT_INVALID', 'the receipt is for another registration');
  }
  // The statement the key signed named the device; a receipt naming another (or none) is not its
  // registration, whoever changed it.
  if (body.device !== identity.device)
    throw new KlError(
      'KL_RECEIPT_INVALID',
      `the receipt registers this key as the device ${body.device === undefined ? '(no name)' : JSON.stringify(body.device)}, ` +
        `not ${identity.device === undefined ? '(no name)' : JSON.stringify(identity.device)}: ` +
        'the answer was changed on the way, or this key was registered before under another name',
    );
  if (a.server.fingerprint !== info.server.fingerprint)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server answered with another key');
  return { receipt, height: check.height, txid: check.txid };
}

/**
 * Says what a refusal means for the person registering: another key holding the identity means
 * someone registered first — with this person's invitation or code if they did not do it themselves.
 * The server's error is not authenticated (plain HTTP can be rewritten), so the claim is believed only
 * once the ledger's key record, proven against the genesis, shows another active key.
 */
async function explainRefusal(
  err: unknown,
  o: { server: string; genesis: Genesis; admitted: NodeAdmission[]; id: string; trust: ServerTrust },
): Promise<unknown> {
  if (isKlError(err, 'KL_KEY_IN_USE'))
    // The ledger binds a key to one identity for good: a revoked or replaced key stays bound.
    return new KlError(
      'KL_KEY_IN_USE',
      'the server answered that this key is already on the ledger, now or before: a key that was ' +
        'revoked or replaced cannot be registered again. Make a new key (keyledger init --id ' +
        `${o.id} --force; the old key moves to the home's retired/ folder), ask the operator for a new ` +
        'invitation if yours was spent, and register again.',
    );
  if (!isKlError(err) || err.code !== 'KL_IDENTITY_TAKEN') return err;
  const other = await provenActiveKey(o.server, o.genesis, o.admitted, o.id).catch(() => undefined);
  if (!other)
    return new KlError(
      'KL_IDENTITY_TAKEN',
      `the server answered that ${o.id} is already registered, but the ledger does not prove it: the ` +
        'answer may have been changed on the way. Nothing was registered; try again, or ask the operator.',
      { authenticated: false },
    );
  return new KlError(
    'KL_IDENTITY_TAKEN',
    `the ledger already holds another key for ${o.id} (fingerprint ${other.fingerprint}, block ${other.height}). ` +
      'If you did not register that key, someone else registered first' +
      (o.trust === 'first-use'
        ? ' — possibly with your code, read on the way to an unauthenticated server;'
        : ';') +
      ' do not use that identity: ask the operator to revoke that key and to invite you again.',
    { fingerprint: other.fingerprint, height: other.height },
  );
}

/**
 * The server's state proof of `id`'s key record, checked against its schema (not yet verified:
 * `verifyKeyRecordProof` does that against the genesis).
 * @throws KlError `KL_PROOF_INVALID` when the answer is malformed.
 */
export async function fetchKeyRecordProof(server: string, id: string): Promise<KeyRecordProof> {
  return checkReply(
    KeyRecordProofSchema,
    await callJson<unknown>('GET', endpoint(server, `v1/ledger/keys/${encodeURIComponent(id)}`)),
    'KL_PROOF_INVALID',
    `GET /v1/ledger/keys/${id}`,
  );
}

/** The identity's active key as the ledger proves it (state proof against the genesis), if any. */
async function provenActiveKey(
  server: string,
  genesis: Genesis,
  admitted: NodeAdmission[],
  id: string,
): Promise<{ fingerprint: string; height: number } | undefined> {
  const proof = await fetchKeyRecordProof(server, id);
  const check = verifyKeyRecordProof({ genesis, servers: admitted, proof });
  if (!check.verified || proof.id !== id || check.record?.status !== 'active') return undefined;
  return { fingerprint: check.record.fingerprint, height: check.record.registered.height };
}

/** Asks the server to email a one-time code to the identity in `home`. */
export async function requestEmailCode(o: {
  home: ClientStore;
  server: string;
}): Promise<EmailCodeRequested> {
  const identity = await o.home.readIdentity();
  const answer = await callJson<unknown>('POST', endpoint(o.server, 'v1/enroll/email'), {
    id: identity.id,
  });
  return checkReply(EnrollEmailReply, answer, 'KL_PROTOCOL', 'POST /v1/enroll/email');
}

/**
 * What the server did with a request for an emailed code: sent one, or — when codes went to this
 * address in the last minutes — sent none, because those are still valid.
 */
export type EmailCodeRequested = { sent: true; expiresAt: number } | { sent: false; reason: 'recently-sent' };
