/**
 * A keyledger node's data directory: the ledger plus the server's OpenPGP key, whose public half and
 * fingerprint are pinned in the genesis so clients can check the server key against the ledger.
 * `initNodeIfNeeded` makes an embedded-engine node on first start; an EVM-engine node is made by
 * evm-node.ts (loaded only for that engine).
 */
import { ensureDir, isInitialised, refusePartialDataDir } from '../ledger/data-dir.js';
import { initEmbeddedLedger } from '../ledger/embedded-ledger.js';
import { createServerKey } from './server-key.js';

/** Initialises `dataDir` if it holds no ledger yet. Returns true when it did. */
export async function initNodeIfNeeded({
  dataDir,
  passphrase,
  now = Date.now,
  name = 'keyledger',
}: {
  dataDir: string;
  passphrase: string;
  now?: () => number;
  name?: string;
}): Promise<boolean> {
  if (isInitialised(dataDir)) return false;
  refusePartialDataDir(dataDir);
  ensureDir(dataDir);
  const server = await createServerKey(dataDir, passphrase, { now: new Date(now()) });
  initEmbeddedLedger({ dataDir, passphrase, name, server, now });
  return true;
}
