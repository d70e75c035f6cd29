/**
 * Fuzz targets (issue 7): every parser and verifier that takes input from outside, each with a
 * fast-check generator of hostile inputs — random JSON and bytes, and valid inputs with one random
 * mutation. A target's `run` returns 'accepted' or 'rejected' (a typed KlError, or a verifier's
 * `{ verified: false }`); anything else it throws is a crash. Used by test/fuzz.test.ts (a few
 * thousand inputs in `npm test`) and by `npm run fuzz -- --runs 100000` (fuzz/run.ts, with figures).
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import * as openpgp from 'openpgp';
import type { TSchema } from 'typebox';
import { SigningKey } from '../src/ledger/signing-keys.js';
import { EmbeddedLedger, initEmbeddedLedger } from '../src/ledger/embedded-ledger.js';
import type { Genesis } from '../src/ledger/genesis.js';
import { verifyInclusion } from '../src/ledger/merkle.js';
import {
  type ConsistencyProof,
  type KeyRecordProof,
  type TransactionReceipt,
  verifyCheckpointConsistency,
  verifyKeyRecordProof,
  verifyTransactionReceipt,
} from '../src/ledger/proofs.js';
import { checkEnvelopeShape, signTransaction, type TxIntent } from '../src/ledger/transactions.js';
import { acceptPublicKey } from '../src/pgp/key-policy.js';
import { verifyDetached } from '../src/pgp/messages.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { Channel } from '../src/protocol/channel.js';
import { isKlError } from '../src/protocol/errors.js';
import { check } from '../src/protocol/schemas/check.js';
import { ChallengeResponse, Hello } from '../src/protocol/schemas/login.js';
import {
  DeviceAdditionStatementSchema,
  DeviceRevocationStatementSchema,
  RecoveryKeyStatementSchema,
  RecoveryStatementSchema,
  RevocationStatementSchema,
  RotationStatementSchema,
} from '../src/protocol/schemas/statements.js';

/** What one input did. */
export type Outcome = 'accepted' | 'rejected';

/** A fuzz target. */
export interface FuzzTarget<T = unknown> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  run(input: T): Outcome | Promise<Outcome>;
}

/** Runs `f`; a KlError is a rejection, any other exception a crash (rethrown). */
export async function classify(f: () => unknown): Promise<Outcome> {
  try {
    const r = await f();
    if (r && typeof r === 'object' && 'verified' in r) return (r as { verified: boolean }).verified ? 'accepted' : 'rejected';
    return 'accepted';
  } catch (err) {
    if (isKlError(err)) return 'rejected';
    throw err;
  }
}

/**
 * Byte-level mutations of a valid binary message (a sealed session frame): one or more bits flipped,
 * a byte replaced, truncated, extended, or a slice repeated.
 */
export function mutatedBytes(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  const n = valid.length;
  return fc.oneof(
    fc.record({ at: fc.nat(n - 1), bit: fc.nat(7) }).map(({ at, bit }) => {
      const b = Uint8Array.from(valid);
      b[at]! ^= 1 << bit;
      return b;
    }),
    fc.record({ at: fc.nat(n - 1), v: fc.nat(255) }).map(({ at, v }) => {
      const b = Uint8Array.from(valid);
      b[at] = v;
      return b;
    }),
    fc.nat(n).map((len) => valid.slice(0, len)),
    fc.uint8Array({ maxLength: 64 }).map((extra) => Uint8Array.from([...valid, ...extra])),
    fc.record({ from: fc.nat(n - 1), len: fc.nat(40) }).map(({ from, len }) =>
      Uint8Array.from([...valid, ...valid.slice(from, from + len)]),
    ),
  );
}

/** One random change to a JSON value: replace, delete or add somewhere in it, or change a type. */
export function mutated<T>(valid: T): fc.Arbitrary<unknown> {
  const paths: Array<Array<string | number>> = [];
  const walk = (v: unknown, path: Array<string | number>) => {
    paths.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(valid, []);
  const junk = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.string({ maxLength: 64 }),
    fc.integer(),
    fc.constantFrom(null, true, -1, 0, 2 ** 53, '', 'x'.repeat(70_000), '\u0000', '__proto__'),
  );
  const mutations = fc
    .record({ at: fc.nat(paths.length - 1), op: fc.constantFrom('replace', 'delete', 'add', 'flip'), value: junk, key: fc.string({ maxLength: 12 }) })
    .map(({ at, op, value, key }) => {
      const copy = structuredClone(valid) as unknown;
      const path = paths[at]!;
      if (path.length === 0) return op === 'replace' ? value : copy;
      let parent = copy as Record<string | number, unknown>;
      for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, unknown>;
      const last = path.at(-1)!;
      if (op === 'replace') parent[last] = value;
      else if (op === 'delete') delete parent[last];
      else if (op === 'add' && Array.isArray(parent[last])) (parent[last] as unknown[]).push(value);
      else if (op === 'add' && typeof parent[last] === 'object' && parent[last] !== null)
        (parent[last] as Record<string, unknown>)[key] = value;
      else if (typeof parent[last] === 'string') {
        const s = parent[last] as string;
        const i = s.length ? Math.abs(key.length * 7919) % s.length : 0;
        parent[last] = s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1);
      } else parent[last] = value;
      return copy;
    });
  // The valid value itself, one time in ten: every run sees accepted inputs, whatever its size.
  return fc.oneof({ arbitrary: fc.constant(valid).map((v) => structuredClone(v)), weight: 1 }, { arbitrary: mutations, weight: 9 });
}

/** Valid material the targets mutate: a small real ledger, a receipt, proofs, a channel, a key. */
export interface Material {
  receipt: TransactionReceipt;
  keyProof: KeyRecordProof;
  consistency: ConsistencyProof;
  genesis: Genesis;
  envelope: unknown;
  /** Envelopes of the recovery transactions (RecoveryKeySet, Recovered), signed. */
  recoveryEnvelopes: unknown[];
  armoredKey: string;
  armoredSignature: string;
  signedData: Uint8Array;
  /** When the signature was made (verifications run "as of" then, however long the run). */
  signedAt: Date;
  publicKey: openpgp.PublicKey;
  close(): Promise<void>;
}

/** Builds the valid material in a temporary data directory. */
export async function material(dir: string): Promise<Material> {
  initEmbeddedLedger({ dataDir: dir, passphrase: 'fuzz passphrase' });
  const ledger = EmbeddedLedger.open({ dataDir: dir, passphrase: 'fuzz passphrase' });
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ email: 'fuzz@example.org' }],
    format: 'object',
  });
  const armoredKey = publicKey.armor();
  const receipt = await ledger.submit({
    type: 'KeyRegistered',
    body: {
      id: 'fuzz@example.org',
      name: 'Fuzz',
      fingerprint: publicKey.getFingerprint(),
      publicKey: armoredKey,
      algorithm: 'ed25519-legacy',
    },
  });
  await ledger.submit({ type: 'HashAnchored', body: { hash: 'a'.repeat(64), algorithm: 'sha256' } });
  await ledger.submit({ type: 'AuditEvent', body: { event: 'fuzz', at: 1 } });
  const signedData = new TextEncoder().encode('fuzz me');
  const signedAt = new Date();
  const armoredSignature = (await openpgp.sign({
    message: await openpgp.createMessage({ binary: signedData }),
    signingKeys: privateKey,
    detached: true,
    date: signedAt,
  })) as string;
  const signer = SigningKey.generate();
  const envelope = signTransaction({
    chain: ledger.chainId,
    intent: { type: 'HashAnchored', body: { hash: 'b'.repeat(64), algorithm: 'sha256', label: 'x' } },
    signer,
    now: Date.now(),
    nonce: randomBytes(16).toString('hex'),
  });
  const recoveryEnvelopes = recoveryIntents(publicKey.getFingerprint(), armoredKey, armoredSignature).map((intent) =>
    signTransaction({ chain: ledger.chainId, intent, signer, now: Date.now(), nonce: randomBytes(16).toString('hex') }),
  );
  return {
    receipt,
    recoveryEnvelopes,
    keyProof: await ledger.getKeyRecord('fuzz@example.org'),
    consistency: await ledger.consistency(1),
    genesis: ledger.genesis,
    envelope,
    armoredKey,
    armoredSignature,
    signedData,
    signedAt,
    publicKey,
    close: () => ledger.close(),
  };
}

/** A RecoveryKeySet by `device` and a Recovered of the fuzz identity, shapes valid. */
function recoveryIntents(device: string, publicKey: string, signature: string): TxIntent[] {
  const part = (fingerprint: string) => ({ fingerprint, publicKey, algorithm: 'ed25519-legacy', signature });
  return [
    {
      type: 'RecoveryKeySet',
      body: {
        id: 'fuzz@example.org',
        fingerprint: 'c'.repeat(40),
        publicKey,
        algorithm: 'ed25519-legacy',
        time: 1,
        setBy: { device, signature },
        keySignature: signature,
        replaces: { fingerprint: 'd'.repeat(40), signature },
      },
    },
    {
      type: 'Recovered',
      body: {
        id: 'fuzz@example.org',
        recovery: 'c'.repeat(40),
        signature,
        time: 1,
        device: { ...part('e'.repeat(40)), name: 'new-phone' },
        nextRecovery: part('f'.repeat(40)),
      },
    },
  ];
}

const key32 = Buffer.alloc(32, 7);
const iv12 = Buffer.alloc(12, 9);

/** A fresh client/server channel pair with known keys. */
function channels() {
  const keys = { c2sKey: key32, c2sIv: iv12, s2cKey: Buffer.alloc(32, 8), s2cIv: Buffer.alloc(12, 3), resumeKey: Buffer.alloc(32, 1) };
  const sid = 'A'.repeat(22);
  const chain = Buffer.alloc(32, 2);
  return {
    client: new Channel({ role: 'client', sid, keys: structuredClone(keys), chain, nextRecvSeq: 0, now: () => 0 }),
    server: new Channel({ role: 'server', sid, keys: structuredClone(keys), chain, now: () => 0 }),
  };
}

/** Every fuzz target, given the valid material. */
export function targets(m: Material): FuzzTarget[] {
  const sealed = channels().client.seal({ t: 'data', id: 1, body: { op: 'echo', text: 'hi' } });
  const list: FuzzTarget[] = [
    {
      name: 'canonical JSON',
      arbitrary: fc.anything({ maxDepth: 4, withBigInt: true, withMap: true, withSet: true, withNullPrototype: true }),
      run: (v) => classify(() => canonicalize(v)).catch((e) => {
        if (e instanceof TypeError) return 'rejected' as const; // documented: non-JSON values are refused
        throw e;
      }),
    },
    {
      name: 'transaction envelope',
      arbitrary: fc.oneof(mutated(m.envelope), ...m.recoveryEnvelopes.map((e) => mutated(e)), fc.jsonValue({ maxDepth: 4 })),
      run: (v) => classify(() => checkEnvelopeShape(v)),
    },
    {
      name: 'receipt verifier',
      arbitrary: fc.oneof(mutated(m.receipt), fc.jsonValue({ maxDepth: 3 })),
      run: (v) => classify(() => verifyTransactionReceipt({ genesis: m.genesis, receipt: v as TransactionReceipt })),
    },
    {
      name: 'key record proof verifier',
      arbitrary: fc.oneof(mutated(m.keyProof), fc.jsonValue({ maxDepth: 3 })),
      run: (v) => classify(() => verifyKeyRecordProof({ genesis: m.genesis, proof: v as KeyRecordProof })),
    },
    {
      name: 'consistency proof verifier',
      arbitrary: fc.oneof(mutated(m.consistency), fc.jsonValue({ maxDepth: 3 })),
      run: (v) => classify(() => verifyCheckpointConsistency({ genesis: m.genesis, proof: v as ConsistencyProof })),
    },
    {
      name: 'Merkle inclusion',
      arbitrary: fc.record({
        leafHash: fc.uint8Array({ maxLength: 40 }),
        index: fc.oneof(fc.integer(), fc.double()),
        treeSize: fc.oneof(fc.integer(), fc.double()),
        proof: fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 70 }),
        root: fc.uint8Array({ maxLength: 40 }),
      }),
      run: (v) => classify(() => ({ verified: verifyInclusion(v as never) })),
    },
    {
      name: 'session frame',
      arbitrary: fc.oneof(mutatedBytes(sealed), fc.uint8Array({ maxLength: 200 }), fc.jsonValue({ maxDepth: 2 })),
      run: (v) => classify(() => channels().server.open(v as Uint8Array)),
    },
    {
      name: 'handshake messages',
      arbitrary: fc.oneof(
        mutated({ type: 'hello', v: 1, id: 'a@example.org', ephemeral: 'A'.repeat(43) }),
        mutated({ type: 'response', challengeId: 'A'.repeat(22), rs: 'B'.repeat(43), rc: 'C'.repeat(43), signature: m.armoredSignature }),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      run: (v) =>
        classify(() => {
          const type = (v as { type?: unknown })?.type;
          return type === 'response'
            ? check(ChallengeResponse, v, 'KL_PROTOCOL', 'message')
            : check(Hello, v, 'KL_PROTOCOL', 'message');
        }),
    },
    {
      name: 'revocation, rotation, device and recovery statements',
      arbitrary: fc.oneof(
        mutated({ type: 'keyledger/add-device', v: 1, chain: 'a'.repeat(64), id: 'a@example.org', name: 'phone', fingerprint: 'b'.repeat(40), time: 1 }),
        mutated({ type: 'keyledger/revoke-device', v: 1, chain: 'a'.repeat(64), id: 'a@example.org', fingerprint: 'b'.repeat(40), reason: 'retired', time: 1 }),
        mutated({ type: 'keyledger/revoke', v: 1, chain: 'a'.repeat(64), id: 'a@example.org', fingerprint: 'b'.repeat(40), reason: 'retired', time: 1 }),
        mutated({ type: 'keyledger/rotate', v: 1, chain: 'a'.repeat(64), id: 'a@example.org', oldFingerprint: 'b'.repeat(40), fingerprint: 'c'.repeat(40), time: 1 }),
        mutated({ type: 'keyledger/recovery-key', v: 1, chain: 'a'.repeat(64), id: 'a@example.org', fingerprint: 'b'.repeat(40), time: 1 }),
        mutated({
          type: 'keyledger/recover',
          v: 1,
          chain: 'a'.repeat(64),
          id: 'a@example.org',
          recovery: 'b'.repeat(40),
          name: 'new-phone',
          fingerprint: 'c'.repeat(40),
          nextRecovery: 'd'.repeat(40),
          time: 1,
        }),
      ),
      run: (v) =>
        classify(() => {
          // A Map, not an object literal: a type such as "toString" must not find Object.prototype's.
          const schema = new Map<string, TSchema>([
            ['keyledger/rotate', RotationStatementSchema],
            ['keyledger/add-device', DeviceAdditionStatementSchema],
            ['keyledger/revoke-device', DeviceRevocationStatementSchema],
            ['keyledger/recovery-key', RecoveryKeyStatementSchema],
            ['keyledger/recover', RecoveryStatementSchema],
          ]).get(String((v as { type?: unknown })?.type));
          return check(schema ?? RevocationStatementSchema, v, 'KL_STATEMENT_INVALID');
        }),
    },
    {
      name: 'armored OpenPGP public key',
      arbitrary: fc.oneof(
        fc.nat(m.armoredKey.length - 1).chain((i) =>
          fc.string({ minLength: 1, maxLength: 1 }).map((c) => m.armoredKey.slice(0, i) + c + m.armoredKey.slice(i + 1)),
        ),
        fc.string({ maxLength: 300 }).map((s) => `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${s}\n-----END PGP PUBLIC KEY BLOCK-----\n`),
        fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('latin1')),
        fc.constant(m.armoredKey), // the valid key itself: every run sees accepted inputs
      ),
      run: (v) => classify(() => acceptPublicKey(v, new Date())),
    },
    {
      name: 'detached OpenPGP signature',
      arbitrary: fc.oneof(
        fc.nat(m.armoredSignature.length - 1).chain((i) =>
          fc.string({ minLength: 1, maxLength: 1 }).map((c) => m.armoredSignature.slice(0, i) + c + m.armoredSignature.slice(i + 1)),
        ),
        fc.string({ maxLength: 300 }).map((s) => `-----BEGIN PGP SIGNATURE-----\n\n${s}\n-----END PGP SIGNATURE-----\n`),
        // The valid signature itself (one-character changes of it are nearly all refused now that
        // the armor lines are checked exactly, src/pgp/armor.ts).
        fc.constant(m.armoredSignature),
      ),
      run: (v) =>
        classify(() =>
          verifyDetached({ data: m.signedData, armoredSignature: v, key: m.publicKey, now: m.signedAt, maxSkewMs: 60_000 }),
        ),
    },
  ];
  return list;
}
