// Bundles the dashboard's proof verifier (src/dashboard/verifier.ts: the ledger's own pure code) for
// the browser into dist/dashboard/verifier.js. Part of `npm run build`.
import { build } from 'esbuild';

const src = new URL('../src/dashboard/', import.meta.url).pathname;
await build({
  entryPoints: [`${src}verifier.ts`],
  outfile: new URL('../dist/dashboard/verifier.js', import.meta.url).pathname,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  alias: { 'node:crypto': `${src}browser-crypto.ts` },
  inject: [`${src}browser-buffer.ts`],
  legalComments: 'none',
  logLevel: 'warning',
});
