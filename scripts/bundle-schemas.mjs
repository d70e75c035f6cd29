// Bundles the compiled schema modules (dist/protocol/schemas/*.js) with the parts of TypeBox and Ajv
// they use, in place and sharing chunks, so that loading them reads a handful of files instead of
// TypeBox's ~700 modules (≈ 200 ms of every command's start, bench/cli-start.ts). Imports of other
// keyledger modules stay imports; the .d.ts files (the derived types) are tsc's. Part of `npm run build`.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

// From the sources (tsc's incremental build may not emit them again), over tsc's .js files.
const src = new URL('../src/protocol/schemas/', import.meta.url).pathname;
const dir = new URL('../dist/protocol/schemas/', import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
for (const f of readdirSync(dir)) if (f.startsWith('chunk-') || f.endsWith('.js.map')) rmSync(dir + f);
await build({
  entryPoints: readdirSync(src)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => src + f),
  outdir: dir,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  legalComments: 'inline',
  logLevel: 'warning',
  plugins: [
    {
      name: 'keep-keyledger-imports',
      setup(b) {
        // Other keyledger modules (../errors.js, ../identity.js) stay separate modules.
        b.onResolve({ filter: /^\.\.\// }, (args) =>
          args.importer.startsWith(src) ? { path: args.path, external: true } : undefined,
        );
      },
    },
  ],
});
