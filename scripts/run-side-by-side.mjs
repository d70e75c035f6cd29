// Runs npm scripts side by side (`node scripts/run-side-by-side.mjs test:evm test:etcd`): each one's
// output goes to its own log, test-output/NAME.log, and is printed whole, framed by its name, as soon
// as it ends, so the two reporters' lines never interleave. Every script runs to its end even when
// another fails; the exit code is 1 if any failed. A summary gives each one's wall time and the
// whole run's. `npm test` runs the EVM and etcd suites this way: they start their own ledger engines
// (anvil, an etcd cluster) at free ports, so nothing they bind is shared.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';

const names = process.argv.slice(2);
if (names.length === 0) {
  console.error('usage: node scripts/run-side-by-side.mjs SCRIPT [SCRIPT...]');
  process.exit(2);
}
const logDir = new URL('../test-output/', import.meta.url);
mkdirSync(logDir, { recursive: true });

/** Minutes and seconds, e.g. "3m 24s". */
function duration(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

const children = new Set();
// A cancelled run (Ctrl-C, the CI stopping the job) stops every script, not only this process.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
    process.exit(1);
  });
}

/** Runs `npm run -s NAME` into its log; resolves with its exit code and wall time once it ends. */
function run(name) {
  const logFile = new URL(`${name.replaceAll(':', '-')}.log`, logDir);
  const log = createWriteStream(logFile);
  const started = Date.now();
  const child = spawn('npm', ['run', '-s', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  console.log(`${name}: started (output in test-output/${logFile.pathname.split('/').pop()})`);
  return new Promise((resolve) => {
    child.on('error', (err) => log.write(`\n${name} could not start: ${err.message}\n`));
    child.on('close', (code, signal) => {
      children.delete(child);
      const ms = Date.now() - started;
      log.end(() => {
        const status = code ?? (signal ? `signal ${signal}` : 1);
        const verdict = code === 0 ? 'passed' : `FAILED (exit ${status})`;
        console.log(`\n===== ${name} (${verdict}, ${duration(ms)}) =====`);
        process.stdout.write(readFileSync(logFile, 'utf8'));
        console.log(`===== end of ${name} =====`);
        resolve({ name, ok: code === 0, verdict, ms });
      });
    });
  });
}

const started = Date.now();
const results = await Promise.all(names.map(run));
console.log('');
for (const r of results) console.log(`${r.name}: ${r.verdict} in ${duration(r.ms)}`);
console.log(`side by side: ${duration(Date.now() - started)} in all`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
