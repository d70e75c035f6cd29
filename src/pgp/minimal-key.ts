/**
 * A public key reduced to what its own valid self-signatures bind at a given time (the key policy's
 * "what is stored is what the key holder signed", docs/protocol.md phase 1): the primary key, its
 * newest valid direct-key self-signature, each user ID with its newest valid, unrevoked
 * self-certification (RFC 4880 §5.2.1, 0x10–0x13 by the primary key), and each subkey with its newest
 * valid, unrevoked, unexpired binding signature (0x18, with the embedded back-signature it carries).
 * Dropped: user IDs no self-certification covers (anyone can append a user ID packet to a copy of a
 * key), user attributes (photos), third-party certifications, subkeys without a valid binding, and
 * revocation signatures (a key revoked now is refused before this; revoked parts are dropped whole).
 * Like `gpg --export-options export-minimal`, but by verification rather than by issuer key ID.
 */
import * as openpgp from 'openpgp';

/** The parts {@link minimalKey} kept and dropped, for messages and tests. */
export interface MinimalKey {
  key: openpgp.PublicKey;
  droppedUserIDs: number;
  droppedSubkeys: number;
}

type Sig = openpgp.SignaturePacket;

/** The newest signature of `sigs` for which `valid` resolves true (ties: the later one in the list). */
async function newestValid(sigs: Sig[], valid: (s: Sig) => Promise<boolean>): Promise<Sig | null> {
  let best: Sig | null = null;
  for (let i = sigs.length - 1; i >= 0; i--) {
    const s = sigs[i]!;
    if (best && (s.created?.getTime() ?? 0) < (best.created?.getTime() ?? 0)) continue;
    if (await valid(s).catch(() => false)) best = s;
  }
  return best;
}

/**
 * Rebuilds `pub` from what its valid self-signatures bind at `now` (see the module comment), from the
 * very packets that were checked: their signatures keep OpenPGP.js's record of having been verified,
 * so the key policy's later questions (expiry, signing and encryption keys) cost no second check.
 * The fingerprint is unchanged (the primary key packet is kept as is).
 */
export async function minimalKey(
  pub: openpgp.PublicKey,
  now: Date,
  config: openpgp.Config,
): Promise<MinimalKey> {
  const primary = pub.keyPacket;
  const packets = new openpgp.PacketList<openpgp.AnyPacket>();
  packets.push(primary);

  const direct = (pub as unknown as { directSignatures?: Sig[] }).directSignatures ?? [];
  const directSig = await newestValid(direct, async (s) => {
    await s.verify(primary, openpgp.enums.signature.key, { key: primary }, now, undefined, config);
    return true;
  });
  if (directSig) packets.push(directSig);

  let droppedUserIDs = 0;
  for (const user of pub.users) {
    if (!user.userID) {
      droppedUserIDs++; // a user attribute (photo): nothing keyledger uses
      continue;
    }
    const data = { userID: user.userID, key: primary };
    const cert = await newestValid(user.selfCertifications, async (s) => {
      await s.verify(primary, openpgp.enums.signature.certGeneric, data, now, undefined, config);
      return !(await user.isRevoked(s, undefined, now, config));
    });
    if (!cert) {
      droppedUserIDs++;
      continue;
    }
    packets.push(user.userID, cert);
  }

  let droppedSubkeys = 0;
  for (const subkey of pub.getSubkeys()) {
    let binding: Sig;
    try {
      binding = await subkey.verify(now, config); // newest valid binding; not revoked, not expired
    } catch {
      droppedSubkeys++;
      continue;
    }
    packets.push(subkey.keyPacket, binding);
  }

  const key = new openpgp.PublicKey(packets);
  if (key.getFingerprint() !== pub.getFingerprint()) throw new Error('fingerprint changed'); // cannot happen
  return { key, droppedUserIDs, droppedSubkeys };
}
