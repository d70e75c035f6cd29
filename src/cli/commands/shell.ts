/**
 * `keyledger shell`: an interactive session. Lines are parsed by ../shell-line.ts: commands run here
 * and are never sent as messages; everything the server sends is shown through `wireText`.
 */
import { createInterface } from 'node:readline';
import type { ClientSession } from '../../client/session.js';
import { isKlError, KlError, wireText } from '../../protocol/errors.js';
import { info, out } from '../io.js';
import { checkSessionList, formatSessionList } from '../session-list.js';
import { parseShellLine, SHELL_HELP, type ShellLine } from '../shell-line.js';
import { openSession } from './open-session.js';

/** A reply shown as text: a string as it is, anything else as JSON; control characters replaced. */
function show(reply: unknown): string {
  return wireText(typeof reply === 'string' ? reply : JSON.stringify(reply), 64 * 1024);
}

/** Runs one parsed line (not `quit`) in `session`; what it prints goes to stdout. */
async function run(session: ClientSession, line: Exclude<ShellLine, { kind: 'quit' }>): Promise<void> {
  switch (line.kind) {
    case 'empty':
      return;
    case 'help':
      out(SHELL_HELP);
      return;
    case 'usage':
      info(line.message);
      return;
    case 'send':
      out(show(await session.request(line.text)));
      return;
    case 'sign': {
      const r = await session.sendSigned(line.text);
      out(`signed and anchored in block ${r.height}, transaction ${r.txid} (receipt verified)`);
      return;
    }
    case 'renew':
      await session.renew();
      return;
    case 'sessions':
      for (const text of formatSessionList(
        checkSessionList(await session.request<unknown>({ op: 'session.list' })),
        Date.now(),
      ))
        out(text);
      return;
    case 'notes': {
      const r = await session.request<{ names?: unknown }>({ op: 'note.list' });
      const names = Array.isArray(r?.names)
        ? r.names.filter((n): n is string => typeof n === 'string')
        : null;
      if (!names)
        throw new KlError('KL_PROTOCOL', 'the server answered the note list with something unexpected');
      out(names.length ? names.map((n) => wireText(n, 64)).join('\n') : 'no notes');
      return;
    }
    case 'note-get': {
      const r = await session.request<{ text?: unknown }>({ op: 'note.get', name: line.name });
      out(typeof r?.text === 'string' ? wireText(r.text, 64 * 1024) : show(r));
      return;
    }
    case 'note-put':
      await session.request({ op: 'note.put', name: line.name, text: line.text });
      out(`saved note ${line.name}`);
      return;
  }
}

/** `keyledger shell`: an interactive session. */
export async function shell(o: { home: string; passphraseFile?: string; server?: string }): Promise<number> {
  const session = await openSession(o);
  out(
    `session ${session.sessionId} as ${session.id}. Type a message; /help lists the commands, /quit leaves.`,
  );
  session.on('renewed', (epoch: number) => info(`keys renewed (epoch ${epoch})`));
  session.on('message', (body: unknown) => out(`< ${show(body)}`));
  // A prompt on a terminal only: lines piped in (keyledger shell < script) give clean output.
  const terminal = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ', terminal });
  const prompt = () => {
    if (terminal) rl.prompt();
  };
  let ended = false;
  let leaving = false;
  session.on('close', (c: { alert?: { code: string; message: string } | null; resumable: boolean }) => {
    if (c.resumable) {
      info('connection lost; resuming…');
      session.resume().then(
        () => info('resumed'),
        (err: Error) => {
          info(`cannot resume: ${err.message}`);
          rl.close();
        },
      );
      return;
    }
    ended = true;
    // Our own logout is said once, below; anything else that ends the session is said here.
    if (!leaving) info(c.alert ? `session ended: ${c.alert.code} ${c.alert.message}` : 'session ended');
    rl.close();
  });
  prompt();
  for await (const text of rl) {
    const line = parseShellLine(text);
    if (line.kind === 'quit') break;
    try {
      await run(session, line);
    } catch (err) {
      info(isKlError(err) ? `error ${err.code}: ${err.message}` : `error: ${(err as Error).message}`);
    }
    if (ended) break;
    prompt();
  }
  if (!ended) {
    leaving = true;
    await session.close();
    info('logged out');
  }
  return 0;
}
