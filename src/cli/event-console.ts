/**
 * The server console of `keyledger serve`: one line per server event (event-line.ts), as text or,
 * with --json, as one JSON object per line after the start object. Floods of refusals are summarised
 * (refusal-summary.ts); the sessions ended by the shutdown are one line, not one each. Lines of events
 * that happen before the start banner wait for it, so the banner (the --json start object) is first.
 */
import type { ServerEvent } from '../server/events.js';
import {
  eventJson,
  formatEvent,
  formatRefusalCount,
  formatRefusalOthers,
  jsonLine,
  timeOfDay,
} from './event-line.js';
import { RefusalSummary, type RefusalSummaryOptions } from './refusal-summary.js';

/** Options of {@link eventConsole}. */
export interface EventConsoleOptions {
  /** One JSON object per line instead of text. */
  json: boolean;
  /** Writes one line (stdout). */
  write: (line: string) => void;
  now?: () => number;
  summary?: RefusalSummaryOptions;
}

/** A server console; see the module comment. */
export interface EventConsole {
  /** The listener to give startServer. */
  onEvent: (event: ServerEvent) => void;
  /** After the start banner: writes what waited, then writes as events come; windows start. */
  start(): void;
  /** Ends the refusal window now and writes its summary. */
  flush(): void;
  /** At shutdown, once the server is closed: the last summary and the sessions the shutdown ended. */
  stop(): void;
}

/** Lines kept while the banner is not out yet; more are dropped (the encrypted log has them). */
const MAX_EARLY = 1_000;

/** Makes the console of `keyledger serve`. */
export function eventConsole(o: EventConsoleOptions): EventConsole {
  const now = o.now ?? Date.now;
  const summary = new RefusalSummary(o.summary);
  let early: string[] | null = [];
  let timer: NodeJS.Timeout | undefined;
  let endedByShutdown = 0;
  const emit = (line: string) => {
    if (!early) o.write(line);
    else if (early.length < MAX_EARLY) early.push(line);
  };
  const show = (e: ServerEvent) => emit(o.json ? jsonLine(eventJson(e)) : formatEvent(e));
  const flush = () => {
    const at = now();
    const w = summary.flush();
    for (const c of w.counts)
      emit(
        o.json
          ? jsonLine({ event: 'refusals_counted', at: new Date(at).toISOString(), ...c })
          : formatRefusalCount(c, at),
      );
    if (w.others)
      emit(
        o.json
          ? jsonLine({ event: 'refusals_counted', at: new Date(at).toISOString(), ...w.others })
          : formatRefusalOthers(w.others, at),
      );
  };
  return {
    onEvent(e) {
      if (e.kind === 'refused' && !summary.admit(e.what, e.ip)) return;
      if (e.kind === 'alert' && e.alert === 'rate_limit' && !summary.admit('rate_limit', e.id)) return;
      if (e.kind === 'ledger_problem' && !summary.admit('ledger', 'chain')) return;
      if (e.kind === 'session_ended' && e.reason === 'shutdown') {
        endedByShutdown++;
        return;
      }
      show(e);
    },
    start() {
      const waiting = early ?? [];
      early = null;
      for (const line of waiting) o.write(line);
      timer ??= setInterval(flush, summary.windowMs);
      timer.unref();
    },
    flush,
    stop() {
      clearInterval(timer);
      flush();
      if (endedByShutdown > 0) {
        const at = now();
        emit(
          o.json
            ? jsonLine({
                event: 'sessions_ended',
                at: new Date(at).toISOString(),
                reason: 'shutdown',
                count: endedByShutdown,
              })
            : `${timeOfDay(at)} ${'ended'.padEnd(10)} ${endedByShutdown} session(s)  (server shutting down)`,
        );
        endedByShutdown = 0;
      }
    },
  };
}
