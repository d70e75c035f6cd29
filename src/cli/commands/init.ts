/**
 * `keyledger init`: makes (or imports, or points at) the user's key.
 */
import { readFileSync } from 'node:fs';
import { gpgKeyFor } from '../../client/gpg-key.js';
import { ClientHome } from '../../client/home.js';
import { createIdentity } from '../../client/identity.js';
import { KlError } from '../../protocol/errors.js';
import { fits } from '../../protocol/schemas/check.js';
import { DeviceName } from '../../protocol/schemas/fields.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';
import { algorithmName, CLIENT_PASS, type ClientOptions, homeFlag } from './client-options.js';

/** `keyledger init` */
export async function init(
  o: ClientOptions & {
    id?: string;
    name?: string;
    gpg?: string;
    gpgHome?: string;
    importFile?: string;
    force?: boolean;
    rsa?: boolean;
    /** The name of this device (docs/protocol.md "Devices"), kept in identity.json. */
    device?: string;
  },
): Promise<number> {
  if (!o.id) throw new KlError('KL_BAD_INPUT', '--id IDENTITY is required (your email address)');
  // Checked before a key is made: a name the ledger would refuse leaves the home as it was.
  if (o.device !== undefined && !fits(DeviceName, o.device))
    throw new KlError(
      'KL_BAD_INPUT',
      '--device NAME: 1 to 40 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit',
    );
  const home = new ClientHome(o.home);
  const name = o.name ?? o.id.split('@')[0]!;
  let identity: Awaited<ReturnType<typeof createIdentity>>;
  if (o.gpg) {
    identity = await createIdentity({
      home,
      id: o.id,
      name,
      source: 'gpg',
      fingerprint: o.gpg,
      ...(o.gpgHome ? { gpgHome: o.gpgHome } : {}),
      force: o.force ?? false,
    });
  } else if (o.importFile) {
    const armoredSecretKey = readFileSync(o.importFile, 'utf8');
    const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, confirm: true });
    const current = process.env.KEYLEDGER_IMPORT_PASSPHRASE;
    identity = await createIdentity({
      home,
      id: o.id,
      name,
      source: 'import',
      armoredSecretKey,
      passphrase,
      ...(current ? { currentPassphrase: current } : {}),
      force: o.force ?? false,
    });
  } else {
    const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, confirm: true });
    identity = await createIdentity({
      home,
      id: o.id,
      name,
      source: 'generate',
      passphrase,
      type: o.rsa ? 'rsa' : 'ecc',
      force: o.force ?? false,
    });
  }
  if (o.device !== undefined) {
    const { retiredKey: _retired, ...written } = identity;
    await home.writeIdentity({ ...written, device: o.device });
  }
  if (o.json)
    out(
      JSON.stringify({
        id: identity.id,
        name: identity.name,
        ...(o.device !== undefined ? { device: o.device } : {}),
        fingerprint: identity.fingerprint,
        algorithm: identity.algorithm,
        keySource: identity.keySource,
        home: home.dir,
        ...(identity.retiredKey ? { retiredKey: identity.retiredKey } : {}),
      }),
    );
  else {
    out(`identity     ${identity.id} (${identity.name})`);
    if (o.device !== undefined) out(`device       ${o.device}`);
    out(`fingerprint  ${identity.fingerprint}`);
    out(
      `algorithm    ${algorithmName(identity.algorithm)}, key ${identity.keySource === 'gpg' ? 'held by GnuPG' : `in ${home.privateKeyPath} (passphrase-protected, mode 0600)`}`,
    );
    if (identity.keySource === 'gpg') {
      // A certify-only primary key (as sq and PGPainless make them) signs with its signing subkey.
      const signing = await gpgKeyFor(identity.publicKey, 'signing', new Date());
      if (signing !== identity.fingerprint)
        out(`signs with   subkey ${signing} (the primary key only certifies)`);
    }
    if (identity.retiredKey) out(`previous key moved to ${identity.retiredKey} (kept, not deleted)`);
    info(
      `next: keyledger register --server URL --invite CODE${homeFlag(home.dir)}  ` +
        '(URL and CODE: the server address and the whole invitation your operator gives you)',
    );
    if (o.device !== undefined)
      info(
        `  or, to add this device to an identity you hold on another device: keyledger device request --server URL${homeFlag(home.dir)}`,
      );
  }
  return 0;
}
