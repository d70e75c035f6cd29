/**
 * `keyledger rotate-key`: replaces the user's key on the ledger.
 */
import { readFileSync } from 'node:fs';
import { ClientHome } from '../../client/home.js';
import type { KeySource } from '../../client/identity.js';
import { rotateKey } from '../../client/rotate.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';
import { algorithmName, CLIENT_PASS, type ClientOptions } from './client-options.js';

/** `keyledger rotate-key [--rsa | --gpg FPR | --import FILE]`: replace your key on the ledger. */
export async function rotateKeyCommand(
  o: ClientOptions & {
    gpg?: string;
    gpgHome?: string;
    importFile?: string;
    rsa?: boolean;
    newPassphraseFile?: string;
  },
): Promise<number> {
  const home = new ClientHome(o.home);
  const current = home.readIdentity();
  home.readServer(); // not registered: said before the passphrase is asked for
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: current.keySource === 'gpg' });
  // The new key's passphrase: its own source if given, else the current key's passphrase.
  const nextPassphrase = async () =>
    o.newPassphraseFile || process.env.KEYLEDGER_NEW_PASSPHRASE
      ? resolvePassphrase(
          { ...(o.newPassphraseFile ? { passphraseFile: o.newPassphraseFile } : {}) },
          { envVar: 'KEYLEDGER_NEW_PASSPHRASE', prompt: 'Passphrase of the new key: ', confirm: true },
        )
      : (passphrase ??
        resolvePassphrase({}, { ...CLIENT_PASS, prompt: 'Passphrase of the new key: ', confirm: true }));
  let next: KeySource;
  if (o.gpg) next = { source: 'gpg', fingerprint: o.gpg, ...(o.gpgHome ? { gpgHome: o.gpgHome } : {}) };
  else if (o.importFile) {
    const importPassphrase = process.env.KEYLEDGER_IMPORT_PASSPHRASE;
    next = {
      source: 'import',
      armoredSecretKey: readFileSync(o.importFile, 'utf8'),
      passphrase: await nextPassphrase(),
      ...(importPassphrase ? { currentPassphrase: importPassphrase } : {}),
    };
  } else next = { source: 'generate', passphrase: await nextPassphrase(), type: o.rsa ? 'rsa' : 'ecc' };
  if (!o.json) info(`rotating the key of ${current.id} (${current.fingerprint}) …`);
  const r = await rotateKey({
    home,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(o.server !== undefined ? { server: o.server } : {}),
    next,
  });
  if (o.json) {
    out(
      JSON.stringify({
        verified: r.verified,
        id: r.identity.id,
        oldFingerprint: r.oldFingerprint,
        fingerprint: r.identity.fingerprint,
        ...(r.rotation ? { txid: r.rotation.txid, height: r.rotation.height } : { finished: true }),
        checkedSessionId: r.checkedSessionId,
      }),
    );
  } else {
    out(
      r.rotation
        ? `key rotated on the ledger: block ${r.rotation.height}, transaction ${r.rotation.txid} (receipt verified)`
        : 'finished an interrupted rotation: the ledger already had the new key',
    );
    out(
      `new key ${r.identity.fingerprint} (${algorithmName(r.identity.algorithm)}); logged in with it to check`,
    );
    out(`every session opened with the old key has ended; the old private key is in ${home.dir}/retired/`);
  }
  return 0;
}
