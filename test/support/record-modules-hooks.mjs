// node:module hooks for record-modules.mjs: append each module URL under node_modules to a file.
import { appendFileSync } from 'node:fs';

let logFile;

/** Receives the log file's path. */
export function initialize(file) {
  logFile = file;
}

/** Notes each module loaded from node_modules, then loads it as usual. */
export async function load(url, context, nextLoad) {
  if (logFile && url.includes('/node_modules/')) appendFileSync(logFile, `${url}\n`);
  return nextLoad(url, context);
}
