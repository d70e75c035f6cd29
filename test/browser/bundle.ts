/**
 * Bundles a page for the browser with esbuild the way a bundler that follows the package.json
 * `browser` field bundles the published package: the map is read from package.json (the one
 * source of truth) and applied to the sources, `./dist/X.js` standing for `src/X.ts`; an entry
 * mapped to `false` becomes an empty module. Nothing from Node may be left in the bundle.
 */
import { build, type Metafile } from 'esbuild';
import { browserMapPlugin } from '../../scripts/browser-map.mjs';

/** The bundled page script (ESM) and esbuild's list of what went in. */
export async function bundlePage(entry: string): Promise<{ code: string; inputs: string[] }> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110'],
    metafile: true,
    logLevel: 'silent',
    plugins: [browserMapPlugin()],
  });
  const code = out.outputFiles[0]!.text;
  return { code, inputs: Object.keys((out.metafile as Metafile).inputs) };
}
