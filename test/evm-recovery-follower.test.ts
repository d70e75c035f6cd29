/**
 * The EVM follower and recovery (issue 18; docs/architecture.md "The EVM engine"): a Recovered read
 * from the chain is applied only right after the contract's KeyStored event of the same call naming
 * the identity, the new device's fingerprint and its key's hash, as for a registration. A registrar
 * that logs a Recovered without storing that key (another key stored, or no KeyStored at all) is
 * refused from the logs alone. The contract is called directly, as a lying registrar would.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Contract, Wallet } from 'ethers';
import { deployRegistry, EvmSequencer, evmProvider, registryArtifact } from '../src/ledger/evm-sequencer.js';
import { SigningKey } from '../src/ledger/signing-keys.js';
import { signTransaction, type TxBodies, txidOf } from '../src/ledger/transactions.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { sha256Hex } from '../src/protocol/hash.js';
import { fakeKey, fakeSignature } from './helpers.js';
import { ANVIL_FUNDER_KEY, anvilsStoppedAfter } from './support/anvil.js';

const chain = anvilsStoppedAfter();
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

const hash32 = (text: string) => `0x${sha256Hex(text)}`;
const until = async (ok: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(ok(), what);
};

/** A Recovered envelope of a new device key, as the server writes one. */
function recovered(signer: SigningKey, id: string) {
  const device = fakeKey();
  const next = fakeKey();
  const part = (k: { fingerprint: string; publicKey: string }) => ({
    ...k,
    algorithm: 'ed25519-legacy',
    signature: fakeSignature(),
  });
  const body: TxBodies['Recovered'] = {
    id,
    recovery: fakeKey().fingerprint,
    signature: fakeSignature(),
    time: Date.now(),
    device: { ...part(device), name: 'new-phone' },
    nextRecovery: part(next),
  };
  const envelope = signTransaction({
    chain: 'kl-recovery-follower',
    intent: { type: 'Recovered', body },
    signer,
    now: Date.now(),
    nonce: sha256Hex(JSON.stringify(body)).slice(0, 32),
  });
  const text = canonicalize(envelope);
  return { device, next, text, txid: txidOf(envelope), bytes: `0x${Buffer.from(text).toString('hex')}` };
}

describe('EVM follower: Recovered needs the KeyStored event of the new device key', () => {
  it('applied with the KeyStored of its device key; refused with another key stored or none', async () => {
    const anvil = await chain();
    const registrar = Wallet.createRandom();
    await anvil.rpc('anvil_setBalance', [registrar.address, '0x56bc75e2d63100000']);
    const engine = await deployRegistry({
      rpcUrl: anvil.url,
      privateKey: ANVIL_FUNDER_KEY,
      registrar: registrar.address,
    });
    const provider = evmProvider(anvil.url);
    const contract = new Contract(
      engine.contract,
      registryArtifact().abi,
      new Wallet(registrar.privateKey, provider),
    );
    const refusals: Array<{ txid: string; why: string }> = [];
    const sequencer = new EvmSequencer({
      rpcUrl: anvil.url,
      engine,
      privateKey: registrar.privateKey,
      pollMs: 20,
      log: () => {},
      onRefused: (txid, why) => refusals.push({ txid, why }),
    });
    const read: string[] = [];
    await sequencer.follow((batch) => {
      for (const t of batch.texts) read.push(txidOf(JSON.parse(t)));
    }, null);
    closers.push(async () => {
      await sequencer.stop();
      provider.destroy();
    });
    const signer = SigningKey.generate();
    const id = 'rosa@example.org';
    const call = async (name: string, ...args: unknown[]) => {
      const tx = (await contract.getFunction(name)(...args)) as { wait: () => Promise<unknown> };
      await tx.wait();
    };
    const recover = (r: ReturnType<typeof recovered>, storedKey: string) =>
      call(
        'recover',
        hash32(id),
        hash32(r.device.fingerprint),
        hash32(storedKey),
        hash32(r.next.fingerprint),
        hash32(r.next.publicKey),
        r.bytes,
      );

    const honest = recovered(signer, id);
    await recover(honest, honest.device.publicKey);
    await until(() => read.includes(honest.txid), 'the Recovered stored with its device key is read');

    const otherKey = recovered(signer, id);
    await recover(otherKey, fakeKey().publicKey);
    const noKeyStored = recovered(signer, id);
    // Logged through a call that stores no key (revokeKey emits no KeyStored).
    await call('revokeKey', hash32(id), hash32(noKeyStored.device.fingerprint), noKeyStored.bytes);
    await until(() => refusals.length >= 2, 'both forged recoveries are refused');
    assert.deepEqual(
      refusals.map((r) => [r.txid, r.why.replace(/ \(.*\)$/, '')]),
      [
        [otherKey.txid, 'the key stored on the chain is not the key in the transaction'],
        [noKeyStored.txid, 'the chain stored no key record for this key change'],
      ],
    );
    assert.deepEqual(read, [honest.txid], 'only the honest recovery reaches the ledger');
  });
});
