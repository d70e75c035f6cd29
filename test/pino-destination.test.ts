/**
 * The encrypted log as a pino destination (src/pgp/encrypted-log.ts `encryptedDestination`): a pino
 * logger's records are sealed line by line, nothing of them is readable in the file, and
 * readEncryptedLog gives them back as `time msg` (the form of older, plain lines).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import pino from 'pino';
import { EncryptedLog, encryptedDestination, readEncryptedLog } from '../src/pgp/encrypted-log.js';
import { tempDir } from './helpers.js';

describe('the encrypted log as a pino destination', () => {
  it('seals every record; the file holds nothing readable; the reader renders time and message', async () => {
    const { privateKey } = await openpgp.generateKey({
      userIDs: [{ email: 'op@example.org' }],
      format: 'object',
    });
    const log = await EncryptedLog.create(join(tempDir('kl-pino-'), 'server.log.enc'), privateKey.toPublic());
    const logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, encryptedDestination(log));
    logger.info('login by alice@example.org');
    logger.warn({ ip: '192.0.2.7' }, 'rate limit reached by "192.0.2.7"');
    const file = readFileSync(log.path, 'utf8');
    for (const secret of ['alice@example.org', 'rate limit', '192.0.2.7', '"msg"', '"level"'])
      assert.equal(file.includes(secret), false, `${secret} is not readable on disk`);
    const { lines } = await readEncryptedLog(log.path, privateKey);
    const texts = lines.map((l) => ('text' in l ? l.text : `ERROR ${l.error}`));
    assert.equal(texts.length, 2);
    assert.match(texts[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z login by alice@example\.org$/);
    assert.match(texts[1]!, /^\S+ rate limit reached by "192\.0\.2\.7"$/);
  });

  it('never throws: a write that fails is counted, and the next record that fits says how many were lost', async () => {
    const { privateKey } = await openpgp.generateKey({
      userIDs: [{ email: 'op@example.org' }],
      format: 'object',
    });
    const log = await EncryptedLog.create(join(tempDir('kl-pino-'), 'server.log.enc'), privateKey.toPublic());
    const faults: unknown[] = [];
    const recovered: number[] = [];
    const dest = encryptedDestination(log, {
      onFault: (e) => faults.push(e),
      onRecovery: (n) => recovered.push(n),
    });
    const logger = pino({ base: null }, dest);
    logger.info('first');
    const append = log.append.bind(log);
    log.append = () => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    };
    logger.info('lost one');
    logger.info('lost two');
    log.append = append;
    logger.info('back');
    assert.equal(faults.length, 1);
    assert.deepEqual(recovered, [2]);
    const { lines } = await readEncryptedLog(log.path, privateKey);
    const texts = lines.map((l) => ('text' in l ? l.text.replace(/^\S+ /, '') : `ERROR ${l.error}`));
    assert.deepEqual(texts, ['first', '2 log line(s) lost: the log could not be written', 'back']);
  });
});
