/**
 * Client side of registration (seed phase 1; DESIGN phase 1): begin → sign the statement with KprivC
 * (proof of possession) → complete with the identity proof → verify the receipt against the genesis,
 * check that the server key is the one pinned in the genesis, and pin both.
 */
import type { SignedHeader } from '../ledger/block.js';
import { chainIdOf, checkGenesis, type Genesis } from '../ledger/genesis.js';
import { type TransactionReceipt, verifyTransactionReceipt } from '../ledger/proofs.js';
import type { TxBodies } from '../ledger/transactions.js';
import { KlError } from '../protocol/errors.js';
import { type RegistrationStatement, statementBytes } from '../protocol/statements.js';
import type { ClientHome } from './home.js';
import { callJson } from './http.js';
import { openClientKey } from './identity.js';

/** What the server publishes at /v1/info. */
export interface ServerInfo {
  server: { fingerprint: string; publicKey: string };
  chain: string;
  genesis: Genesis;
  checkpoint: SignedHeader | null;
  methods: string[];
}

/** Options of {@link register}. */
export interface RegisterOptions {
  home: ClientHome;
  /** Base URL, e.g. http://127.0.0.1:7420 */
  server: string;
  proof: { method: 'invite' | 'email'; code: string };
  passphrase?: string;
  /** Expected chain id, learnt out of band; without it the first contact is trusted (and pinned). */
  expectChain?: string;
  now?: () => number;
}

/** Result: what was registered and verified. */
export interface RegisterResult {
  verified: true;
  id: string;
  fingerprint: string;
  height: number;
  txid: string;
  server: { fingerprint: string };
  chain: string;
}

/** Fetches and checks the server's genesis and key: the key must be the one the genesis pins. */
export async function fetchServerInfo(server: string, expectChain?: string): Promise<ServerInfo> {
  const info = await callJson<ServerInfo>('GET', new URL('/v1/info', server).toString());
  const genesis = checkGenesis(info.genesis);
  const chain = chainIdOf(genesis);
  if (chain !== info.chain)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server sent a genesis that does not match its chain id');
  if (expectChain && chain !== expectChain)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server belongs to another ledger than expected');
  if (!genesis.server || genesis.server.fingerprint !== info.server.fingerprint) {
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server key is not the one pinned in the ledger genesis');
  }
  return { ...info, genesis, chain };
}

/** Registers the identity in `home` with `server`. */
export async function register(o: RegisterOptions): Promise<RegisterResult> {
  const now = o.now ?? Date.now;
  const { identity, key } = await openClientKey(o.home, o.passphrase);
  const info = await fetchServerInfo(o.server, o.expectChain);
  const begun = await callJson<{ nonce: string; chain: string; server: { fingerprint: string } }>(
    'POST',
    new URL('/v1/register/begin', o.server).toString(),
    { id: identity.id },
  );
  if (begun.server.fingerprint !== info.server.fingerprint || begun.chain !== info.chain) {
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server changed its key during registration');
  }
  const statement: RegistrationStatement = {
    type: 'keyledger/register',
    v: 1,
    chain: info.chain,
    id: identity.id,
    name: identity.name,
    fingerprint: identity.fingerprint,
    nonce: begun.nonce,
    server: info.server.fingerprint,
    time: now(),
  };
  const signature = await key.signDetached(statementBytes(statement), new Date(statement.time));
  const result = await callJson<{
    id: string;
    fingerprint: string;
    server: { fingerprint: string; publicKey: string };
    receipt: TransactionReceipt;
  }>('POST', new URL('/v1/register/complete', o.server).toString(), {
    statement,
    signature,
    publicKey: identity.publicKey,
    proof: o.proof,
  });
  // Seed phase 1 step 4 acknowledgment, checked: the receipt proves KeyRegistered(id → our key) is in
  // a block signed by the ledger's validators.
  const check = verifyTransactionReceipt({ genesis: info.genesis, receipt: result.receipt });
  if (!check.verified)
    throw new KlError('KL_RECEIPT_INVALID', `the registration receipt does not verify: ${check.reason}`);
  const tx = check.envelope.tx;
  const body = tx.body as TxBodies['KeyRegistered'];
  if (tx.type !== 'KeyRegistered' || body.id !== identity.id || body.fingerprint !== identity.fingerprint) {
    throw new KlError('KL_RECEIPT_INVALID', 'the receipt is for another registration');
  }
  if (result.server.fingerprint !== info.server.fingerprint)
    throw new KlError('KL_SERVER_KEY_MISMATCH', 'the server answered with another key');
  o.home.writeServer({
    v: 1,
    url: o.server,
    chain: info.chain,
    genesis: info.genesis,
    server: info.server,
    checkpoint: result.receipt.block,
    registration: { receipt: result.receipt, at: now() },
  });
  return {
    verified: true,
    id: identity.id,
    fingerprint: identity.fingerprint,
    height: check.height,
    txid: check.txid,
    server: { fingerprint: info.server.fingerprint },
    chain: info.chain,
  };
}

/** Asks the server to email a one-time code to the identity in `home`. */
export async function requestEmailCode(o: {
  home: ClientHome;
  server: string;
}): Promise<{ sent: boolean; expiresAt: number }> {
  const identity = o.home.readIdentity();
  return callJson('POST', new URL('/v1/enroll/email', o.server).toString(), { id: identity.id });
}
