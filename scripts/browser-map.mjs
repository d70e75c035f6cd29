// The package.json `browser` map (a file-replacement map honoured by esbuild, webpack, rollup and
// browserify; Node and TypeScript ignore it) and an esbuild plugin that applies the same map to the
// TypeScript sources, for bundles built from src/ (scripts/build-dashboard.mjs, the browser tests).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** package.json's `browser` map (an object), or `{}`. */
export function packageBrowserMap() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  return typeof pkg.browser === 'object' && pkg.browser !== null ? pkg.browser : {};
}

/** `./dist/x/y.js` → the absolute path of `src/x/y.ts`. */
function sourceOf(distPath) {
  return join(ROOT, distPath.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
}

/**
 * An esbuild plugin: a relative import that resolves to a source file named on the left of
 * package.json's `browser` map (the one source of truth) is bundled as the file on the right, or as
 * an empty module for `false`.
 */
export function browserMapPlugin() {
  const map = new Map();
  for (const [from, to] of Object.entries(packageBrowserMap())) {
    if (from.startsWith('./dist/')) map.set(sourceOf(from), to === false ? false : sourceOf(to));
  }
  return {
    name: 'keyledger-browser-map',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        const target = resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts');
        if (!map.has(target)) return undefined;
        const to = map.get(target);
        return to === false ? { path: target, namespace: 'keyledger-empty' } : { path: to };
      });
      build.onLoad({ filter: /.*/, namespace: 'keyledger-empty' }, () => ({ contents: '', loader: 'js' }));
    },
  };
}
