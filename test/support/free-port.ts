/** A loopback port free right now (for servers a test starts itself). No node:test hooks here. */
import { createServer } from 'node:net';

/** A port on 127.0.0.1 that nothing listens on at the time of the call. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
