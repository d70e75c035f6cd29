/**
 * The package as it installs: every package the lockfile pins runs on every Node version the
 * project's `engines` admits (an install on Node 20 must not warn EBADENGINE), and a build right
 * after a build does no work again (CI installs, which builds through `prepare`, then runs
 * `npm test`, which builds again).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import semver from 'semver';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };

type LockedPackages = Record<string, { engines?: { node?: string } | string[] }>;
const locked = (
  JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: LockedPackages }
).packages;

/** The locked packages whose `engines.node` refuses Node `version`, as `path (node RANGE)`. */
function refusing(packages: LockedPackages, version: string): string[] {
  return Object.entries(packages)
    .filter(([path]) => path !== '')
    .flatMap(([path, p]) => {
      const wants = !Array.isArray(p.engines) ? p.engines?.node : undefined;
      return wants && !semver.satisfies(version, wants) ? [`${path} (node ${wants})`] : [];
    });
}

describe('the package as it installs', () => {
  it('every locked package admits the oldest Node the engines field names', () => {
    const oldest = semver.minVersion(pkg.engines.node)!.version;
    assert.equal(oldest, '20.6.0');
    assert.deepEqual(refusing(locked, oldest), [], 'these packages refuse the oldest supported Node');
    // The check itself finds what it looks for: cookie@2 as it was locked before (node >= 22).
    assert.deepEqual(refusing({ ...locked, 'node_modules/cookie': { engines: { node: '>=22' } } }, oldest), [
      'node_modules/cookie (node >=22)',
    ]);
  });

  it('a build right after a build emits nothing and compiles no contract', () => {
    assert.equal(spawnSync('npm', ['run', '-s', 'build'], { cwd: root }).status, 0);
    const contract = join(root, 'dist/contracts/KeyRegistry.json');
    const written = statSync(contract).mtimeMs;
    const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--listEmittedFiles'], {
      cwd: root,
      encoding: 'utf8',
    });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
    assert.equal(tsc.stdout.trim(), '', 'tsc emitted nothing the second time');
    const contracts = spawnSync(process.execPath, ['scripts/build-contracts.mjs'], {
      cwd: root,
      encoding: 'utf8',
    });
    assert.equal(contracts.status, 0, contracts.stderr);
    assert.equal(statSync(contract).mtimeMs, written, 'the contract was not compiled again');
  });
});
