import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PASSPHRASE, tempDir } from './helpers.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  const { KEYLEDGER_SERVER_PASSPHRASE: _drop, ...base } = process.env;
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('keyledger CLI', () => {
  it('demo runs end to end on a new data directory, then ledger show and verify read it', () => {
    const data = join(tempDir(), 'data');
    const demo = run(['demo', '--data', data, '--users', '3'], { KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE });
    assert.equal(demo.code, 0, demo.stderr + demo.stdout);
    assert.match(demo.stdout, /initialised a new ledger/);
    assert.match(demo.stdout, /ok {3}full audit: \d+ blocks/);
    assert.doesNotMatch(demo.stdout, /FAIL/);
    assert.match(demo.stderr, /making OpenPGP keys/, 'progress is shown');

    const summary = run(['ledger', 'show', '--data', data, '--json']);
    assert.equal(summary.code, 0, summary.stderr);
    const s = JSON.parse(summary.stdout);
    assert.equal(s.height, 4);
    assert.match(s.chainId, /^[0-9a-f]{64}$/);

    const block = JSON.parse(run(['ledger', 'show', '--data', data, '--height', '1', '--json']).stdout);
    assert.equal(block.txids.length, 3);
    const tx = run(['ledger', 'show', '--data', data, '--tx', block.txids[0]]);
    assert.match(tx.stdout, /type {9}KeyRegistered/);
    assert.match(tx.stdout, /inclusion {4}verified/);
    const id = JSON.parse(run(['ledger', 'show', '--data', data, '--tx', block.txids[0], '--json']).stdout)
      .envelope.tx.body.id;
    const rec = run(['ledger', 'show', '--data', data, '--id', id.toUpperCase()]);
    assert.equal(rec.code, 0, rec.stderr);
    assert.match(rec.stdout, new RegExp(`identity {5}${id.replace(/\./g, '\\.')}`));
    assert.match(rec.stdout, /proof {8}verified against block 4/);

    const verify = run(['ledger', 'verify', '--data', data, '--json']);
    assert.equal(verify.code, 0);
    assert.equal(JSON.parse(verify.stdout).ok, true);

    // A second demo run reuses the ledger and adds to it.
    const again = run([
      'demo',
      '--data',
      data,
      '--insecure-dev-passphrase',
      '--passphrase-file',
      writePass(PASSPHRASE),
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /using the existing ledger/);
  });

  it('errors are clear, carry a stable code and exit 2', () => {
    const data = join(tempDir(), 'data');
    const noPass = run(['ledger', 'init', '--data', data]);
    assert.equal(noPass.code, 2);
    assert.match(
      noPass.stderr,
      /^error KL_PASSPHRASE_REQUIRED: no passphrase: set KEYLEDGER_SERVER_PASSPHRASE/,
    );

    assert.equal(
      run(['ledger', 'init', '--data', data], { KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE }).code,
      0,
    );
    const wrong = run(['demo', '--data', data], { KEYLEDGER_SERVER_PASSPHRASE: 'not it' });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /error KL_PASSPHRASE_WRONG/);

    const missing = run(['ledger', 'verify']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--data DIR is required/);

    const unknown = run(['ledger', 'frobnicate', '--data', data]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "ledger frobnicate"/);

    const badOpt = run(['ledger', 'show', '--data', data, '--bogus']);
    assert.equal(badOpt.code, 2);
    assert.equal(
      badOpt.stderr,
      'error KL_BAD_INPUT: keyledger ledger show takes no option --bogus (see keyledger ledger show --help)\n',
    );

    const badId = run(['ledger', 'show', '--data', data, '--id', 'not an email']);
    assert.match(badId.stderr, /error KL_BAD_INPUT: identity must be an email address/);
    const noLedger = run(['ledger', 'show', '--data', join(tempDir(), 'nothing')]);
    assert.match(noLedger.stderr, /error KL_DATA_DIR: .* holds no ledger/);
  });
});

function writePass(text: string): string {
  const file = join(tempDir(), 'pass');
  writeFileSync(file, `${text}\n`, { mode: 0o600 });
  return file;
}
