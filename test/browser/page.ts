/**
 * The page of test/browser-client.test.ts: the SDK (src/index.ts) and the receipt verifier
 * (src/verify/index.ts) bundled for the browser. It puts `klTest` on the window; the test calls its
 * steps across page loads (the identity lives in IndexedDB between them) and checks what they
 * answer. Nothing here decides a result on its own: every value comes from the SDK against the real
 * server.
 */
import * as openpgp from 'openpgp';
import {
  BrowserClientStore,
  connect,
  createIdentity,
  isKlError,
  register,
  rotateKey,
  type SignedMessageReceipt,
  verifyMessageSigner,
} from '../../src/index.js';
import { verifyTransactionReceipt } from '../../src/verify/index.js';

const DATABASE = 'kl-browser-test';

/** An error as the test sees it. */
function failure(err: unknown): { code: string; message: string } {
  return isKlError(err)
    ? { code: err.code, message: err.message }
    : { code: 'not a KlError', message: String((err as Error)?.stack ?? err) };
}

async function attempt<T>(
  fn: () => Promise<T>,
): Promise<{ ok: T } | { error: { code: string; message: string } }> {
  try {
    return { ok: await fn() };
  } catch (err) {
    return { error: failure(err) };
  }
}

const steps = {
  /** Creates a key in the page, registers it with the invitation and keeps it in IndexedDB. */
  async registerNew(o: { server: string; invitation: string; id: string; passphrase: string }) {
    return attempt(async () => {
      const store = new BrowserClientStore({ database: DATABASE });
      await createIdentity({
        home: store,
        id: o.id,
        name: 'Browser User',
        source: 'generate',
        passphrase: o.passphrase,
      });
      const r = await register({
        home: store,
        server: o.server,
        proof: { method: 'invite', code: o.invitation },
        passphrase: o.passphrase,
      });
      await store.close();
      return { id: r.id, fingerprint: r.fingerprint, height: r.height, trust: r.trust };
    });
  },

  /** What IndexedDB holds after a new page load, and whether it refuses a key in the clear. */
  async inspectStore() {
    return attempt(async () => {
      const store = new BrowserClientStore({ database: DATABASE });
      const identity = await store.readIdentity();
      const server = await store.readServer();
      const armored = await store.readPrivateKey();
      const key = await openpgp.readPrivateKey({ armoredKey: armored });
      const clear = await openpgp.generateKey({
        type: 'ecc',
        curve: 'curve25519Legacy',
        userIDs: [{ email: 'clear@example.org' }],
        format: 'object',
      });
      const refused = await attempt(() => store.writeIdentity(identity, clear.privateKey.armor()));
      await store.close();
      return {
        id: identity.id,
        fingerprint: identity.fingerprint,
        serverUrl: server.url,
        storeName: store.name,
        armored: armored.startsWith('-----BEGIN PGP PRIVATE KEY BLOCK-----'),
        keyDecrypted: key.isDecrypted(),
        keyFingerprint: key.getFingerprint(),
        refusedClearKey: 'error' in refused ? refused.error.code : 'stored',
        stillSameKey: (await new BrowserClientStore({ database: DATABASE }).readPrivateKey()) === armored,
      };
    });
  },

  /** Logs in with a wrong passphrase: must fail clearly, before anything goes on the network. */
  async wrongPassphrase() {
    return attempt(() =>
      connect({ home: new BrowserClientStore({ database: DATABASE }), passphrase: 'not it' }),
    );
  },

  /**
   * Logs in, opens a session, renews its keys, sends a signed message and verifies the receipt:
   * in the SDK, with the verify code, and the signer against the ledger; then the same checks on
   * a tampered receipt and another message.
   */
  async session(o: { passphrase: string; message: string }) {
    return attempt(async () => {
      const store = new BrowserClientStore({ database: DATABASE });
      const session = await connect({ home: store, passphrase: o.passphrase });
      const epoch0 = session.epoch;
      await session.renew();
      const sent: SignedMessageReceipt = await session.sendSigned(o.message);
      session.dropConnection();
      await session.resume();
      const afterResume = session.epoch;
      await session.close();
      const server = await store.readServer();
      const { id } = await store.readIdentity();
      const receiptCheck = verifyTransactionReceipt({ genesis: server.genesis, receipt: sent.receipt });
      const signer = await verifyMessageSigner({
        server,
        receipt: sent.receipt,
        id,
        message: o.message,
        signature: sent.signature,
      });
      // Tampered: another position in the block, and another message for the same receipt.
      const tampered = structuredClone(sent.receipt);
      tampered.index += 1;
      const tamperedCheck = verifyTransactionReceipt({ genesis: server.genesis, receipt: tampered });
      const otherBody = structuredClone(sent.receipt);
      (otherBody.envelope.tx.body as { hash: string }).hash = '00'.repeat(32);
      const otherBodyCheck = verifyTransactionReceipt({ genesis: server.genesis, receipt: otherBody });
      const otherMessage = await verifyMessageSigner({
        server,
        receipt: sent.receipt,
        id,
        message: `${o.message}!`,
        signature: sent.signature,
      });
      await store.close();
      return {
        epoch0,
        afterResume,
        sent: { verified: sent.verified, txid: sent.txid, height: sent.height, hash: sent.hash },
        receiptCheck: receiptCheck.verified
          ? { verified: true, txid: receiptCheck.txid, type: receiptCheck.envelope.tx.type }
          : { verified: false, reason: receiptCheck.reason },
        signer,
        tampered: tamperedCheck.verified
          ? { verified: true }
          : { verified: false, reason: tamperedCheck.reason },
        otherBody: otherBodyCheck.verified
          ? { verified: true }
          : { verified: false, reason: otherBodyCheck.reason },
        otherMessage,
        closed: session.isClosed,
      };
    });
  },

  /**
   * Rotates the key (a new key made in the page under a new passphrase): the rotation in progress,
   * the retired key and the new key all go through IndexedDB; then the new key logs in.
   */
  async rotate(o: { passphrase: string; nextPassphrase: string }) {
    return attempt(async () => {
      const store = new BrowserClientStore({ database: DATABASE });
      const before = await store.readIdentity();
      const r = await rotateKey({
        home: store,
        passphrase: o.passphrase,
        next: { source: 'generate', passphrase: o.nextPassphrase },
      });
      const after = await new BrowserClientStore({ database: DATABASE }).readIdentity();
      const retired = await store.readRetiredKeys();
      const retiredKey = await openpgp.readPrivateKey({ armoredKey: retired[retired.length - 1]! });
      const oldPassphrase = await attempt(() => connect({ home: store, passphrase: o.passphrase }));
      const session = await connect({ home: store, passphrase: o.nextPassphrase });
      const signed = await session.sendSigned('after the rotation');
      await session.close();
      await store.close();
      return {
        before: before.fingerprint,
        oldFingerprint: r.oldFingerprint,
        after: after.fingerprint,
        pending: await store.readPendingRotation(),
        retiredFingerprint: retiredKey.getFingerprint(),
        retiredDecrypted: retiredKey.isDecrypted(),
        oldPassphrase: 'error' in oldPassphrase ? oldPassphrase.error.code : 'logged in',
        signedAfter: signed.verified,
      };
    });
  },
};

(globalThis as { klTest?: typeof steps }).klTest = steps;
// The DOM types are not in this project's libs.
(
  globalThis as unknown as { document: { body: { dataset: Record<string, string> } } }
).document.body.dataset.ready = 'true';
