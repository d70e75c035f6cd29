/**
 * Which raw Ed25519 public keys a signature may ever be accepted under, decided on the encoding alone
 * and shared by both crypto backends: a canonical encoding (RFC 8032 §5.1.3: y < p) of a point that is
 * not of small order. Under a small-order key anyone can make signatures (R = identity, S = 0); OpenSSL
 * accepts them, @noble/curves does not, and keyledger refuses such keys everywhere. (Whether the point
 * is on the curve at all is left to verification, which fails for every signature otherwise.)
 */

// The y coordinates of the eight points of small order (the torsion subgroup of edwards25519): 0, 1,
// p − 1 and the two of order 8, little-endian, sign bit cleared.
const SMALL_ORDER_Y = [
  `00${'00'.repeat(31)}`,
  `01${'00'.repeat(31)}`,
  `ec${'ff'.repeat(30)}7f`,
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
].map((hex) => Uint8Array.from(hex.match(/../g)!, (byte) => Number.parseInt(byte, 16)));

/** True for 32 bytes encoding y < p canonically, of a point not of small order. */
export function ed25519EncodingAcceptable(raw: Uint8Array): boolean {
  if (raw.length !== 32) return false;
  const y = Uint8Array.from(raw);
  y[31]! &= 0x7f;
  // y ≥ p = 2^255 − 19 (little-endian ed ff … ff 7f) is a non-canonical encoding.
  let high = y[31] === 0x7f && y[0]! >= 0xed;
  for (let i = 1; high && i < 31; i++) high = y[i] === 0xff;
  if (high) return false;
  return !SMALL_ORDER_Y.some((small) => small.every((byte, i) => byte === y[i]));
}
