/**
 * The ledger's state and the rules that change it. One function, {@link applyTransaction}, decides
 * whether a transaction is valid in a given state and what it changes; the engine (when it builds a
 * block) and the offline verifier (when it replays the chain) both call it, so they cannot disagree.
 *
 * State entries, each under a namespaced key in the state tree (see state-tree.ts):
 *   identity:<id>        → KeyRecord   (the identity's current key, status and history)
 *   fingerprint:<fpr>    → { id }      (a key belongs to at most one identity, forever)
 *   registrar:<keyId>    → RegistrarRecord
 *   governance           → { govSeq }  (number of governance changes applied; stops replays)
 */
import { utf8 } from '../protocol/bytes.js';
import { canonicalBytes, canonicalize } from '../protocol/canonical-json.js';
import { KlError } from '../protocol/errors.js';
import { sha256 } from '../protocol/hash.js';
import { activeDevice, activeDevices, MAX_DEVICES } from './devices.js';
import { GOVERNANCE_DOMAIN } from './domains.js';
import type { Genesis } from './genesis.js';
import { resolveSigner, WRITE_PERMISSIONS } from './permissions.js';
import { keyIdMatches, verifySignature } from './signing-keys.js';
import type { StateTree } from './state-tree.js';
import {
  type Approval,
  type IdentityRole,
  type NodeInfo,
  type TxBodies,
  type TxEnvelope,
  verifyEnvelopeSignature,
} from './transactions.js';

/** Where and when a change happened. */
export interface TxRef {
  height: number;
  txid: string;
  time: number;
}

/** An identity's key record: what the server reads before every login. */
export interface KeyRecord {
  id: string;
  name: string;
  /** Current key's fingerprint (lowercase hex). */
  fingerprint: string;
  /** Current key, armored. */
  publicKey: string;
  algorithm: string;
  status: 'active' | 'revoked';
  registered: TxRef;
  updated: TxRef;
  revocation?: { reason: string; by: 'owner' | 'admin'; admin?: string; at: TxRef };
  /** Roles granted by governance (RoleGranted); absent means none. Dropped when the identity re-registers. */
  roles?: IdentityRole[];
  /** The name of the device that holds the top-level key (docs/ledger.md "Devices"); absent if none was given. */
  device?: string;
  /**
   * For a top-level key that was added as a further device and became the first when the keys before
   * it were revoked: when and by whom it was added.
   */
  deviceAdded?: { added: TxRef; approvedBy: DeviceKey['approvedBy'] };
  /** The identity's further active device keys, in the order they were added (absent: one device). */
  devices?: DeviceKey[];
  /** The identity's recovery key (docs/ledger.md "Recovery"); it never logs in. */
  recovery?: RecoveryKey;
  /** Earlier keys of this identity, oldest first. */
  history: Array<{
    fingerprint: string;
    algorithm: string;
    replaced: TxRef;
    reason: 'rotated' | 'revoked';
    /** The device that held it. */
    device?: string;
    /** It came as a further device (DeviceAdded): its start is that transaction, not the entry before. */
    further?: true;
  }>;
}

/** A further device key of an identity (transaction DeviceAdded). */
export interface DeviceKey {
  name: string;
  fingerprint: string;
  publicKey: string;
  algorithm: string;
  added: TxRef;
  /**
   * The active device that signed the addition, the operator who made it, or the recovery key that
   * enrolled it (transaction Recovered).
   */
  approvedBy: { device: string } | { admin: string } | { recovery: string };
}

/** An identity's recovery key (transactions RecoveryKeySet and Recovered). */
export interface RecoveryKey {
  fingerprint: string;
  publicKey: string;
  algorithm: string;
  added: TxRef;
  /** The active device that set it, or the recovery key it replaced in a recovery. */
  setBy: { device: string } | { recovery: string };
}

/** A registrar as recorded in state. */
export interface RegistrarRecord {
  keyId: string;
  publicKey: string;
  name: string;
  active: boolean;
  /** Height of the transaction that added it (0 for the genesis). */
  since: number;
  /**
   * The server this registrar runs, and the governance approvals that admitted it: kept so that the
   * admission can be checked again with the genesis alone (node-admission.ts).
   */
  node?: NodeInfo;
  admission?: { govSeq: number; approvals: Approval[] };
  /** For a removed registrar with a server: the approvals that removed it (its removal certificate). */
  removal?: { govSeq: number; approvals: Approval[] };
}

/** Kinds of state entry. */
export type StateEntry =
  | { kind: 'identity'; key: string; value: KeyRecord }
  | { kind: 'fingerprint'; key: string; value: { id: string } }
  | { kind: 'registrar'; key: string; value: RegistrarRecord }
  | { kind: 'governance'; key: string; value: { govSeq: number } };

/** The namespaced state key of an identity. */
export const identityKey = (id: string): string => `identity:${id}`;
/** The namespaced state key of a fingerprint. */
export const fingerprintKey = (fpr: string): string => `fingerprint:${fpr}`;
/** The namespaced state key of a registrar. */
export const registrarKey = (keyId: string): string => `registrar:${keyId}`;
/** The state key of the governance counter. */
export const GOVERNANCE_KEY = 'governance';

/** The 32-byte position of a state key in the state tree. */
export function stateTreeKey(key: string): Uint8Array {
  return sha256(utf8(key));
}

/** The 32-byte value hash of a state entry's value. */
export function stateValueHash(value: unknown): Uint8Array {
  return sha256(canonicalBytes(value));
}

/** Read access to a state: the stored value of a namespaced key. */
export interface StateSource {
  get(key: string): unknown;
}

/** How the maximal clock difference between a transaction and its block is bounded. */
export const MAX_TX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * A state under construction: reads fall through to a base source, writes go to an overlay and to a
 * persistent state tree. Discarding a failed block is dropping the object.
 */
export class WorkingState {
  /** Entries written since the base, by key, with their canonical JSON text (what is stored). */
  readonly writes = new Map<string, { entry: StateEntry; text: string }>();

  constructor(
    private readonly base: StateSource,
    public tree: StateTree,
  ) {}

  /**
   * Values read from the base, by key: a block reads the same entries again and again (its
   * registrar's record, for every transaction), and the base does not change under a working state.
   * The rules never change a value they read; they write new ones.
   */
  private readonly reads = new Map<string, unknown>();

  /** Current value of `key`. */
  get<T>(key: string): T | undefined {
    const w = this.writes.get(key);
    if (w) return w.entry.value as T;
    if (this.reads.has(key)) return this.reads.get(key) as T | undefined;
    const value = this.base.get(key);
    this.reads.set(key, value);
    return value as T | undefined;
  }

  /** Writes an entry. */
  put(entry: StateEntry): void {
    const text = canonicalize(entry.value);
    this.writes.set(entry.key, { entry, text });
    this.tree = this.tree.set(stateTreeKey(entry.key), sha256(utf8(text)));
  }

  /** The active registrar with this key id. */
  activeRegistrar(keyId: string): RegistrarRecord | undefined {
    const r = this.get<RegistrarRecord>(registrarKey(keyId));
    return r?.active ? r : undefined;
  }

  /** Number of governance changes applied so far. */
  govSeq(): number {
    return this.get<{ govSeq: number }>(GOVERNANCE_KEY)?.govSeq ?? 0;
  }
}

/** The state entries a genesis implies before block 1. */
export function genesisEntries(genesis: Genesis): StateEntry[] {
  return [
    ...genesis.registrars.map(
      (r): StateEntry => ({
        kind: 'registrar',
        key: registrarKey(r.keyId),
        value: { keyId: r.keyId, publicKey: r.publicKey, name: r.name, active: true, since: 0 },
      }),
    ),
    { kind: 'governance', key: GOVERNANCE_KEY, value: { govSeq: 0 } },
  ];
}

/** Context of {@link applyTransaction}. */
export interface ApplyContext {
  genesis: Genesis;
  chain: string;
  height: number;
  txid: string;
  /** Time of the block being built. */
  blockTime: number;
  /** Set when the caller itself signed this envelope in this process, so checking it again is waste. */
  signatureAlreadyVerified?: boolean;
  /**
   * The public key (as the state stores it) that an earlier check found the envelope's signature
   * valid for, e.g. a worker thread of the offline audit. It counts only if it is the key the
   * permission rules resolve for the signer now; otherwise the signature is checked here.
   */
  signatureVerifiedWith?: string;
}

/** Transaction types that need validator approvals. */
export type GovernanceType = 'RegistrarAdded' | 'RegistrarRemoved' | 'RoleGranted' | 'RoleRevoked';

/** The message validators sign to approve a governance change. */
export function governanceMessage(chain: string, type: GovernanceType, body: object): Uint8Array {
  const { approvals: _ignored, ...rest } = body as { approvals?: unknown };
  return utf8(canonicalize({ chain, type, ...rest }));
}

/**
 * How many distinct validators of the genesis approved `message` among `approvals` (a signature
 * that does not verify, or by a key the genesis does not name, counts for nothing).
 */
export function countApprovals(
  genesis: Genesis,
  message: Uint8Array,
  approvals: readonly Approval[],
): number {
  const approved = new Set<string>();
  for (const a of approvals) {
    const v = genesis.validators.find((x) => x.keyId === a.validator);
    if (v && verifySignature(v.publicKey, GOVERNANCE_DOMAIN, message, a.sig)) approved.add(v.keyId);
  }
  return approved.size;
}

function checkQuorum(env: TxEnvelope, ctx: ApplyContext): void {
  const body = env.tx.body as TxBodies[GovernanceType];
  const msg = governanceMessage(ctx.chain, env.tx.type as GovernanceType, body);
  const valid = countApprovals(ctx.genesis, msg, body.approvals);
  if (valid < ctx.genesis.quorum) {
    throw new KlError(
      'KL_QUORUM_NOT_MET',
      `governance change needs ${ctx.genesis.quorum} validator approvals`,
      { valid, quorum: ctx.genesis.quorum },
    );
  }
}

/**
 * Checks `env` against the permission table and the state rules and, if valid, applies it to `state`.
 * On error `state` is unchanged: every rule below is checked before the first `put` of its case, so
 * a rejected transaction leaves no trace (keep it that way when adding rules).
 * @throws KlError with the code that names the broken rule.
 */
export function applyTransaction(state: WorkingState, env: TxEnvelope, ctx: ApplyContext): void {
  const { tx } = env;
  if (tx.chain !== ctx.chain) throw new KlError('KL_TX_WRONG_CHAIN', 'transaction belongs to another ledger');
  if (tx.time > ctx.blockTime + MAX_TX_CLOCK_SKEW_MS) {
    throw new KlError('KL_TX_CLOCK_SKEW', 'transaction time is too far in the future', { time: tx.time });
  }
  const signerKey = resolveSigner(env, ctx.genesis, state);
  const checked = ctx.signatureAlreadyVerified || ctx.signatureVerifiedWith === signerKey;
  if (!checked && !verifyEnvelopeSignature(env, signerKey)) {
    throw new KlError('KL_TX_BAD_SIGNATURE', 'transaction signature is not valid');
  }
  if (WRITE_PERMISSIONS[tx.type].approvals === 'validator-quorum') checkQuorum(env, ctx);

  const at: TxRef = { height: ctx.height, txid: ctx.txid, time: tx.time };
  switch (tx.type) {
    case 'KeyRegistered': {
      const b = tx.body as TxBodies['KeyRegistered'];
      const prev = state.get<KeyRecord>(identityKey(b.id));
      if (prev?.status === 'active')
        throw new KlError('KL_IDENTITY_TAKEN', 'this identity is already registered');
      if (state.get(fingerprintKey(b.fingerprint))) {
        throw new KlError('KL_KEY_IN_USE', 'this key is already registered to an identity');
      }
      // A revoked identity may register again (a new invitation); its old keys stay in the history.
      const history: KeyRecord['history'] = prev
        ? [...prev.history, ...retired(devicesOf(prev), at, 'revoked')]
        : [];
      const record: KeyRecord = {
        id: b.id,
        name: b.name,
        fingerprint: b.fingerprint,
        publicKey: b.publicKey,
        algorithm: b.algorithm,
        status: 'active',
        registered: at,
        updated: at,
        ...(b.device ? { device: b.device } : {}),
        history,
      };
      state.put({ kind: 'identity', key: identityKey(b.id), value: record });
      state.put({ kind: 'fingerprint', key: fingerprintKey(b.fingerprint), value: { id: b.id } });
      return;
    }
    case 'KeyRotated': {
      const b = tx.body as TxBodies['KeyRotated'];
      const prev = activeRecord(state, b.id, b.oldFingerprint);
      if (state.get(fingerprintKey(b.fingerprint))) {
        throw new KlError('KL_KEY_IN_USE', 'the new key is already registered to an identity');
      }
      // The device keeps its name and place; only its key changes (docs/ledger.md "Devices").
      const key = { fingerprint: b.fingerprint, publicKey: b.publicKey, algorithm: b.algorithm };
      const old = activeDevice(prev, b.oldFingerprint)!;
      const record: KeyRecord = {
        ...(old.primary ? { ...prev, ...key } : prev),
        ...(old.primary
          ? {}
          : {
              devices: prev.devices!.map((d) => (d.fingerprint === b.oldFingerprint ? { ...d, ...key } : d)),
            }),
        updated: at,
        history: [...prev.history, ...retired([{ ...old, further: isFurther(prev, old) }], at, 'rotated')],
        // The recovery key stays tied to the device that set it, under its new key.
        ...(setByDevice(prev) === b.oldFingerprint
          ? { recovery: { ...prev.recovery!, setBy: { device: b.fingerprint } } }
          : {}),
      };
      state.put({ kind: 'identity', key: identityKey(b.id), value: record });
      state.put({ kind: 'fingerprint', key: fingerprintKey(b.fingerprint), value: { id: b.id } });
      return;
    }
    case 'KeyRevoked': {
      const b = tx.body as TxBodies['KeyRevoked'];
      const prev = activeRecord(state, b.id, b.fingerprint);
      const record: KeyRecord = {
        ...prev,
        status: 'revoked',
        updated: at,
        revocation: { reason: b.reason, by: b.by, ...(b.admin ? { admin: b.admin } : {}), at },
      };
      state.put({ kind: 'identity', key: identityKey(b.id), value: record });
      return;
    }
    case 'DeviceAdded':
      addDevice(state, tx.body as TxBodies['DeviceAdded'], at);
      return;
    case 'DeviceRevoked':
      revokeDevice(state, tx.body as TxBodies['DeviceRevoked'], at);
      return;
    case 'RecoveryKeySet':
      setRecoveryKey(state, tx.body as TxBodies['RecoveryKeySet'], at);
      return;
    case 'Recovered':
      recover(state, tx.body as TxBodies['Recovered'], at);
      return;
    case 'HashAnchored':
    case 'AuditEvent':
      return; // append-only records: no state beyond the transaction itself
    case 'RegistrarAdded': {
      const b = tx.body as TxBodies['RegistrarAdded'];
      checkGovSeq(state, b.govSeq);
      if (!keyIdMatches(b)) throw new KlError('KL_TX_MALFORMED', 'registrar key id does not match its key');
      if (state.activeRegistrar(b.keyId))
        throw new KlError('KL_REGISTRAR_EXISTS', 'registrar is already active');
      if (b.node && !ctx.genesis.engine)
        throw new KlError(
          'KL_TX_MALFORMED',
          'servers of their own exist only on a ledger ordered by a chain',
        );
      if (b.node && !keyIdMatches(b.node.validator))
        throw new KlError('KL_TX_MALFORMED', 'the server validator key id does not match its key');
      const value: RegistrarRecord = {
        keyId: b.keyId,
        publicKey: b.publicKey,
        name: b.name,
        active: true,
        since: ctx.height,
        ...(b.node ? { node: b.node, admission: { govSeq: b.govSeq, approvals: b.approvals } } : {}),
      };
      state.put({ kind: 'registrar', key: registrarKey(b.keyId), value });
      state.put({ kind: 'governance', key: GOVERNANCE_KEY, value: { govSeq: b.govSeq + 1 } });
      return;
    }
    case 'RoleGranted':
    case 'RoleRevoked': {
      const b = tx.body as TxBodies['RoleGranted'];
      checkGovSeq(state, b.govSeq);
      const prev = state.get<KeyRecord>(identityKey(b.id));
      if (prev?.status !== 'active')
        throw new KlError('KL_IDENTITY_UNKNOWN', 'roles are granted to registered, active identities only');
      const roles = prev.roles ?? [];
      const has = roles.includes(b.role);
      if (tx.type === 'RoleGranted' && has)
        throw new KlError('KL_ROLE_EXISTS', `${b.id} already has the ${b.role} role`);
      if (tx.type === 'RoleRevoked' && !has)
        throw new KlError('KL_ROLE_UNKNOWN', `${b.id} does not have the ${b.role} role`);
      const next = tx.type === 'RoleGranted' ? [...roles, b.role].sort() : roles.filter((r) => r !== b.role);
      const { roles: _old, ...rest } = prev;
      const record: KeyRecord = { ...rest, ...(next.length ? { roles: next } : {}), updated: at };
      state.put({ kind: 'identity', key: identityKey(b.id), value: record });
      state.put({ kind: 'governance', key: GOVERNANCE_KEY, value: { govSeq: b.govSeq + 1 } });
      return;
    }
    case 'RegistrarRemoved': {
      const b = tx.body as TxBodies['RegistrarRemoved'];
      checkGovSeq(state, b.govSeq);
      const r = state.activeRegistrar(b.keyId);
      if (!r) throw new KlError('KL_REGISTRAR_UNKNOWN', 'no active registrar has this key id');
      const removed: RegistrarRecord = {
        ...r,
        active: false,
        ...(r.node ? { removal: { govSeq: b.govSeq, approvals: b.approvals } } : {}),
      };
      state.put({ kind: 'registrar', key: registrarKey(b.keyId), value: removed });
      state.put({ kind: 'governance', key: GOVERNANCE_KEY, value: { govSeq: b.govSeq + 1 } });
      return;
    }
  }
}

/** The identity's record, which must be active and hold `fingerprint` as one of its active devices. */
function activeRecord(state: WorkingState, id: string, fingerprint: string): KeyRecord {
  const prev = activeIdentity(state, id);
  if (!activeDevice(prev, fingerprint)) {
    throw new KlError('KL_KEY_MISMATCH', 'the fingerprint is not a current key of the identity');
  }
  return prev;
}

function activeIdentity(state: WorkingState, id: string): KeyRecord {
  const prev = state.get<KeyRecord>(identityKey(id));
  if (!prev) throw new KlError('KL_IDENTITY_UNKNOWN', 'no key is registered for this identity');
  if (prev.status === 'revoked') throw new KlError('KL_KEY_REVOKED', 'the key of this identity is revoked');
  return prev;
}

/** Every device key of a record as it stands, active or not (a revoked identity's keys too). */
function devicesOf(
  record: KeyRecord,
): Array<{ name: string | null; fingerprint: string; algorithm: string; further: boolean }> {
  const first = { name: record.device ?? null, fingerprint: record.fingerprint, algorithm: record.algorithm };
  return [first, ...(record.devices ?? [])].map((k) => ({ ...k, further: isFurther(record, k) }));
}

/** History entries for keys leaving the record. */
function retired(
  keys: ReadonlyArray<{ name: string | null; fingerprint: string; algorithm: string; further: boolean }>,
  at: TxRef,
  reason: 'rotated' | 'revoked',
): KeyRecord['history'] {
  return keys.map((k) => ({
    fingerprint: k.fingerprint,
    algorithm: k.algorithm,
    replaced: at,
    reason,
    ...(k.name !== null ? { device: k.name } : {}),
    ...(k.further ? { further: true as const } : {}),
  }));
}

/**
 * Whether `key` came onto the ledger as a further device (DeviceAdded), not as the identity's
 * registered key or a rotation of it: the history's order then no longer tells when it started.
 */
function isFurther(record: KeyRecord, key: { fingerprint: string }): boolean {
  return key.fingerprint !== record.fingerprint || record.deviceAdded !== undefined;
}

/** The approving device must be active; the new key unused; its name free; the set not full. */
function addDevice(state: WorkingState, b: TxBodies['DeviceAdded'], at: TxRef): void {
  const prev = activeIdentity(state, b.id);
  const active = activeDevices(prev);
  if ('device' in b.approvedBy && !activeDevice(prev, b.approvedBy.device))
    throw new KlError('KL_DEVICE_UNKNOWN', 'the approving key is not an active device of this identity');
  if (state.get(fingerprintKey(b.fingerprint)))
    throw new KlError('KL_KEY_IN_USE', 'this key is already registered to an identity');
  if (active.some((d) => d.name?.toLowerCase() === b.name.toLowerCase()))
    throw new KlError('KL_DEVICE_NAME_TAKEN', `another device of this identity is named ${b.name}`);
  if (active.length >= MAX_DEVICES)
    throw new KlError('KL_DEVICE_LIMIT', `an identity holds at most ${MAX_DEVICES} devices`);
  const device: DeviceKey = {
    name: b.name,
    fingerprint: b.fingerprint,
    publicKey: b.publicKey,
    algorithm: b.algorithm,
    added: at,
    approvedBy: 'device' in b.approvedBy ? { device: b.approvedBy.device } : { admin: b.approvedBy.admin },
  };
  const record: KeyRecord = { ...prev, devices: [...(prev.devices ?? []), device], updated: at };
  state.put({ kind: 'identity', key: identityKey(b.id), value: record });
  state.put({ kind: 'fingerprint', key: fingerprintKey(b.fingerprint), value: { id: b.id } });
}

/**
 * One device leaves; the next becomes the top-level key if it was that one. Revoking the last device
 * revokes the identity: an operator may, and a device of the identity only if it has a recovery key
 * (docs/ledger.md "Recovery"; otherwise its owner uses `revoke-key`).
 */
function revokeDevice(state: WorkingState, b: TxBodies['DeviceRevoked'], at: TxRef): void {
  const prev = activeIdentity(state, b.id);
  const target = activeDevice(prev, b.fingerprint);
  if (!target) throw new KlError('KL_DEVICE_UNKNOWN', 'the key is not an active device of this identity');
  const by = b.revokedBy;
  if ('device' in by && !activeDevice(prev, by.device))
    throw new KlError('KL_DEVICE_UNKNOWN', 'the revoking key is not an active device of this identity');
  const others = (prev.devices ?? []).filter((d) => d.fingerprint !== b.fingerprint);
  if (target.primary && others.length === 0) {
    if ('device' in by && !prev.recovery)
      throw new KlError(
        'KL_LAST_DEVICE',
        'this is the identity’s only device and it has no recovery key: revoke the identity’s key instead (keyledger revoke-key)',
      );
    const record: KeyRecord = {
      ...prev,
      status: 'revoked',
      updated: at,
      revocation:
        'device' in by
          ? { reason: b.reason, by: 'owner', at }
          : { reason: b.reason, by: 'admin', admin: by.admin, at },
    };
    state.put({ kind: 'identity', key: identityKey(b.id), value: record });
    return;
  }
  const history = [
    ...prev.history,
    ...retired([{ ...target, further: isFurther(prev, target) }], at, 'revoked'),
  ];
  // A device revoked by another device or an operator may have been stolen: a recovery key it set
  // goes with it, or a thief's recovery key would outlive the owner's answer (docs/ledger.md
  // "Recovery"). A device revoking itself keeps it (that is how the last device leaves).
  const voided = setByDevice(prev) === b.fingerprint && !('device' in by && by.device === b.fingerprint);
  const { recovery: _recovery, ...kept } = prev;
  const remaining: KeyRecord = voided ? kept : prev;
  let record: KeyRecord;
  if (target.primary) {
    const [next, ...rest] = others as [DeviceKey, ...DeviceKey[]];
    const { device: _name, deviceAdded: _added, devices: _devices, ...base } = remaining;
    record = {
      ...base,
      fingerprint: next.fingerprint,
      publicKey: next.publicKey,
      algorithm: next.algorithm,
      device: next.name,
      deviceAdded: { added: next.added, approvedBy: next.approvedBy },
      ...(rest.length ? { devices: rest } : {}),
      updated: at,
      history,
    };
  } else {
    const { devices: _devices, ...base } = remaining;
    record = { ...base, ...(others.length ? { devices: others } : {}), updated: at, history };
  }
  state.put({ kind: 'identity', key: identityKey(b.id), value: record });
}

/** The device key that set the record's recovery key, if a device did (not a recovery). */
function setByDevice(record: KeyRecord): string | undefined {
  const by = record.recovery?.setBy;
  return by && 'device' in by ? by.device : undefined;
}

/**
 * A device of the identity sets its recovery key, a key used nowhere yet; replacing one takes the
 * current recovery key's signature too (docs/ledger.md "Recovery").
 */
function setRecoveryKey(state: WorkingState, b: TxBodies['RecoveryKeySet'], at: TxRef): void {
  const prev = activeIdentity(state, b.id);
  if (!activeDevice(prev, b.setBy.device))
    throw new KlError('KL_DEVICE_UNKNOWN', 'the signing key is not an active device of this identity');
  if (b.replaces?.fingerprint !== prev.recovery?.fingerprint)
    throw new KlError(
      'KL_RECOVERY_INVALID',
      prev.recovery
        ? 'replacing the recovery key takes the current recovery key'
        : 'this identity has no recovery key to replace',
    );
  if (state.get(fingerprintKey(b.fingerprint)))
    throw new KlError('KL_KEY_IN_USE', 'this key is already registered to an identity');
  const recovery: RecoveryKey = {
    fingerprint: b.fingerprint,
    publicKey: b.publicKey,
    algorithm: b.algorithm,
    added: at,
    setBy: { device: b.setBy.device },
  };
  state.put({ kind: 'identity', key: identityKey(b.id), value: { ...prev, recovery, updated: at } });
  state.put({ kind: 'fingerprint', key: fingerprintKey(b.fingerprint), value: { id: b.id } });
}

/**
 * The recovery key hands the identity to a new device (docs/ledger.md "Recovery"): every device key
 * leaves, the new one is the only device and the next recovery key replaces the one used. An
 * identity its owner revoked can be recovered; one an operator revoked cannot.
 */
function recover(state: WorkingState, b: TxBodies['Recovered'], at: TxRef): void {
  const prev = state.get<KeyRecord>(identityKey(b.id));
  if (!prev) throw new KlError('KL_IDENTITY_UNKNOWN', 'no key is registered for this identity');
  if (prev.revocation?.by === 'admin')
    throw new KlError('KL_KEY_REVOKED', 'an operator revoked this identity: a recovery key cannot undo that');
  if (prev.recovery?.fingerprint !== b.recovery)
    throw new KlError('KL_RECOVERY_INVALID', 'the key is not this identity’s recovery key');
  if (b.device.fingerprint === b.nextRecovery.fingerprint)
    throw new KlError('KL_TX_MALFORMED', 'the new device key and the next recovery key must differ');
  for (const key of [b.device, b.nextRecovery])
    if (state.get(fingerprintKey(key.fingerprint)))
      throw new KlError('KL_KEY_IN_USE', 'this key is already registered to an identity');
  const { device: _name, deviceAdded: _added, devices: _devices, revocation: _revocation, ...base } = prev;
  const record: KeyRecord = {
    ...base,
    fingerprint: b.device.fingerprint,
    publicKey: b.device.publicKey,
    algorithm: b.device.algorithm,
    status: 'active',
    updated: at,
    device: b.device.name,
    deviceAdded: { added: at, approvedBy: { recovery: b.recovery } },
    recovery: {
      fingerprint: b.nextRecovery.fingerprint,
      publicKey: b.nextRecovery.publicKey,
      algorithm: b.nextRecovery.algorithm,
      added: at,
      setBy: { recovery: b.recovery },
    },
    history: [...prev.history, ...retired(devicesOf(prev), at, 'revoked')],
  };
  state.put({ kind: 'identity', key: identityKey(b.id), value: record });
  for (const key of [b.device, b.nextRecovery])
    state.put({ kind: 'fingerprint', key: fingerprintKey(key.fingerprint), value: { id: b.id } });
}

function checkGovSeq(state: WorkingState, govSeq: number): void {
  if (govSeq !== state.govSeq()) {
    throw new KlError('KL_GOVERNANCE_STALE', `governance sequence must be ${state.govSeq()}`, {
      expected: state.govSeq(),
    });
  }
}

/** Kind of a namespaced state key. */
export function kindOfKey(key: string): StateEntry['kind'] {
  if (key === GOVERNANCE_KEY) return 'governance';
  const kind = key.slice(0, key.indexOf(':'));
  if (kind === 'identity' || kind === 'fingerprint' || kind === 'registrar') return kind;
  throw new KlError('KL_LEDGER_CORRUPT', `unknown state key ${key}`);
}
