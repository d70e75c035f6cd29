/**
 * The package's public entry points as people install them: `npm pack` (of the built package),
 * install the tarball into a fresh project without install scripts (so no native module is built),
 * import `keyledger`, `keyledger/server` and `keyledger/verify` each in its own process while
 * recording which modules load (support/record-modules.mjs), and type-check consumer files against
 * the published types. Assumes `npm run build` ran (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const root = new URL('..', import.meta.url).pathname;
const recorder = new URL('./support/record-modules.mjs', import.meta.url).pathname;
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const typesNodeVersion = (require('@types/node/package.json') as { version: string }).version;

/** Server-side packages a client or verifier import must never load. */
const SERVER_PACKAGES = ['fastify', 'better-sqlite3', 'ethers', 'nodemailer', 'prom-client'];

let work = '';
let app = '';
let clientApp = '';

/** A fresh project under `work` with `specs` installed (no install scripts: no native build). */
function install(name: string, specs: string[]): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  const r = run(
    'npm',
    [
      'install',
      ...specs,
      `@types/node@${typesNodeVersion}`,
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
    ],
    dir,
  );
  assert.equal(r.status, 0, r.out);
  return dir;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** The package name of a module URL under node_modules (`@scope/name` or `name`). */
function packageOf(url: string): string {
  const rest = url.slice(url.lastIndexOf('/node_modules/') + '/node_modules/'.length).split('/');
  return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
}

/** Imports `entry` in a fresh process of the installed project: its export names, and what loaded. */
function load(entry: string, project = app): { exports: string[]; packages: string[]; builtins: string[] } {
  const log = join(work, `${entry.replace(/\W/g, '_')}-${project === app ? 'app' : 'client'}.log`);
  rmSync(log, { force: true });
  const r = run(
    process.execPath,
    [
      '--import',
      recorder,
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(entry)}); console.log(JSON.stringify(Object.keys(m)));`,
    ],
    project,
    { ...process.env, KL_MODULE_LOG: log, KL_MODULE_LOG_BUILTINS: '1' },
  );
  assert.equal(r.status, 0, `import('${entry}') failed:\n${r.out}`);
  const urls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : [];
  const uniq = (xs: string[]) => [...new Set(xs)].sort();
  return {
    exports: JSON.parse(r.out.trim().split('\n').at(-1)!) as string[],
    packages: uniq(urls.filter((u) => !u.startsWith('node:')).map(packageOf)),
    builtins: uniq(urls.filter((u) => u.startsWith('node:'))),
  };
}

/** Type-checks `source` as consumer.ts in the installed project; the diagnostics, one per line. */
function typeCheck(
  source: string,
  { skipLibCheck = true, name = 'check' } = {},
): { status: number | null; errors: string[] } {
  const dir = join(app, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'consumer.ts'), source);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck,
        types: ['node'],
      },
      files: ['consumer.ts'],
    }),
  );
  const r = run(process.execPath, [tsc, '-p', dir], dir);
  return { status: r.status, errors: r.out.split('\n').filter((l) => /error TS\d+/.test(l)) };
}

const CONSUMER = `
import {
  ClientHome,
  connect,
  createIdentity,
  type ErrorCode,
  isKlError,
  KlError,
  type LoginResult,
  login,
  type RegisterResult,
  register,
  type RotateKeyResult,
  rotateKey,
} from 'keyledger';
import { createChallenge, type RunningServer, type ServerOptions, startServer, verifyChallengeResponse } from 'keyledger/server';
import { type Genesis, type TransactionReceipt, verifyInclusion, verifyTransactionReceipt } from 'keyledger/verify';

const code: ErrorCode = 'KL_AUTH_FAILED';

export async function client(server: string): Promise<[RegisterResult, LoginResult, RotateKeyResult]> {
  const home = new ClientHome('/tmp/keyledger-consumer');
  await createIdentity({ home, id: 'alice@example.org', name: 'Alice', source: 'generate', passphrase: 'pw' });
  const registered = await register({ home, server, proof: { method: 'invite', code: 'CODE.PIN' }, passphrase: 'pw' });
  const loggedIn = await login({ home, passphrase: 'pw' });
  const session = await connect({ home, passphrase: 'pw' });
  const sent: { txid: string } = await session.sendSigned('I agree');
  void sent;
  await session.close();
  const rotated = await rotateKey({ home, passphrase: 'pw', next: { source: 'generate', passphrase: 'pw2' } });
  return [registered, loggedIn, rotated];
}

export async function server(o: ServerOptions): Promise<string> {
  const running: RunningServer = await startServer(o);
  void createChallenge;
  void verifyChallengeResponse;
  return running.url;
}

export function check(genesis: Genesis, receipt: TransactionReceipt): string {
  const v = verifyTransactionReceipt({ genesis, receipt });
  if (!v.verified) throw new KlError(v.code, v.reason);
  const leaf = new Uint8Array(32);
  const ok: boolean = verifyInclusion({ leafHash: leaf, index: 0, treeSize: 1, proof: [], root: leaf });
  return ok ? v.txid : code;
}

export function reason(err: unknown): ErrorCode | undefined {
  return isKlError(err) ? err.code : undefined;
}
`;

describe('the packed package: entry points, what they load, their types', () => {
  before(() => {
    assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/ is missing: run `npm run build` first');
    work = mkdtempSync(join(tmpdir(), 'kl-pack-'));
    // --ignore-scripts: pack what the build made (no `prepare` rebuild in the middle of a test run).
    const pack = run('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--json'], root);
    assert.equal(pack.status, 0, pack.out);
    const tarball = join(
      work,
      (JSON.parse(pack.out.slice(pack.out.indexOf('['))) as [{ filename: string }])[0].filename,
    );
    // A client-only install: the tarball alone (the server's packages are optional peers).
    clientApp = install('client-app', [tarball]);
    // A server install: the tarball and the optional peers, at the versions this repository tests.
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      peerDependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const peers = Object.keys(manifest.peerDependencies).map(
      (name) => `${name}@${manifest.devDependencies[name] ?? manifest.peerDependencies[name]}`,
    );
    app = install('app', [tarball, ...peers]);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a client-only install holds no server package and no native module', () => {
    const installed = readdirSync(join(clientApp, 'node_modules'), { recursive: true, encoding: 'utf8' });
    const packageDirs = new Set(
      installed
        .filter((p) => p.endsWith('package.json'))
        .map((p) => p.split(/[\\/]/))
        .map((parts) => (parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!)),
    );
    for (const name of [...SERVER_PACKAGES, 'bufferutil', '@fastify/websocket', 'pino'])
      assert.ok(!packageDirs.has(name), `${name} is not installed with the client`);
    assert.deepEqual(
      installed.filter((p) => p.endsWith('.node') || p.endsWith('binding.gyp')),
      [],
      'no native module source or binary',
    );
    // The client and the verifiers import and run from it; so does the command's help.
    for (const entry of ['keyledger', 'keyledger/verify']) {
      const m = load(entry, clientApp);
      assert.ok(m.exports.length > 0, entry);
      assert.deepEqual(
        m.packages.filter((p) => SERVER_PACKAGES.includes(p)),
        [],
      );
    }
    const help = run(join(clientApp, 'node_modules/.bin/keyledger'), ['login', '--help'], clientApp);
    assert.equal(help.status, 0, help.out);
  });

  it('the server command of a client-only install names the packages it needs', () => {
    const r = run(
      join(clientApp, 'node_modules/.bin/keyledger'),
      ['serve', '--data', join(work, 'no-data'), '--insecure-dev-passphrase'],
      clientApp,
    );
    assert.notEqual(r.status, 0);
    assert.match(r.out, /KL_MISSING_PACKAGE/);
    assert.match(r.out, /npm install .*fastify.*better-sqlite3/s);
    assert.doesNotMatch(r.out, /at .*\.js:\d+/, 'no stack trace');
  });

  it('keyledger (the client SDK) loads no server package and no native module', () => {
    const m = load('keyledger');
    for (const name of ['register', 'login', 'connect', 'rotateKey', 'ClientHome', 'KlError', 'isKlError'])
      assert.ok(m.exports.includes(name), `keyledger exports ${name}`);
    assert.deepEqual(
      m.packages.filter((p) => SERVER_PACKAGES.includes(p)),
      [],
    );
    // No install script ran, so no native addon was built: the import worked without one.
    assert.ok(!m.packages.includes('bufferutil'), 'no native WebSocket helper at import');
    assert.ok(m.packages.includes('keyledger'), 'the recorder saw the package itself');
  });

  it('keyledger/server exports the server and the handshake pair (and does load fastify)', () => {
    const m = load('keyledger/server');
    for (const name of ['startServer', 'createChallenge', 'verifyChallengeResponse'])
      assert.ok(m.exports.includes(name), `keyledger/server exports ${name}`);
    // The recorder's positive control: the server's own packages are seen when they do load.
    assert.ok(m.packages.includes('fastify'), m.packages.join(', '));
  });

  it('keyledger/verify loads no other package (its schema checks come bundled) and of Node only its crypto backend', () => {
    const m = load('keyledger/verify');
    for (const name of [
      'verifyTransactionReceipt',
      'verifyKeyRecordProof',
      'verifyCheckpointConsistency',
      'verifyLedgerExtends',
      'verifyInclusion',
      'verifyConsistency',
      'checkGenesis',
      'chainIdOf',
    ])
      assert.ok(m.exports.includes(name), `keyledger/verify exports ${name}`);
    // In browsers the package.json `browser` map swaps the backend for @noble/* (verify-browser.test.ts).
    // TypeBox and Ajv are bundled into the schema modules by the build (scripts/bundle-schemas.mjs).
    assert.deepEqual(m.packages, ['keyledger']);
    assert.deepEqual(
      m.builtins.filter((b) => !['node:crypto', 'node:buffer'].includes(b)),
      [],
    );
  });

  it('a consumer type-checks against the published types, and misuse does not', () => {
    const good = typeCheck(CONSUMER);
    assert.deepEqual(good.errors, []);
    assert.equal(good.status, 0);
    // The types are real (not `any`): a wrong code, a wrong option and an unexported path are refused.
    const bad = typeCheck(
      [
        "import type { ErrorCode } from 'keyledger';",
        "import { login, ClientHome } from 'keyledger';",
        "import { ClientHome as Deep } from 'keyledger/dist/client/home.js';",
        "export const code: ErrorCode = 'KL_NOT_A_CODE';",
        "export const r = login({ home: new ClientHome('/tmp/x'), passphrase: 42 });",
        'export const d = Deep;',
      ].join('\n'),
      { name: 'check-bad' },
    );
    assert.notEqual(bad.status, 0);
    const at = (line: number) => bad.errors.filter((e) => e.startsWith(`consumer.ts(${line},`));
    assert.equal(at(3).length, 1, bad.errors.join('\n')); // not exported: keyledger/dist/...
    assert.match(at(3)[0]!, /TS2307/);
    assert.match(at(4)[0] ?? '', /TS2322/, bad.errors.join('\n'));
    assert.match(at(5)[0] ?? '', /TS2322/, bad.errors.join('\n'));
  });

  it("the README's code examples type-check against the published package", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
      .map((m) => m[1]!)
      .filter((code) => /from 'keyledger(\/[a-z]+)?'/.test(code));
    assert.ok(blocks.length >= 2, 'the README shows the client and the server from code');
    // The examples leave the server's passphrase to the reader.
    const r = typeCheck(['declare const passphrase: string;', ...blocks].join('\n'), {
      name: 'check-readme',
    });
    assert.deepEqual(r.errors, []);
  });

  it('the published types name only modules whose types install with the package', () => {
    // Checked with skipLibCheck off; only keyledger's own declaration files are judged here.
    const strict = typeCheck(CONSUMER, { skipLibCheck: false, name: 'check-lib' });
    assert.deepEqual(
      strict.errors.filter((e) => e.includes('node_modules/keyledger/')),
      [],
    );
  });

  it('the installed keyledger command runs', () => {
    const r = run(join(app, 'node_modules/.bin/keyledger'), ['--version'], app);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out.trim(), /^\d+\.\d+\.\d+/);
  });
});
