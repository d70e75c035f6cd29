/**
 * `keyledger serve` and `keyledger admin invite`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInitialised, readGenesisFile } from '../../ledger/data-dir.js';
import { EncryptedLog } from '../../pgp/encrypted-log.js';
import { readPublicKey } from '../../pgp/messages.js';
import { KlError } from '../../protocol/errors.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { startServer } from '../../server/app.js';
import { IdentityProofs } from '../../server/identity-proofs.js';
import { loadServerKey } from '../../server/server-key.js';
import { info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/** Options of `keyledger serve`. */
export interface ServeOptions {
  data: string;
  host: string;
  port: number;
  challengeTtlMs?: number;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  smtpUrl?: string;
  smtpFrom?: string;
  insecureSmtpPlaintext?: boolean;
  /** Armored OpenPGP public key of the operator: log files are readable with its private key. */
  operatorKey?: string;
  /** Also print log lines in clear on stderr (development only). */
  insecurePlainLogs?: boolean;
  /** Identities that get the admin role once registered. */
  admins?: string[];
  publicUrl?: string;
  json?: boolean;
}

/** Runs the server until SIGINT/SIGTERM. */
export async function serve(o: ServeOptions): Promise<number> {
  const passphrase = await resolvePassphrase(o, { confirm: !isInitialised(o.data) });
  const fresh = !isInitialised(o.data);
  const smtpUrl = o.smtpUrl ?? process.env.KEYLEDGER_SMTP_URL;
  const smtpFrom = o.smtpFrom ?? process.env.KEYLEDGER_SMTP_FROM ?? 'keyledger <no-reply@localhost>';
  // Seed phase 4 step 6: the server's log is encrypted at rest, readable with the operator's key
  // (--operator-key) or, by default, with the server key (keyledger logs decrypt --data DIR).
  let logFile: EncryptedLog | null = null;
  const log = (line: string) => {
    const stamped = `${new Date().toISOString()} ${line}`;
    logFile?.append(stamped);
    if (o.insecurePlainLogs) info(stamped);
  };
  const server = await startServer({
    dataDir: o.data,
    passphrase,
    host: o.host,
    port: o.port,
    ...(o.challengeTtlMs ? { challengeTtlMs: o.challengeTtlMs } : {}),
    ...(smtpUrl
      ? { smtp: { url: smtpUrl, from: smtpFrom, insecureAllowPlaintext: o.insecureSmtpPlaintext === true } }
      : {}),
    ...(o.admins?.length ? { admins: o.admins } : {}),
    ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
    log,
  });
  const reader = o.operatorKey
    ? await readPublicKey(readFileSync(o.operatorKey, 'utf8'))
    : (await loadServerKey(o.data, passphrase)).publicKey;
  logFile = await EncryptedLog.create(
    join(o.data, 'logs', `server-${new Date().toISOString().replace(/[:.]/g, '-')}.log.enc`),
    reader,
  );
  log(`server started on ${server.url}`);
  const g = server.ledger.genesis;
  if (o.json) {
    out(
      JSON.stringify({
        url: server.url,
        chain: server.ledger.chainId,
        serverFingerprint: g.server?.fingerprint,
        dataDir: o.data,
        initialised: fresh,
      }),
    );
  } else {
    if (fresh) out(`initialised ${o.data}: ledger, validator key and server OpenPGP key`);
    out(`keyledger listening on ${server.url}`);
    out(`  chain id            ${server.ledger.chainId}`);
    out(`  server fingerprint  ${g.server?.fingerprint}`);
    out(`  email codes         ${smtpUrl ? 'on' : 'off (set KEYLEDGER_SMTP_URL to enable)'}`);
    out(`invite a user:  keyledger admin invite alice@example.org --data ${o.data}`);
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  info('shutting down…');
  await server.close();
  log('server stopped');
  logFile.close();
  return 0;
}

/** Options of `keyledger admin invite`. */
export interface InviteOptions {
  data: string;
  identity: string;
  expiresMs: number;
  json?: boolean;
}

/** Prints a one-time invitation code bound to an identity. */
export async function adminInvite(o: InviteOptions): Promise<number> {
  if (!isInitialised(o.data))
    throw new KlError(
      'KL_DATA_DIR',
      `${o.data} holds no ledger: start the server once with keyledger serve --data ${o.data}`,
    );
  const id = canonicalIdentity(o.identity);
  const { chainId } = readGenesisFile(`${o.data}/genesis.json`);
  const proofs = new IdentityProofs(o.data);
  try {
    const now = Date.now();
    const expiresAt = now + o.expiresMs;
    const code = proofs.issueInvite(id, now, expiresAt);
    if (o.json)
      out(JSON.stringify({ id, code, expiresAt: new Date(expiresAt).toISOString(), chain: chainId }));
    else {
      out(code);
      info(
        `invitation for ${id}, valid until ${new Date(expiresAt).toISOString()} (shown once; stored hashed)`,
      );
      info(`the user runs: keyledger register --server URL --invite ${code}`);
    }
  } finally {
    proofs.close();
  }
  return 0;
}
