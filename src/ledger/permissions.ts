/**
 * Who may write what: the one declarative write-permission table of the ledger (docs/ledger.md
 * "Who may write what"): who may write what is one declarative table, not checks spread through
 * handlers. Reads are open to everyone. Both the engine and the offline verifier enforce this table
 * through {@link resolveSigner}.
 */
import { KlError } from '../protocol/errors.js';
import type { Genesis } from './genesis.js';
import type { TxEnvelope, TxType } from './transactions.js';

/** Roles a transaction signer can hold. */
export type SignerRole = 'registrar' | 'validator';

/** One row of the permission table. */
export interface WritePermission {
  /** Roles whose key may sign (submit) this type. */
  readonly signers: readonly SignerRole[];
  /** Extra approvals the body must carry. */
  readonly approvals: 'none' | 'validator-quorum';
}

/** The write-permission table. */
export const WRITE_PERMISSIONS: { readonly [T in TxType]: WritePermission } = {
  KeyRegistered: { signers: ['registrar'], approvals: 'none' },
  KeyRotated: { signers: ['registrar'], approvals: 'none' },
  KeyRevoked: { signers: ['registrar'], approvals: 'none' },
  HashAnchored: { signers: ['registrar'], approvals: 'none' },
  AuditEvent: { signers: ['registrar'], approvals: 'none' },
  RegistrarAdded: { signers: ['registrar', 'validator'], approvals: 'validator-quorum' },
  RegistrarRemoved: { signers: ['registrar', 'validator'], approvals: 'validator-quorum' },
  RoleGranted: { signers: ['registrar', 'validator'], approvals: 'validator-quorum' },
  RoleRevoked: { signers: ['registrar', 'validator'], approvals: 'validator-quorum' },
  DeviceAdded: { signers: ['registrar'], approvals: 'none' },
  DeviceRevoked: { signers: ['registrar'], approvals: 'none' },
  RecoveryKeySet: { signers: ['registrar'], approvals: 'none' },
  Recovered: { signers: ['registrar'], approvals: 'none' },
};

/** What the permission check needs to know about current state. */
export interface RegistrarLookup {
  /** The registrar with this key id if it is currently allowed to write. */
  activeRegistrar(keyId: string): { publicKey: string } | undefined;
}

/**
 * Finds the signer of `envelope` in the roles the table allows for its type and returns its public key.
 * @throws KlError `KL_NOT_PERMITTED` when the signer holds none of those roles.
 */
export function resolveSigner(envelope: TxEnvelope, genesis: Genesis, state: RegistrarLookup): string {
  const { type, signer } = envelope.tx;
  const rule = WRITE_PERMISSIONS[type];
  for (const role of rule.signers) {
    if (role === 'registrar') {
      const r = state.activeRegistrar(signer);
      if (r) return r.publicKey;
    } else {
      const v = genesis.validators.find((x) => x.keyId === signer);
      if (v) return v.publicKey;
    }
  }
  throw new KlError('KL_NOT_PERMITTED', `key ${signer} is not allowed to write ${type} transactions`, {
    signer,
    type,
    allowed: rule.signers.join(','),
  });
}
