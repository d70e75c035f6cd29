/**
 * The native OpenPGP path (src/pgp/native, docs/protocol.md "The native OpenPGP path") against real
 * implementations: GnuPG (gpg), Sequoia (sqop) and RNP (rnp), each in an isolated home in a temporary
 * directory. Native messages and detached signatures are read by all three; signatures and messages
 * the three make are read natively (and the test says which take the native path and which fall back
 * to OpenPGP.js), always with OpenPGP.js's verdict.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type * as openpgp from 'openpgp';
import { readPublicKey, verifyDetached } from '../src/pgp/messages.js';
import {
  nativeCheckSignature,
  nativeEncrypt,
  nativeSignDetached,
  readNativeSignature,
} from '../src/pgp/native/operations.js';
import { randomBytes } from '../src/protocol/crypto/node.js';
import { tempDir } from './helpers.js';
import {
  hex,
  nativeAgrees,
  nativeDecryptVerdict,
  openpgpDecryptVerdict,
  openpgpVerifiesAt,
  publicDecryptVerdict,
} from './support/native-pgp-oracle.js';
import { fixtureKey } from './vectors/native-pgp-generate.js';

function has(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}
const RNP = has('rnp') && has('rnpkeys');
const RNP_SKIP = RNP ? false : 'rnp is not installed (Debian package rnp): .ci/run must install it';
const SQ_SKIP = has('sq') ? false : 'sq is not installed (Debian package sq): .ci/run must install it';

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}
function run(command: string, args: string[], input?: Uint8Array): Run {
  const r = spawnSync(command, args, { input, maxBuffer: 16 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

let dir: string;
let gpgHome: string;
let rnpHome: string;
let alice: openpgp.PrivateKey;
let bob: openpgp.PrivateKey;
let kdf512: openpgp.PrivateKey;
const file = (name: string) => join(dir, name);
const gpg = (args: string[], input?: Uint8Array) =>
  run('gpg', ['--homedir', gpgHome, '--batch', '--no-tty', '--trust-model', 'always', ...args], input);
const rnp = (args: string[], input?: Uint8Array) =>
  run('rnp', ['--homedir', rnpHome, '--notty', ...args], input);

/** Payloads: empty, one byte, and random lengths up to 2000 bytes. */
const PAYLOADS = [
  new Uint8Array(0),
  Uint8Array.of(0),
  ...Array.from({ length: 8 }, () => randomBytes(randomInt(1, 2001))),
];

before(async () => {
  [alice, bob, kdf512] = await Promise.all([fixtureKey('alice'), fixtureKey('bob'), fixtureKey('kdf512')]);
  dir = tempDir('kl-native-interop-');
  gpgHome = join(dir, 'gnupg');
  mkdirSync(gpgHome, { mode: 0o700 });
  rnpHome = join(dir, 'rnp');
  mkdirSync(rnpHome, { mode: 0o700 });
  for (const [name, key] of [
    ['alice', alice],
    ['bob', bob],
    ['kdf512', kdf512],
  ] as const) {
    writeFileSync(file(`${name}.sec`), key.armor());
    writeFileSync(file(`${name}.pub`), key.toPublic().armor());
    assert.equal(gpg(['--import', file(`${name}.sec`)]).status, 0);
    if (RNP) assert.equal(run('rnpkeys', ['--homedir', rnpHome, '--import', file(`${name}.sec`)]).status, 0);
  }
});
after(() => {
  spawnSync('gpgconf', ['--homedir', gpgHome, '--kill', 'gpg-agent']);
});

/** The `[GNUPG:]` status keywords of a gpg run (status on stderr). */
function statusOf(r: Run): string[] {
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => l.slice(9));
}

describe('native messages and signatures in gpg, sqop and rnp', () => {
  it('gpg decrypts and verifies native messages (GOODSIG, DECRYPTION_OKAY, GOODMDC)', async () => {
    for (const [i, data] of PAYLOADS.entries()) {
      const armored = (await nativeEncrypt(data, bob.toPublic(), alice, Date.now() - 2000))!;
      writeFileSync(file(`n${i}.asc`), armored);
      const r = gpg(['--status-fd', '2', '--decrypt', file(`n${i}.asc`)]);
      const status = statusOf(r);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(
        status.some((s) => s.startsWith(`GOODSIG ${alice.getKeyID().toHex().toUpperCase()}`)),
        r.stderr,
      );
      assert.ok(status.includes('DECRYPTION_OKAY') && status.includes('GOODMDC'), r.stderr);
      assert.ok(
        status.some((s) => s.startsWith('DECRYPTION_INFO 2 9')),
        'SHA-1 MDC, AES-256',
      );
      assert.equal(hex(r.stdout), hex(data));
    }
  });

  it('sqop decrypt --verify-with decrypts and verifies native messages', async () => {
    for (const [i, data] of PAYLOADS.entries()) {
      const armored = (await nativeEncrypt(data, bob.toPublic(), alice, Date.now() - 2000))!;
      const verifications = file(`v${i}.txt`);
      const r = run(
        'sqop',
        [
          'decrypt',
          '--verifications-out',
          verifications,
          '--verify-with',
          file('alice.pub'),
          file('bob.sec'),
        ],
        Buffer.from(armored),
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(hex(r.stdout), hex(data));
      assert.match(readFileSync(verifications, 'utf8'), new RegExp(alice.getFingerprint(), 'i'));
    }
  });

  it('rnp decrypts and verifies native messages', { skip: RNP_SKIP }, async () => {
    for (const [i, data] of PAYLOADS.entries()) {
      const armored = (await nativeEncrypt(data, bob.toPublic(), alice, Date.now() - 2000))!;
      writeFileSync(file(`r${i}.asc`), armored);
      const r = rnp(['--decrypt', file(`r${i}.asc`), '--output', file(`r${i}.out`)]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /Good signature/i);
      assert.match(r.stderr, new RegExp(alice.getKeyID().toHex(), 'i'));
      assert.equal(hex(readFileSync(file(`r${i}.out`))), hex(data));
    }
  });

  it('sealed native messages (sealTo: encrypted, not signed) decrypt in gpg, sqop and rnp', async () => {
    for (const [i, data] of PAYLOADS.slice(0, 4).entries()) {
      const armored = (await nativeEncrypt(data, bob.toPublic(), undefined, Date.now() - 2000))!;
      writeFileSync(file(`z${i}.asc`), armored);
      const g = gpg(['--status-fd', '2', '--decrypt', file(`z${i}.asc`)]);
      assert.equal(g.status, 0, g.stderr);
      assert.ok(statusOf(g).includes('DECRYPTION_OKAY') && statusOf(g).includes('GOODMDC'), g.stderr);
      assert.equal(hex(g.stdout), hex(data));
      const s = run('sqop', ['decrypt', file('bob.sec')], Buffer.from(armored));
      assert.equal(s.status, 0, s.stderr);
      assert.equal(hex(s.stdout), hex(data));
      if (RNP) {
        const r = rnp(['--decrypt', file(`z${i}.asc`), '--output', file(`z${i}.out`)]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(hex(readFileSync(file(`z${i}.out`))), hex(data));
      }
    }
  });

  it('native detached signatures verify in gpg, sqop and rnp; a changed byte fails in each', async () => {
    for (const [i, data] of PAYLOADS.entries()) {
      const armored = (await nativeSignDetached(data, alice, Date.now() - 2000))!;
      writeFileSync(file(`d${i}.sig`), armored);
      writeFileSync(file(`d${i}.data`), data);
      const g = gpg(['--status-fd', '2', '--verify', file(`d${i}.sig`), file(`d${i}.data`)]);
      assert.equal(g.status, 0, g.stderr);
      assert.ok(
        statusOf(g).some((s) => s.startsWith(`VALIDSIG ${alice.getFingerprint().toUpperCase()}`)),
        g.stderr,
      );
      const s = run('sqop', ['verify', file(`d${i}.sig`), file('alice.pub')], data);
      assert.equal(s.status, 0, s.stderr);
      assert.match(s.stdout.toString(), new RegExp(alice.getFingerprint(), 'i'));
      if (RNP) {
        const r = rnp(['--verify', file(`d${i}.sig`), '--source', file(`d${i}.data`)]);
        assert.equal(r.status, 0, r.stderr);
      }
      const changed = Uint8Array.of(...data, 1);
      writeFileSync(file(`d${i}.bad`), changed);
      assert.notEqual(gpg(['--verify', file(`d${i}.sig`), file(`d${i}.bad`)]).status, 0);
      assert.notEqual(run('sqop', ['verify', file(`d${i}.sig`), file('alice.pub')], changed).status, 0);
      if (RNP) assert.notEqual(rnp(['--verify', file(`d${i}.sig`), '--source', file(`d${i}.bad`)]).status, 0);
    }
  });

  it('native messages to a Cv25519 subkey with SHA2-512/AES-256 KDF parameters decrypt in gpg, sqop and rnp', async () => {
    for (const [i, data] of PAYLOADS.slice(0, 3).entries()) {
      const armored = (await nativeEncrypt(data, kdf512.toPublic(), alice, Date.now() - 2000))!;
      writeFileSync(file(`k${i}.asc`), armored);
      const g = gpg(['--status-fd', '2', '--decrypt', file(`k${i}.asc`)]);
      assert.equal(g.status, 0, g.stderr);
      assert.ok(statusOf(g).includes('GOODMDC'));
      assert.equal(hex(g.stdout), hex(data));
      const s = run(
        'sqop',
        [
          'decrypt',
          '--verifications-out',
          file(`k${i}.v`),
          '--verify-with',
          file('alice.pub'),
          file('kdf512.sec'),
        ],
        Buffer.from(armored),
      );
      assert.equal(s.status, 0, s.stderr);
      assert.equal(hex(s.stdout), hex(data));
      if (RNP) {
        const r = rnp(['--decrypt', file(`k${i}.asc`), '--output', file(`k${i}.out`)]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(hex(readFileSync(file(`k${i}.out`))), hex(data));
      }
    }
  });
});

/** A detached signature maker: the tool and how it is asked. */
interface Signer {
  name: string;
  skip?: string | false;
  sign(data: Uint8Array, i: number): string;
}

describe('signatures made by gpg, sqop and rnp, checked natively', () => {
  const fpr = () => alice.getFingerprint().toUpperCase();
  /** gpg signing with Alice's key by fingerprint (as keyledger drives gpg), with `digest`. */
  const gpgSigner = (name: string, digest: string): Signer => ({
    name,
    sign: (data, i) => {
      writeFileSync(file(`g${i}.data`), data);
      const r = gpg([
        '--armor',
        '--detach-sign',
        '--digest-algo',
        digest,
        '--local-user',
        `${fpr()}!`,
        '-o',
        '-',
        file(`g${i}.data`),
      ]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.toString();
    },
  });
  const signers: Signer[] = [
    gpgSigner('gpg --local-user FPR! --digest-algo SHA256 (as keyledger drives gpg)', 'SHA256'),
    gpgSigner('gpg --local-user FPR! (SHA2-512)', 'SHA512'),
    {
      name: 'sqop sign',
      sign: (data) => {
        const r = run('sqop', ['sign', file('alice.sec')], data);
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.toString();
      },
    },
    {
      name: 'rnp --sign --detach --hash SHA256',
      skip: RNP_SKIP,
      sign: (data, i) => {
        writeFileSync(file(`rs${i}.data`), data);
        const r = rnp([
          '--sign',
          '--detach',
          '--armor',
          '--hash',
          'SHA256',
          '-u',
          fpr(),
          file(`rs${i}.data`),
          '--output',
          '-',
        ]);
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.toString();
      },
    },
    {
      name: 'rnp --sign --detach --hash SHA512',
      skip: RNP_SKIP,
      sign: (data, i) => {
        writeFileSync(file(`rs${i}.data`), data);
        const r = rnp([
          '--sign',
          '--detach',
          '--armor',
          '--hash',
          'SHA512',
          '-u',
          fpr(),
          file(`rs${i}.data`),
          '--output',
          '-',
        ]);
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.toString();
      },
    },
  ];

  for (const signer of signers) {
    it(`${signer.name}: read and accepted natively exactly when OpenPGP.js accepts`, {
      skip: signer.skip ?? false,
    }, async () => {
      const key = alice.toPublic();
      for (const [i, data] of PAYLOADS.entries()) {
        const armored = signer.sign(data, i);
        const now = Date.now();
        const signature = readNativeSignature(armored);
        assert.ok(signature, `the native reader reads it:\n${armored}`);
        assert.equal(await nativeCheckSignature(signature, data, key, now), true);
        assert.equal(await openpgpVerifiesAt(armored, data, key, now), true);
        assert.equal(
          (await verifyDetached({ data, armoredSignature: armored, key, now: new Date(now) })).getTime(),
          signature.created,
        );
        const changed = Uint8Array.of(...data, 7);
        assert.equal(await nativeCheckSignature(signature, changed, key, now), false);
        assert.equal(await openpgpVerifiesAt(armored, changed, key, now), false);
      }
    });
  }

  it("gpg -u <mailbox> adds a signer's user ID subpacket: the native reader leaves it to OpenPGP.js, which accepts", async () => {
    const data = randomBytes(100);
    writeFileSync(file('m.data'), data);
    const r = gpg(['--armor', '--detach-sign', '-u', 'alice@native-pgp.test', '-o', '-', file('m.data')]);
    assert.equal(r.status, 0, r.stderr);
    const armored = r.stdout.toString();
    assert.equal(
      readNativeSignature(armored),
      undefined,
      'fallback: RFC 9580 §5.2.3.28 is outside the native reader',
    );
    assert.equal(await openpgpVerifiesAt(armored, data, alice.toPublic(), Date.now()), true);
    await verifyDetached({ data, armoredSignature: armored, key: alice.toPublic(), now: new Date() });
  });

  it('keys made by gpg (future-default) and sqop (generate-key) sign; their signatures take the native path', async () => {
    const home = join(dir, 'gnupg-own');
    mkdirSync(home, { mode: 0o700 });
    const own = (args: string[], input?: Uint8Array) =>
      run('gpg', ['--homedir', home, '--batch', '--no-tty', ...args], input);
    try {
      assert.equal(
        own([
          '--passphrase',
          '',
          '--quick-gen-key',
          'Gina <gina@native-pgp.test>',
          'future-default',
          'default',
          'never',
        ]).status,
        0,
      );
      const gpgKey = await readPublicKey(
        own(['--armor', '--export', 'gina@native-pgp.test']).stdout.toString(),
      );
      const sqopSecret = run('sqop', ['generate-key', 'Sam <sam@native-pgp.test>']).stdout;
      writeFileSync(file('sam.sec'), sqopSecret);
      const sqopKey = await readPublicKey(run('sqop', ['extract-cert'], sqopSecret).stdout.toString());
      // A verdict within the first second after a key event (here the keys' creation) is always
      // OpenPGP.js's (src/pgp/native/keys.ts): sign a little later so the native path decides.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      for (const data of PAYLOADS.slice(0, 4)) {
        writeFileSync(file('own.data'), data);
        const fromGpg = own([
          '--armor',
          '--detach-sign',
          '--local-user',
          `${gpgKey.getFingerprint().toUpperCase()}!`,
          '-o',
          '-',
          file('own.data'),
        ]).stdout.toString();
        const fromSqop = run('sqop', ['sign', file('sam.sec')], data).stdout.toString();
        for (const [armored, key] of [
          [fromGpg, gpgKey],
          [fromSqop, sqopKey],
        ] as const) {
          const signature = readNativeSignature(armored);
          assert.ok(signature, armored);
          assert.equal(await nativeCheckSignature(signature, data, key, Date.now()), true);
          assert.equal(await openpgpVerifiesAt(armored, data, key, Date.now()), true);
        }
      }
    } finally {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
    }
  });
});

/** A message maker: the tool, how it is asked, and which path keyledger is expected to take. */
interface Encryptor {
  name: string;
  skip?: string | false;
  path: 'native' | 'fallback' | 'either';
  encrypt(data: Uint8Array, i: number): string;
}

describe('messages encrypted and signed by gpg, sqop and rnp to an OpenPGP.js key', () => {
  const fpr = () => alice.getFingerprint().toUpperCase();
  const to = () => bob.getFingerprint().toUpperCase();
  const gpgEncrypt = (extra: string[]) => (data: Uint8Array, i: number) => {
    writeFileSync(file(`e${i}.data`), data);
    const r = gpg([
      '--armor',
      '--sign',
      '--encrypt',
      ...extra,
      '--local-user',
      `${fpr()}!`,
      '-r',
      to(),
      '-o',
      '-',
      file(`e${i}.data`),
    ]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.toString();
  };
  const rnpEncrypt = (extra: string[]) => (data: Uint8Array, i: number) => {
    writeFileSync(file(`re${i}.data`), data);
    const r = rnp([
      '--encrypt',
      '--sign',
      '--armor',
      ...extra,
      '-u',
      fpr(),
      '-r',
      to(),
      file(`re${i}.data`),
      '--output',
      '-',
    ]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.toString();
  };
  const encryptors: Encryptor[] = [
    {
      // gpg writes an encrypted packet longer than its buffer (about 512 bytes) with partial body
      // lengths (RFC 9580 §4.2.1.4), which the native reader leaves to OpenPGP.js.
      name: 'gpg --armor --sign --encrypt --compress-algo none',
      path: 'either',
      encrypt: gpgEncrypt(['--compress-algo', 'none']),
    },
    { name: 'gpg --armor --sign --encrypt (default compression)', path: 'either', encrypt: gpgEncrypt([]) },
    {
      name: 'sqop encrypt --sign-with',
      path: 'native',
      encrypt: (data) => {
        const r = run('sqop', ['encrypt', '--sign-with', file('alice.sec'), file('bob.pub')], data);
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.toString();
      },
    },
    { name: 'rnp --encrypt --sign -z 0', path: 'native', skip: RNP_SKIP, encrypt: rnpEncrypt(['-z', '0']) },
    {
      name: 'rnp --encrypt --sign (default compression)',
      path: 'either',
      skip: RNP_SKIP,
      encrypt: rnpEncrypt([]),
    },
  ];

  for (const e of encryptors) {
    const path = { native: 'decrypted natively', fallback: 'left to OpenPGP.js', either: 'natively or not' }[
      e.path
    ];
    it(`${e.name}: ${path}, with OpenPGP.js's result`, { skip: e.skip ?? false }, async (t) => {
      const taken = { native: 0, fallback: 0 };
      for (const [i, data] of PAYLOADS.entries()) {
        const armored = e.encrypt(data, i);
        const now = Date.now() + 1000;
        const oracle = await openpgpDecryptVerdict(armored, bob, alice.toPublic(), now);
        const pub = await publicDecryptVerdict(armored, bob, alice.toPublic(), now);
        const native = await nativeDecryptVerdict(armored, bob, alice.toPublic(), now);
        assert.equal(oracle, `ok:${hex(data)}`, `OpenPGP.js reads it:\n${armored}`);
        assert.equal(pub, oracle, `decryptAndVerify = OpenPGP.js for:\n${armored}`);
        assert.ok(nativeAgrees(native, oracle, 'KL_DECRYPTION_FAILED'), `${native} vs ${oracle}`);
        taken[native === 'fallback' ? 'fallback' : 'native']++;
        if (e.path === 'native')
          assert.equal(native, `ok:${hex(data)}`, `the native path reads it:\n${armored}`);
        if (e.path === 'fallback') assert.equal(native, 'fallback');
      }
      t.diagnostic(`${taken.native} decrypted natively, ${taken.fallback} left to OpenPGP.js`);
    });
  }
});

describe('times and subpackets as real tools write them', () => {
  const fpr = () => alice.getFingerprint().toUpperCase();
  const DAY = 86_400_000;
  /** A detached signature by alice from gpg, at `faked` (gpg --faked-system-time) with an expiry. */
  function gpgSignature(data: Uint8Array, o: { faked?: number; expire?: string }): string {
    writeFileSync(file('t.data'), data);
    const faked = o.faked && new Date(o.faked).toISOString().replace(/[-:]|\.\d+Z$/g, '');
    const r = gpg([
      ...(faked ? ['--faked-system-time', `${faked}!`] : []),
      ...(o.expire ? ['--ask-sig-expire', '--default-sig-expire', o.expire] : []),
      '--armor',
      '--detach-sign',
      '--local-user',
      `${fpr()}!`,
      '-o',
      '-',
      file('t.data'),
    ]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.toString();
  }

  /** Native and OpenPGP.js verdicts at each of `times` must be equal (and the native one given). */
  async function agreeAt(armored: string, data: Uint8Array, times: number[]): Promise<boolean[]> {
    const signature = readNativeSignature(armored);
    assert.ok(signature, armored);
    const verdicts: boolean[] = [];
    for (const at of times) {
      const native = await nativeCheckSignature(signature, data, alice.toPublic(), at);
      const oracle = await openpgpVerifiesAt(armored, data, alice.toPublic(), at);
      assert.equal(native, oracle, `at ${new Date(at).toISOString()}`);
      verdicts.push(oracle);
    }
    return verdicts;
  }

  it('gpg --default-sig-expire 1d (a critical expiration subpacket): valid until, refused from, its expiry', async () => {
    const data = randomBytes(64);
    const made = Date.UTC(2026, 5, 1, 0, 0, 0);
    const armored = gpgSignature(data, { faked: made, expire: '1d' });
    const signature = readNativeSignature(armored)!;
    assert.equal(signature.created, made);
    assert.equal(signature.expires, made + DAY);
    assert.deepEqual(
      await agreeAt(armored, data, [
        made,
        made + DAY / 2,
        made + DAY - 1000,
        made + DAY - 1,
        made + DAY,
        made + 2 * DAY,
      ]),
      [true, true, true, true, false, false],
    );
    await assert.rejects(
      verifyDetached({
        data,
        armoredSignature: armored,
        key: alice.toPublic(),
        now: new Date(made + 2 * DAY),
      }),
      /signature check failed/,
    );
  });

  it('a gpg signature made an hour in the future: refused at now, accepted as of its own time', async () => {
    const data = randomBytes(64);
    const now = Date.now();
    const made = Math.floor(now / 1000) * 1000 + 3_600_000;
    const armored = gpgSignature(data, { faked: made });
    assert.deepEqual(await agreeAt(armored, data, [now, made - 1000, made, made + 1000]), [
      false,
      false,
      true,
      true,
    ]);
    // verifyDetached checks "as of" the signature's own time when it is ahead (no skew bound here)
    assert.equal(
      (
        await verifyDetached({ data, armoredSignature: armored, key: alice.toPublic(), now: new Date(now) })
      ).getTime(),
      made,
    );
    await assert.rejects(
      verifyDetached({
        data,
        armoredSignature: armored,
        key: alice.toPublic(),
        now: new Date(now),
        maxSkewMs: 60_000,
      }),
      /not fresh/,
    );
  });

  it('sq sign --notation: a non-critical notation is read natively; a critical one is left to OpenPGP.js, which refuses', {
    skip: SQ_SKIP,
  }, async () => {
    const data = randomBytes(64);
    writeFileSync(file('n.data'), data);
    const sign = (notation: string) => {
      const r = run('sq', [
        'sign',
        '--detached',
        '--notation',
        notation,
        'value',
        '--signer-key',
        file('alice.sec'),
        file('n.data'),
      ]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.toString();
    };
    const plain = sign('note@example.org');
    assert.deepEqual(await agreeAt(plain, data, [Date.now()]), [true]);
    const critical = sign('!note@example.org');
    assert.equal(
      readNativeSignature(critical),
      undefined,
      'a critical notation is outside the native reader',
    );
    assert.equal(await openpgpVerifiesAt(critical, data, alice.toPublic(), Date.now()), false);
    await assert.rejects(
      verifyDetached({ data, armoredSignature: critical, key: alice.toPublic(), now: new Date() }),
      /signature check failed/,
    );
  });

  it('sq decrypts native messages and verifies native signatures', { skip: SQ_SKIP }, async () => {
    for (const [i, data] of PAYLOADS.slice(0, 4).entries()) {
      const message = (await nativeEncrypt(data, bob.toPublic(), alice, Date.now() - 2000))!;
      writeFileSync(file(`sq${i}.asc`), message);
      const d = run('sq', [
        'decrypt',
        '--recipient-key',
        file('bob.sec'),
        '--signer-cert',
        file('alice.pub'),
        file(`sq${i}.asc`),
      ]);
      assert.equal(d.status, 0, d.stderr);
      assert.equal(hex(d.stdout), hex(data));
      assert.match(d.stderr, /1 good signature/);
      const signature = (await nativeSignDetached(data, alice, Date.now() - 2000))!;
      writeFileSync(file(`sq${i}.sig`), signature);
      writeFileSync(file(`sq${i}.data`), data);
      const v = run('sq', [
        'verify',
        '--detached',
        file(`sq${i}.sig`),
        '--signer-cert',
        file('alice.pub'),
        file(`sq${i}.data`),
      ]);
      assert.equal(v.status, 0, v.stderr);
    }
  });
});
