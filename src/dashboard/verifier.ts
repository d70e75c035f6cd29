/**
 * The proof verifier, for the browser: the ledger's pure verification code, unchanged. Bundled by
 * scripts/build-dashboard.mjs (with the web crypto backend, through the package.json `browser` map) into
 * dist/dashboard/verifier.js, which the dashboard loads to check inclusion proofs in the page, and to
 * read the active devices of a key record it has verified the way the ledger reads them.
 */
export { activeDevices } from '../ledger/devices.js';
export { chainIdOf } from '../ledger/genesis.js';
export { verifyKeyRecordProof, verifyTransactionReceipt } from '../ledger/proofs.js';
