/**
 * `keyledger genesis contribute | propose | sign | combine | adopt`: a genesis made jointly by
 * several organisations (docs/deploy-besu.md "Several organisations"), as files passed around.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { chainIdOf } from '../../ledger/genesis.js';
import {
  checkProposal,
  checkProposalExpectations,
  combineProposal,
  summariseProposal,
} from '../../ledger/joint-genesis.js';
import { KlError, wireText } from '../../protocol/errors.js';
import { info, out } from '../io.js';
import { type PassphraseSource, resolvePassphrase } from '../passphrase.js';

/**
 * The JSON of a file named on the command line.
 * @throws KlError `KL_BAD_INPUT` naming the file.
 */
export function readJsonFile(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new KlError('KL_BAD_INPUT', `cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
}

/** Writes `value` as JSON to `path` (files that hold public keys and signatures only). */
export function writeJsonFile(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

const joint = () => import('../../server/joint-node.js');

/** `keyledger genesis contribute`: this organisation's keys and contribution. */
export async function genesisContribute(
  o: { data: string; org?: string; url?: string; out?: string; json?: boolean } & PassphraseSource,
): Promise<number> {
  if (!o.org)
    throw new KlError('KL_BAD_INPUT', "--org NAME (the organisation's name in the ledger) is required");
  const passphrase = await resolvePassphrase(o, { confirm: true });
  const c = await (await joint()).contributeNode({
    dataDir: o.data,
    passphrase,
    org: o.org,
    ...(o.url ? { url: o.url } : {}),
  });
  const file = o.out ?? `${o.data}/contribution.json`;
  if (o.out) writeJsonFile(o.out, c);
  if (o.json)
    out(JSON.stringify({ file, org: c.org, validator: c.node.validator.keyId, account: c.node.account }));
  else
    out(`contribution of ${wireText(c.org, 64)} written to ${file}
  validator   ${c.node.validator.keyId}
  registrar   ${c.registrar.keyId}
  server key  ${c.node.server.fingerprint}
  account     ${c.node.account}
next: send ${file} to the proposing organisation (keyledger genesis propose)`);
  return 0;
}

/** `keyledger genesis propose CONTRIB...`: the proposal every organisation signs. */
export async function genesisPropose(
  o: {
    files: string[];
    quorum?: string;
    name?: string;
    rpc?: string;
    data?: string;
    contract?: string;
    fromBlock?: string;
    insecureDevFunderKey?: string;
    out?: string;
    json?: boolean;
  } & PassphraseSource,
): Promise<number> {
  if (!o.rpc) throw new KlError('KL_BAD_INPUT', "--rpc URL (the chain node's JSON-RPC URL) is required");
  const quorum = Number(o.quorum);
  if (!Number.isInteger(quorum) || quorum < 1)
    throw new KlError('KL_BAD_INPUT', '--quorum N (validator approvals governance needs) is required');
  if (!!o.contract !== (o.fromBlock !== undefined))
    throw new KlError('KL_BAD_INPUT', '--contract ADDR goes with --from-block N');
  const fromBlock = Number(o.fromBlock);
  if (o.contract && !(Number.isInteger(fromBlock) && fromBlock >= 0))
    throw new KlError('KL_BAD_INPUT', '--from-block must be a block number');
  const contributions = o.files.map((f) => readJsonFile(f, 'contribution'));
  const passphrase = o.contract ? undefined : await resolvePassphrase(o);
  const proposal = await (await joint()).proposeGenesis({
    contributions,
    quorum,
    name: o.name ?? 'keyledger',
    rpcUrl: o.rpc,
    ...(o.contract ? { contract: { address: o.contract, fromBlock } } : {}),
    ...(o.data ? { dataDir: o.data } : {}),
    ...(passphrase ? { passphrase } : {}),
    ...(o.insecureDevFunderKey ? { insecureDevFunderKey: o.insecureDevFunderKey } : {}),
  });
  const file = o.out ?? 'genesis-proposal.json';
  writeJsonFile(file, proposal);
  const g = proposal.genesis;
  if (o.json)
    out(
      JSON.stringify({
        file,
        chain: proposal.chain,
        contract: g.engine && 'contract' in g.engine ? g.engine.contract : null,
      }),
    );
  else
    out(`proposal written to ${file}
  ledger      ${proposal.chain}
  orgs        ${proposal.contributions.map((c) => wireText(c.org, 64)).join(', ')}
  quorum      ${g.quorum} of ${g.validators.length} validators
next: every organisation runs \`keyledger genesis sign ${file} --data DIR\` and sends back its signature`);
  return 0;
}

/** `keyledger genesis sign PROPOSAL`: this organisation's signature of the proposal. */
export async function genesisSign(
  o: {
    file: string;
    data: string;
    expect?: string[];
    out?: string;
    json?: boolean;
  } & PassphraseSource,
): Promise<number> {
  const value = readJsonFile(o.file, 'proposal');
  const proposal = checkProposal(value);
  const organisations = summariseProposal(proposal);
  if (!o.json) {
    out(
      `ledger ${proposal.chain}, quorum ${proposal.genesis.quorum} of ${proposal.genesis.validators.length} organisations:`,
    );
    for (const org of organisations)
      out(
        `  ${wireText(org.org, 64)}: validator ${org.validator}, registrar ${org.registrar}, account ${org.account}, server ${org.serverFingerprint}${org.url ? ` at ${wireText(org.url, 200)}` : ''}`,
      );
  }
  const expected = o.expect?.length ? expectedOrganisations(o.expect) : undefined;
  // Checked before the passphrase is asked for: a proposal this organisation would refuse anyway.
  if (expected) checkProposalExpectations(proposal, expected);
  if (!expected)
    info(
      'check every organisation above against what it told you (its contribution.json), or pin them with --expect ORG=VALIDATOR_KEYID',
    );
  const passphrase = await resolvePassphrase(o);
  const sig = (await joint()).signGenesisProposal({
    dataDir: o.data,
    passphrase,
    proposal: value,
    ...(expected ? { expected } : {}),
  });
  const file = o.out ?? `genesis-signature-${sig.validator.slice(0, 8)}.json`;
  writeJsonFile(file, sig);
  out(
    o.json
      ? JSON.stringify({ file, chain: sig.chain, validator: sig.validator, organisations })
      : `signature written to ${file}: send it to the proposing organisation (keyledger genesis combine)`,
  );
  return 0;
}

/** `--expect ORG=VALIDATOR_KEYID`, repeated: the organisations a signer expects. */
function expectedOrganisations(values: string[]): Map<string, string> {
  const expected = new Map<string, string>();
  for (const value of values) {
    const match = /^([^=]+)=([0-9a-fA-F]{8,128})$/.exec(value);
    if (!match)
      throw new KlError('KL_BAD_INPUT', `--expect ${wireText(value, 80)}: give ORG=VALIDATOR_KEYID`);
    if (expected.has(match[1]!)) throw new KlError('KL_BAD_INPUT', `--expect names ${match[1]} twice`);
    expected.set(match[1]!, match[2]!);
  }
  return expected;
}

/** `keyledger genesis combine PROPOSAL SIG...`: the final joint genesis. */
export async function genesisCombine(o: { files: string[]; out?: string; json?: boolean }): Promise<number> {
  const [proposalFile, ...sigFiles] = o.files;
  const proposal = checkProposal(readJsonFile(proposalFile!, 'proposal'));
  const combined = combineProposal(
    proposal,
    sigFiles.map((f) => readJsonFile(f, 'signature')),
  );
  const file = o.out ?? 'joint-genesis.json';
  writeJsonFile(file, combined);
  out(
    o.json
      ? JSON.stringify({ file, chain: combined.chain })
      : `joint genesis of ledger ${chainIdOf(combined.genesis)} written to ${file}
next: every organisation runs \`keyledger genesis adopt ${file} --data DIR --rpc URL\` (the governing one first), then \`keyledger serve --data DIR\``,
  );
  return 0;
}

/** `keyledger genesis adopt FILE`: finishes this organisation's data directory. */
export async function genesisAdopt(
  o: { file: string; data: string; rpc?: string; json?: boolean } & PassphraseSource,
): Promise<number> {
  if (!o.rpc) throw new KlError('KL_BAD_INPUT', "--rpc URL (the chain node's JSON-RPC URL) is required");
  const value = readJsonFile(o.file, 'joint genesis');
  const passphrase = await resolvePassphrase(o);
  const r = await (await joint()).adoptGenesis({
    dataDir: o.data,
    passphrase,
    joint: value,
    rpcUrl: o.rpc,
    log: info,
  });
  out(
    o.json
      ? JSON.stringify(r)
      : `${o.data} adopted ledger ${r.chain} (${r.role === 'proposer' ? 'the server the genesis pins' : 'a server admitted at genesis time'}${r.governor ? '; this account governs the contract' : ''})
next: keyledger serve --data ${o.data}`,
  );
  return 0;
}
