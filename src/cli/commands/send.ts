/**
 * `keyledger send`: one message in a fresh session.
 */
import { writeFileSync } from 'node:fs';
import { wireText } from '../../protocol/errors.js';
import { out } from '../io.js';
import { openSession } from './open-session.js';

/** `keyledger send MESSAGE [--sign] [--out FILE]` */
export async function send(o: {
  home: string;
  passphraseFile?: string;
  server?: string;
  message: string;
  sign?: boolean;
  out?: string;
  json?: boolean;
}): Promise<number> {
  const session = await openSession(o);
  try {
    if (o.sign) {
      const r = await session.sendSigned(o.message);
      const record = { message: o.message, signature: r.signature, receipt: r.receipt };
      if (o.out) writeFileSync(o.out, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      if (o.json)
        out(
          JSON.stringify({
            verified: true,
            txid: r.txid,
            height: r.height,
            hash: r.hash,
            ...(o.out ? { file: o.out } : { record }),
          }),
        );
      else {
        out(`signed and anchored: block ${r.height}, transaction ${r.txid}`);
        out(`message hash ${r.hash} (receipt verified against the genesis)`);
        if (o.out)
          out(
            `message, signature and receipt saved to ${o.out}; check it with: keyledger receipt verify ${o.out}`,
          );
      }
    } else {
      const reply = await session.request(o.message);
      // The server's reply is remote text: shown through wireText (no terminal control).
      out(
        o.json
          ? JSON.stringify(reply)
          : wireText(typeof reply === 'string' ? reply : JSON.stringify(reply), 64 * 1024),
      );
    }
  } finally {
    await session.close();
  }
  return 0;
}
