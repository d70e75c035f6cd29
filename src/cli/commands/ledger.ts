/**
 * `keyledger ledger init | verify | show`: create, audit and inspect an embedded ledger.
 */

import { readFileSync } from 'node:fs';
import { dataPaths, isInitialised, readGenesisFile } from '../../ledger/data-dir.js';
import { EmbeddedLedger } from '../../ledger/embedded-ledger.js';
import { storedVerifiedCheckpoint, verifyAndMark } from '../../ledger/mark-verified.js';
import { verifyKeyRecordProof, verifyTransactionReceipt } from '../../ledger/proofs.js';
import type { VerifiedPoint } from '../../ledger/verified-checkpoint.js';
import type { LedgerVerification } from '../../ledger/verify-ledger.js';
import { verifyLedgerDataInParallel } from '../../ledger/verify-parallel.js';
import { KlError } from '../../protocol/errors.js';
import { canonicalIdentity } from '../../protocol/identity.js';
import { initNodeIfNeeded } from '../../server/node.js';
import { out, progress } from '../io.js';
import { resolvePassphrase } from '../passphrase.js';

/** Options shared by the ledger commands. */
export interface LedgerCommandOptions {
  data: string;
  json?: boolean;
  passphraseFile?: string;
  insecureDevPassphrase?: boolean;
  name?: string;
  height?: number;
  id?: string;
  tx?: string;
  quiet?: boolean;
  /** Files holding checkpoints (signed headers) kept from earlier. */
  checkpoints?: string[];
  /** `ledger verify`: after a successful audit, record the node's verified checkpoint at the top. */
  markVerified?: boolean;
  /** `ledger verify`: worker threads checking signatures (default: the cores available). */
  threads?: number;
}

/**
 * `keyledger ledger init`: makes a new data directory, as `keyledger serve` does on its first start:
 * the ledger's keys and genesis, and the server's OpenPGP key pinned in it, so `serve` starts on it.
 */
export async function ledgerInit(o: LedgerCommandOptions): Promise<number> {
  if (isInitialised(o.data)) throw new KlError('KL_DATA_DIR', `${o.data} already holds a ledger`);
  const passphrase = await resolvePassphrase(o, { confirm: true });
  await initNodeIfNeeded({ dataDir: o.data, passphrase, ...(o.name ? { name: o.name } : {}) });
  const { chainId, genesis } = readGenesisFile(dataPaths(o.data).genesis);
  if (o.json) out(JSON.stringify({ chainId, genesis }, null, 2));
  else
    out(
      `initialised ledger "${genesis.name}" in ${o.data}\nchain id ${chainId}\nserver key ${genesis.server?.fingerprint}\n` +
        `start it: keyledger serve --data ${o.data}`,
    );
  return 0;
}

/**
 * `keyledger ledger verify`: exit 0 with a summary, 1 naming the first bad block or transaction.
 * With `--mark-verified` (needs the node passphrase and no running server), a successful audit also
 * records the node's verified checkpoint at the ledger's top, which lets a node start on a ledger
 * whose record is missing (docs/ledger.md "Integrity at start").
 */
export async function ledgerVerify(o: LedgerCommandOptions): Promise<number> {
  const passphrase = o.markVerified ? await resolvePassphrase(o) : undefined;
  const started = performance.now();
  const bar = progress('verifying', { quiet: o.quiet || o.json });
  const knownCheckpoints = (o.checkpoints ?? []).flatMap((file) => {
    const value = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return Array.isArray(value) ? value : [value];
  });
  const options = {
    dataDir: o.data,
    knownCheckpoints,
    onProgress: (h: number, t: number) => bar.update(h, t),
    ...(o.threads === undefined ? {} : { threads: o.threads }),
  };
  let result: LedgerVerification;
  let marked: VerifiedPoint | null = null;
  try {
    if (passphrase !== undefined) ({ result, marked } = await verifyAndMark({ ...options, passphrase }));
    else result = await verifyLedgerDataInParallel(options);
  } finally {
    bar.done();
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  // Whether a node would start on it: only with a valid verified checkpoint.
  const nodeCheckpoint = marked ?? (result.ok ? storedVerifiedCheckpoint(o.data) : null);
  if (o.json) {
    out(
      JSON.stringify(
        {
          ...result,
          seconds: Number(seconds),
          ...(result.ok ? { verifiedCheckpoint: nodeCheckpoint } : {}),
          ...(o.markVerified ? { marked: marked !== null } : {}),
        },
        null,
        2,
      ),
    );
  } else if (result.ok) {
    out(
      `ledger OK: ${result.blocks} blocks, ${result.transactions} transactions, ${result.stateEntries} state entries verified in ${seconds} s`,
    );
    if (marked)
      out(
        `verified checkpoint recorded at block ${marked.height}${marked.height > 0 ? ` (${marked.hash})` : ''}: the node starts from this history`,
      );
    else if (!nodeCheckpoint)
      out(
        `no valid verified checkpoint: the node will refuse to start; if this history is the one you expect, run keyledger ledger verify --data ${o.data} --mark-verified`,
      );
  } else {
    out(`ledger TAMPERED: ${result.problem?.reason}`);
    if (result.problem?.txid) out(`first bad transaction: ${result.problem.txid}`);
    if (result.problem?.height) out(`first bad block: ${result.problem.height}`);
  }
  return result.ok ? 0 : 1;
}

/** `keyledger ledger show`: a summary, a block, an identity's key record or a transaction. */
export async function ledgerShow(o: LedgerCommandOptions): Promise<number> {
  const ledger = EmbeddedLedger.open({ dataDir: o.data });
  try {
    const checkpoint = await ledger.checkpoint();
    if (o.id !== undefined) {
      const proof = await ledger.getKeyRecord(canonicalIdentity(o.id));
      const check = verifyKeyRecordProof({ genesis: ledger.genesis, proof });
      const history = proof.record ? await ledger.transactionsFor(proof.id) : [];
      if (o.json) {
        out(
          JSON.stringify(
            {
              ...proof,
              verified: check.verified,
              transactions: history.map((r) => ({
                txid: r.txid,
                type: r.envelope.tx.type,
                height: r.block.header.height,
              })),
            },
            null,
            2,
          ),
        );
      } else if (!proof.record) {
        out(
          `${proof.id}: not registered (absence ${check.verified ? 'proven' : 'NOT proven'} against block ${proof.checkpoint.header.height})`,
        );
      } else {
        const r = proof.record;
        out(`identity     ${r.id}`);
        out(`name         ${r.name}`);
        out(
          `status       ${r.status}${r.revocation ? ` (${r.revocation.reason}, by ${r.revocation.by}, block ${r.revocation.at.height})` : ''}`,
        );
        out(`fingerprint  ${r.fingerprint}`);
        out(`algorithm    ${r.algorithm}`);
        out(`registered   block ${r.registered.height}, ${new Date(r.registered.time).toISOString()}`);
        out(`updated      block ${r.updated.height}, ${new Date(r.updated.time).toISOString()}`);
        for (const h of r.history)
          out(`earlier key  ${h.fingerprint} (${h.reason} in block ${h.replaced.height})`);
        for (const t of history)
          out(`transaction  ${t.envelope.tx.type.padEnd(14)} block ${t.block.header.height}  ${t.txid}`);
        out(
          `proof        ${check.verified ? 'verified' : 'INVALID'} against block ${proof.checkpoint.header.height} (state root ${proof.checkpoint.header.stateRoot})`,
        );
      }
      return check.verified ? 0 : 1;
    }
    if (o.tx !== undefined) {
      const receipt = await ledger.getTransaction(o.tx);
      const check = verifyTransactionReceipt({ genesis: ledger.genesis, receipt });
      if (o.json) out(JSON.stringify({ ...receipt, verified: check.verified }, null, 2));
      else {
        out(`transaction  ${receipt.txid}`);
        out(`type         ${receipt.envelope.tx.type}`);
        out(`block        ${receipt.block.header.height}, position ${receipt.index}`);
        out(`signer       ${receipt.envelope.tx.signer}`);
        out(`time         ${new Date(receipt.envelope.tx.time).toISOString()}`);
        out(
          `body         ${JSON.stringify(receipt.envelope.tx.body, (k, v) => (k === 'publicKey' && typeof v === 'string' ? `${v.slice(0, 40)}…` : v))}`,
        );
        out(`inclusion    ${check.verified ? 'verified' : 'INVALID'}`);
      }
      return check.verified ? 0 : 1;
    }
    if (o.height !== undefined) {
      const { block, txids } = await ledger.getBlock(o.height);
      if (o.json) {
        out(JSON.stringify({ ...block, txids }, null, 2));
      } else {
        const h = block.header;
        out(`block ${h.height}  ${block.hash}`);
        out(`time         ${new Date(h.time).toISOString()}`);
        out(`previous     ${h.prevHash}`);
        out(`tx root      ${h.txRoot} (${h.txCount} transactions)`);
        out(`state root   ${h.stateRoot}`);
        out(`history root ${h.historyRoot}`);
        out(`proposer     ${h.proposer}, ${block.signatures.length} signature(s)`);
        for (const id of txids) {
          const r = await ledger.getTransaction(id);
          const subject = (r.envelope.tx.body as { id?: string }).id ?? '';
          out(`  ${String(r.index).padStart(4)}  ${r.envelope.tx.type.padEnd(16)} ${id}  ${subject}`);
        }
      }
      return 0;
    }
    const summary = {
      name: ledger.genesis.name,
      chainId: ledger.chainId,
      height: checkpoint?.header.height ?? 0,
      lastBlock: checkpoint
        ? { hash: checkpoint.hash, time: new Date(checkpoint.header.time).toISOString() }
        : null,
      validators: ledger.genesis.validators.length,
      quorum: ledger.genesis.quorum,
    };
    if (o.json) out(JSON.stringify({ ...summary, checkpoint }, null, 2));
    else {
      out(`ledger "${summary.name}"  chain ${summary.chainId}`);
      out(
        `height ${summary.height}${summary.lastBlock ? `, last block ${summary.lastBlock.time} ${summary.lastBlock.hash}` : ''}`,
      );
      out(`validators ${summary.validators}, quorum ${summary.quorum}`);
      const from = Math.max(1, summary.height - 9);
      for (let h = summary.height; h >= from; h--) {
        const { block } = await ledger.getBlock(h);
        out(
          `  block ${String(h).padStart(6)}  ${new Date(block.header.time).toISOString()}  ${String(block.header.txCount).padStart(5)} tx  ${block.hash}`,
        );
      }
    }
    return 0;
  } finally {
    await ledger.close();
  }
}

/** Parses a positive integer option. */
export function parseHeight(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new KlError('KL_BAD_INPUT', '--height must be a positive integer');
  return n;
}
