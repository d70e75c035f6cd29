/**
 * Setting an identity's recovery key from an authenticated session (docs/protocol.md "Recovery"):
 * the session's device and the recovery key sign one RecoveryKeyStatement; replacing a recovery key
 * takes the current one's signature too. The session's device must still be active on the ledger.
 */
import type { TransactionReceipt } from '../ledger/proofs.js';
import { acceptPublicKey } from '../pgp/key-policy.js';
import { readPublicKey, verifyDetached } from '../pgp/messages.js';
import type { ChannelMessage } from '../protocol/channel.js';
import { KlError } from '../protocol/errors.js';
import { RecoveryKeyStatementSchema } from '../protocol/schemas/statements.js';
import { statementBytes } from '../protocol/statements.js';
import { type DeviceSessionContext, sessionDevice, verifyByDevice } from './device-session.js';
import { parseSessionStatement, STATEMENT_SKEW_MS } from './session-statement.js';
import type { Session } from './sessions.js';

/** `set-recovery-key`: RecoveryKeySet, signed by the session's device and the recovery key. */
export async function setRecoveryKey(
  ctx: DeviceSessionContext,
  s: Session,
  m: Extract<ChannelMessage, { t: 'set-recovery-key' }>,
): Promise<{ receipt: TransactionReceipt }> {
  const now = ctx.now();
  const statement = parseSessionStatement(m.statement, RecoveryKeyStatementSchema, {
    id: s.id,
    chain: ctx.ledger.chainId,
    now,
  });
  const device = await sessionDevice(ctx.ledger, s);
  const data = statementBytes(statement);
  await verifyByDevice(ctx, device, data, m.signature);
  const key = await acceptPublicKey(m.publicKey, new Date(now), 'recovery');
  if (key.fingerprint !== statement.fingerprint)
    throw new KlError('KL_STATEMENT_INVALID', 'the statement names another key');
  const verify = (armoredSignature: unknown, publicKey: Parameters<typeof verifyDetached>[0]['key']) =>
    verifyDetached({
      data,
      armoredSignature,
      key: publicKey,
      now: new Date(now),
      maxSkewMs: STATEMENT_SKEW_MS,
    });
  await verify(m.keySignature, key.key);
  const current = (await ctx.ledger.getKeyRecord(s.id)).record?.recovery;
  if (current) {
    if (m.replacesSignature === undefined)
      throw new KlError('KL_RECOVERY_INVALID', 'replacing the recovery key takes the current recovery key');
    await verify(m.replacesSignature, await readPublicKey(current.publicKey));
  }
  const receipt = await ctx.ledger.submit({
    type: 'RecoveryKeySet',
    body: {
      id: s.id,
      fingerprint: key.fingerprint,
      publicKey: key.armored,
      algorithm: key.algorithm,
      time: statement.time,
      setBy: { device: device.fingerprint, signature: String(m.signature) },
      keySignature: String(m.keySignature),
      ...(current
        ? { replaces: { fingerprint: current.fingerprint, signature: String(m.replacesSignature) } }
        : {}),
    },
  });
  return { receipt };
}
