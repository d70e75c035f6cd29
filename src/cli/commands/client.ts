/**
 * The end user's commands: init, register, login, whoami, status, rotate-key.
 */
import { readFileSync } from 'node:fs';
import { advanceCheckpoint } from '../../client/checkpoint.js';
import { gpgKeyFor } from '../../client/gpg-key.js';
import { ClientHome, defaultHome } from '../../client/home.js';
import { callJson } from '../../client/http.js';
import { createIdentity, type KeySource } from '../../client/identity.js';
import { login } from '../../client/login.js';
import { fetchServerInfo, register, requestEmailCode } from '../../client/register.js';
import { rotateKey } from '../../client/rotate.js';
import type { KeyRecordProof } from '../../ledger/proofs.js';
import { verifyKeyRecordProof } from '../../ledger/proofs.js';
import { KlError } from '../../protocol/errors.js';
import { confirm, info, out } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/** Options shared by the client commands. */
export interface ClientOptions {
  home: string;
  json?: boolean;
  passphraseFile?: string;
}

const CLIENT_PASS = { envVar: 'KEYLEDGER_PASSPHRASE', prompt: 'Passphrase of your keyledger key: ' };

/**
 * A key's algorithm as people know it (the README's names), from the short label the home and the
 * ledger keep (`ed25519-legacy`, `rsa3072`, …); an unknown label is shown as it is.
 */
export function algorithmName(label: string): string {
  if (label === 'ed25519-legacy') return 'Ed25519/Cv25519 (OpenPGP v4)';
  const rsa = /^rsa(\d+)$/.exec(label);
  return rsa ? `RSA-${rsa[1]}` : label;
}

/** ` --home DIR` when `dir` is not the default home, so that a printed command works as shown. */
function homeFlag(dir: string): string {
  return dir === defaultHome() ? '' : ` --home ${dir}`;
}

/** `keyledger init` */
export async function init(
  o: ClientOptions & {
    id?: string;
    name?: string;
    gpg?: string;
    gpgHome?: string;
    importFile?: string;
    force?: boolean;
    rsa?: boolean;
  },
): Promise<number> {
  if (!o.id) throw new KlError('KL_BAD_INPUT', '--id IDENTITY is required (your email address)');
  const home = new ClientHome(o.home);
  const name = o.name ?? o.id.split('@')[0]!;
  let identity: Awaited<ReturnType<typeof createIdentity>>;
  if (o.gpg) {
    identity = await createIdentity({
      home,
      id: o.id,
      name,
      source: 'gpg',
      fingerprint: o.gpg,
      ...(o.gpgHome ? { gpgHome: o.gpgHome } : {}),
      force: o.force ?? false,
    });
  } else if (o.importFile) {
    const armoredSecretKey = readFileSync(o.importFile, 'utf8');
    const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, confirm: true });
    const current = process.env.KEYLEDGER_IMPORT_PASSPHRASE;
    identity = await createIdentity({
      home,
      id: o.id,
      name,
      source: 'import',
      armoredSecretKey,
      passphrase,
      ...(current ? { currentPassphrase: current } : {}),
      force: o.force ?? false,
    });
  } else {
    const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, confirm: true });
    identity = await createIdentity({
      home,
      id: o.id,
      name,
      source: 'generate',
      passphrase,
      type: o.rsa ? 'rsa' : 'ecc',
      force: o.force ?? false,
    });
  }
  if (o.json)
    out(
      JSON.stringify({
        id: identity.id,
        name: identity.name,
        fingerprint: identity.fingerprint,
        algorithm: identity.algorithm,
        keySource: identity.keySource,
        home: home.dir,
        ...(identity.retiredKey ? { retiredKey: identity.retiredKey } : {}),
      }),
    );
  else {
    out(`identity     ${identity.id} (${identity.name})`);
    out(`fingerprint  ${identity.fingerprint}`);
    out(
      `algorithm    ${algorithmName(identity.algorithm)}, key ${identity.keySource === 'gpg' ? 'held by GnuPG' : `in ${home.privateKeyPath} (passphrase-protected, mode 0600)`}`,
    );
    if (identity.keySource === 'gpg') {
      // A certify-only primary key (as sq and PGPainless make them) signs with its signing subkey.
      const signing = await gpgKeyFor(identity.publicKey, 'signing', new Date());
      if (signing !== identity.fingerprint)
        out(`signs with   subkey ${signing} (the primary key only certifies)`);
    }
    if (identity.retiredKey) out(`previous key moved to ${identity.retiredKey} (kept, not deleted)`);
    info(
      `next: keyledger register --server URL --invite CODE${homeFlag(home.dir)}  ` +
        '(URL and CODE: the server address and the whole invitation your operator gives you)',
    );
  }
  return 0;
}

/** `keyledger register` */
export async function registerCommand(
  o: ClientOptions & {
    server?: string;
    invite?: string;
    email?: boolean;
    code?: string;
    chain?: string;
    /** Send the code to a server no pin or chain id authenticated (trust on first use). */
    trustFirstUse?: boolean;
  },
): Promise<number> {
  if (!o.server) throw new KlError('KL_BAD_INPUT', '--server URL is required');
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  if (!o.invite && !o.email)
    throw new KlError('KL_BAD_INPUT', 'give --invite CODE, or --email to receive a code by email');
  if (o.email && !o.code) {
    const r = await requestEmailCode({ home, server: o.server });
    if (o.json)
      out(
        JSON.stringify(
          r.sent
            ? { sent: true, expiresAt: new Date(r.expiresAt).toISOString() }
            : { sent: false, reason: r.reason },
        ),
      );
    else if (r.sent)
      out(
        `a code was sent to ${identity.id}; run again with --email --code 'THE WHOLE LINE FROM THE EMAIL' (valid until ${new Date(r.expiresAt).toISOString()})`,
      );
    else
      out(
        `codes were sent to ${identity.id} in the last minutes and are still valid: run again with --email --code 'THE WHOLE LINE FROM THE NEWEST EMAIL'`,
      );
    return 0;
  }
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const proof = o.invite
    ? { method: 'invite' as const, code: o.invite }
    : { method: 'email' as const, code: o.code! };
  const r = await register({
    home,
    server: o.server,
    proof,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(o.chain ? { expectChain: o.chain } : {}),
    onServer: async ({ chain, fingerprint, trust }) => {
      if (trust === 'pinned') return;
      // Nothing authenticated this server (docs/protocol.md, "Registration on a hostile network"):
      // said plainly, and the code is sent only if the person accepts it (or --trust-first-use).
      const what = proof.method === 'invite' ? 'invitation' : 'code';
      info(
        `keyledger: trusting ${o.server} on first use — your ${what} carries no server pin and no --chain was given, so this server is not authenticated.`,
      );
      info(`           its ledger ${chain}, server key ${fingerprint}: compare them with your operator's.`);
      if (o.trustFirstUse) return;
      if (await confirm(`send your ${what} to this server? [y/N] `)) return;
      throw new KlError(
        'KL_SERVER_UNPINNED',
        `not sent: give the ${what} whole, with the part after the "." (the server pin), or --chain ID; ` +
          'or --trust-first-use to accept this server unauthenticated',
      );
    },
  });
  if (o.json) out(JSON.stringify(r));
  else {
    out(`registered   ${r.id}`);
    out(`fingerprint  ${r.fingerprint}`);
    out(`ledger       block ${r.height}, transaction ${r.txid} (receipt verified against the genesis)`);
    out(`server key   ${r.server.fingerprint} (pinned; matches the ledger genesis)`);
    out(
      r.trust === 'pinned'
        ? `server       authenticated by the pin of your ${proof.method === 'invite' ? 'invitation' : 'code'} before the code was sent`
        : 'server       trusted on first use (no pin): it is pinned from now on',
    );
  }
  return 0;
}

/** `keyledger login` */
export async function loginCommand(o: ClientOptions): Promise<number> {
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: identity.keySource === 'gpg' });
  const session = await login({ home, ...(passphrase !== undefined ? { passphrase } : {}) });
  session.close();
  const server = home.readServer();
  if (o.json)
    out(
      JSON.stringify({
        verified: true,
        id: session.id,
        sessionId: session.sessionId,
        expiresAt: new Date(session.expiresAt).toISOString(),
        idleTimeoutMs: session.idleTimeoutMs,
        server: server.url,
      }),
    );
  else {
    out(`logged in    ${session.id} at ${server.url} (both sides authenticated)`);
    out(`session      ${session.sessionId}`);
    out(
      `expires      ${new Date(session.expiresAt).toISOString()} (idle timeout ${Math.round(session.idleTimeoutMs / 60_000)} min)`,
    );
  }
  return 0;
}

/** `keyledger whoami` */
export async function whoami(o: ClientOptions): Promise<number> {
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  const server = home.hasServer() ? home.readServer() : null;
  const data = {
    id: identity.id,
    name: identity.name,
    fingerprint: identity.fingerprint,
    algorithm: identity.algorithm,
    keySource: identity.keySource,
    server: server?.url ?? null,
  };
  if (o.json) out(JSON.stringify(data));
  else {
    out(`${identity.id} (${identity.name})`);
    out(
      `fingerprint  ${identity.fingerprint} [${algorithmName(identity.algorithm)}, ${identity.keySource === 'gpg' ? 'GnuPG' : 'file'}]`,
    );
    out(`server       ${server ? server.url : 'not registered'}`);
  }
  return 0;
}

/**
 * `keyledger status`: identity, pinned keys, and what the ledger says about us now. Exit codes (also
 * in its --help and the README), so scripts can act on them: 0 the ledger holds this key, active,
 * and the server presents the pinned key; 1 a check failed (the server presents another key, or the
 * ledger's proof does not verify); 2 error (e.g. `KL_CHECKPOINT_INVALID` "history cut short");
 * 3 the ledger holds ANOTHER key for this identity; 4 the key is revoked; 5 unknown: not registered
 * from this home, or no record on the ledger.
 */
export async function status(o: ClientOptions): Promise<number> {
  const STATUS_EXIT = { ok: 0, checkFailed: 1, anotherKey: 3, revoked: 4, unknown: 5 } as const;
  const home = new ClientHome(o.home);
  const identity = home.readIdentity();
  if (!home.hasServer()) {
    if (o.json)
      out(JSON.stringify({ id: identity.id, fingerprint: identity.fingerprint, registered: false }));
    else out(`${identity.id}: not registered yet`);
    return STATUS_EXIT.unknown;
  }
  const server = home.readServer();
  const info = await fetchServerInfo(server.url, server.chain);
  const pinnedOk = info.server.fingerprint === server.server.fingerprint;
  // Refuses a ledger whose history was rewritten or cut short (KL_CHECKPOINT_INVALID, exit 2).
  const checkpoint = await advanceCheckpoint(home, server);
  const proof = await callJson<KeyRecordProof>(
    'GET',
    new URL(`/v1/ledger/keys/${encodeURIComponent(identity.id)}`, server.url).toString(),
  );
  const check = verifyKeyRecordProof({ genesis: server.genesis, proof });
  // The proof must be about us, at a checkpoint no older than the one just accepted.
  const proofOk = check.verified && proof.id === identity.id && check.height >= checkpoint.header.height;
  const record = proofOk && check.verified ? check.record : null;
  const state: keyof typeof STATUS_EXIT =
    !pinnedOk || !proofOk
      ? 'checkFailed'
      : !record
        ? 'unknown'
        : record.fingerprint !== identity.fingerprint
          ? 'anotherKey'
          : record.status !== 'active'
            ? 'revoked'
            : 'ok';
  const data = {
    id: identity.id,
    fingerprint: identity.fingerprint,
    server: server.url,
    chain: server.chain,
    pinnedServerFingerprint: server.server.fingerprint,
    serverKeyMatchesPin: pinnedOk,
    checkpoint: { height: checkpoint.header.height, hash: checkpoint.hash },
    ledger: {
      verified: proofOk,
      status: record?.status ?? 'absent',
      fingerprint: record?.fingerprint ?? null,
      matchesLocalKey: record?.fingerprint === identity.fingerprint,
    },
    state,
    exitCode: STATUS_EXIT[state],
  };
  if (o.json) out(JSON.stringify(data));
  else {
    out(`identity       ${identity.id}`);
    out(`fingerprint    ${identity.fingerprint}`);
    out(`server         ${server.url}`);
    out(
      `server key     ${server.server.fingerprint} (pinned${pinnedOk ? ', server still presents it' : ', SERVER PRESENTS ANOTHER KEY'})`,
    );
    out(
      `ledger         chain ${server.chain.slice(0, 16)}…, checkpoint block ${checkpoint.header.height} (history only appended to)`,
    );
    out(
      `on the ledger  ${record ? `${record.status === 'active' ? 'active' : 'REVOKED'}, ${record.fingerprint === identity.fingerprint ? 'same key as here' : `ANOTHER KEY ${record.fingerprint}`}` : 'not found'} (state proof ${proofOk ? 'verified' : 'INVALID'})`,
    );
  }
  return STATUS_EXIT[state];
}

/** `keyledger rotate-key [--rsa | --gpg FPR | --import FILE]`: replace your key on the ledger. */
export async function rotateKeyCommand(
  o: ClientOptions & {
    gpg?: string;
    gpgHome?: string;
    importFile?: string;
    rsa?: boolean;
    newPassphraseFile?: string;
  },
): Promise<number> {
  const home = new ClientHome(o.home);
  const current = home.readIdentity();
  const passphrase = await resolvePassphrase(o, { ...CLIENT_PASS, optional: current.keySource === 'gpg' });
  // The new key's passphrase: its own source if given, else the current key's passphrase.
  const nextPassphrase = async () =>
    o.newPassphraseFile || process.env.KEYLEDGER_NEW_PASSPHRASE
      ? resolvePassphrase(
          { ...(o.newPassphraseFile ? { passphraseFile: o.newPassphraseFile } : {}) },
          { envVar: 'KEYLEDGER_NEW_PASSPHRASE', prompt: 'Passphrase of the new key: ', confirm: true },
        )
      : (passphrase ??
        resolvePassphrase({}, { ...CLIENT_PASS, prompt: 'Passphrase of the new key: ', confirm: true }));
  let next: KeySource;
  if (o.gpg) next = { source: 'gpg', fingerprint: o.gpg, ...(o.gpgHome ? { gpgHome: o.gpgHome } : {}) };
  else if (o.importFile) {
    const importPassphrase = process.env.KEYLEDGER_IMPORT_PASSPHRASE;
    next = {
      source: 'import',
      armoredSecretKey: readFileSync(o.importFile, 'utf8'),
      passphrase: await nextPassphrase(),
      ...(importPassphrase ? { currentPassphrase: importPassphrase } : {}),
    };
  } else next = { source: 'generate', passphrase: await nextPassphrase(), type: o.rsa ? 'rsa' : 'ecc' };
  if (!o.json) info(`rotating the key of ${current.id} (${current.fingerprint}) …`);
  const r = await rotateKey({ home, ...(passphrase !== undefined ? { passphrase } : {}), next });
  if (o.json) {
    out(
      JSON.stringify({
        verified: r.verified,
        id: r.identity.id,
        oldFingerprint: r.oldFingerprint,
        fingerprint: r.identity.fingerprint,
        ...(r.rotation ? { txid: r.rotation.txid, height: r.rotation.height } : { finished: true }),
        checkedSessionId: r.checkedSessionId,
      }),
    );
  } else {
    out(
      r.rotation
        ? `key rotated on the ledger: block ${r.rotation.height}, transaction ${r.rotation.txid} (receipt verified)`
        : 'finished an interrupted rotation: the ledger already had the new key',
    );
    out(
      `new key ${r.identity.fingerprint} (${algorithmName(r.identity.algorithm)}); logged in with it to check`,
    );
    out(`every session opened with the old key has ended; the old private key is in ${home.dir}/retired/`);
  }
  return 0;
}
