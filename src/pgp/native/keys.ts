/**
 * Which key packets of an OpenPGP.js key the native path may use, and when (docs/protocol.md "The
 * native OpenPGP path"). OpenPGP.js stays the judge of a key's validity — binding signatures,
 * expiry, revocation — and this module only remembers its verdicts: a verdict for time `t` holds
 * for every time between the two moments around `t` at which something in the key starts or stops
 * (a key or signature creation, an expiry), so it is cached for that window and asked again outside
 * it. Keys are cached per parsed OpenPGP.js object (a WeakMap), so per ledger key version.
 */
import * as openpgp from 'openpgp';
import { concatBytes, equalBytes, fromHex, toHex } from '../../protocol/bytes.js';
import { ed25519FromPkcs8, type PrivateKeyHandle, x25519KeyPair } from '../../protocol/crypto/node.js';
import { PGP_FULL_CONFIG } from '../config.js';
import { leftPad } from './packets.js';

/** OID of Ed25519 in EdDSA-legacy keys (RFC 9580 §9.2). */
const OID_ED25519 = '2b06010401da470f01';
/** OID of Curve25519 in ECDH keys (RFC 9580 §9.2). */
const OID_CV25519 = '2b060104019755010501';
/** RFC 8410 PKCS#8 prefix of a raw 32-byte Ed25519 seed. */
const PKCS8_ED25519 = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** A key packet in the native profile: v4 Ed25519 (EdDSA legacy) or Cv25519 (ECDH). */
export interface NativeKeyPacket {
  kind: 'ed25519' | 'cv25519';
  /** 8-byte key ID, and as lower-case hex. */
  keyId: Uint8Array;
  keyIdHex: string;
  /** 20-byte v4 fingerprint. */
  fingerprint: Uint8Array;
  /** Creation time, ms. */
  created: number;
  /** The raw 32-byte public key (the MPI without its 0x40 prefix). */
  publicKey: Uint8Array;
  /** Cv25519 only: the KDF hash and key-wrap algorithm ids (RFC 9580 §11.5), and the KDF parameter octets. */
  kdf?: { hash: number; cipher: number; params: Uint8Array };
}

/** A native key packet with its private half, held by the crypto backend. */
export interface NativeSecretKey extends NativeKeyPacket {
  secret: PrivateKeyHandle;
}

/** Any key packet OpenPGP.js parses. */
export type AnyKeyPacket =
  | openpgp.PublicKeyPacket
  | openpgp.PublicSubkeyPacket
  | openpgp.SecretKeyPacket
  | openpgp.SecretSubkeyPacket;

interface EccParams {
  oid?: { oid?: Uint8Array };
  Q?: Uint8Array;
  kdfParams?: { hash?: number; cipher?: number };
}

/**
 * The curve and raw 32-byte point of an Ed25519 (EdDSA legacy) or Cv25519 (ECDH) key packet of any
 * version, or `undefined` for any other key.
 */
export function curvePoint(
  packet: AnyKeyPacket,
): { curve: 'ed25519' | 'cv25519'; point: Uint8Array } | undefined {
  const params = packet.publicParams as EccParams;
  const oid = params.oid?.oid;
  const q = params.Q;
  if (!oid || !q || q.length !== 33 || q[0] !== 0x40) return undefined;
  const oidHex = toHex(oid);
  if (packet.algorithm === openpgp.enums.publicKey.eddsaLegacy && oidHex === OID_ED25519)
    return { curve: 'ed25519', point: q.subarray(1) };
  if (packet.algorithm === openpgp.enums.publicKey.ecdh && oidHex === OID_CV25519)
    return { curve: 'cv25519', point: q.subarray(1) };
  return undefined;
}

/** The native form of `packet`, or `undefined` if it is not a v4 Ed25519 or Cv25519 key packet. */
export function nativeKeyPacket(packet: AnyKeyPacket): NativeKeyPacket | undefined {
  const curve = packet.version === 4 ? curvePoint(packet) : undefined;
  if (!curve) return undefined;
  const keyIdHex = packet.getKeyID().toHex();
  const base = {
    keyId: fromHex(keyIdHex),
    keyIdHex,
    fingerprint: packet.getFingerprintBytes()!,
    created: packet.getCreationTime().getTime(),
    publicKey: curve.point,
  };
  if (curve.curve === 'ed25519') return { kind: 'ed25519', ...base };
  const { hash, cipher } = (packet.publicParams as EccParams).kdfParams ?? {};
  if ((hash === 8 || hash === 9 || hash === 10) && (cipher === 7 || cipher === 8 || cipher === 9))
    return { kind: 'cv25519', ...base, kdf: { hash, cipher, params: Uint8Array.of(3, 1, hash, cipher) } };
  return undefined;
}

/** The native private half of an unlocked key packet, checked against its public half. */
function nativeSecretKey(packet: AnyKeyPacket): NativeSecretKey | undefined {
  const pub = nativeKeyPacket(packet);
  if (!pub || !('isDecrypted' in packet) || !packet.isDecrypted()) return undefined;
  const params = (packet as openpgp.SecretKeyPacket).privateParams as {
    seed?: Uint8Array;
    d?: Uint8Array;
  } | null;
  try {
    if (pub.kind === 'ed25519') {
      const seed = params?.seed && leftPad(params.seed, 32);
      if (!seed) return undefined;
      const pair = ed25519FromPkcs8(concatBytes(PKCS8_ED25519, seed));
      return equalBytes(pair.publicKey, pub.publicKey) ? { ...pub, secret: pair.privateKey } : undefined;
    }
    // A Cv25519 secret is a big-endian MPI of the reversed X25519 scalar (RFC 9580 §11.5).
    const d = params?.d && leftPad(params.d, 32);
    if (!d) return undefined;
    const pair = x25519KeyPair(d.slice().reverse());
    return equalBytes(pair.publicKey, pub.publicKey) ? { ...pub, secret: pair.privateKey } : undefined;
  } catch {
    return undefined;
  }
}

type Signature = openpgp.SignaturePacket & { embeddedSignature: openpgp.SignaturePacket | null };

/** Every moment at which OpenPGP.js's view of `key`'s validity may change, sorted. */
function keyEvents(key: openpgp.Key): number[] {
  const times = new Set<number>();
  const addSignature = (signature: Signature, keyCreated?: number) => {
    const created = signature.created?.getTime();
    if (created === undefined) return;
    times.add(created);
    if (!signature.signatureNeverExpires && signature.signatureExpirationTime)
      times.add(created + signature.signatureExpirationTime * 1000);
    if (keyCreated !== undefined && signature.keyNeverExpires === false && signature.keyExpirationTime)
      times.add(keyCreated + signature.keyExpirationTime * 1000);
    if (signature.embeddedSignature) addSignature(signature.embeddedSignature as Signature);
  };
  const primaryCreated = key.keyPacket.getCreationTime().getTime();
  times.add(primaryCreated);
  const withDirect = key as openpgp.Key & { directSignatures?: Signature[] };
  for (const signature of withDirect.directSignatures ?? []) addSignature(signature, primaryCreated);
  for (const signature of key.revocationSignatures) addSignature(signature as Signature, primaryCreated);
  for (const user of key.users) {
    for (const signature of [
      ...user.selfCertifications,
      ...user.revocationSignatures,
      ...user.otherCertifications,
    ])
      addSignature(signature as Signature, primaryCreated);
  }
  for (const subkey of key.subkeys) {
    const created = subkey.keyPacket.getCreationTime().getTime();
    times.add(created);
    for (const signature of [...subkey.bindingSignatures, ...subkey.revocationSignatures])
      addSignature(signature as Signature, created);
  }
  return [...times].sort((a, b) => a - b);
}

/**
 * OpenPGP.js compares whole seconds (util.normalizeDate), validity starting at an event (`created <=
 * date`) and ending at one (`date < expiry`). A verdict is reused from one second after the event
 * before it up to the next event: the second an event starts in is always asked afresh, so a `<`
 * where this module expects `<=` could not change a cached verdict.
 */
const EVENT_MARGIN_MS = 1_000;

interface Cached<T> {
  from: number;
  to: number;
  value: T | undefined;
}

/** The native view of one parsed OpenPGP.js key: its usable key packets, by time. */
export class NativeKeyView {
  private readonly events: number[];
  private readonly verifying = new Map<string, Cached<NativeKeyPacket>>();
  private signing: Cached<NativeSecretKey> | undefined;
  private readonly decrypting = new Map<string, NativeSecretKey | undefined>();
  private encrypting: Cached<NativeKeyPacket> | undefined;

  /** The key IDs of the key's own packets: verdicts are kept for these only (a bounded cache). */
  private readonly ownKeyIds: Set<string>;

  constructor(private readonly key: openpgp.Key) {
    this.events = keyEvents(key);
    this.ownKeyIds = new Set(key.getKeys().map((k) => k.getKeyID().toHex()));
  }

  /** The key ID object of the key packet with ID `keyIdHex`, if the key has exactly one. */
  private keyId(keyIdHex: string): openpgp.KeyID | undefined {
    const matches = this.key.getKeys().filter((key) => key.getKeyID().toHex() === keyIdHex);
    return matches.length === 1 ? matches[0]!.getKeyID() : undefined;
  }

  /** The window around `at` in which nothing in the key starts or stops, or `undefined` near an event. */
  private window(at: number): { from: number; to: number } | undefined {
    let from = Number.NEGATIVE_INFINITY;
    let to = Number.POSITIVE_INFINITY;
    for (const event of this.events) {
      if (event <= at) from = event;
      else {
        to = event;
        break;
      }
    }
    from += EVENT_MARGIN_MS;
    return at >= from && at < to ? { from, to } : undefined;
  }

  private async cached<T>(
    entry: Cached<T> | undefined,
    at: number,
    store: (entry: Cached<T>) => void,
    compute: (date: Date) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    if (entry && at >= entry.from && at < entry.to) return entry.value;
    const window = this.window(at);
    if (!window) return undefined;
    const value = await compute(new Date(at)).catch(() => undefined);
    store({ ...window, value });
    return value;
  }

  /**
   * The key packet with key ID `keyIdHex` if OpenPGP.js holds it a valid signing key at `at` (the time a
   * signature was made) and it is in the native profile; else `undefined` (ask OpenPGP.js).
   */
  verificationKey(keyIdHex: string, at: number): Promise<NativeKeyPacket | undefined> {
    if (!this.ownKeyIds.has(keyIdHex)) return Promise.resolve(undefined);
    return this.cached(
      this.verifying.get(keyIdHex),
      at,
      (entry) => this.verifying.set(keyIdHex, entry),
      async (date) => {
        const keyId = this.keyId(keyIdHex);
        if (!keyId) return undefined;
        const signing = await this.key.getSigningKey(keyId, date, undefined, PGP_FULL_CONFIG);
        const packet = nativeKeyPacket(signing.keyPacket);
        return packet?.kind === 'ed25519' && packet.keyIdHex === keyIdHex ? packet : undefined;
      },
    );
  }

  /** The key packet OpenPGP.js would sign with at `at`, with its private half, if in the profile. */
  signingKey(at: number): Promise<NativeSecretKey | undefined> {
    return this.cached(
      this.signing,
      at,
      (entry) => {
        this.signing = entry;
      },
      async (date) => {
        const signing = await this.key.getSigningKey(undefined, date, undefined, PGP_FULL_CONFIG);
        const secret = nativeSecretKey(signing.keyPacket);
        return secret?.kind === 'ed25519' ? secret : undefined;
      },
    );
  }

  /** The key packet OpenPGP.js would encrypt to at `at`, if in the profile. */
  encryptionKey(at: number): Promise<NativeKeyPacket | undefined> {
    return this.cached(
      this.encrypting,
      at,
      (entry) => {
        this.encrypting = entry;
      },
      async (date) => {
        const encryption = await this.key.getEncryptionKey(undefined, date, undefined, PGP_FULL_CONFIG);
        const packet = nativeKeyPacket(encryption.keyPacket);
        return packet?.kind === 'cv25519' ? packet : undefined;
      },
    );
  }

  /**
   * The unlocked Cv25519 key packet with key ID `keyIdHex` that OpenPGP.js would decrypt with (it
   * checks the binding, not the time: old messages stay readable), if exactly one.
   */
  async decryptionKey(keyIdHex: string): Promise<NativeSecretKey | undefined> {
    if (!this.ownKeyIds.has(keyIdHex)) return undefined;
    if (this.decrypting.has(keyIdHex)) return this.decrypting.get(keyIdHex);
    let found: NativeSecretKey | undefined;
    try {
      const keyId = this.keyId(keyIdHex);
      if (!keyId || !this.key.isPrivate()) return undefined;
      const keys = await (this.key as openpgp.PrivateKey).getDecryptionKeys(
        keyId,
        null,
        undefined,
        PGP_FULL_CONFIG,
      );
      const secret = keys.length === 1 ? nativeSecretKey(keys[0]!.keyPacket) : undefined;
      found = secret?.kind === 'cv25519' ? secret : undefined;
    } catch {
      found = undefined;
    }
    this.decrypting.set(keyIdHex, found);
    return found;
  }
}

const views = new WeakMap<openpgp.Key, NativeKeyView>();

/** The native view of a parsed key (made once per key object). */
export function nativeView(key: openpgp.Key): NativeKeyView {
  let view = views.get(key);
  if (!view) {
    view = new NativeKeyView(key);
    views.set(key, view);
  }
  return view;
}
