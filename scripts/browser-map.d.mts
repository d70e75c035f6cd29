// Types of scripts/browser-map.mjs (a plain ES module so that build scripts run without a compiler).
import type { Plugin } from 'esbuild';

/** package.json's `browser` map (an object), or `{}`. */
export function packageBrowserMap(): Record<string, string | false>;
/** An esbuild plugin applying package.json's `browser` map to the TypeScript sources. */
export function browserMapPlugin(): Plugin;
