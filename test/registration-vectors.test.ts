/**
 * Registration vectors (docs/protocol.md, phase 1; test/fixtures/protocol/registration.json): the
 * exact bytes of a version-2 statement and of an identity-proof payload, invitations with and without
 * the server pin, and the sealed proof — opened only by the server key, refused when tampered with,
 * made for another key or not integrity-protected, and readable by GnuPG (it is plain OpenPGP).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { openSealed, sealTo } from '../src/pgp/sealed.js';
import { fromUtf8 } from '../src/protocol/bytes.js';
import { canonicalize } from '../src/protocol/canonical-json.js';
import { isKlError } from '../src/protocol/errors.js';
import { chainMatchesPin, formatInvitation, parseInvitation } from '../src/protocol/invitation.js';
import {
  identityProofPayload,
  type RegistrationStatement,
  statementBytes,
} from '../src/protocol/statements.js';
import { tempDir } from './helpers.js';

const vectors = JSON.parse(
  readFileSync(new URL('./fixtures/protocol/registration.json', import.meta.url), 'utf8'),
) as {
  statement: RegistrationStatement;
  statementJcs: string;
  identityProof: ReturnType<typeof identityProofPayload>;
  identityProofJcs: string;
  invitations: { valid: Array<{ text: string; code: string; pin?: string }>; malformed: string[] };
};

const code = (c: string) => (e: unknown) => isKlError(e, c as never);

describe('registration vectors', () => {
  it('the statement and identity-proof payload have the committed canonical bytes', () => {
    assert.equal(fromUtf8(statementBytes(vectors.statement)), vectors.statementJcs);
    const { proof, ...base } = vectors.statement;
    const payload = identityProofPayload(base, { method: proof.method, code: vectors.identityProof.code });
    assert.deepEqual(payload, vectors.identityProof);
    assert.equal(canonicalize(payload), vectors.identityProofJcs);
    // Tampering: any change of a bound field changes the signed bytes.
    for (const field of ['chain', 'id', 'fingerprint', 'nonce', 'server'] as const) {
      const changed = { ...vectors.statement, [field]: `${vectors.statement[field]}x` };
      assert.notEqual(fromUtf8(statementBytes(changed)), vectors.statementJcs);
    }
  });

  it('invitations: code and pin split as committed; malformed pins refused; pins match only their chain', () => {
    for (const v of vectors.invitations.valid) {
      const parsed = parseInvitation(v.text);
      assert.equal(parsed.code, v.code);
      assert.equal(parsed.pin, v.pin);
    }
    for (const text of vectors.invitations.malformed)
      assert.throws(() => parseInvitation(text), code('KL_BAD_INPUT'));
    const chain = vectors.statement.chain;
    const { pin } = parseInvitation(formatInvitation('KL-ABCD', chain));
    assert.equal(chainMatchesPin(chain, pin!), true);
    assert.equal(chainMatchesPin(`${chain.slice(0, 31)}0${chain.slice(32)}`, pin!), chain[31] === '0');
    assert.equal(chainMatchesPin(`${chain.slice(0, 32)}${'0'.repeat(32)}`, pin!), true); // 128 bits pinned
  });
});

describe('sealed identity proofs', async () => {
  const server = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [{ name: 'keyledger server' }],
    format: 'object',
  });
  const other = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [{ name: 'someone else' }],
    format: 'object',
  });
  const bytes = Buffer.from(vectors.identityProofJcs, 'utf8');

  it('open with the server key only; every seal of the same payload differs', async () => {
    const sealed = await sealTo(bytes, server.publicKey);
    assert.deepEqual(Buffer.from(await openSealed(sealed, server.privateKey, new Date())), bytes);
    assert.notEqual(await sealTo(bytes, server.publicKey), sealed);
    await assert.rejects(openSealed(sealed, other.privateKey, new Date()), code('KL_DECRYPTION_FAILED'));
  });

  it('a tampered ciphertext and a non-message are refused', async () => {
    const sealed = await sealTo(bytes, server.publicKey);
    const { data } = await openpgp.unarmor(sealed);
    const binary = Uint8Array.from(data as Uint8Array);
    binary[binary.length - 5]! ^= 1; // inside the encrypted data (and its MDC)
    const tampered = openpgp.armor(openpgp.enums.armor.message, binary);
    await assert.rejects(openSealed(tampered, server.privateKey, new Date()), code('KL_DECRYPTION_FAILED'));
    await assert.rejects(
      openSealed('not a message', server.privateKey, new Date()),
      code('KL_MESSAGE_MALFORMED'),
    );
  });

  const gnupg = join(tempDir('kl-gpg-'), 'gnupg');
  after(() => spawnSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']));
  it('is plain OpenPGP: GnuPG holding the server key decrypts it to the payload', async () => {
    execFileSync('mkdir', ['-m', '700', '-p', gnupg]);
    const gpg = (args: string[], input?: string) =>
      execFileSync(
        'gpg',
        [
          '--homedir',
          gnupg,
          '--batch',
          '--no-tty',
          '--pinentry-mode',
          'loopback',
          '--passphrase',
          '',
          ...args,
        ],
        {
          input,
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
    gpg(['--import'], server.privateKey.armor());
    const sealed = await sealTo(bytes, server.publicKey);
    assert.equal(gpg(['--decrypt'], sealed).toString('utf8'), vectors.identityProofJcs);
  });
});
