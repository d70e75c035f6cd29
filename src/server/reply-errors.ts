/**
 * How the server answers errors: `{ error: { code, message } }` with the status of the code
 * (src/protocol/errors.ts); schema failures are `KL_BAD_INPUT`, oversized bodies `KL_TOO_LARGE`,
 * anything unexpected a generic `KL_INTERNAL` (its detail goes to the operator's log only). Refused
 * registrations are told to the event listener; storage faults to the alert policy.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isKlError, KlError } from '../protocol/errors.js';
import { MAX_HTTP_BODY } from '../protocol/messages.js';
import type { ServerEvent } from './events.js';

/** Sends a typed error (with `retry-after` for rate limits). */
export function sendError(reply: FastifyReply, err: KlError): FastifyReply {
  if (err.code === 'KL_RATE_LIMITED' && typeof err.details?.retryAfter === 'number')
    reply.header('retry-after', String(err.details.retryAfter));
  return reply.status(err.status).send(err.toJSON());
}

/** An error that is not a KlError, as the typed error the client gets. */
function asKlError(err: unknown, log: (line: string) => void): KlError {
  const e = err as { validation?: unknown; code?: string; statusCode?: number; message?: string };
  if (e.validation) return new KlError('KL_BAD_INPUT', `invalid request: ${e.message}`);
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413)
    return new KlError('KL_TOO_LARGE', `the request body is larger than ${MAX_HTTP_BODY} bytes`);
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500)
    return new KlError('KL_BAD_INPUT', e.message ?? 'bad request');
  log(`internal error: ${(err as Error)?.stack ?? String(err)}`);
  return new KlError('KL_INTERNAL', 'internal error');
}

/** Sets the error and not-found handlers of keyledger's scope of `app`. */
export function installErrorHandlers(
  app: FastifyInstance,
  o: {
    noteStorageFault: (err: unknown) => void;
    emit: (event: ServerEvent) => void;
    now: () => number;
    log: (line: string) => void;
  },
): void {
  const prefix = app.prefix;
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    o.noteStorageFault(err);
    const path = req.url.slice(prefix.length);
    if (path.startsWith('/v1/register/') || path.startsWith('/v1/enroll/')) {
      const e = err as { validation?: unknown; statusCode?: number };
      const code = isKlError(err)
        ? err.code
        : e.validation || (e.statusCode ?? 500) < 500
          ? 'KL_BAD_INPUT'
          : 'KL_INTERNAL';
      o.emit({ kind: 'refused', at: o.now(), what: 'registration', ip: req.ip, code });
    }
    return sendError(reply, isKlError(err) ? err : asKlError(err, o.log));
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, new KlError('KL_NOT_FOUND', 'no such route')));
}
