/**
 * Fuzz targets of recovery (issue 18; docs/protocol.md "Recovery", docs/ledger.md "Recovery"): the
 * paper form a person types back, the ledger's rules for RecoveryKeySet and Recovered replayed on a
 * state that holds a recovery key, and POST /v1/recover with real keys and signatures. Used by
 * test/fuzz.test.ts and fuzz/run.ts next to the targets of fuzz/targets.ts and fuzz/http-targets.ts.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import * as openpgp from 'openpgp';
import { chainIdOf, type Genesis } from '../src/ledger/genesis.js';
import type { Ledger } from '../src/ledger/ledger.js';
import { activeDevices } from '../src/ledger/devices.js';
import {
  applyTransaction,
  fingerprintKey,
  genesisEntries,
  identityKey,
  type KeyRecord,
  WorkingState,
} from '../src/ledger/state-machine.js';
import { StateTree } from '../src/ledger/state-tree.js';
import { checkBody, type TxEnvelope, type TxIntent } from '../src/ledger/transactions.js';
import { signDetached } from '../src/pgp/messages.js';
import { generateRecoveryKey, type RecoveryKeyPair } from '../src/pgp/recovery-key.js';
import { isKlError } from '../src/protocol/errors.js';
import { decodePaperKey, encodePaperKey } from '../src/protocol/paper-key.js';
import { type RecoveryStatement, statementBytes } from '../src/protocol/statements.js';
import type { RunningServer } from '../src/server/app.js';
import { ServerError } from './http-targets.js';
import { classify, type FuzzTarget, mutated, type Outcome } from './targets.js';

const ID = 'fuzz@example.org';
const hex40 = (c: string) => c.repeat(40);
const armoredKey = `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${'A'.repeat(64)}\n-----END PGP PUBLIC KEY BLOCK-----\n`;
const armoredSignature = `-----BEGIN PGP SIGNATURE-----\n\n${'B'.repeat(64)}\n-----END PGP SIGNATURE-----\n`;

/** Typing a paper form: one character changed, dropped or doubled, lines swapped or joined, any text. */
function paperText(lines: string[]): fc.Arbitrary<string> {
  const text = lines.join('\n');
  return fc.oneof(
    fc.constant(text),
    fc.constant(lines.join(' ').toLowerCase()),
    fc.record({ at: fc.nat(text.length - 1), c: fc.string({ minLength: 1, maxLength: 1 }) }).map(
      ({ at, c }) => text.slice(0, at) + c + text.slice(at + 1),
    ),
    fc.nat(text.length - 1).map((at) => text.slice(0, at) + text.slice(at + 1)),
    fc.nat(text.length - 1).map((at) => text.slice(0, at) + text[at] + text.slice(at)),
    fc.shuffledSubarray(lines, { minLength: 0, maxLength: lines.length }).map((l) => l.join('\n')),
    fc.string({ maxLength: 200, unit: 'binary' }),
    fc.array(fc.stringMatching(/^[0-9A-Za-z \-:]{0,25}$/), { maxLength: 6 }).map((l) => l.join('\n')),
  );
}

/** decodePaperKey: a KL_RECOVERY_KEY_UNREADABLE refusal or the key it holds, never another throw. */
function paperKeyTarget(): FuzzTarget<string> {
  const lines = encodePaperKey({ seed: Uint8Array.from(randomBytes(32)), created: 1_700_000_000 });
  return {
    name: 'paper recovery key',
    arbitrary: paperText(lines),
    run: (text) => {
      try {
        const key = decodePaperKey(text);
        // What it read is a key: its paper form reads back as the same key.
        const again = decodePaperKey(encodePaperKey(key).join('\n'));
        if (Buffer.compare(again.seed, key.seed) !== 0 || again.created !== key.created)
          throw new Error('a decoded paper key does not read back as itself');
        return 'accepted';
      } catch (err) {
        if (isKlError(err, 'KL_RECOVERY_KEY_UNREADABLE')) return 'rejected';
        throw err;
      }
    },
  };
}

/** Bodies of RecoveryKeySet and Recovered valid on {@link recoveryState}'s state. */
function validRecoveryIntents(device: string): TxIntent[] {
  const part = (fingerprint: string) => ({ fingerprint, publicKey: armoredKey, algorithm: 'ed25519-legacy', signature: armoredSignature });
  return [
    {
      type: 'Recovered',
      body: {
        id: ID,
        recovery: hex40('c'),
        signature: armoredSignature,
        time: 1,
        device: { ...part(hex40('d')), name: 'new-phone' },
        nextRecovery: part(hex40('e')),
      },
    },
    {
      type: 'RecoveryKeySet',
      body: {
        id: ID,
        fingerprint: hex40('f'),
        publicKey: armoredKey,
        algorithm: 'ed25519-legacy',
        time: 1,
        setBy: { device, signature: armoredSignature },
        keySignature: armoredSignature,
        replaces: { fingerprint: hex40('c'), signature: armoredSignature },
      },
    },
  ];
}

/** A ledger state (in memory) where {@link ID} has one device and the recovery key c…c. */
function recoveryState(genesis: Genesis, chain: string) {
  const registrar = genesis.registrars[0]!.keyId;
  // Applied as already verified: the envelope's signature is not what these rules are about.
  const envelopeOf = (intent: TxIntent, time: number): TxEnvelope =>
    ({
      tx: { v: 1, chain, type: intent.type, time, nonce: randomBytes(16).toString('hex'), signer: registrar, body: intent.body },
      sig: 'A'.repeat(86),
    }) as TxEnvelope;
  const base = new WorkingState({ get: () => undefined }, StateTree.empty());
  for (const entry of genesisEntries(genesis)) base.put(entry);
  const device = hex40('a');
  const intents: TxIntent[] = [
    { type: 'KeyRegistered', body: { id: ID, name: 'Fuzz', fingerprint: device, publicKey: armoredKey, algorithm: 'ed25519-legacy' } },
    {
      type: 'RecoveryKeySet',
      body: {
        id: ID,
        fingerprint: hex40('c'),
        publicKey: armoredKey,
        algorithm: 'ed25519-legacy',
        time: 1,
        setBy: { device, signature: armoredSignature },
        keySignature: armoredSignature,
      },
    },
  ];
  intents.forEach((intent, i) =>
    applyTransaction(base, envelopeOf(intent, 1), { genesis, chain, height: i + 1, txid: hex40(String(i)), blockTime: 2, signatureAlreadyVerified: true }),
  );
  const entries = new Map([...base.writes].map(([k, w]) => [k, w.entry.value]));
  return { device, envelopeOf, fresh: () => new WorkingState({ get: (k) => entries.get(k) }, base.tree) };
}

/**
 * The ledger's intake and rules for the new bodies (what a replay or the offline audit runs): the
 * body checked for its type, then applied to a fresh copy of a state holding a recovery key. A
 * Recovered that applies leaves exactly the new device and the next recovery key.
 */
function recoveryRulesTarget(genesis: Genesis, chain: string): FuzzTarget {
  const state = recoveryState(genesis, chain);
  const valid = validRecoveryIntents(state.device);
  return {
    name: 'ledger rules of RecoveryKeySet and Recovered',
    arbitrary: fc.oneof(...valid.map((intent) => fc.record({ type: fc.constant(intent.type), body: mutated(intent.body) }))),
    run: ({ type, body }) =>
      classify(() => {
        checkBody(type, body);
        const ws = state.fresh();
        applyTransaction(ws, state.envelopeOf({ type, body } as TxIntent, 1), { genesis, chain, height: 3, txid: hex40('9'), blockTime: 2, signatureAlreadyVerified: true });
        if (type === 'Recovered') {
          const b = body as Extract<TxIntent, { type: 'Recovered' }>['body'];
          const record = ws.get<KeyRecord>(identityKey(ID))!;
          const devices = activeDevices(record).map((d) => d.fingerprint);
          if (devices.join() !== b.device.fingerprint || record.recovery?.fingerprint !== b.nextRecovery.fingerprint)
            throw new Error('a Recovered that applied did not leave exactly the new device and the next recovery key');
          if (!ws.get(fingerprintKey(b.nextRecovery.fingerprint))) throw new Error('the next recovery key is not held for good');
        }
      }),
  };
}

/** In-process recovery targets. */
export function recoveryTargets(genesis: Genesis): FuzzTarget[] {
  return [paperKeyTarget(), recoveryRulesTarget(genesis, chainIdOf(genesis))];
}

/** A body of POST /v1/recover as the client makes it (src/client/recovery.ts), every key real. */
async function recoveryBody(
  chain: string,
  id: string,
  recovery: RecoveryKeyPair,
  device: { privateKey: openpgp.PrivateKey; publicKey: string; fingerprint: string },
  next: RecoveryKeyPair,
  time: number,
) {
  const statement: RecoveryStatement = {
    type: 'keyledger/recover',
    v: 1,
    chain,
    id,
    recovery: recovery.fingerprint,
    name: 'new-phone',
    fingerprint: device.fingerprint,
    nextRecovery: next.fingerprint,
    time,
  };
  const data = statementBytes(statement);
  const date = new Date(time);
  return {
    statement: JSON.stringify(statement),
    signature: await signDetached(data, recovery.key, date),
    device: { publicKey: device.publicKey, signature: await signDetached(data, device.privateKey, date) },
    nextRecovery: { publicKey: next.publicKey, signature: await signDetached(data, next.key, date) },
  };
}

async function deviceKey(id: string) {
  const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: id }], format: 'object' });
  return { privateKey, publicKey: publicKey.armor(), fingerprint: publicKey.getFingerprint() };
}

/**
 * Two identities on `ledger` whose recovery keys the bodies hold: the first body is a recovery that
 * succeeds (once), the second names the identity's own registered key as the new device, so it and
 * its mutations pass the recovery key's check and go as deep as the ledger's rules, which refuse it.
 */
export async function recoveryBodies(ledger: Ledger, now: number): Promise<unknown[]> {
  const bodies: unknown[] = [];
  for (const [i, id] of ['fuzz-recover@example.org', 'fuzz-recover-deep@example.org'].entries()) {
    const registered = await deviceKey(id);
    const recovery = await generateRecoveryKey(id, now);
    await ledger.submit({ type: 'KeyRegistered', body: { id, name: 'Fuzz', fingerprint: registered.fingerprint, publicKey: registered.publicKey, algorithm: 'ed25519-legacy' } });
    await ledger.submit({
      type: 'RecoveryKeySet',
      body: {
        id,
        fingerprint: recovery.fingerprint,
        publicKey: recovery.publicKey,
        algorithm: 'ed25519-legacy',
        time: now,
        setBy: { device: registered.fingerprint, signature: armoredSignature },
        keySignature: armoredSignature,
      },
    });
    const device = i === 0 ? await deviceKey(id) : registered;
    bodies.push(await recoveryBody(ledger.chainId, id, recovery, device, await generateRecoveryKey(id, now), now));
  }
  return bodies;
}

const STABLE_CODE = /^KL_[A-Z0-9_]+$/;

/** POST `body`; a refusal must carry a stable KL_ code that is not KL_INTERNAL. */
async function postForCode(url: string, body: string): Promise<Outcome> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await r.text();
  if (r.status >= 500) throw new ServerError(`${url} answered ${r.status} to ${body.slice(0, 200)}`);
  if (r.status < 300) return 'accepted';
  let code: unknown;
  try {
    code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
  } catch {
    // not JSON: no code
  }
  if (typeof code !== 'string' || !STABLE_CODE.test(code) || code === 'KL_INTERNAL')
    throw new Error(`${url} refused ${body.slice(0, 200)} with ${r.status} and no stable code: ${text.slice(0, 200)}`);
  return 'rejected';
}

/** POST /v1/recover: mutated real recoveries, any JSON, any text. */
export function recoveryNetworkTargets(server: RunningServer, bodies: unknown[]): FuzzTarget[] {
  return [
    {
      name: 'HTTP POST /v1/recover',
      arbitrary: fc.oneof(
        ...bodies.map((b) => mutated(b)),
        fc.jsonValue({ maxDepth: 3 }),
        fc.string({ maxLength: 200 }),
      ),
      run: (v) => postForCode(`${server.url}/v1/recover`, typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null')),
    },
  ];
}
