/**
 * The switch of the native OpenPGP path (docs/protocol.md "The native OpenPGP path",
 * docs/configuration.md `nativeOpenPgp`): off, every OpenPGP operation goes to OpenPGP.js — told
 * apart by the salt notation OpenPGP.js 6 adds to every signature it makes, which the native path
 * never writes — and registration and login still work end to end; a bad KEYLEDGER_NATIVE_OPENPGP
 * is a clear configuration error.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { login } from '../src/client/login.js';
import { register } from '../src/client/register.js';
import { signDetached } from '../src/pgp/messages.js';
import { dearmor, readPackets } from '../src/pgp/native/packets.js';
import { loadConfig, serverOptionsOf } from '../src/server/config.js';
import { nativeOpenPgpEnabled, setNativeOpenPgp } from '../src/server/index.js';
import { runCli } from './support/cli.js';
import { CLIENT_PASSPHRASE, invite, newClient, testServer } from './support/server.js';

/** Whether an armored detached signature carries a notation subpacket (type 20) in its hashed area. */
function hasNotation(armored: string): boolean {
  const body = readPackets(dearmor(armored, 'SIGNATURE')!, 1)![0]!.body;
  const hashedEnd = 6 + ((body[4]! << 8) | body[5]!);
  for (let at = 6; at < hashedEnd; ) {
    const length = body[at]!; // the signatures here have only short subpackets
    if ((body[at + 1]! & 0x7f) === 20) return true;
    at += 1 + length;
  }
  return false;
}

afterEach(() => setNativeOpenPgp(true));

describe('the native OpenPGP switch', () => {
  it('is on by default; off, signatures are made by OpenPGP.js, on again by the native path', async () => {
    assert.equal(nativeOpenPgpEnabled(), true);
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'switch@example.org' }],
      date: new Date(Date.now() - 60_000),
      format: 'object',
    });
    const data = new TextEncoder().encode('switch');
    assert.equal(hasNotation(await signDetached(data, privateKey)), false, 'native: no notation');
    setNativeOpenPgp(false);
    assert.equal(hasNotation(await signDetached(data, privateKey)), true, 'OpenPGP.js: its salt notation');
    setNativeOpenPgp(true);
    assert.equal(hasNotation(await signDetached(data, privateKey)), false);
  });

  it('nativeOpenPgp: false (setting and KEYLEDGER_NATIVE_OPENPGP=0) turns it off; registration and login work through OpenPGP.js', async () => {
    const fromEnv = serverOptionsOf(loadConfig({ env: { KEYLEDGER_NATIVE_OPENPGP: '0' } }));
    assert.equal(fromEnv.nativeOpenPgp, false);
    const server = await testServer({ nativeOpenPgp: false });
    try {
      assert.equal(nativeOpenPgpEnabled(), false);
      const home = await newClient('offswitch@example.org');
      const reg = await register({
        home,
        server: server.url,
        proof: { method: 'invite', code: invite(server, 'offswitch@example.org') },
        passphrase: CLIENT_PASSPHRASE,
      });
      assert.equal(reg.verified, true);
      const session = await login({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(session.verified, true);
      session.close();
      // The key registered through OpenPGP.js logs in on the native path too.
      setNativeOpenPgp(true);
      const again = await login({ home, passphrase: CLIENT_PASSPHRASE });
      assert.equal(again.verified, true);
      again.close();
    } finally {
      await server.close();
    }
  });

  it('a KEYLEDGER_NATIVE_OPENPGP that is not 1, true, 0 or false is refused with a clear error', () => {
    const r = runCli(['--version'], { env: { KEYLEDGER_NATIVE_OPENPGP: 'maybe' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /error KL_CONFIG_INVALID: KEYLEDGER_NATIVE_OPENPGP must be 1, true, 0 or false/);
    assert.throws(
      () => loadConfig({ env: { KEYLEDGER_NATIVE_OPENPGP: 'maybe' } }),
      (err: Error & { code?: string }) =>
        err.code === 'KL_CONFIG_INVALID' && /nativeOpenPgp/.test(err.message),
    );
  });
});
