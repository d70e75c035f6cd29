/**
 * Admitting a further server of a chain-ordered deployment, and removing a registrar
 * (docs/deploy-besu.md "A second server"): `keyledger admin registrar add|remove|list` through the
 * governor's DATA/admin.sock. Admitting writes `RegistrarAdded` with the server (approved by this
 * node's validator), then lets the server's Ethereum account write to the contract; removing stops
 * the account first, then writes `RegistrarRemoved`, so a removed registrar can no longer write.
 */
import * as openpgp from 'openpgp';
import type { EmbeddedLedger } from '../ledger/embedded-ledger.js';
import { checkJoinRequest } from '../ledger/node-admission.js';
import type { TransactionReceipt } from '../ledger/proofs.js';
import type { RegistrarRecord } from '../ledger/state-machine.js';
import { KlError } from '../protocol/errors.js';

/** What the governor does on the chain: let an Ethereum account write to the contract, or stop it. */
export interface RegistrarAccounts {
  setAccount(account: string, allowed: boolean): Promise<void>;
}

/** A registrar as operators see it. */
export interface RegistrarView {
  keyId: string;
  name: string;
  active: boolean;
  /** Height of the block that added it (0: the genesis). */
  since: number;
  /** The server it runs, for servers admitted to a chain-ordered deployment. */
  server?: { fingerprint: string; validator: string; account?: string; url?: string };
}

/** The registrars of the ledger, genesis first. */
export function listRegistrars(ledger: EmbeddedLedger): RegistrarView[] {
  return ledger
    .registrars()
    .map(view)
    .sort((a, b) => a.since - b.since || a.name.localeCompare(b.name));
}

function view(r: RegistrarRecord): RegistrarView {
  return {
    keyId: r.keyId,
    name: r.name,
    active: r.active,
    since: r.since,
    ...(r.node
      ? {
          server: {
            fingerprint: r.node.server.fingerprint,
            validator: r.node.validator.keyId,
            ...(r.node.account ? { account: r.node.account } : {}),
            ...(r.node.url ? { url: r.node.url } : {}),
          },
        }
      : {}),
  };
}

/**
 * Admits the server of a join request: checks it is for this ledger, that its OpenPGP key reads and
 * has the fingerprint it claims, and that it is not a registrar yet; writes its admission, then
 * lets its account write.
 * @throws KlError `KL_BAD_INPUT` (another ledger, a bad key), `KL_REGISTRAR_EXISTS`,
 * `KL_NOT_PERMITTED` (not the governor), `KL_LEDGER_UNAVAILABLE`
 */
export async function admitServer(o: {
  ledger: EmbeddedLedger;
  accounts: RegistrarAccounts | undefined;
  request: unknown;
}): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }> {
  const request = checkJoinRequest(o.request);
  if (!o.ledger.genesis.engine || !o.accounts)
    throw new KlError('KL_NOT_PERMITTED', 'only a ledger ordered by a chain can have further servers');
  if (request.chain !== o.ledger.chainId)
    throw new KlError('KL_BAD_INPUT', 'this join request is for another ledger than this server’s');
  let fingerprint: string;
  try {
    fingerprint = (await openpgp.readKey({ armoredKey: request.node.server.publicKey })).getFingerprint();
  } catch {
    throw new KlError('KL_BAD_INPUT', 'the server key of the join request is not a readable OpenPGP key');
  }
  if (fingerprint !== request.node.server.fingerprint)
    throw new KlError(
      'KL_BAD_INPUT',
      'the server key of the join request does not have the fingerprint it claims',
    );
  const known = o.ledger.registrars().find((r) => r.keyId === request.keyId || r.name === request.name);
  if (known?.active)
    throw new KlError(
      'KL_REGISTRAR_EXISTS',
      `a registrar with this key or the name ${request.name} is already active`,
    );
  // The admission first: an account is let write only once its server is on the ledger (a
  // failed admission leaves no account able to write).
  const receipt = await o.ledger.governance({
    type: 'RegistrarAdded',
    body: { keyId: request.keyId, publicKey: request.publicKey, name: request.name, node: request.node },
  });
  if (request.node.account) await o.accounts.setAccount(request.node.account, true);
  const added = o.ledger.registrars().find((r) => r.keyId === request.keyId);
  return { receipt, registrar: view(added!) };
}

/**
 * Removes a registrar (by key id or name): its account stops writing on the chain, then
 * `RegistrarRemoved` is written; its server's later writes are refused by the contract and by the
 * ledger's rules.
 * @throws KlError `KL_REGISTRAR_UNKNOWN`, `KL_NOT_PERMITTED`, `KL_LEDGER_UNAVAILABLE`
 */
export async function removeRegistrar(o: {
  ledger: EmbeddedLedger;
  accounts: RegistrarAccounts | undefined;
  which: string;
}): Promise<{ receipt: TransactionReceipt; registrar: RegistrarView }> {
  const matches = o.ledger
    .registrars()
    .filter((r) => r.active && (r.keyId === o.which || r.name === o.which));
  if (matches.length === 0)
    throw new KlError('KL_REGISTRAR_UNKNOWN', `no active registrar has the key id or name ${o.which}`);
  if (matches.length > 1)
    throw new KlError('KL_BAD_INPUT', `several registrars are named ${o.which}: give the key id`);
  const target = matches[0]!;
  if (o.ledger.registrars().filter((r) => r.active).length === 1)
    throw new KlError(
      'KL_NOT_PERMITTED',
      'the last active registrar cannot be removed: nobody could write any more',
    );
  if (target.node?.account && o.accounts) await o.accounts.setAccount(target.node.account, false);
  const receipt = await o.ledger.governance({ type: 'RegistrarRemoved', body: { keyId: target.keyId } });
  return { receipt, registrar: { ...view(target), active: false } };
}
