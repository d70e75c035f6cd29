/**
 * The two crypto backends (src/protocol/crypto/node.ts on node:crypto, web.ts on @noble/* for
 * browsers) are interchangeable: the same outputs on published vectors (FIPS 180-4 SHA-256,
 * RFC 4231 HMAC, RFC 5869 HKDF, the GCM specification's AES-256 cases, RFC 7748 X25519, RFC 8032
 * Ed25519) and on random inputs, the same refusals on tampered ones, and the same codecs (hex,
 * base64url, UTF-8) including on malformed text; the committed protocol vectors
 * (test/vectors/keyledger-v1.json) hold for the protocol modules bundled with the web backend. Plus
 * the byte helpers of src/protocol/bytes.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import fc from 'fast-check';
import { browserMapPlugin } from '../scripts/browser-map.mjs';
import {
  compareBytes,
  concatBytes,
  equalBytes,
  readU32BE,
  readU64BE,
  writeU32BE,
  writeU64BE,
} from '../src/protocol/bytes.js';
import * as nodeBackend from '../src/protocol/crypto/node.js';
import type { CryptoBackend } from '../src/protocol/crypto/types.js';
import * as webBackend from '../src/protocol/crypto/web.js';

// Both modules must meet the one contract (a type error here means they drifted apart).
const BACKENDS: Array<[string, CryptoBackend]> = [
  ['node', nodeBackend],
  ['web', webBackend],
];
const node: CryptoBackend = nodeBackend;
const web: CryptoBackend = webBackend;

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const utf8 = (s: string) => Uint8Array.from(Buffer.from(s, 'utf8'));
/** Plain arrays of the same bytes (a `Buffer` and a `Uint8Array` are not deepEqual). */
const same = (a: Uint8Array | null, b: Uint8Array | null) =>
  assert.deepEqual(a === null ? null : toHex(a), b === null ? null : toHex(b));
const bytes = (max = 256) => fc.uint8Array({ maxLength: max });
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const RUNS = { numRuns: 200 };

const PKCS8_ED25519 = hex('302e020100300506032b657004220420');
const SPKI_ED25519 = hex('302a300506032b6570032100');

describe('crypto backends: published vectors', () => {
  for (const [name, b] of BACKENDS) {
    it(`${name}: SHA-256 (FIPS 180-4 "abc", and of split parts) and HMAC-SHA256 (RFC 4231 case 2)`, () => {
      const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
      assert.equal(toHex(b.sha256(utf8('abc'))), abc);
      assert.equal(toHex(b.sha256(utf8('a'), utf8(''), utf8('bc'))), abc);
      assert.equal(toHex(b.sha256()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      // The binary-string form: one character per byte in and out, the same digest.
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      assert.equal(b.binaryEncode(all), Buffer.from(all).toString('latin1'));
      same(b.binaryDecode(b.binaryEncode(all)), all);
      assert.equal(Buffer.from(b.sha256Binary('abc'), 'latin1').toString('hex'), abc);
      const high = '\x00\x10\x7f\x80\xfe\xff'.repeat(11);
      assert.equal(
        Buffer.from(b.sha256Binary(high), 'latin1').toString('hex'),
        toHex(b.sha256(Uint8Array.from(Buffer.from(high, 'latin1')))),
      );
      assert.equal(
        toHex(b.hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?'))),
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      );
    });

    it(`${name}: HKDF-SHA256, RFC 5869 A.1 and A.3`, () => {
      const ikm = new Uint8Array(22).fill(0x0b);
      assert.equal(
        toHex(b.hkdfSha256(ikm, hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42)),
        '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
      );
      assert.equal(
        toHex(b.hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 42)),
        '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      );
    });

    it(`${name}: AES-256-GCM, the GCM specification's test cases 13, 14 and 16; a flipped bit does not open`, () => {
      const zero = new Uint8Array(32);
      const iv0 = new Uint8Array(12);
      const none = new Uint8Array(0);
      assert.equal(toHex(b.aesGcmSeal(zero, iv0, none, none)), '530f8afbc74536b9a963b4f1c4cb738b');
      // With a prefix: the prefix, then the same ciphertext and tag.
      assert.equal(
        toHex(b.aesGcmSeal(zero, iv0, none, none, Uint8Array.of(1, 2, 3))),
        '010203530f8afbc74536b9a963b4f1c4cb738b',
      );
      assert.equal(
        toHex(b.aesGcmSeal(zero, iv0, none, new Uint8Array(16))),
        'cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919',
      );
      const k = hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308');
      const iv = hex('cafebabefacedbaddecaf888');
      const aad = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
      const p = hex(
        'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
      );
      const sealed =
        '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662' +
        '76fc6ece0f4e1768cddf8853bb2d551b';
      assert.equal(toHex(b.aesGcmSeal(k, iv, aad, p)), sealed);
      same(b.aesGcmOpen(k, iv, aad, hex(sealed)), p);
      // Tampering: the last tag bit, a ciphertext bit, the AAD, the nonce, the key, a truncation.
      const flipped = (s: string, i: number) => {
        const x = hex(s);
        x[i]! ^= 1;
        return x;
      };
      const n = hex(sealed).length;
      assert.equal(b.aesGcmOpen(k, iv, aad, flipped(sealed, n - 1)), null);
      assert.equal(b.aesGcmOpen(k, iv, aad, flipped(sealed, 0)), null);
      assert.equal(b.aesGcmOpen(k, iv, hex('feedface'), hex(sealed)), null);
      assert.equal(b.aesGcmOpen(k, flipped('cafebabefacedbaddecaf888', 11), aad, hex(sealed)), null);
      assert.equal(b.aesGcmOpen(zero, iv, aad, hex(sealed)), null);
      assert.equal(b.aesGcmOpen(k, iv, aad, hex(sealed).subarray(0, 15)), null);
    });

    it(`${name}: X25519, RFC 7748 §5.2 and §6.1; a low-order point is refused`, () => {
      // §5.2: the scalar as a private key (clamped by X25519 itself), the u-coordinate as the peer.
      const k = b.x25519KeyPair(hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'));
      assert.equal(
        toHex(
          b.x25519SharedSecret(
            k.privateKey,
            hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
          ),
        ),
        'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
      );
      const alice = b.x25519KeyPair(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
      const bob = b.x25519KeyPair(hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
      assert.equal(
        toHex(alice.publicKey),
        '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
      );
      assert.equal(toHex(bob.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
      const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
      assert.equal(toHex(b.x25519SharedSecret(alice.privateKey, bob.publicKey)), shared);
      assert.equal(toHex(b.x25519SharedSecret(bob.privateKey, alice.publicKey)), shared);
      // RFC 7748 §6.1: the all-zero output of a low-order point (0 and 1 are two) is refused.
      assert.throws(() => b.x25519SharedSecret(alice.privateKey, new Uint8Array(32)));
      assert.throws(() => b.x25519SharedSecret(alice.privateKey, hex(`01${'00'.repeat(31)}`)));
      assert.throws(() => b.x25519SharedSecret(alice.privateKey, new Uint8Array(31)));
      assert.throws(() => b.x25519KeyPair(new Uint8Array(31)));
    });

    it(`${name}: Ed25519, RFC 8032 §7.1 tests 1 and 2 (sign from PKCS#8, verify raw and SPKI); tampering is refused`, () => {
      const cases = [
        {
          seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
          pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
          msg: '',
          sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
        },
        {
          seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
          pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
          msg: '72',
          sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
        },
      ];
      for (const c of cases) {
        const der = concatBytes(PKCS8_ED25519, hex(c.seed));
        const key = b.ed25519FromPkcs8(der);
        assert.equal(toHex(key.publicKey), c.pub);
        assert.equal(toHex(b.ed25519ToPkcs8(key.privateKey)), toHex(der));
        assert.equal(toHex(b.ed25519Sign(key.privateKey, hex(c.msg))), c.sig);
        assert.equal(b.ed25519Verify(hex(c.pub), hex(c.msg), hex(c.sig)), true);
        assert.equal(b.ed25519Verify(concatBytes(SPKI_ED25519, hex(c.pub)), hex(c.msg), hex(c.sig)), true);
        // Wrong key, other message, flipped signature bit, truncated signature, malformed keys.
        assert.equal(
          b.ed25519Verify(
            hex(cases[0]!.pub === c.pub ? cases[1]!.pub : cases[0]!.pub),
            hex(c.msg),
            hex(c.sig),
          ),
          false,
        );
        assert.equal(b.ed25519Verify(hex(c.pub), hex(`${c.msg}00`), hex(c.sig)), false);
        const bad = hex(c.sig);
        bad[10]! ^= 0x40;
        assert.equal(b.ed25519Verify(hex(c.pub), hex(c.msg), bad), false);
        assert.equal(b.ed25519Verify(hex(c.pub), hex(c.msg), hex(c.sig).subarray(0, 63)), false);
        assert.equal(b.ed25519Verify(hex(c.pub).subarray(1), hex(c.msg), hex(c.sig)), false);
        const spki = concatBytes(SPKI_ED25519, hex(c.pub));
        spki[3]! ^= 1;
        assert.equal(b.ed25519Verify(spki, hex(c.msg), hex(c.sig)), false);
      }
      // RFC 8032 §5.1.7: S must be below the group order L. S + L verifies under a lax check
      // (the "malleability" of ZIP 215 style verifiers); both backends refuse it.
      const c = cases[1]!;
      const L = (1n << 252n) + 27742317777372353535851937790883648493n;
      const sig = hex(c.sig);
      let s = 0n;
      for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
      s += L;
      for (let i = 32; i < 64; i++) {
        sig[i] = Number(s & 0xffn);
        s >>= 8n;
      }
      assert.equal(b.ed25519Verify(hex(c.pub), hex(c.msg), sig), false);
      assert.throws(() => b.ed25519FromPkcs8(hex('302e020100300506032b656e04220420').subarray(0, 10)));
    });
  }
});

describe('crypto backends: the same outputs on random inputs', () => {
  it('SHA-256, HMAC-SHA256 and HKDF-SHA256', () => {
    fc.assert(
      fc.property(
        fc.array(bytes(), { maxLength: 5 }),
        bytes(),
        fc.integer({ min: 1, max: 255 }),
        (parts, k, len) => {
          same(node.sha256(...parts), web.sha256(...parts));
          const data = parts[0] ?? new Uint8Array(0);
          same(node.hmacSha256(k, data), web.hmacSha256(k, data));
          same(
            node.hkdfSha256(data, k, parts[1] ?? new Uint8Array(0), len),
            web.hkdfSha256(data, k, parts[1] ?? new Uint8Array(0), len),
          );
        },
      ),
      RUNS,
    );
  });

  it('AES-256-GCM: same ciphertext, each opens the other, a flipped bit opens in neither', () => {
    fc.assert(
      fc.property(
        key32,
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        bytes(64),
        bytes(2048),
        fc.nat(),
        (k, iv, aad, p, at) => {
          const a = node.aesGcmSeal(k, iv, aad, p);
          same(a, web.aesGcmSeal(k, iv, aad, p));
          same(web.aesGcmOpen(k, iv, aad, a), p);
          same(node.aesGcmOpen(k, iv, aad, a), p);
          const t = Uint8Array.from(a);
          t[at % t.length]! ^= 1 << (at % 8);
          assert.equal(node.aesGcmOpen(k, iv, aad, t), null);
          assert.equal(web.aesGcmOpen(k, iv, aad, t), null);
        },
      ),
      RUNS,
    );
  });

  it('X25519: same public key of a private key, same shared secret with any peer key', () => {
    fc.assert(
      fc.property(key32, key32, (priv, peer) => {
        const n = node.x25519KeyPair(priv);
        const w = web.x25519KeyPair(priv);
        same(n.publicKey, w.publicKey);
        let ns: Uint8Array | string;
        let ws: Uint8Array | string;
        try {
          ns = node.x25519SharedSecret(n.privateKey, peer);
        } catch {
          ns = 'refused';
        }
        try {
          ws = web.x25519SharedSecret(w.privateKey, peer);
        } catch {
          ws = 'refused';
        }
        assert.deepEqual(typeof ns === 'string' ? ns : toHex(ns), typeof ws === 'string' ? ws : toHex(ws));
      }),
      RUNS,
    );
    // Fresh key pairs of either backend agree with each other.
    const a = node.x25519KeyPair();
    const b = web.x25519KeyPair();
    same(
      node.x25519SharedSecret(a.privateKey, b.publicKey),
      web.x25519SharedSecret(b.privateKey, a.publicKey),
    );
  });

  it('Ed25519: same key and signature from a seed; each verifies the other; a wrong key or message is refused', () => {
    fc.assert(
      fc.property(key32, bytes(), fc.nat(), (seed, msg, at) => {
        const der = concatBytes(PKCS8_ED25519, seed);
        const n = node.ed25519FromPkcs8(der);
        const w = web.ed25519FromPkcs8(der);
        same(n.publicKey, w.publicKey);
        const sig = node.ed25519Sign(n.privateKey, msg);
        same(sig, web.ed25519Sign(w.privateKey, msg));
        assert.equal(web.ed25519Verify(n.publicKey, msg, sig), true);
        assert.equal(node.ed25519Verify(w.publicKey, msg, sig), true);
        const other = web.ed25519KeyPair().publicKey;
        assert.equal(node.ed25519Verify(other, msg, sig), false);
        assert.equal(web.ed25519Verify(other, msg, sig), false);
        const bad = Uint8Array.from(sig);
        bad[at % 64]! ^= 1 << (at % 8);
        assert.equal(node.ed25519Verify(n.publicKey, msg, bad), web.ed25519Verify(n.publicKey, msg, bad));
        assert.equal(node.ed25519Verify(n.publicKey, msg, bad), false);
      }),
      { numRuns: 100 },
    );
    // A key made by one backend signs what the other verifies, and survives PKCS#8 both ways.
    const k = node.ed25519KeyPair();
    const moved = web.ed25519FromPkcs8(node.ed25519ToPkcs8(k.privateKey));
    same(moved.publicKey, k.publicKey);
    assert.equal(
      node.ed25519Verify(k.publicKey, utf8('x'), web.ed25519Sign(moved.privateKey, utf8('x'))),
      true,
    );
  });

  it('Ed25519: the eight small-order public keys and non-canonical encodings verify no forged signature in either', () => {
    // The torsion points of edwards25519 (both signs of x): with R = identity and S = 0 the
    // verification equation holds for any message; OpenSSL alone accepts that.
    const P = (1n << 255n) - 19n;
    const le = (n: bigint) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
    const small = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0000000000000000000000000000000000000000000000000000000000000080',
      '0100000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000080',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    ].map(hex);
    const nonCanonical = [le(P), le(P + 1n), le(P + 18n)];
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    for (const A of [...small, ...nonCanonical])
      for (const R of [...small, ...nonCanonical])
        for (const S of [le(0n), le(L)])
          for (const m of [new Uint8Array(0), utf8('any message')]) {
            const sig = concatBytes(R, S);
            assert.equal(node.ed25519Verify(A, m, sig), false, `node: A=${toHex(A)} R=${toHex(R)}`);
            assert.equal(web.ed25519Verify(A, m, sig), false, `web: A=${toHex(A)} R=${toHex(R)}`);
          }
    for (const A of [...small, ...nonCanonical]) {
      assert.equal(node.ed25519PublicKeyAcceptable(A), false, `node accepts A=${toHex(A)}`);
      assert.equal(web.ed25519PublicKeyAcceptable(A), false, `web accepts A=${toHex(A)}`);
    }
  });

  it('Ed25519 public key acceptance: real keys in both, arbitrary bytes alike in both', () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey } = node.ed25519KeyPair();
      assert.ok(node.ed25519PublicKeyAcceptable(publicKey) && web.ed25519PublicKeyAcceptable(publicKey));
    }
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 31, maxLength: 33 }), (raw) => {
        assert.equal(node.ed25519PublicKeyAcceptable(raw), web.ed25519PublicKeyAcceptable(raw), toHex(raw));
      }),
      RUNS,
    );
  });

  it('Ed25519 verify agrees on arbitrary (mostly invalid) keys and signatures', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 30, maxLength: 45 }),
        bytes(16),
        fc.uint8Array({ minLength: 63, maxLength: 65 }),
        (pub, msg, sig) => {
          assert.equal(node.ed25519Verify(pub, msg, sig), web.ed25519Verify(pub, msg, sig));
        },
      ),
      RUNS,
    );
  });

  it('codecs: hex, base64url and UTF-8 agree, also on malformed text', () => {
    const b64chars = fc.constantFrom(
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= $.\n'.split(''),
    );
    const hexChars = fc.constantFrom(...'0123456789abcdefABCDEFxg \n'.split(''));
    fc.assert(
      fc.property(
        bytes(),
        fc.string({ unit: b64chars, maxLength: 80 }),
        fc.string({ unit: hexChars, maxLength: 80 }),
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 40 }),
        (raw, b64, hx, text, lone) => {
          assert.equal(node.base64urlEncode(raw), web.base64urlEncode(raw));
          same(web.base64urlDecode(node.base64urlEncode(raw)), raw);
          same(node.base64urlDecode(b64), web.base64urlDecode(b64));
          assert.equal(node.hexEncode(raw), web.hexEncode(raw));
          same(web.hexDecode(node.hexEncode(raw)), raw);
          same(node.hexDecode(hx), web.hexDecode(hx));
          same(node.utf8Encode(text), web.utf8Encode(text));
          same(node.utf8Encode(lone), web.utf8Encode(lone));
          assert.equal(node.utf8Decode(raw), web.utf8Decode(raw));
          assert.equal(web.utf8Decode(web.utf8Encode(text)), text);
        },
      ),
      { numRuns: 500 },
    );
    // A leading byte-order mark is data, not stripped.
    assert.equal(web.utf8Decode(hex('efbbbf41')), node.utf8Decode(hex('efbbbf41')));
  });

  it('constant-time equality, allocation, copies and concatenation agree', () => {
    fc.assert(
      fc.property(bytes(64), bytes(64), (a, b) => {
        for (const [, k] of BACKENDS) {
          assert.equal(k.constantTimeEqual(a, b), Buffer.compare(a, b) === 0);
          assert.equal(k.constantTimeEqual(a, Uint8Array.from(a)), true);
          same(k.concatBytes([a, b]), Buffer.concat([a, b]));
          const c = k.copyBytes(a);
          same(c, a);
          if (c.length) {
            c[0]! ^= 1;
            assert.notEqual(c[0], a[0], 'a copy, not a view');
          }
          same(k.allocBytes(a.length), new Uint8Array(a.length));
        }
      }),
      RUNS,
    );
    for (const [, k] of BACKENDS) {
      const r = k.randomBytes(70_000);
      assert.equal(r.length, 70_000);
      assert.notEqual(toHex(r.subarray(0, 32)), toHex(k.randomBytes(32)));
      assert.ok(
        r.subarray(66_000).some((x) => x !== 0),
        'filled past the 64 KiB getRandomValues limit',
      );
    }
  });
});

describe('byte helpers (src/protocol/bytes.ts)', () => {
  it('big-endian u32 and u64 round trip and match Buffer; out-of-range values are refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.maxSafeNat(), (u32, u64) => {
        const a = new Uint8Array(12);
        writeU32BE(a, u32, 0);
        writeU64BE(a, u64, 4);
        const b = Buffer.alloc(12);
        b.writeUInt32BE(u32, 0);
        b.writeBigUInt64BE(BigInt(u64), 4);
        same(a, b);
        assert.equal(readU32BE(a, 0), u32);
        assert.equal(readU64BE(a, 4), u64);
      }),
      RUNS,
    );
    assert.throws(() => writeU32BE(new Uint8Array(4), 2 ** 32), RangeError);
    assert.throws(() => writeU64BE(new Uint8Array(8), 2 ** 53), RangeError);
    assert.throws(() => writeU32BE(new Uint8Array(3), 1), RangeError);
    assert.throws(() => readU64BE(new Uint8Array(8).fill(0xff)), RangeError);
  });

  it('equalBytes and compareBytes order bytes as Buffer.compare', () => {
    fc.assert(
      fc.property(bytes(8), bytes(8), (a, b) => {
        assert.equal(compareBytes(a, b), Buffer.compare(a, b));
        assert.equal(equalBytes(a, b), Buffer.compare(a, b) === 0);
      }),
      RUNS,
    );
  });
});

describe('the protocol on the web backend', () => {
  it('the committed vectors (key schedule, frames, resumption) hold for the protocol bundled with the browser map', async () => {
    const src = new URL('../src/protocol/', import.meta.url).pathname;
    const out = await build({
      stdin: {
        contents: [
          "export { generateEphemeral, sharedSecret } from './x25519.ts';",
          "export { deriveSessionKeys } from './key-schedule.ts';",
          "export { encodeFrame, openFrame, sealFrame } from './frame.ts';",
          "export { checkResumeProof, resumeProof } from './resume.ts';",
          "export { BACKEND } from './crypto/node.ts';",
        ].join('\n'),
        resolveDir: src,
        loader: 'ts',
      },
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'browser',
      plugins: [browserMapPlugin()],
      logLevel: 'silent',
    });
    const inputs = Object.keys(out.metafile.inputs);
    assert.ok(
      inputs.includes('src/protocol/crypto/web.ts') && !inputs.includes('src/protocol/crypto/node.ts'),
    );
    const code = out.outputFiles[0]!.text;
    assert.doesNotMatch(code, /["']node:|\bBuffer\b/);
    const p = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
    assert.equal(p.BACKEND, 'web');
    const V = JSON.parse(readFileSync(new URL('./vectors/keyledger-v1.json', import.meta.url), 'utf8'));

    const ks = V.keySchedule;
    const client = p.generateEphemeral(hex(ks.clientPrivate));
    const server = p.generateEphemeral(hex(ks.serverPrivate));
    assert.equal(client.publicKey, ks.clientPublic);
    assert.equal(server.publicKey, ks.serverPublic);
    const secret = p.sharedSecret(client.privateKey, ks.serverPublic);
    assert.equal(toHex(secret), ks.sharedSecret);
    assert.equal(toHex(p.sharedSecret(server.privateKey, ks.clientPublic)), ks.sharedSecret);
    const keys = p.deriveSessionKeys(secret, hex(ks.transcriptHash));
    for (const name of Object.keys(ks.keys)) assert.equal(toHex(keys[name]), ks.keys[name], name);
    for (const n of ks.negative)
      assert.throws(() => p.sharedSecret(client.privateKey, n.peerPublic), { code: n.error }, n.description);

    const f = V.frames;
    for (const x of f.positive) {
      const sealed = p.sealFrame({
        key: hex(f.key),
        iv: hex(f.iv),
        sid: f.sid,
        epoch: x.epoch,
        seq: x.seq,
        dir: x.dir,
        plaintext: utf8(x.plaintext),
      });
      assert.equal(p.encodeFrame(sealed), x.frame);
      const opened = p.openFrame({ key: hex(f.key), iv: hex(f.iv), dir: x.dir, frame: JSON.parse(x.frame) });
      assert.equal(new TextDecoder().decode(opened), x.plaintext);
    }
    for (const n of f.negative)
      assert.throws(
        () => p.openFrame({ key: hex(f.key), iv: hex(f.iv), dir: n.dir, frame: JSON.parse(n.frame) }),
        { code: n.error },
        n.description,
      );

    const r = V.resume;
    const fields = { sid: r.sid, epoch: r.epoch, clientNonce: r.clientNonce, serverNonce: r.serverNonce };
    assert.equal(p.resumeProof(hex(r.resumeKey), fields), r.proof);
    assert.equal(p.checkResumeProof(hex(r.resumeKey), fields, r.proof), true);
    for (const n of r.negative) {
      const key = n.field === 'resumeKey' ? hex(n.value) : hex(r.resumeKey);
      const changed =
        n.field === 'swap'
          ? { ...fields, clientNonce: r.serverNonce, serverNonce: r.clientNonce }
          : n.field === 'resumeKey'
            ? fields
            : { ...fields, [n.field]: n.value };
      assert.equal(p.checkResumeProof(key, changed, r.proof), false, n.description);
    }
  });
});
