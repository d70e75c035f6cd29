/**
 * The layer rules of docs/architecture.md as data, and a checker that reads import statements.
 * Used by layers.test.ts on the real source tree and on synthetic violations.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/** Which layers (folders of src/) each layer may import, and which outside modules. */
export const LAYER_RULES: Record<string, { layers: string[]; external: RegExp }> = {
  protocol: { layers: ['protocol'], external: /^node:crypto$/ },
  pgp: { layers: ['protocol', 'pgp'], external: /^(openpgp|node:.*)$/ },
  ledger: { layers: ['protocol', 'ledger'], external: /^(better-sqlite3|ethers|node:.*)$/ },
  server: { layers: ['protocol', 'pgp', 'ledger', 'server'], external: /.*/ },
  client: { layers: ['protocol', 'pgp', 'ledger', 'client'], external: /.*/ },
  cli: { layers: ['protocol', 'pgp', 'ledger', 'server', 'client', 'cli'], external: /.*/ },
  // Package entry points: `keyledger` (index.ts) is the client SDK; `keyledger/verify` only re-exports
  // the ledger's pure verifiers. Neither imports an outside module itself.
  'index.ts': { layers: ['protocol', 'ledger', 'client'], external: /^$/ },
  verify: { layers: ['protocol', 'ledger', 'verify'], external: /^$/ },
  // The page's proof verifier is the ledger's own pure code, bundled for the browser with shims.
  dashboard: {
    layers: ['protocol', 'ledger', 'dashboard'],
    // The shims' packages, and the page's own files by URL (the page loads the verifier bundle).
    external: /^(@noble\/(hashes|curves)\/.*|buffer\/?|\/admin\/[a-z-]+\.js)$/,
  },
};

/** Ledger modules that touch storage: the client may verify, never store or write ledger data. */
const LEDGER_STORAGE = /^ledger\/(embedded-ledger|data-dir|sealed-key-file|verify-ledger|evm-[a-z-]+)\.ts$/;

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The module specifiers a source file imports. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(IMPORT)) found.push((m[1] ?? m[2])!);
  return found;
}

/** Checks files (path relative to src/ → source); returns one message per violation. */
export function checkLayers(files: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [path, source] of files) {
    const layer = path.split('/')[0]!;
    const rule = LAYER_RULES[layer];
    if (!rule) {
      if (path.includes('/')) problems.push(`${path}: folder ${layer} is not a known layer`);
      continue;
    }
    for (const spec of importsOf(source)) {
      if (spec.startsWith('.')) {
        const target = normalize(join(dirname(path), spec)).replace(/\.js$/, '.ts');
        const targetLayer = target.split('/')[0]!;
        if (!rule.layers.includes(targetLayer))
          problems.push(`${path}: ${layer} must not import ${targetLayer} (${spec})`);
        if (['client', 'dashboard', 'index.ts', 'verify'].includes(layer) && LEDGER_STORAGE.test(target))
          problems.push(`${path}: ${layer} must not import ledger storage (${spec})`);
      } else if (!rule.external.test(spec)) {
        problems.push(`${path}: ${layer} must not import ${spec}`);
      }
    }
  }
  return problems;
}

/** Reads every .ts file under `root` into the map `checkLayers` takes. */
export function readTree(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (/\.(ts|js|mjs)$/.test(name)) files.set(relative(root, full), readFileSync(full, 'utf8'));
    }
  };
  walk(root);
  return files;
}
