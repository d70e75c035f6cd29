/**
 * Terminal input and output for the CLI: results to stdout, progress and prompts to stderr, errors as
 * `error CODE: message`. Progress redraws one line on a TTY and prints a line every 10% otherwise.
 */
import { createInterface } from 'node:readline';

let pipesHandled = false;
/** Set by a long-running command (`serve`): a closed stdout only silences its output. */
let keepRunning = false;
/** True once the reader of stdout went away (in keep-running mode). */
let outputGone = false;

/**
 * For a command that runs until stopped (`keyledger serve | head`): when stdout cannot be written
 * any more (its reader went away, a full disk, a hung-up terminal), the command keeps running and
 * stops writing to stdout, instead of ending.
 */
export function keepRunningWhenOutputCloses(): void {
  keepRunning = true;
}

/**
 * Ends the process quietly (exit 0) when the reader of stdout goes away, as in `keyledger audit | head`:
 * Node ignores SIGPIPE, so a closed pipe shows up as an EPIPE error on the stream, which would
 * otherwise crash with a stack trace. A closed stderr is ignored (there is nowhere to report it).
 * Other stdout errors end the command with exit 2. Installed once, for every command; see
 * {@link keepRunningWhenOutputCloses} for a server.
 */
export function endQuietlyWhenOutputCloses(): void {
  if (pipesHandled) return;
  pipesHandled = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (outputGone) return; // writes queued before the pipe closed fail too
    if (keepRunning) {
      // A server outlives its output, whatever ended it (closed pipe, full disk, hung-up terminal).
      stdoutGone(err);
      return;
    }
    if (err.code === 'EPIPE') process.exit(0);
    try {
      process.stderr.write(`error: cannot write the output: ${err.message}\n`);
    } finally {
      process.exit(2);
    }
  });
  process.stderr.on('error', () => {});
}

/**
 * Records that stdout cannot be written any more (a server keeps running without it): said once on
 * stderr, unless the reader simply went away (EPIPE, as with `| head`), which needs no word.
 */
export function stdoutGone(err: NodeJS.ErrnoException): void {
  if (outputGone) return;
  outputGone = true;
  if (err.code === 'EPIPE') return;
  try {
    process.stderr.write(`keyledger: stdout cannot be written (${err.code ?? err.message}): output stops\n`);
  } catch {
    // nowhere to say it
  }
}

/** Writes a line to stdout. */
export function out(line = ''): void {
  if (!outputGone) process.stdout.write(`${line}\n`);
}

/** Writes a line to stderr. */
export function info(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A progress reporter for long work. */
export interface Progress {
  update(done: number, total: number): void;
  done(message?: string): void;
}

/** Makes a progress reporter labelled `label`, silent when `quiet`. */
export function progress(label: string, { quiet = false }: { quiet?: boolean } = {}): Progress {
  const tty = process.stderr.isTTY === true;
  let lastDecile = -1;
  let lastDraw = 0;
  return {
    update(done, total) {
      if (quiet) return;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 80 && done < total) return;
        lastDraw = now;
        const width = 30;
        const filled = Math.round((pct / 100) * width);
        process.stderr.write(
          `\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% (${done}/${total})`,
        );
      } else {
        const decile = Math.floor(pct / 10);
        if (decile > lastDecile) {
          lastDecile = decile;
          process.stderr.write(`${label}: ${pct}% (${done}/${total})\n`);
        }
      }
    },
    done(message) {
      if (quiet) return;
      if (tty) process.stderr.write('\r\x1b[2K');
      if (message) process.stderr.write(`${message}\n`);
    },
  };
}

/** Asks for a secret on the TTY without echoing it. */
export async function promptSecret(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new Error('no terminal to ask for a passphrase');
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const rlAny = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WritableStream };
  let asked = false;
  rlAny._writeToOutput = (s: string) => {
    if (!asked) {
      rlAny.output.write(s);
      asked = true;
    }
  };
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/** Asks a question on the terminal and returns the answer; undefined when there is no terminal. */
export async function ask(question: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    rl.close();
  }
}

/** Asks a yes/no question on the terminal; only "y" or "yes" is yes. False when there is no terminal. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
