/**
 * The hardened OpenPGP.js configuration keyledger uses for every operation (FACTS "OpenPGP.js traps"):
 * v4 keys only, no AEAD-protected keys, SHA-1 refused for messages *and* key signatures, RSA below
 * 3072 bits refused, decompression bounded.
 */
import * as openpgp from 'openpgp';

/** Most bytes a decrypted (possibly compressed) message may expand to. */
export const MAX_DECOMPRESSED_BYTES = 64 * 1024;

/** The configuration passed to every OpenPGP.js call. */
export const PGP_CONFIG: openpgp.PartialConfig = {
  v6Keys: false,
  aeadProtect: false,
  minRSABits: 3072,
  rejectHashAlgorithms: new Set([openpgp.enums.hash.md5, openpgp.enums.hash.ripemd, openpgp.enums.hash.sha1]),
  rejectMessageHashAlgorithms: new Set([
    openpgp.enums.hash.md5,
    openpgp.enums.hash.ripemd,
    openpgp.enums.hash.sha1,
  ]),
  rejectPublicKeyAlgorithms: new Set([openpgp.enums.publicKey.elgamal, openpgp.enums.publicKey.dsa]),
  maxDecompressedMessageSize: MAX_DECOMPRESSED_BYTES,
  preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
};

/** The same settings as a complete configuration, for Key methods that need one. */
export const PGP_FULL_CONFIG: openpgp.Config = { ...openpgp.config, ...PGP_CONFIG } as openpgp.Config;
