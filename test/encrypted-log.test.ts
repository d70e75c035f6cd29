import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { EncryptedLog, readEncryptedLog } from '../src/pgp/encrypted-log.js';
import { isKlError } from '../src/protocol/errors.js';
import { tempDir } from './helpers.js';

describe('encrypted logs', () => {
  it('are unreadable at rest, readable with the reader key, and reveal tampering line by line', async () => {
    const reader = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'ops@example.org' }],
      format: 'object',
    });
    const path = join(tempDir(), 'logs', 'server.log.enc');
    const log = await EncryptedLog.create(path, reader.publicKey);
    log.append('hijack suspected for alice@example.org');
    log.append('second line');
    log.append('third line');
    log.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(readFileSync(path, 'utf8').includes('alice@example.org'), false);
    const { lines } = await readEncryptedLog(path, reader.privateKey);
    assert.deepEqual(lines, [
      { line: 1, text: 'hijack suspected for alice@example.org' },
      { line: 2, text: 'second line' },
      { line: 3, text: 'third line' },
    ]);
    // Swap two lines and alter a third: each is reported.
    const [head, l1, l2, l3] = readFileSync(path, 'utf8').trim().split('\n');
    const altered = `${l3!.slice(0, 20)}${l3![20] === 'A' ? 'B' : 'A'}${l3!.slice(21)}`;
    writeFileSync(path, `${[head, l2, l1, altered].join('\n')}\n`);
    const bad = await readEncryptedLog(path, reader.privateKey);
    assert.deepEqual(
      bad.lines.map((l) => 'error' in l),
      [true, true, true],
    );
    const other = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: 'x@example.org' }],
      format: 'object',
    });
    await assert.rejects(readEncryptedLog(path, other.privateKey), (e: unknown) =>
      isKlError(e, 'KL_DECRYPTION_FAILED'),
    );
  });
});
