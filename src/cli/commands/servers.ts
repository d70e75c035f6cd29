/**
 * `keyledger servers list | add | remove`: the servers of the ledger this home belongs to
 * (docs/protocol.md "Several servers"). A server is added only once it has shown that it serves
 * this ledger with a server key the client accepts (src/client/server-trust.ts).
 */
import { ClientHome } from '../../client/home.js';
import { serverList, withLearnt, withoutServer, withServer } from '../../client/server-list.js';
import { checkServer, withAdmitted } from '../../client/server-trust.js';
import { out } from '../io.js';
import type { ClientOptions } from './client-options.js';

/** `keyledger servers list`, `servers add URL [--prefer]`, `servers remove URL` */
export async function serversCommand(
  o: ClientOptions &
    ({ sub: 'list' } | { sub: 'add'; url: string; prefer?: boolean } | { sub: 'remove'; url: string }),
): Promise<number> {
  const home = new ClientHome(o.home);
  let server = home.readServer();
  if (o.sub === 'add') {
    const checked = await checkServer(server, o.url);
    server = withServer(server, { url: checked.url, fingerprint: checked.key.fingerprint }, !!o.prefer);
    // The servers it lists join too, each checked before its first use.
    server = withAdmitted(withLearnt(server, checked.servers), checked.admitted, checked.removed);
    home.writeServer(server);
    if (!o.json)
      out(
        `added ${checked.url}: it serves your ledger (chain ${server.chain.slice(0, 16)}…) with the server key ${checked.key.fingerprint}${o.prefer ? '; now the preferred server' : ''}`,
      );
  } else if (o.sub === 'remove') {
    server = withoutServer(server, o.url);
    home.writeServer(server);
    if (!o.json) out(`removed ${o.url}; preferred server: ${server.url}`);
  }
  const list = serverList(server);
  if (o.json) {
    out(
      JSON.stringify({
        chain: server.chain,
        preferred: list[0]?.url ?? server.url,
        servers: list.map((e, i) => ({
          url: e.url,
          preferred: i === 0,
          checked: e.fingerprint !== undefined,
          fingerprint: e.fingerprint ?? null,
        })),
      }),
    );
  } else if (o.sub === 'list') {
    out(`servers of ledger ${server.chain.slice(0, 16)}… (tried in this order):`);
    for (const [i, e] of list.entries())
      out(
        `  ${e.url}${i === 0 ? '  (preferred)' : ''}  ${e.fingerprint ? `server key ${e.fingerprint}` : 'listed by a server, checked before its first use'}`,
      );
  }
  return 0;
}
