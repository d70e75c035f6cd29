/**
 * `keyledger admin dashboard`: an identity with the admin role logs in with its key and gets a
 * one-time link to the web dashboard.
 */
import { spawn } from 'node:child_process';
import { info, out } from '../io.js';
import { openSession } from './open-session.js';

/**
 * `keyledger admin dashboard`: log in with the admin's key (the normal handshake), ask for a one-time
 * dashboard link inside the session, print it, and open it in a browser when there is one.
 */
export async function adminDashboard(o: {
  home: string;
  passphraseFile?: string;
  /** One server of the ledger, used alone (`--server`); default: the home's servers, with failover. */
  server?: string;
  open?: boolean;
  json?: boolean;
}): Promise<number> {
  const session = await openSession(o);
  let link: { url: string; expiresAt: number };
  try {
    link = await session.request<{ url: string; expiresAt: number }>({ op: 'admin.dashboard-link' });
  } finally {
    if (!session.isClosed) await session.close();
  }
  if (o.json) out(JSON.stringify(link));
  else {
    out(link.url);
    info(`one-time link for ${session.id}, valid until ${new Date(link.expiresAt).toISOString()}`);
  }
  const browser =
    process.env.BROWSER ?? (process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : '');
  if (o.open !== false && browser && !process.env.CI) {
    const child = spawn(browser, [link.url], { detached: true, stdio: 'ignore' });
    child.on('error', () => info('(could not start a browser: open the link above yourself)'));
    child.unref();
  }
  return 0;
}
