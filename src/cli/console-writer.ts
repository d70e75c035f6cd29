/**
 * Where `keyledger serve` writes its event lines: stdout, without ever holding up the server. A
 * terminal that stops reading (Ctrl-S, a paused tmux pane) would block a synchronous write, and a
 * pipe nobody reads (`serve | less`, a stuck log shipper) would queue lines in memory without end.
 * So lines go out with `fs.write` on fd 1 (off the event loop), one write in flight, at most
 * `maxWaiting` lines waiting; more are dropped and counted, and once output moves again one line
 * says how many were lost. Any write error (closed pipe, full disk, hung-up terminal) ends the
 * output for good, and only the output: the server goes on (its audit trail and encrypted log have
 * every event).
 */
import { write as fsWrite } from 'node:fs';
import { stdoutGone } from './io.js';

/** Wait before writing again to a full non-blocking pipe, ms. */
const RETRY_MS = 50;

/** Options of {@link consoleWriter}. */
export interface ConsoleWriterOptions {
  /** File descriptor to write (default 1, stdout). */
  fd?: number;
  /** Lines kept while a write is in flight; more are dropped (default 1,000). */
  maxWaiting?: number;
  /** Told once, when the output ends on an error (default: io.ts `stdoutGone`, one line on stderr). */
  onGone?: (err: NodeJS.ErrnoException) => void;
  /** The write function (tests inject a slow or failing one): calls back with the bytes written. */
  write?: (
    fd: number,
    data: Buffer,
    done: (err: NodeJS.ErrnoException | null, written: number) => void,
  ) => void;
}

/** A line writer that never blocks; see the module comment. */
export interface ConsoleWriter {
  /** Queues one line (a newline is added). */
  line(text: string): void;
  /** Lines dropped so far because output did not keep up. */
  readonly dropped: number;
  /** True once a write failed: nothing more is written. */
  readonly gone: boolean;
}

/** Makes the writer. */
export function consoleWriter(o: ConsoleWriterOptions = {}): ConsoleWriter {
  const fd = o.fd ?? 1;
  const maxWaiting = o.maxWaiting ?? 1_000;
  const write = o.write ?? ((f, data, done) => fsWrite(f, data, 0, data.length, null, done));
  const onGone = o.onGone ?? stdoutGone;
  const waiting: string[] = [];
  let busy = false;
  let gone = false;
  let dropped = 0;
  let droppedUnsaid = 0;
  /** Bytes taken from the queue and not written yet (a partial write, or a full pipe: EAGAIN). */
  let pending: Buffer | null = null;
  const next = (): void => {
    if (busy || gone) return;
    if (!pending) {
      if (waiting.length === 0) return;
      let text = waiting.splice(0).join('');
      if (droppedUnsaid > 0) {
        text += `${droppedUnsaid} event line(s) dropped: stdout was not read fast enough\n`;
        droppedUnsaid = 0;
      }
      pending = Buffer.from(text);
    }
    busy = true;
    const data = pending;
    write(fd, data, (err, written) => {
      busy = false;
      if (err?.code === 'EAGAIN') {
        // A non-blocking pipe that is full: try again shortly; lines keep queueing (bounded).
        busy = true;
        setTimeout(() => {
          busy = false;
          next();
        }, RETRY_MS).unref();
        return;
      }
      if (err) {
        gone = true;
        pending = null;
        waiting.length = 0;
        onGone(err);
        return;
      }
      pending = written < data.length ? data.subarray(written) : null;
      next();
    });
  };
  return {
    line(text) {
      if (gone) return;
      if (waiting.length >= maxWaiting) {
        dropped++;
        droppedUnsaid++;
        return;
      }
      waiting.push(`${text}\n`);
      next();
    },
    get dropped() {
      return dropped;
    },
    get gone() {
      return gone;
    },
  };
}
