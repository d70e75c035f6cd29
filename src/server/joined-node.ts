/**
 * A further server of a deployment ordered by a distributed engine (an EVM chain or an etcd cluster;
 * docs/deploy-besu.md "A second server", docs/deploy-etcd.md): its own keys and its join request
 * (DATA/join-request.json), which the governor turns into an admission (node-admission.ts). Shared
 * by the engines: evm-node.ts and etcd-node.ts add what their engine needs (an account, a binding).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dataPaths } from '../ledger/data-dir.js';
import { initJoiningLedger } from '../ledger/embedded-init.js';
import type { Genesis } from '../ledger/genesis.js';
import { checkJoinRequest, type JoinRequest } from '../ledger/node-admission.js';
import { createServerKey } from './server-key.js';

/** Options of {@link makeJoinRequest}. */
export interface MakeJoinRequestOptions {
  dataDir: string;
  passphrase: string;
  /** The deployment's genesis, already checked (its chain id is `chain`). */
  genesis: Genesis;
  chain: string;
  /** This server's name in the ledger (its registrar name). */
  name: string;
  /** This server's public URL, listed for clients once it is admitted. */
  url?: string;
  /** EVM engine: the account this server writes to the contract from. */
  account?: string;
  now?: () => number;
}

/**
 * Makes a joining server's keys (OpenPGP server key, validator, registrar; sealed under the
 * passphrase), its ledger holding only the genesis, and its join request (DATA/join-request.json,
 * 0600). The ledger fills from the engine's order once the server starts.
 */
export async function makeJoinRequest(o: MakeJoinRequestOptions): Promise<JoinRequest> {
  const server = await createServerKey(o.dataDir, o.passphrase, { now: new Date((o.now ?? Date.now)()) });
  const keys = initJoiningLedger({ dataDir: o.dataDir, passphrase: o.passphrase, genesis: o.genesis });
  const request = checkJoinRequest({
    v: 1,
    chain: o.chain,
    ...keys.registrar,
    name: o.name,
    node: {
      validator: keys.validator,
      server: { fingerprint: server.fingerprint, publicKey: server.publicKey },
      ...(o.account ? { account: o.account } : {}),
      ...(o.url ? { url: o.url } : {}),
    },
  });
  writeFileSync(dataPaths(o.dataDir).joinRequest, `${JSON.stringify(request, null, 2)}\n`, { mode: 0o600 });
  return request;
}

/** The join request of a server that joined its deployment (DATA/join-request.json), or null. */
export function readJoinRequest(dataDir: string): JoinRequest | null {
  const path = dataPaths(dataDir).joinRequest;
  if (!existsSync(path)) return null;
  return checkJoinRequest(JSON.parse(readFileSync(path, 'utf8')));
}
