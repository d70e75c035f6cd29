/**
 * Hardening at the boundaries, against real servers on 127.0.0.1: the admin socket of a data
 * directory whose path does not fit a Unix socket address (server and CLI client), the mode of a
 * data directory that already exists, dashboard file names that are also Object.prototype names,
 * and keys stuffed with unsigned user IDs, third-party certifications, unbound subkeys or
 * mismatched armor lines on their way to the ledger.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import type { ClientHome } from '../src/client/home.js';
import { login } from '../src/client/login.js';
import { register } from '../src/client/register.js';
import { modeOf } from '../src/ledger/data-dir.js';
import { isKlError } from '../src/protocol/errors.js';
import { adminSocketPath, callAdmin, MAX_SOCKET_PATH_BYTES } from '../src/server/admin-socket.js';
import { startServer } from '../src/server/app.js';
import { PASSPHRASE, tempDir } from './helpers.js';
import { CLIENT_PASSPHRASE, invite, newClient, testServer } from './support/server.js';

type Srv = Awaited<ReturnType<typeof testServer>>;
let server: Srv;
before(async () => {
  server = await testServer();
});
after(async () => {
  await server.close();
});

const code = (c: string, message?: RegExp) => (e: unknown) =>
  isKlError(e, c as never) && (!message || message.test(e.message));

/**
 * A data directory path inside a fresh folder, long enough that DATA/admin.sock does not fit a socket
 * address; and the path a system call would cut it to (a sibling of the data directory).
 */
function longDataDir(): { base: string; dataDir: string; truncated: string } {
  const base = tempDir('kl-long-');
  const name = 'd'.repeat(MAX_SOCKET_PATH_BYTES - base.length + 10);
  const dataDir = join(base, name);
  const truncated = adminSocketPath(dataDir).slice(0, MAX_SOCKET_PATH_BYTES);
  assert.ok(!truncated.startsWith(`${dataDir}/`), 'the cut-off path lies outside the data directory');
  return { base, dataDir, truncated };
}

describe('admin socket and data directory', () => {
  it('a data directory too long for its admin socket is refused at start; nothing listens outside it', async () => {
    const { base, dataDir } = longDataDir();
    await assert.rejects(
      startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port: 0 }),
      code('KL_DATA_DIR', /too long for its admin socket/),
    );
    // Without the check the server bound the admin API at the cut-off path, next to the directory.
    assert.deepEqual(
      readdirSync(base).filter((f) => !dataDir.endsWith(f)),
      [],
      'no socket was made beside the data directory',
    );
  });

  it('the admin client refuses such a path instead of reaching whatever listens at the cut-off one', async () => {
    const { dataDir, truncated } = longDataDir();
    mkdirSync(dataDir, { mode: 0o700 });
    let reached = 0;
    const decoy: Server = createServer((c) => {
      reached++;
      c.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]');
    });
    await new Promise<void>((r) => decoy.listen(truncated, r));
    try {
      await assert.rejects(
        callAdmin(dataDir, 'GET', '/sessions'),
        code('KL_DATA_DIR', /too long for its admin socket/),
      );
      assert.equal(reached, 0);
    } finally {
      await new Promise((r) => decoy.close(r));
    }
  });

  it('keyledger admin (the CLI) says so clearly', () => {
    const { dataDir } = longDataDir();
    mkdirSync(dataDir, { mode: 0o700 });
    const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
    const r = spawnSync(process.execPath, [bin, 'admin', 'sessions', '--data', dataDir], {
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /KL_DATA_DIR/);
    assert.match(r.stderr, /too long for its admin socket/);
  });

  it('a data directory that already exists with a looser mode is set to 0700 at start', async () => {
    const dataDir = join(tempDir('kl-mode-'), 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const first = await startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port: 0 });
    await first.close();
    assert.equal(modeOf(dataDir), 0o700, 'a new ledger in an existing directory');
    chmodSync(dataDir, 0o755); // e.g. copied or restored with the umask's mode
    const again = await startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port: 0 });
    try {
      assert.equal(modeOf(dataDir), 0o700, 'an initialised directory, at the next start');
      assert.equal(modeOf(adminSocketPath(dataDir)), 0o600);
    } finally {
      await again.close();
    }
  });
});

describe('a server that cannot start', () => {
  it('leaves nothing open: the same data directory starts right after a failed start', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const dataDir = join(tempDir(), 'data');
    await assert.rejects(
      startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port }),
      /EADDRINUSE/,
    );
    await new Promise((r) => blocker.close(r));
    // The writer lock, the admin socket and the ledger were released: a second start works.
    const again = await startServer({ dataDir, passphrase: PASSPHRASE, host: '127.0.0.1', port: 0 });
    assert.ok((await fetch(`${again.url}/healthz`)).ok);
    await again.close();
  });
});

describe('dashboard files are looked up by own name only', () => {
  it('/admin/constructor, __proto__, toString, hasOwnProperty are 404, not 500', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const res = await fetch(`${server.url}/admin/${name}`);
      assert.equal(res.status, 404, name);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KL_NOT_FOUND');
    }
    const page = await fetch(`${server.url}/admin/index.html`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  });
});

/** Replaces the public key a client home will send (the private key stays the same). */
function sendInstead(home: ClientHome, publicKey: string): void {
  const path = join(home.dir, 'identity.json');
  const identity = JSON.parse(readFileSync(path, 'utf8'));
  writeFileSync(path, JSON.stringify({ ...identity, publicKey }));
}

/** True when the ledger holds no key for `id`. */
async function notStored(id: string): Promise<boolean> {
  try {
    return !(await server.ledger.getKeyRecord(id)).record;
  } catch (err) {
    return isKlError(err, 'KL_IDENTITY_UNKNOWN');
  }
}

async function registerHome(home: ClientHome) {
  const id = home.readIdentity().id;
  return register({
    home,
    server: server.url,
    proof: { method: 'invite', code: invite(server, id) },
    passphrase: CLIENT_PASSPHRASE,
  });
}

describe('keys are written to the ledger reduced to what they self-sign', () => {
  it('an unsigned "Root Admin" user ID, a third-party certification and an unbound subkey are not stored', async () => {
    const home = await newClient('rhea@example.org', 'Rhea');
    const own = await openpgp.readKey({ armoredKey: home.readIdentity().publicKey });
    const mallory = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'mallory@example.org' }],
      format: 'object',
    });
    const certified = await own.signAllUsers([mallory.privateKey]); // a real third-party certification
    const packets = certified.toPacketList() as openpgp.PacketList<openpgp.AnyPacket>;
    packets.push(mallory.publicKey.subkeys[0]!.keyPacket); // a subkey no signature binds
    packets.push(openpgp.UserIDPacket.fromObject({ name: 'Root Admin', email: 'root@example.org' }));
    const stuffed = new openpgp.PublicKey(packets).armor();
    const sent = await openpgp.readKey({ armoredKey: stuffed });
    assert.equal(sent.getUserIDs().length, 2);
    assert.equal(sent.users[0]!.otherCertifications.length, 1);
    sendInstead(home, stuffed);

    const r = await registerHome(home);
    assert.equal(r.fingerprint, own.getFingerprint());
    const record = (await server.ledger.getKeyRecord('rhea@example.org')).record!;
    assert.equal(record.fingerprint, own.getFingerprint());
    assert.doesNotMatch(record.publicKey, /Root Admin/);
    const stored = await openpgp.readKey({ armoredKey: record.publicKey });
    assert.equal(stored.getFingerprint(), own.getFingerprint());
    assert.deepEqual(stored.getUserIDs(), ['Rhea <rhea@example.org>']);
    assert.equal(stored.users[0]!.otherCertifications.length, 0);
    assert.deepEqual(
      stored.getSubkeys().map((k) => k.getFingerprint()),
      own.getSubkeys().map((k) => k.getFingerprint()),
    );
    // The stored key is the one logins use.
    const s = await login({ home, passphrase: CLIENT_PASSPHRASE });
    assert.equal(s.verified, true);
    s.close();
  });

  it('a key with 5,000 user IDs is refused with KL_KEY_POLICY and nothing is stored', async () => {
    const home = await newClient('uma@example.org', 'Uma');
    const own = await openpgp.readKey({ armoredKey: home.readIdentity().publicKey });
    const packets = own.toPacketList() as openpgp.PacketList<openpgp.AnyPacket>;
    for (let i = 0; i < 5_000; i++) packets.push(openpgp.UserIDPacket.fromObject({ name: 'a' }));
    sendInstead(home, new openpgp.PublicKey(packets).armor());
    await assert.rejects(registerHome(home), code('KL_KEY_POLICY', /5001 user IDs; at most 16/));
    assert.ok(await notStored('uma@example.org'));
  });

  it('an oversize key, and a key whose armor ends as a signature, are refused with a clear code', async () => {
    const home = await newClient('olaf@example.org', 'Olaf');
    const own = await openpgp.readKey({ armoredKey: home.readIdentity().publicKey });
    const packets = own.toPacketList() as openpgp.PacketList<openpgp.AnyPacket>;
    for (let i = 0; i < 400; i++)
      packets.push(openpgp.UserIDPacket.fromObject({ name: `padding ${'x'.repeat(80)} ${i}` }));
    sendInstead(home, new openpgp.PublicKey(packets).armor());
    // Refused by the request schema before the key policy reads it (same bound: 32 KiB armored).
    await assert.rejects(
      registerHome(home),
      (e: unknown) =>
        ['KL_BAD_INPUT', 'KL_KEY_MALFORMED', 'KL_TOO_LARGE'].some((c) => isKlError(e, c as never)) &&
        /32768/.test((e as Error).message),
    );
    sendInstead(
      home,
      own.armor().replace('-----END PGP PUBLIC KEY BLOCK-----', '-----END PGP SIGNATURE-----'),
    );
    await assert.rejects(registerHome(home), code('KL_KEY_MALFORMED', /matching BEGIN and END/));
    assert.ok(await notStored('olaf@example.org'));
  });
});
