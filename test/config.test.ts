/** Server configuration (src/server/config.ts): file, environment and flags, one schema, `config check`. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CONFIG_ENV,
  CONFIG_SCHEMA,
  loadConfig,
  redactConfig,
  serverOptionsOf,
} from '../src/server/config.js';
import { smtpMailer } from '../src/server/mailer.js';
import { tempDir } from './helpers.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const invalid = (pattern: RegExp) => (e: unknown) =>
  (e as { code?: string }).code === 'KL_CONFIG_INVALID' && pattern.test((e as Error).message);

function file(config: unknown): string {
  const path = join(tempDir(), 'keyledger.json');
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config));
  return path;
}

describe('configuration', () => {
  it('file, then environment, then flags; durations become milliseconds', () => {
    const path = file({
      dataDir: '/srv/kl',
      port: 8000,
      host: '0.0.0.0',
      session: { idleTimeout: '5m', renewAfterFrames: 500 },
      hijack: { baselineFactor: 0 },
      admins: ['root@example.org'],
    });
    const c = loadConfig({
      file: path,
      env: {
        KEYLEDGER_PORT: '9000',
        KEYLEDGER_SESSION_MAX_LIFETIME: '2h',
        KEYLEDGER_ADMINS: 'a@x.org, b@x.org',
      },
      flags: { port: 9100 },
    });
    assert.equal(c.port, 9100, 'flags win');
    assert.equal(c.host, '0.0.0.0', 'the file where nothing overrides it');
    assert.deepEqual(c.admins, ['a@x.org', 'b@x.org'], 'the environment over the file');
    const o = serverOptionsOf(c);
    assert.equal(o.dataDir, '/srv/kl');
    assert.deepEqual(o.sessionPolicy, {
      idleTimeoutMs: 300_000,
      maxLifetimeMs: 7_200_000,
      renewAfterFrames: 500,
    });
    assert.deepEqual(o.hijackPolicy, { baselineFactor: 0 });
    assert.deepEqual(serverOptionsOf(loadConfig({ env: {} })), {
      dataDir: './keyledger-data',
      host: '127.0.0.1',
      port: 7420,
      sessionPolicy: {},
      hijackPolicy: {},
    });
  });

  it('refuses unknown settings, wrong types and bad durations, naming every problem', () => {
    assert.throws(
      () =>
        loadConfig({
          file: file({ prot: 80, port: 'eighty', session: { idleTimeout: 'soon' }, smtp: { from: 'x@y.z' } }),
          env: {},
        }),
      (e: unknown) => {
        const m = (e as Error).message;
        assert.equal((e as { code?: string }).code, 'KL_CONFIG_INVALID');
        for (const part of [
          /additional properties: prot/,
          /\/port must be integer/,
          /\/session\/idleTimeout must match/,
          /\/smtp must have required property 'url'/,
        ])
          assert.match(m, part);
        assert.match(m, /not valid \(file \S+keyledger\.json,/, 'names the file');
        return true;
      },
    );
    assert.throws(() => loadConfig({ file: file('{ not json'), env: {} }), invalid(/is not JSON/));
    assert.throws(() => loadConfig({ file: '/nonexistent/keyledger.json', env: {} }), invalid(/cannot read/));
    assert.throws(() => loadConfig({ env: { KEYLEDGER_PORT: '70000' } }), invalid(/\/port must be <= 65535/));
  });

  it('a "__proto__" or "constructor" key in a file is refused as an unknown setting, never merged into a prototype', () => {
    for (const key of ['__proto__', 'constructor']) {
      const text = `{"${key}": {"port": 1, "polluted": true}, "rateLimits": {"${key}": {"burst": 1}}}`;
      assert.throws(() => loadConfig({ file: file(text) }), invalid(new RegExp(key)));
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }
  });

  it('keyledger NAME --help with a name that is also an Object.prototype member prints the general help', () => {
    for (const name of ['constructor', 'toString', '__proto__']) {
      const r = spawnSync(process.execPath, [bin, name, '--help'], { encoding: 'utf8' });
      assert.equal(r.status, 0);
      assert.match(r.stdout, /keyledger serve/);
      assert.doesNotMatch(r.stdout, /native code/);
    }
  });

  it('hides the SMTP password when printed', () => {
    const c = loadConfig({ env: { KEYLEDGER_SMTP_URL: 'smtp://mailer:s3cret@mail.example.org:587' } });
    assert.equal(redactConfig(c).smtp?.url, 'smtp://mailer:***@mail.example.org:587');
    assert.equal(c.smtp?.url.includes('s3cret'), true, 'the real value is kept for use');
    // The RPC URL's credentials too: a password, or a user name alone (often an API token).
    const evm = loadConfig({
      file: undefined,
      flags: { ledger: { engine: 'evm', rpcUrl: 'https://user:p@ss@rpc.example.org/v3' } },
    });
    assert.equal(redactConfig(evm).ledger?.rpcUrl, 'https://user:***@rpc.example.org/v3');
    const token = loadConfig({
      flags: { ledger: { engine: 'evm', rpcUrl: 'https://APITOKEN@rpc.example.org' } },
    });
    assert.equal(redactConfig(token).ledger?.rpcUrl, 'https://***@rpc.example.org');
  });

  it('KEYLEDGER_QUIET is a boolean: 1/true and 0/false, anything else is refused by name', () => {
    assert.equal(loadConfig({ env: { KEYLEDGER_QUIET: '1' } }).quiet, true);
    assert.equal(loadConfig({ env: { KEYLEDGER_QUIET: 'true' } }).quiet, true);
    assert.equal(loadConfig({ env: { KEYLEDGER_QUIET: '0' } }).quiet, false);
    assert.throws(
      () => loadConfig({ env: { KEYLEDGER_QUIET: 'maybe' } }),
      (e: Error & { code?: string }) =>
        e.code === 'KL_CONFIG_INVALID' && /\/quiet must be boolean/.test(e.message),
    );
  });

  it('an SMTP URL that does not parse stops the server at start, not at the first mail', () => {
    assert.throws(
      () => smtpMailer({ url: 'smtp://user:%zz@mail.example.org', from: 'keyledger@example.org' }),
      (e: Error & { code?: string }) => e.code === 'KL_CONFIG_INVALID' && !e.message.includes('%zz'),
    );
  });

  it('docs/configuration.md documents every setting and environment variable', () => {
    const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const paths: string[] = [];
    const walk = (props: Record<string, { properties?: Record<string, unknown> }>, prefix: string) => {
      for (const [k, v] of Object.entries(props)) {
        paths.push(prefix + k);
        if (v.properties && k !== 'rateLimits') walk(v.properties as never, `${prefix + k}.`);
      }
    };
    walk(CONFIG_SCHEMA.properties as never, '');
    for (const p of [...paths, ...Object.keys(CONFIG_ENV)])
      assert.ok(doc.includes(`\`${p}\``), `${p} is documented`);
  });

  it('keyledger config check: exit 0 with the effective configuration, exit 2 with the problems', () => {
    const good = spawnSync(
      process.execPath,
      [bin, 'config', 'check', '--config', file({ port: 7000 }), '--json'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(good.status, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout).config.port, 7000);
    const bad = spawnSync(process.execPath, [bin, 'config', 'check', '--config', file({ port: -1 })], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 2);
    assert.match(
      bad.stderr,
      /error KL_CONFIG_INVALID: the configuration is not valid \(file \S+keyledger\.json, then KEYLEDGER_\* variables and flags\):\n\s+\/port must be >= 0/,
    );
    const schema = spawnSync(process.execPath, [bin, 'config', 'schema'], { encoding: 'utf8' });
    assert.equal(JSON.parse(schema.stdout).title, 'keyledger server configuration');
  });
});
