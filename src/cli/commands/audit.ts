/**
 * `keyledger audit` and `keyledger receipt verify`: what an auditor checks.
 */
import { readFileSync } from 'node:fs';
import { ClientHome } from '../../client/home.js';
import { type SignerCheck, verifyMessageSigner } from '../../client/signed-message.js';
import { type AuditEntry, readAuditTrail } from '../../ledger/audit-trail.js';
import { EmbeddedLedger } from '../../ledger/embedded-ledger.js';
import { chainIdOf, checkGenesis } from '../../ledger/genesis.js';
import { type TransactionReceipt, verifyTransactionReceipt } from '../../ledger/proofs.js';
import type { TxBodies } from '../../ledger/transactions.js';
import { isKlError, KlError } from '../../protocol/errors.js';
import { sha256Hex } from '../../protocol/hash.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { out } from '../io.js';

/** `keyledger audit [--id IDENTITY] [--since T] [--json] --data DIR` */
export async function audit(o: {
  data: string;
  id?: string;
  since?: string;
  json?: boolean;
}): Promise<number> {
  const since = o.since ? Date.parse(o.since) : 0;
  if (Number.isNaN(since))
    throw new KlError('KL_BAD_INPUT', '--since must be a date such as 2026-11-26 or 2026-11-26T10:00:00Z');
  const subject = o.id ? sha256Hex(canonicalIdentity(o.id)) : undefined;
  let entries: AuditEntry[];
  try {
    // Opening checks the ledger, and every event is checked against its block's signed
    // transaction root before it is listed (docs/ledger.md "Integrity at start").
    const ledger = EmbeddedLedger.open({ dataDir: o.data });
    try {
      // Oldest first on the terminal, like a log.
      entries = (
        await readAuditTrail(ledger, { ...(subject ? { subject } : {}), since, limit: 10_000 })
      ).reverse();
    } finally {
      await ledger.close();
    }
  } catch (err) {
    if (!isKlError(err, 'KL_LEDGER_CORRUPT')) throw err;
    // Nothing is listed: no event of a damaged ledger is shown as genuine.
    if (o.json) out(JSON.stringify({ verified: false, code: err.code, reason: err.message }));
    else {
      out(`audit trail DAMAGED (${err.code}): ${err.message}`);
      out(`no event is listed; run keyledger ledger verify --data ${o.data} for a full report`);
    }
    return 1;
  }
  const rows = entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() }));
  if (o.json) out(JSON.stringify(rows));
  else
    for (const r of rows)
      out(
        `${r.at}  ${r.event.padEnd(18)} ${r.subject ? `${r.subject.slice(0, 16)}…` : ''.padEnd(17)}  block ${r.height}  ${r.detail ? JSON.stringify(r.detail) : ''}`,
      );
  return 0;
}

/**
 * `keyledger receipt verify FILE [--genesis FILE | --home DIR]`: checks a file from `keyledger send
 * --sign --out FILE`: the receipt against the genesis (offline), the message against the anchored
 * hash, and the OpenPGP signature against the key the ledger held for the signer at the anchoring
 * block (asks the server pinned in the home for the key record and its proofs). Says which checks
 * passed; exit 0 only when all did, 1 when one failed or could not be made.
 */
export async function receiptVerify(o: {
  file: string;
  genesis?: string;
  home: string;
  json?: boolean;
}): Promise<number> {
  const doc = JSON.parse(readFileSync(o.file, 'utf8')) as {
    message?: string;
    signature?: unknown;
    receipt?: TransactionReceipt;
  } & Partial<TransactionReceipt>;
  const receipt = (doc.receipt ?? doc) as TransactionReceipt;
  const home = new ClientHome(o.home);
  const pinned = home.hasServer() ? home.readServer() : null;
  const genesis = checkGenesis(
    o.genesis ? JSON.parse(readFileSync(o.genesis, 'utf8')) : (pinned ?? home.readServer()).genesis,
  );
  const check = verifyTransactionReceipt({ genesis, receipt });
  let messageOk: boolean | null = null;
  if (check.verified && typeof doc.message === 'string' && check.envelope.tx.type === 'HashAnchored') {
    messageOk =
      (check.envelope.tx.body as TxBodies['HashAnchored']).hash ===
      sha256Hex(Buffer.from(doc.message, 'utf8'));
  }
  // A signed-message file (it has a message or a signature) is genuine only with a valid signature.
  const signed = typeof doc.message === 'string' || doc.signature !== undefined;
  let signer: SignerCheck | null = null;
  if (signed && check.verified && messageOk !== false) {
    const id = (check.envelope.tx.body as TxBodies['HashAnchored']).id;
    if (check.envelope.tx.type !== 'HashAnchored' || typeof doc.message !== 'string' || !id)
      signer = { verified: false, reason: 'the receipt anchors no signed message of an identity' };
    else if (!pinned || pinned.chain !== chainIdOf(genesis))
      signer = {
        verified: false,
        reason:
          'not checked: the signer’s key comes from the ledger, and no server of this ledger is pinned in the home (--home DIR)',
      };
    else
      signer = await verifyMessageSigner({
        server: { url: pinned.url, genesis },
        receipt,
        id,
        message: doc.message,
        signature: doc.signature,
      });
  }
  const ok = check.verified && messageOk !== false && (!signed || signer?.verified === true);
  if (o.json)
    out(
      JSON.stringify({
        verified: ok,
        ...(check.verified
          ? { txid: check.txid, height: check.height, type: check.envelope.tx.type }
          : { reason: check.reason }),
        messageMatches: messageOk,
        ...(signed ? { signature: signer ?? { verified: false, reason: 'not checked' } } : {}),
      }),
    );
  else if (!check.verified) out(`receipt INVALID: ${check.reason}`);
  else if (messageOk === false) out('receipt INVALID: the message does not match the anchored hash');
  else {
    out(
      `receipt OK: ${check.envelope.tx.type} in block ${check.height}, transaction ${check.txid}, signed by the ledger's validators`,
    );
    if (messageOk) out('the message in the file is exactly the one anchored');
    if (signer?.verified)
      out(
        `signature OK: by ${signer.id}'s key ${signer.fingerprint}, the key the ledger held at block ${check.height} (key record proven at block ${signer.proofHeight}${signer.current ? '' : '; no longer its current key'})`,
      );
    else if (signer) out(`signature INVALID: ${signer.reason}`);
  }
  return ok ? 0 : 1;
}
