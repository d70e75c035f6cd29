/**
 * Signature domain separators. Every signature in the ledger is over `domain ‖ canonical bytes`, so a
 * signature made for one purpose can never be replayed as another.
 */

/** Registrar signature over a transaction's canonical `tx` object. */
export const TX_DOMAIN = 'keyledger/tx/v1\n';
/** Validator signature over a block hash (32 raw bytes). */
export const BLOCK_DOMAIN = 'keyledger/block/v1\n';
/** Validator approval of a governance change. */
export const GOVERNANCE_DOMAIN = 'keyledger/governance/v1\n';
/** A node's own record of how far it has verified its stored ledger (docs/ledger.md "Integrity at start"). */
export const VERIFIED_DOMAIN = 'keyledger/verified/v1\n';
/** An organisation's contribution to a joint genesis (docs/deploy-besu.md "Several organisations"). */
export const GENESIS_CONTRIBUTION_DOMAIN = 'keyledger/genesis-contribution/v1\n';
/** A genesis validator's signature over a joint genesis's chain id (its consent to that genesis). */
export const GENESIS_SIGNATURE_DOMAIN = 'keyledger/genesis-signature/v1\n';
