/**
 * The CLI's side of the encrypted logs (docs/protocol.md "Phases 3 and 4", Logs): a pino logger whose
 * destination is an {@link EncryptedLog} (encryptedDestination: each record sealed, nothing readable
 * on disk), as a function that logs one line and never throws. A server must not die, nor a session
 * end, because its log cannot be written (disk full, read-only data directory): the lines that cannot
 * be written are counted, the fault is reported once on stderr, and when the log can be written again
 * its first line says how many were lost.
 */
import pino from 'pino';
import { storageFault } from '../ledger/storage-fault.js';
import { type EncryptedLog, encryptedDestination } from '../pgp/encrypted-log.js';

/** Options of {@link logWriter}. */
export interface LogWriterOptions {
  /** Where the fault and the recovery are reported (stderr). */
  report: (message: string) => void;
  now?: () => Date;
}

/** A function that logs one line; see the module comment. */
export function logWriter(log: EncryptedLog, o: LogWriterOptions): (text: string) => void {
  const now = o.now ?? (() => new Date());
  const destination = encryptedDestination(log, {
    now: () => now().getTime(),
    onFault: (err) => {
      const why = storageFault(err) === 'full' ? 'the disk is full' : (err as Error).message;
      o.report(`cannot write the encrypted log ${log.path} (${why}): log lines are lost until it can`);
    },
    onRecovery: (lost) => o.report(`the encrypted log ${log.path} is written again (${lost} line(s) lost)`),
  });
  const logger = pino({ base: null, timestamp: () => `,"time":"${now().toISOString()}"` }, destination);
  return (text) => logger.info(text);
}
