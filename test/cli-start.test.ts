/**
 * The README's way to run the command (`npm link` after `npm install`) and what each command loads:
 * a command loads only the packages its job needs (the server's HTTP stack, SQLite, the EVM client
 * and the mailer only where they are used; commander, which reads the command line, everywhere),
 * which is what keeps every command's start short (bench/cli-start.ts measures it; no test here
 * times anything).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PASSPHRASE, tempDir } from './helpers.js';
import { runCli } from './support/cli.js';

const root = new URL('..', import.meta.url).pathname;
const recorder = new URL('./support/record-modules.mjs', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

/** The packages (node_modules/NAME or @scope/NAME) a `keyledger ARGS…` run loaded. */
function packagesLoaded(args: string[], env: Record<string, string> = {}): Set<string> {
  const log = join(tempDir(), 'modules.log');
  runCli(args, { env: { ...env, KL_MODULE_LOG: log }, nodeArgs: ['--import', recorder] });
  return packagesIn(log);
}

function packagesIn(log: string): Set<string> {
  if (!existsSync(log)) return new Set();
  const names = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? url);
  return new Set(names);
}

const SERVER_STACK = [
  'fastify',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  'prom-client',
  'nodemailer',
  'ethers',
];

function assertNone(loaded: Set<string>, forbidden: string[], what: string): void {
  const found = forbidden.filter((p) => loaded.has(p));
  assert.deepEqual(found, [], `${what} loaded ${found.join(', ')}`);
}

describe('the keyledger command on the PATH, started fast', () => {
  it('npm link (the quick start) puts keyledger on the PATH at once, with no rebuild', () => {
    const prefix = tempDir();
    const link = spawnSync('npm', ['link', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, npm_config_prefix: prefix },
    });
    assert.equal(link.status, 0, link.stderr);
    const keyledger = join(prefix, 'bin', 'keyledger');
    const v = spawnSync(keyledger, ['--version'], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), version);
    const who = spawnSync(keyledger, ['whoami', '--home', join(tempDir(), 'nobody')], { encoding: 'utf8' });
    assert.equal(who.status, 2);
    assert.match(who.stderr, /^error KL_/);
  });

  it('help and version load no package but the command-line parser (commander); whoami neither', () => {
    for (const args of [['--help'], ['--version'], ['serve', '--help'], ['ledger', 'verify', '--help']])
      assert.deepEqual([...packagesLoaded(args)], ['commander'], `keyledger ${args.join(' ')}`);
    const home = join(tempDir(), 'home');
    assert.equal(
      runCli(['init', '--id', 'quick@example.org', '--home', home], { env: { KEYLEDGER_PASSPHRASE: 'pw' } })
        .code,
      0,
    );
    assert.deepEqual([...packagesLoaded(['whoami', '--home', home])], ['commander']);
  });

  it('the user commands load no server, storage, EVM or mail package', () => {
    const home = join(tempDir(), 'home');
    const env = { KEYLEDGER_PASSPHRASE: 'pw' };
    assertNone(
      packagesLoaded(['init', '--id', 'u@example.org', '--home', home], env),
      [...SERVER_STACK, 'better-sqlite3'],
      'init',
    );
    for (const args of [
      ['status'],
      ['login'],
      ['send', 'hi'],
      ['shell'],
      ['session', 'list'],
      ['rotate-key'],
      ['revoke-key'],
      ['device', 'list'],
      ['device', 'approve', 'ABCD-EFGH', '--yes'],
      ['device', 'revoke', 'phone', '--yes'],
      ['device', 'request', '--server', 'http://127.0.0.1:9', '--chain', 'a'.repeat(64)],
      ['register', '--server', 'http://127.0.0.1:9', '--invite', 'KL-0000'],
    ])
      assertNone(
        packagesLoaded([...args, '--home', home], env),
        [...SERVER_STACK, 'better-sqlite3'],
        args[0]!,
      );
  });

  it('the auditor and operator commands load no HTTP server, EVM or mail package', () => {
    const data = join(tempDir(), 'data');
    const env = { KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE };
    assert.equal(runCli(['ledger', 'init', '--data', data], { env }).code, 0);
    for (const args of [
      ['audit', '--data', data],
      ['ledger', 'show', '--data', data],
      ['ledger', 'verify', '--data', data, '--quiet'],
      ['admin', 'invite', 'x@example.org', '--data', data],
      ['admin', 'sessions', '--data', data],
      ['admin', 'revoke-device', 'x@example.org', 'phone', '--data', data],
      ['logs', 'decrypt', '--data', data],
    ])
      assertNone(packagesLoaded(args, env), SERVER_STACK, args.slice(0, 2).join(' '));
    const config = packagesLoaded(['config', 'check']);
    assertNone(config, [...SERVER_STACK, 'better-sqlite3', 'openpgp'], 'config check');
  });

  it('serve on the embedded engine without SMTP loads neither the EVM client nor the mailer', async () => {
    const data = join(tempDir(), 'data');
    const log = join(tempDir(), 'modules.log');
    const child = spawn(
      process.execPath,
      [
        '--import',
        recorder,
        join(root, 'bin/keyledger.js'),
        'serve',
        '--data',
        data,
        '--port',
        '0',
        '--json',
      ],
      {
        env: { ...process.env, KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE, KL_MODULE_LOG: log },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const loaded = packagesIn(log);
    assert.ok(loaded.has('fastify'), 'the recorder sees what serve loads');
    assertNone(loaded, ['ethers', 'nodemailer', '@noble/curves'], 'serve');
  });
});
