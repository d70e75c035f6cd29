/**
 * The `keyledger` command as a person runs it: the compiled binary (bin/keyledger.js → dist/), in a
 * child process, with the environment given and nothing else of the test's passphrases.
 */
import { execFile, spawnSync } from 'node:child_process';

/** Path of the `keyledger` binary of this clone. */
export const bin = new URL('../../bin/keyledger.js', import.meta.url).pathname;

/** What a finished command left. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `keyledger ARGS…` to its end: `env` on top of the test's environment (without any
 * KEYLEDGER_* setting), `input` as stdin (else stdin is closed), `nodeArgs` before the binary.
 */
export function runCli(
  args: string[],
  o: { env?: Record<string, string>; cwd?: string; input?: string; nodeArgs?: string[] } = {},
): CliResult {
  // No KEYLEDGER_* setting of the caller's shell (passphrases, data dir, public URL) leaks in.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYLEDGER_')));
  const r = spawnSync(process.execPath, [...(o.nodeArgs ?? []), bin, ...args], {
    encoding: 'utf8',
    env: { ...base, ...o.env },
    ...(o.cwd ? { cwd: o.cwd } : {}),
    ...(o.input !== undefined ? { input: o.input } : { stdio: ['ignore', 'pipe', 'pipe'] }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * {@link runCli} without blocking this process: for commands that talk to servers the test runs in
 * its own process (their event loop must go on while the command waits).
 */
export function runCliAsync(
  args: string[],
  o: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYLEDGER_')));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { encoding: 'utf8', env: { ...base, ...o.env }, ...(o.cwd ? { cwd: o.cwd } : {}) },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
