// node:module hooks for record-modules.mjs: append each module URL under node_modules to a file
// (and each `node:` built-in too when KL_MODULE_LOG_BUILTINS=1).
import { appendFileSync } from 'node:fs';

let logFile;
const builtins = process.env.KL_MODULE_LOG_BUILTINS === '1';

/** Receives the log file's path. */
export function initialize(file) {
  logFile = file;
}

/** Notes each module loaded from node_modules (and built-ins, if asked), then loads it as usual. */
export async function load(url, context, nextLoad) {
  if (logFile && (url.includes('/node_modules/') || (builtins && url.startsWith('node:'))))
    appendFileSync(logFile, `${url}\n`);
  return nextLoad(url, context);
}
