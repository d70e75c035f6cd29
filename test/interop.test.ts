import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ClientHome } from '../src/client/home.js';
import { createIdentity, type KeySource } from '../src/client/identity.js';
import { login } from '../src/client/login.js';
import { register } from '../src/client/register.js';
import { rotateKey } from '../src/client/rotate.js';
import { isKlError } from '../src/protocol/errors.js';
import { generateEphemeral } from '../src/protocol/x25519.js';
import { createChallenge, ParsedKeyCache } from '../src/server/handshake.js';
import { loadServerKey } from '../src/server/server-key.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { CLIENT_PASSPHRASE, invite, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const run = promisify(execFile);
let server: Srv;
const gnupgHomes: string[] = [];
before(async () => {
  server = await testServer();
});
after(async () => {
  await server.close();
  for (const h of gnupgHomes) spawnSync('gpgconf', ['--homedir', h, '--kill', 'gpg-agent']);
});

function gnupgHome(): string {
  const dir = join(tempDir('kl-gpg-'), 'gnupg');
  mkdirSync(dir, { mode: 0o700 });
  gnupgHomes.push(dir);
  return dir;
}

function gpg(home: string, args: string[], input?: string): string {
  return execFileSync('gpg', ['--homedir', home, '--batch', '--no-tty', ...args], {
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString();
}

function fingerprintOf(home: string, uid: string): string {
  const line = gpg(home, ['--with-colons', '--list-keys', uid])
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!;
  return line.split(':')[9]!.toLowerCase();
}

async function registerAndLogin(home: ClientHome, passphrase: string | undefined) {
  const id = home.readIdentity().id;
  const r = await register({
    home,
    server: server.url,
    proof: { method: 'invite', code: invite(server, id) },
    ...(passphrase !== undefined ? { passphrase } : {}),
  });
  assert.equal(r.verified, true);
  const s = await login({ home, ...(passphrase !== undefined ? { passphrase } : {}) });
  assert.equal(s.verified, true);
  assert.equal(server.sessions.get(s.sessionId)?.id, id);
  s.close();
}

/** A fresh GnuPG home with one new key for `uid`; returns the home and the key's fingerprint. */
function gpgKey(
  uid: string,
  o: { algo?: string; usage?: string; passphrase?: string } = {},
): { g: string; fpr: string } {
  const g = gnupgHome();
  const pass = o.passphrase ?? '';
  gpg(g, [
    ...(pass ? ['--pinentry-mode', 'loopback'] : []),
    '--passphrase',
    pass,
    '--quick-gen-key',
    uid,
    o.algo ?? 'future-default',
    o.usage ?? 'default',
    'never',
  ]);
  return { g, fpr: fingerprintOf(g, uid.replace(/^.*<|>$/g, '')) };
}

/** The armored secret key `who` of GnuPG home `g` (no passphrase). */
function exportSecret(g: string, who: string): string {
  return gpg(g, ['--armor', '--pinentry-mode', 'loopback', '--passphrase', '', '--export-secret-keys', who]);
}

/** A client home whose identity is made from `source`. */
async function homeWith(o: { id: string; name: string } & KeySource) {
  const home = new ClientHome(join(tempDir(), 'home'));
  const identity = await createIdentity({ home, ...o });
  return { home, identity };
}

describe('interop: keys made by GnuPG and Sequoia register and log in', () => {
  it('gpg future-default (Ed25519/Cv25519), imported', async () => {
    const { g, fpr } = gpgKey('Gina <gina@example.org>');
    const { home, identity } = await homeWith({
      id: 'gina@example.org',
      name: 'Gina',
      source: 'import',
      armoredSecretKey: exportSecret(g, 'gina@example.org'),
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(identity.fingerprint, fpr);
    await registerAndLogin(home, CLIENT_PASSPHRASE);
  });

  it('gpg RSA-3072 with an RSA-3072 encryption subkey, imported', async () => {
    const { g, fpr } = gpgKey('Rita <rita@example.org>', { algo: 'rsa3072', usage: 'sign,cert' });
    gpg(g, ['--passphrase', '', '--quick-add-key', fpr.toUpperCase(), 'rsa3072', 'encr', 'never']);
    const { home, identity } = await homeWith({
      id: 'rita@example.org',
      name: 'Rita',
      source: 'import',
      armoredSecretKey: exportSecret(g, fpr.toUpperCase()),
      passphrase: CLIENT_PASSPHRASE,
    });
    assert.equal(identity.algorithm, 'rsa3072');
    await registerAndLogin(home, CLIENT_PASSPHRASE);
  });

  it('Sequoia sqop generate-key, imported', async () => {
    const { home } = await homeWith({
      id: 'sam@example.org',
      name: 'Sam',
      source: 'import',
      armoredSecretKey: execFileSync('sqop', ['generate-key', 'Sam <sam@example.org>']).toString(),
      passphrase: CLIENT_PASSPHRASE,
    });
    await registerAndLogin(home, CLIENT_PASSPHRASE);
  });

  it('--gpg mode: a key that stays in gpg-agent logs in, without a passphrase', async () => {
    const { g, fpr } = gpgKey('Gus <gus@example.org>');
    const { home, identity } = await homeWith({
      id: 'gus@example.org',
      name: 'Gus',
      source: 'gpg',
      fingerprint: fpr,
      gpgHome: g,
    });
    assert.equal(identity.keySource, 'gpg');
    await registerAndLogin(home, undefined);
  });

  it('--gpg mode with a passphrase (loopback pinentry); a wrong one is refused clearly', async () => {
    const { g, fpr } = gpgKey('Pia <pia@example.org>', { passphrase: 'gpg secret' });
    spawnSync('gpg-connect-agent', ['--homedir', g, 'reloadagent', '/bye']);
    const { home } = await homeWith({
      id: 'pia@example.org',
      name: 'Pia',
      source: 'gpg',
      fingerprint: fpr,
      gpgHome: g,
    });
    await assert.rejects(
      register({
        home,
        server: server.url,
        proof: { method: 'invite', code: invite(server, 'pia@example.org') },
        passphrase: 'wrong',
      }),
      (e: unknown) => isKlError(e, 'KL_PASSPHRASE_WRONG'),
    );
    await registerAndLogin(home, 'gpg secret');
  });

  it('rotation from a file key to a key that stays in gpg, and from there to a Sequoia key', async () => {
    const { home } = await homeWith({
      id: 'otto@example.org',
      name: 'Otto',
      source: 'generate',
      passphrase: CLIENT_PASSPHRASE,
    });
    await registerAndLogin(home, CLIENT_PASSPHRASE);
    const { g, fpr } = gpgKey('Otto <otto@example.org>');
    const toGpg = await rotateKey({
      home,
      passphrase: CLIENT_PASSPHRASE,
      next: { source: 'gpg', fingerprint: fpr, gpgHome: g },
    });
    assert.equal(toGpg.identity.keySource, 'gpg');
    assert.equal((await server.ledger.getKeyRecord('otto@example.org')).record?.fingerprint, fpr);
    const s = await login({ home });
    assert.equal(s.key.fingerprint, fpr);
    s.close();
    const toSq = await rotateKey({
      home,
      next: {
        source: 'import',
        armoredSecretKey: execFileSync('sqop', ['generate-key', 'Otto <otto@example.org>']).toString(),
        passphrase: 'otto sq',
      },
    });
    assert.equal(toSq.identity.keySource, 'file');
    const record = (await server.ledger.getKeyRecord('otto@example.org')).record!;
    assert.equal(record.fingerprint, toSq.identity.fingerprint);
    assert.equal(record.history.length, 2);
  });

  it('--gpg mode with a certify-only primary key made by Sequoia sq (fixture): signs with its signing subkey', async () => {
    const g = gnupgHome();
    gpg(
      g,
      ['--import'],
      readFileSync(new URL('./fixtures/keys/sq-certify-only.sec.asc', import.meta.url), 'utf8'),
    );
    const fpr = fingerprintOf(g, 'cera@example.org');
    assert.match(
      gpg(g, ['--with-colons', '--list-keys', fpr]),
      /^pub:(?:[^:]*:){10}c[A-Z]*:/m,
      'primary is certify-only',
    );
    const { home, identity } = await homeWith({
      id: 'cera@example.org',
      name: 'Cera',
      source: 'gpg',
      fingerprint: fpr,
      gpgHome: g,
    });
    assert.equal(identity.fingerprint, fpr);
    await registerAndLogin(home, undefined);
  });

  it('keyledger init --gpg, register and login (the CLI) with the certify-only sq key', async () => {
    const g = gnupgHome();
    gpg(
      g,
      ['--import'],
      readFileSync(new URL('./fixtures/keys/sq-certify-only.sec.asc', import.meta.url), 'utf8'),
    );
    const fpr = fingerprintOf(g, 'cera@example.org');
    const home = join(tempDir(), 'home');
    // Asynchronous: the server answering the CLI runs in this process.
    const cli = async (args: string[]) => {
      const { KEYLEDGER_PASSPHRASE: _drop, ...env } = process.env;
      try {
        return (await run(process.execPath, [bin, ...args, '--home', home], { env })).stdout;
      } catch (err) {
        const e = err as { stderr?: string; stdout?: string };
        assert.fail(`${args[0]}: ${e.stderr}${e.stdout}`);
      }
    };
    const init = await cli(['init', '--id', 'cera@example.org', '--gpg', fpr, '--gpg-home', g]);
    assert.match(init, /signs with {3}subkey [0-9a-f]{40} \(the primary key only certifies\)/);
    // A server of its own: the fixture key is registered on the shared one by the test above.
    const own = await testServer();
    try {
      await cli(['register', '--server', own.url, '--invite', invite(own, 'cera@example.org')]);
      assert.match(await cli(['login', '--json']), /"verified":true/);
    } finally {
      await own.close();
    }
  });

  it('--gpg mode with a certify-only primary key made by gpg (cert, then sign and encr subkeys)', async () => {
    const { g, fpr } = gpgKey('Cody <cody@example.org>', { algo: 'ed25519', usage: 'cert' });
    gpg(g, ['--passphrase', '', '--quick-add-key', fpr.toUpperCase(), 'ed25519', 'sign', 'never']);
    gpg(g, ['--passphrase', '', '--quick-add-key', fpr.toUpperCase(), 'cv25519', 'encr', 'never']);
    const { home } = await homeWith({
      id: 'cody@example.org',
      name: 'Cody',
      source: 'gpg',
      fingerprint: fpr,
      gpgHome: g,
    });
    await registerAndLogin(home, undefined);
  });

  it('--gpg init refuses, clearly, a key that cannot encrypt or whose signing secret GnuPG lacks', async () => {
    const noEncr = gpgKey('Nora <nora@example.org>', { algo: 'ed25519', usage: 'cert' });
    gpg(noEncr.g, [
      '--passphrase',
      '',
      '--quick-add-key',
      noEncr.fpr.toUpperCase(),
      'ed25519',
      'sign',
      'never',
    ]);
    await assert.rejects(
      homeWith({
        id: 'nora@example.org',
        name: 'Nora',
        source: 'gpg',
        fingerprint: noEncr.fpr,
        gpgHome: noEncr.g,
      }),
      (e: unknown) => isKlError(e, 'KL_KEY_POLICY') && /encryption/.test(e.message),
    );
    const stub = gpgKey('Stu <stu@example.org>', { algo: 'ed25519', usage: 'cert' });
    gpg(stub.g, ['--passphrase', '', '--quick-add-key', stub.fpr.toUpperCase(), 'ed25519', 'sign', 'never']);
    gpg(stub.g, ['--passphrase', '', '--quick-add-key', stub.fpr.toUpperCase(), 'cv25519', 'encr', 'never']);
    const signing = gpg(stub.g, ['--with-colons', '--list-keys', stub.fpr])
      .split('\n')
      .map((l) => l.split(':'))
      .reduce<{ last?: string[]; fpr?: string }>((acc, f) => {
        if (f[0] === 'sub') acc.last = f;
        else if (f[0] === 'fpr' && acc.last?.[11] === 's') acc.fpr = f[9];
        if (f[0] === 'fpr') acc.last = undefined;
        return acc;
      }, {}).fpr!;
    // Only the signing subkey's secret goes: GnuPG keeps a stub for it.
    gpg(stub.g, ['--yes', '--delete-secret-keys', `${signing}!`]);
    await assert.rejects(
      homeWith({ id: 'stu@example.org', name: 'Stu', source: 'gpg', fingerprint: stub.fpr, gpgHome: stub.g }),
      (e: unknown) =>
        isKlError(e, 'KL_KEY_POLICY') &&
        e.message.includes(`signing subkey ${signing.toLowerCase()}`) &&
        /can both sign and decrypt/.test(e.message),
    );
    await assert.rejects(
      homeWith({
        id: 'stu@example.org',
        name: 'Stu',
        source: 'gpg',
        fingerprint: '--armor',
        gpgHome: stub.g,
      }),
      (e: unknown) => isKlError(e, 'KL_BAD_INPUT') && /40 hex digits/.test(e.message),
    );
  });

  it('challenges the server makes decrypt in gpg (and carry a signature gpg can check)', async () => {
    const { g, fpr } = gpgKey('Dee <dee@example.org>');
    const pub = gpg(g, ['--armor', '--export', 'dee@example.org']);
    const { home } = await homeWith({
      id: 'dee@example.org',
      name: 'Dee',
      source: 'gpg',
      fingerprint: fpr,
      gpgHome: g,
    });
    await register({
      home,
      server: server.url,
      proof: { method: 'invite', code: invite(server, 'dee@example.org') },
    });
    assert.ok(pub.includes('BEGIN PGP PUBLIC KEY BLOCK'));
    const serverKey = await loadServerKey(server.dataDir, PASSPHRASE);
    const { message } = await createChallenge({
      hello: { type: 'hello', v: 1, id: 'dee@example.org', ephemeral: generateEphemeral().publicKey },
      ledger: server.ledger,
      serverKey,
      keys: new ParsedKeyCache(),
      now: Date.now(),
      ttlMs: 60_000,
    });
    gpg(g, ['--import'], serverKey.armoredPublicKey);
    const file = join(tempDir(), 'challenge.asc');
    writeFileSync(file, message.message);
    const r = spawnSync(
      'gpg',
      [
        '--homedir',
        g,
        '--batch',
        '--no-tty',
        '--status-fd',
        '1',
        '--trust-model',
        'always',
        '--decrypt',
        file,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\[GNUPG:\] DECRYPTION_OKAY/);
    assert.match(r.stdout, new RegExp(`\\[GNUPG:\\] VALIDSIG ${serverKey.fingerprint.toUpperCase()}`));
    assert.match(r.stdout, /"type":"keyledger\/challenge"/);
  });
});
