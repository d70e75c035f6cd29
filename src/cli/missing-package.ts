/**
 * The server's packages (Fastify and its plugins, SQLite, pino, prom-client, ethers, nodemailer) are
 * optional peer dependencies: a client-only install (`npm install keyledger`) has none of them, so a
 * command that needs one (`serve`, `ledger`, `demo`, …) fails to import it. This turns that import
 * failure into a `KL_MISSING_PACKAGE` error naming the npm command that installs what is missing
 * (README "Installing").
 */
import { readFileSync } from 'node:fs';
import { KlError } from '../protocol/errors.js';

/** `Cannot find package 'fastify' imported from …` (ESM) or `Cannot find module 'x'` (CommonJS). */
const NOT_FOUND = /Cannot find (?:package|module) '((?:@[^/']+\/)?[^/']+)/;

/** The optional peers of this package with their version ranges (package.json `peerDependencies`). */
function optionalPeers(): Record<string, string> {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      peerDependencies?: Record<string, string>;
    };
    return manifest.peerDependencies ?? {};
  } catch {
    return {};
  }
}

/** `^5.12.8` → `5` (what any shell passes through unquoted); an exact version stays as it is. */
function shellSafeRange(range: string): string {
  return /^\^\d+/.test(range) ? range.slice(1).split('.')[0]! : range;
}

/**
 * The `KL_MISSING_PACKAGE` error for `err` when it says an optional peer of keyledger could not be
 * loaded; `undefined` for any other error.
 */
export function missingPackageError(err: unknown): KlError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return undefined;
  const name = NOT_FOUND.exec(String((err as Error).message))?.[1];
  const peers = optionalPeers();
  if (!name || !(name in peers)) return undefined;
  const install = Object.entries(peers)
    .filter(([peer]) => !peer.startsWith('@types/'))
    .map(([peer, range]) => `${peer}@${shellSafeRange(range)}`)
    .join(' ');
  return new KlError(
    'KL_MISSING_PACKAGE',
    `this command needs the server's packages, which a client-only install leaves out (${name} is missing). ` +
      `Install them next to keyledger: npm install ${install}`,
  );
}
