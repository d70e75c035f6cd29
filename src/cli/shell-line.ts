/**
 * What a line typed into `keyledger shell` asks for. Pure: the shell (commands/shell.ts) runs it.
 * A line starting with "/" is a command and is never sent; so are the words people type to leave a
 * shell (`exit`, `quit`, `logout`) and to ask for help (`help`, `?`). Anything else is a message;
 * `/send TEXT` sends TEXT as it is, even when it looks like a command.
 */

/** A parsed shell line. */
export type ShellLine =
  | { kind: 'empty' }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'send'; text: string }
  | { kind: 'sign'; text: string }
  | { kind: 'renew' }
  | { kind: 'sessions' }
  | { kind: 'notes' }
  | { kind: 'note-get'; name: string }
  | { kind: 'note-put'; name: string; text: string }
  | { kind: 'usage'; message: string };

/** The commands, as `/help` lists them. */
export const SHELL_HELP = `Type a message and press Enter to send it to the demo service. Commands:
  /sign TEXT             send TEXT signed with your key; the ledger anchors it (receipt shown)
  /note put NAME TEXT    keep an encrypted note on the server;  /note get NAME;  /notes (list)
  /sessions              your sessions (this one marked)
  /renew                 new session keys now (they also renew by themselves)
  /send TEXT             send TEXT as it is, even if it looks like a command
  /help                  this list
  /quit                  log out and leave (also: exit, quit, logout, Ctrl-D)`;

const QUIT = new Set(['/quit', '/exit', '/logout', 'exit', 'quit', 'logout']);
const HELP = new Set(['/help', '/?', 'help', '?']);

/** Parses one line typed into the shell. */
export function parseShellLine(line: string): ShellLine {
  const text = line.trim();
  if (text === '') return { kind: 'empty' };
  const word = text.toLowerCase();
  if (QUIT.has(word)) return { kind: 'quit' };
  if (HELP.has(word)) return { kind: 'help' };
  if (!text.startsWith('/')) return { kind: 'send', text };
  const [command = '', ...rest] = text.split(/\s+/);
  const argument = text.slice(command.length).trim();
  switch (command.toLowerCase()) {
    case '/send':
      return argument ? { kind: 'send', text: argument } : usage('/send TEXT');
    case '/sign':
      return argument ? { kind: 'sign', text: argument } : usage('/sign TEXT');
    case '/renew':
      return { kind: 'renew' };
    case '/sessions':
      return { kind: 'sessions' };
    case '/notes':
      return { kind: 'notes' };
    case '/note': {
      const [action, name] = rest;
      if (action === 'get' && name && rest.length === 2) return { kind: 'note-get', name };
      if (action === 'put' && name && rest.length > 2) {
        const text = argument.slice(action.length).trim().slice(name.length).trim();
        return { kind: 'note-put', name, text };
      }
      return usage('/note put NAME TEXT  or  /note get NAME');
    }
    default:
      return {
        kind: 'usage',
        message: `unknown command ${command} (not sent): /help lists the commands, /send TEXT sends it as it is`,
      };
  }
}

function usage(form: string): ShellLine {
  return { kind: 'usage', message: `usage: ${form}` };
}
