/**
 * `keyledger admin invite`: a one-time invitation bound to an identity, carrying the server's pin.
 */
import { isInitialised, readGenesisFile } from '../../ledger/data-dir.js';
import { KlError } from '../../protocol/errors.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { formatInvitation } from '../../protocol/invitation.js';
import { IdentityProofs } from '../../server/identity-proofs.js';
import { info, out } from '../io.js';

/** Options of `keyledger admin invite`. */
export interface InviteOptions {
  data: string;
  identity: string;
  expiresMs: number;
  /** An invitation for a further device of a registered identity (docs/protocol.md "Devices"). */
  device?: boolean;
  json?: boolean;
}

/** Prints a one-time invitation code bound to an identity. */
export async function adminInvite(o: InviteOptions): Promise<number> {
  if (!isInitialised(o.data))
    throw new KlError(
      'KL_DATA_DIR',
      `${o.data} holds no ledger: start the server once with keyledger serve --data ${o.data}`,
    );
  const id = canonicalIdentity(o.identity);
  const { chainId } = readGenesisFile(`${o.data}/genesis.json`);
  const proofs = new IdentityProofs(o.data);
  try {
    const now = Date.now();
    const expiresAt = now + o.expiresMs;
    // The invitation carries the ledger's pin: the user's client authenticates this server with it
    // before revealing the code (docs/protocol.md "Registration on a hostile network").
    const device = o.device
      ? { issuer: canonicalIdentity(process.env.KEYLEDGER_ADMIN ?? 'admin@localhost') }
      : undefined;
    const code = formatInvitation(proofs.issueInvite(id, now, expiresAt, device), chainId);
    if (o.json)
      out(
        JSON.stringify({
          id,
          code,
          expiresAt: new Date(expiresAt).toISOString(),
          chain: chainId,
          ...(device ? { device: true } : {}),
        }),
      );
    else if (device) {
      out(code);
      info(
        `invitation for a further device of ${id}, valid until ${new Date(expiresAt).toISOString()} (shown once; stored hashed; approved by ${device.issuer})`,
      );
      info(
        `on the new device the user runs: keyledger init --id ${id} --device NAME, then keyledger device request --server URL --invite ${code}`,
      );
    } else {
      out(code);
      info(
        `invitation for ${id}, valid until ${new Date(expiresAt).toISOString()} (shown once; stored hashed)`,
      );
      info('hand it over whole: the part after the "." lets the user\'s client authenticate this server');
      // The data directory does not record the address people reach the server at; the setting
      // `publicUrl` (KEYLEDGER_PUBLIC_URL, docs/configuration.md) does, when given.
      const publicUrl = process.env.KEYLEDGER_PUBLIC_URL?.replace(/\/$/, '');
      if (publicUrl && /^https?:\/\//.test(publicUrl))
        info(
          `the user runs: keyledger init --id ${id}, then keyledger register --server ${publicUrl} --invite ${code}`,
        );
      else {
        info(
          `the user runs: keyledger init --id ${id}, then keyledger register --server URL --invite ${code}`,
        );
        info(
          "URL: this server's public address (what `keyledger serve` printed, or its publicUrl); " +
            `${o.data} does not record it — set KEYLEDGER_PUBLIC_URL to have it printed here`,
        );
      }
    }
  } finally {
    proofs.close();
  }
  return 0;
}
