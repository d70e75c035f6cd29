/**
 * Recovery keys (docs/protocol.md "Recovery"): a v4 Ed25519 (legacy EdDSA) signing key, with no
 * encryption subkey, made from a 32-byte seed and a creation time so that its paper form
 * (protocol/paper-key.ts) rebuilds exactly the same key. The seed and time make the secret-key packet
 * (RFC 4880 §5.5.3); OpenPGP.js adds the user ID and the
 * self-signature, made deterministic (no salt notation; Ed25519 signatures are deterministic), so
 * the armored key rebuilt from paper is the one first written.
 */
import * as openpgp from 'openpgp';
import { concatBytes } from '../protocol/bytes.js';
import { ed25519FromPkcs8, randomBytes } from '../protocol/crypto/node.js';
import { KlError } from '../protocol/errors.js';
import { canonicalIdentity } from '../protocol/identity.js';
import type { PaperKey } from '../protocol/paper-key.js';
import { PGP_CONFIG, PGP_FULL_CONFIG } from './config.js';

/** A recovery key, private part included. */
export interface RecoveryKeyPair {
  /** The identity it recovers (its user ID's e-mail). */
  id: string;
  fingerprint: string;
  /** Armored public key: what the ledger holds. */
  publicKey: string;
  /** Armored private key, not encrypted: written once, for printing or a USB stick. */
  privateKey: string;
  /** The private key, ready to sign. */
  key: openpgp.PrivateKey;
  /** What the paper form holds. */
  paper: PaperKey;
}

/** The user ID name of every recovery key. */
export const RECOVERY_KEY_NAME = 'keyledger recovery key';

/** OID of Ed25519 for legacy EdDSA (RFC 4880bis, 1.3.6.1.4.1.11591.15.1). */
const ED25519_OID = Uint8Array.of(0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01);
const EDDSA_LEGACY = 22;
/** The PKCS#8 prefix of an Ed25519 private key (RFC 8410 §7), followed by the 32-byte seed. */
const PKCS8_ED25519 = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
);

/** An MPI (RFC 4880 §3.2): bit count, then the bytes without leading zeros. */
function mpi(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  const bits = value.length === 0 ? 0 : (value.length - 1) * 8 + (32 - Math.clz32(value[0]!));
  return concatBytes(Uint8Array.of(bits >> 8, bits & 255), value);
}

/** The unencrypted v4 secret-key packet of an Ed25519 seed, with its header. */
function secretKeyPacket({ seed, created }: PaperKey): Uint8Array {
  const time = Uint8Array.of(created >>> 24, (created >> 16) & 255, (created >> 8) & 255, created & 255);
  const point = concatBytes(
    Uint8Array.of(0x40),
    ed25519FromPkcs8(concatBytes(PKCS8_ED25519, seed)).publicKey,
  );
  const secret = mpi(seed);
  let sum = 0;
  for (const byte of secret) sum = (sum + byte) & 0xffff;
  const body = concatBytes(
    Uint8Array.of(4),
    time,
    Uint8Array.of(EDDSA_LEGACY),
    ED25519_OID,
    mpi(point),
    Uint8Array.of(0), // S2K usage 0: not encrypted
    secret,
    Uint8Array.of(sum >> 8, sum & 255),
  );
  return concatBytes(Uint8Array.of(0xc5, body.length), body); // tag 5, one-octet length
}

/**
 * The recovery key of `id` that `paper` holds (the same key every time).
 * @throws KlError `KL_RECOVERY_KEY_UNREADABLE` if the seed makes no key
 */
export async function recoveryKeyFromPaper(id: string, paper: PaperKey): Promise<RecoveryKeyPair> {
  const identity = canonicalIdentity(id);
  let bare: openpgp.PrivateKey;
  try {
    bare = await openpgp.readPrivateKey({ binaryKey: secretKeyPacket(paper), config: PGP_CONFIG });
  } catch {
    throw new KlError(
      'KL_RECOVERY_KEY_UNREADABLE',
      'the recovery key cannot be rebuilt from this paper form',
    );
  }
  const made = await openpgp.reformatKey({
    privateKey: bare,
    userIDs: [{ name: RECOVERY_KEY_NAME, email: identity }],
    date: new Date(paper.created * 1000),
    format: 'object',
    config: { ...PGP_CONFIG, nonDeterministicSignaturesViaNotation: false },
  });
  return {
    id: identity,
    fingerprint: made.privateKey.getFingerprint(),
    publicKey: made.publicKey.armor(PGP_FULL_CONFIG),
    privateKey: made.privateKey.armor(PGP_FULL_CONFIG),
    key: made.privateKey,
    paper: { seed: Uint8Array.from(paper.seed), created: paper.created },
  };
}

/** A new recovery key for `id`, made at `now`. */
export function generateRecoveryKey(id: string, now: number): Promise<RecoveryKeyPair> {
  return recoveryKeyFromPaper(id, { seed: randomBytes(32), created: Math.floor(now / 1000) });
}

/**
 * The recovery key in an armored private key file, with its paper form.
 * @throws KlError `KL_RECOVERY_KEY_UNREADABLE` if it is not an unencrypted recovery key of this program
 */
export async function readRecoveryKey(id: string, armored: string): Promise<RecoveryKeyPair> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: armored, config: PGP_CONFIG });
  } catch {
    throw new KlError('KL_RECOVERY_KEY_UNREADABLE', 'the file does not hold an OpenPGP private key');
  }
  const packet = key.keyPacket as unknown as {
    algorithm: number;
    isDecrypted(): boolean | null;
    privateParams?: { seed?: Uint8Array };
    created: Date;
  };
  const seed = packet.privateParams?.seed;
  if (packet.algorithm !== EDDSA_LEGACY || !packet.isDecrypted() || !(seed instanceof Uint8Array))
    throw new KlError(
      'KL_RECOVERY_KEY_UNREADABLE',
      'the file does not hold a keyledger recovery key (an unencrypted Ed25519 key)',
    );
  const rebuilt = await recoveryKeyFromPaper(id, {
    seed,
    created: Math.floor(packet.created.getTime() / 1000),
  });
  if (rebuilt.fingerprint !== key.getFingerprint())
    throw new KlError('KL_RECOVERY_KEY_UNREADABLE', 'the file does not hold a keyledger recovery key');
  return rebuilt;
}
