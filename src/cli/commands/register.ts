/**
 * `keyledger register`: registers the key with an invitation or an emailed code.
 */
import { ClientHome } from '../../client/home.js';
import { register, requestEmailCode } from '../../client/register.js';
import { KlError } from '../../protocol/errors.js';
import { confirm, info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';
import { CLIENT_PASS, type ClientOptions } from './client-options.js';

/** `keyledger register` */
export async function registerCommand(
  o: ClientOptions & {
    server?: string;
    invite?: string;
    email?: boolean;
    code?: string;
    chain?: string;
    /** Send the code to a server no pin or chain id authenticated (trust on first use). */
    trustFirstUse?: boolean;
  },
): Promise<number> {
  if (!o.server) throw new KlError('KL_BAD_INPUT', '--server URL is required');
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  if (!o.invite && !o.email)
    throw new KlError('KL_BAD_INPUT', 'give --invite CODE, or --email to receive a code by email');
  if (o.email && !o.code) {
    const r = await requestEmailCode({ home, server: o.server });
    if (o.json)
      out(
        JSON.stringify(
          r.sent
            ? { sent: true, expiresAt: new Date(r.expiresAt).toISOString() }
            : { sent: false, reason: r.reason },
        ),
      );
    else if (r.sent)
      out(
        `a code was sent to ${identity.id}; run again with --email --code 'THE WHOLE LINE FROM THE EMAIL' (valid until ${new Date(r.expiresAt).toISOString()})`,
      );
    else
      out(
        `codes were sent to ${identity.id} in the last minutes and are still valid: run again with --email --code 'THE WHOLE LINE FROM THE NEWEST EMAIL'`,
      );
    return 0;
  }
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const proof = o.invite
    ? { method: 'invite' as const, code: o.invite }
    : { method: 'email' as const, code: o.code! };
  const r = await register({
    home,
    server: o.server,
    proof,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(o.chain ? { expectChain: o.chain } : {}),
    onServer: async ({ chain, fingerprint, trust }) => {
      if (trust === 'pinned') return;
      // Nothing authenticated this server (docs/protocol.md "Registration on a hostile network"):
      // said plainly, and the code is sent only if the person accepts it (or --trust-first-use).
      const what = proof.method === 'invite' ? 'invitation' : 'code';
      info(
        `keyledger: trusting ${o.server} on first use — your ${what} carries no server pin and no --chain was given, so this server is not authenticated.`,
      );
      info(`           its ledger ${chain}, server key ${fingerprint}: compare them with your operator's.`);
      if (o.trustFirstUse) return;
      if (await confirm(`send your ${what} to this server? [y/N] `)) return;
      throw new KlError(
        'KL_SERVER_UNPINNED',
        `not sent: give the ${what} whole, with the part after the "." (the server pin), or --chain ID; ` +
          'or --trust-first-use to accept this server unauthenticated',
      );
    },
  });
  if (o.json) out(JSON.stringify(r));
  else {
    out(`registered   ${r.id}`);
    out(`fingerprint  ${r.fingerprint}`);
    if (r.device !== undefined)
      out(`device       ${r.device} (its name on the ledger, in the receipt verified)`);
    out(`ledger       block ${r.height}, transaction ${r.txid} (receipt verified against the genesis)`);
    out(`server key   ${r.server.fingerprint} (pinned; matches the ledger genesis)`);
    out(
      r.trust === 'pinned'
        ? `server       authenticated by the pin of your ${proof.method === 'invite' ? 'invitation' : 'code'} before the code was sent`
        : 'server       trusted on first use (no pin): it is pinned from now on',
    );
  }
  return 0;
}
