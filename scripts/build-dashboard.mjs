// Bundles the dashboard's proof verifier (src/dashboard/verifier.ts: the ledger's own pure code) for
// the browser into dist/dashboard/verifier.js, with the package.json `browser` map applied (the web
// crypto backend in place of node:crypto). Part of `npm run build`.
import { build } from 'esbuild';
import { browserMapPlugin } from './browser-map.mjs';

const src = new URL('../src/dashboard/', import.meta.url).pathname;
await build({
  entryPoints: [`${src}verifier.ts`],
  outfile: new URL('../dist/dashboard/verifier.js', import.meta.url).pathname,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  plugins: [browserMapPlugin()],
  legalComments: 'none',
  logLevel: 'warning',
});
