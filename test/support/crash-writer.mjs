// Child process of crash.test.ts: writes transactions in a loop on the compiled ledger and prints
// "ACK <txid>" (synchronously, to the pipe) for each one the ledger confirmed. It never stops by
// itself; the test kills it with SIGKILL at a random moment.
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { EmbeddedLedger } from '../../dist/ledger/embedded-ledger.js';

const [dataDir, passphrase] = process.argv.slice(2);
const ledger = EmbeddedLedger.open({ dataDir, passphrase });
writeSync(1, 'READY\n');
let n = 0;
for (;;) {
  const batch = [];
  for (let i = 0; i < 1 + (n % 25); i++) {
    n += 1;
    const intent =
      n % 3 === 0
        ? {
            type: 'KeyRegistered',
            body: {
              id: `crash-${randomBytes(6).toString('hex')}@example.org`,
              name: 'Crash Test',
              fingerprint: randomBytes(20).toString('hex'),
              publicKey: `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${randomBytes(200).toString('base64')}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
              algorithm: 'ed25519-legacy',
            },
          }
        : { type: 'AuditEvent', body: { event: 'login', at: n } };
    batch.push(ledger.submit(intent).then((r) => writeSync(1, `ACK ${r.txid}\n`)));
  }
  await Promise.all(batch);
}
