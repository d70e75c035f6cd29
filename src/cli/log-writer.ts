/**
 * The CLI's side of the encrypted logs (docs/protocol.md "Phases 3 and 4", Logs): time-stamped lines
 * appended to an {@link EncryptedLog}, never throwing. A server must not die, nor a session end, because its
 * log cannot be written (disk full, read-only data directory): the lines that cannot be written are
 * counted, the fault is reported once on stderr, and when the log can be written again its first
 * line says how many were lost.
 */
import { storageFault } from '../ledger/storage-fault.js';
import type { EncryptedLog } from '../pgp/encrypted-log.js';

/** Options of {@link logWriter}. */
export interface LogWriterOptions {
  /** Where the fault and the recovery are reported (stderr). */
  report: (message: string) => void;
  now?: () => Date;
}

/** A function that logs one line; see the module comment. */
export function logWriter(log: EncryptedLog, o: LogWriterOptions): (text: string) => void {
  const now = o.now ?? (() => new Date());
  let lost = 0;
  return (text) => {
    const stamp = now().toISOString();
    try {
      if (lost > 0) {
        log.append(`${stamp} ${lost} log line(s) lost: the log could not be written`);
        o.report(`the encrypted log ${log.path} is written again (${lost} line(s) lost)`);
        lost = 0;
      }
      log.append(`${stamp} ${text}`);
    } catch (err) {
      if (lost === 0) {
        const why = storageFault(err) === 'full' ? 'the disk is full' : (err as Error).message;
        o.report(`cannot write the encrypted log ${log.path} (${why}): log lines are lost until it can`);
      }
      lost++;
    }
  };
}
