/**
 * The layer rules of docs/architecture.md as data, and a checker that reads import statements.
 * Used by layers.test.ts on the real source tree and on synthetic violations.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/** Which layers (folders of src/) each layer may import, and which outside modules. */
export const LAYER_RULES: Record<string, { layers: string[]; external: RegExp }> = {
  // Pure and isomorphic: TypeBox for the schemas, nothing else outside, except in the two crypto
  // backends and the schema checker (FILE_RULES).
  protocol: { layers: ['protocol'], external: /^typebox$/ },
  pgp: { layers: ['protocol', 'pgp'], external: /^(openpgp|node:.*)$/ },
  ledger: { layers: ['protocol', 'ledger'], external: /^(better-sqlite3|ethers|node:.*)$/ },
  server: { layers: ['protocol', 'pgp', 'ledger', 'server'], external: /.*/ },
  client: { layers: ['protocol', 'pgp', 'ledger', 'client'], external: /.*/ },
  cli: { layers: ['protocol', 'pgp', 'ledger', 'server', 'client', 'cli'], external: /.*/ },
  // Package entry points: `keyledger` (index.ts) is the client SDK; `keyledger/verify` only re-exports
  // the ledger's pure verifiers. Neither imports an outside module itself.
  'index.ts': { layers: ['protocol', 'ledger', 'client'], external: /^$/ },
  verify: { layers: ['protocol', 'ledger', 'verify'], external: /^$/ },
  // The page's proof verifier is the ledger's own pure code, bundled with the web crypto backend.
  dashboard: {
    layers: ['protocol', 'ledger', 'dashboard'],
    // The page's own files by URL (the page loads the verifier bundle).
    external: /^\/admin\/[a-z-]+\.js$/,
  },
};

/**
 * Files whose outside imports differ from their layer's: the crypto backend pair, chosen per platform
 * by the package.json `browser` map (src/protocol/crypto/), and the schema checker.
 */
export const FILE_RULES: Record<string, RegExp> = {
  'protocol/crypto/node.ts': /^node:(crypto|buffer)$/,
  'protocol/crypto/web.ts': /^@noble\/(hashes|curves|ciphers)\/[a-z0-9]+$/,
  // The native OpenPGP path's digests and AES modes: node:crypto, or @noble/* in the browser form.
  'pgp/native/primitives-browser.ts': /^@noble\/(hashes|ciphers)\/[a-z0-9]+$/,
  // Compiled Ajv validators, or TypeBox's own checker where the page forbids code generation.
  'protocol/schemas/check.ts': /^(typebox|typebox\/compile|ajv)$/,
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
      } else if (!(FILE_RULES[path] ?? rule.external).test(spec)) {
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
