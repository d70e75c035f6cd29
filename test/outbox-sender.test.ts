/**
 * The outbox sender shared by the EVM and etcd engines (src/ledger/outbox-sender.ts,
 * docs/reliability.md "The chain away"), on a real outbox file and an engine played by the test:
 * a write whose own send is under way is never sent a second time by the follower's flush; refusals
 * are reported at once, then at most once a minute with how many came since; refused entries are
 * kept up to a bound, the oldest forgotten but still counted.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ChainOutbox, REFUSED_KEPT } from '../src/ledger/chain-outbox.js';
import { OutboxSender, type OutboxTransport, type Sent } from '../src/ledger/outbox-sender.js';
import { KlError } from '../src/protocol/errors.js';
import { manualClock, tempDir } from './helpers.js';

const envelopeText = (n: number) => JSON.stringify({ tx: { type: 'AuditEvent', body: { n } } });
const txidOf = (n: number) => n.toString(16).padStart(64, '0');

function rig() {
  const clock = manualClock();
  const outbox = new ChainOutbox(join(tempDir('kl-outbox-'), 'outbox.sqlite'));
  const lines: string[] = [];
  const reports: string[] = [];
  const sender = new OutboxSender({
    outbox,
    onLedger: async () => false,
    engine: 'the test engine',
    label: 'test follower',
    now: clock,
    log: (line) => lines.push(line),
    onRefused: (_txid, reason) => reports.push(reason),
  });
  return { clock, outbox, sender, lines, reports };
}

describe('the outbox sender', () => {
  it("never sends a write twice while submit's own send of it is under way", async () => {
    const { outbox, sender } = rig();
    const sends: string[] = [];
    let release!: () => void;
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const submitted = sender.submit(txidOf(1), envelopeText(1), null, async (): Promise<Sent> => {
      sends.push(txidOf(1));
      await slow;
      return { handle: 'h1' };
    });
    const transport: OutboxTransport = {
      send: async (_envelope, text) => {
        sends.push(text);
        return { handle: 'again' };
      },
    };
    // The follower reads to the end several times while the send is slow.
    for (let i = 0; i < 5; i++) await sender.flush(transport, () => true);
    release();
    await submitted;
    assert.deepEqual(sends, [txidOf(1)], 'sent once, by submit');
    assert.equal(outbox.list()[0]?.chainTx, 'h1');
    outbox.close();
  });

  it('reports the first refusal at once, then at most one report a minute saying how many came since', () => {
    const { clock, outbox, sender, lines, reports } = rig();
    for (let n = 1; n <= 5; n++) outbox.put(txidOf(n), envelopeText(n));
    sender.refuse(txidOf(1), 'not allowed');
    assert.equal(reports.length, 1);
    for (let n = 2; n <= 4; n++) sender.refuse(txidOf(n), 'not allowed');
    assert.equal(reports.length, 1, 'within the minute: counted, not reported');
    assert.equal(outbox.refusedCount(), 4);
    clock.advance(59_999);
    sender.refuse(txidOf(5), 'not allowed');
    assert.equal(reports.length, 1, 'still within the minute');
    clock.advance(1);
    outbox.put(txidOf(6), envelopeText(6));
    sender.refuse(txidOf(6), 'not allowed');
    assert.equal(reports.length, 2);
    assert.match(reports[1]!, /not allowed \(5 refused since the last report\)/);
    assert.equal(lines.length, 2);
    outbox.close();
  });

  it('keeps at most REFUSED_KEPT refused entries, the oldest forgotten but counted', () => {
    const { clock, outbox, sender } = rig();
    const total = REFUSED_KEPT + 25;
    for (let n = 1; n <= total; n++) {
      outbox.put(txidOf(n), envelopeText(n));
      clock.advance(1);
      sender.refuse(txidOf(n), `refused ${n}`);
    }
    assert.equal(outbox.refusedCount(), total);
    const kept = outbox.refused(total);
    assert.equal(kept.length, REFUSED_KEPT);
    assert.equal(kept[0]?.reason, 'refused 26', 'the oldest forgotten first');
    assert.equal(outbox.size(), 0, 'nothing refused waits to be sent');
    outbox.close();
  });

  it('a write the engine refuses outright is kept as refused and the refusal thrown; one it cannot take now is queued', async () => {
    const { outbox, sender } = rig();
    const refused = new KlError('KL_NOT_PERMITTED', 'not a registrar');
    await assert.rejects(
      sender.submit(txidOf(1), envelopeText(1), null, async () => {
        throw refused;
      }),
      (err) => err === refused,
    );
    assert.equal(outbox.refusedCount(), 1);
    await assert.rejects(
      sender.submit(txidOf(2), envelopeText(2), null, async () => {
        throw new KlError('KL_LEDGER_UNAVAILABLE', 'no quorum');
      }),
      (err: KlError) => err.code === 'KL_LEDGER_UNAVAILABLE' && err.details?.queued === true,
    );
    assert.equal(outbox.size(), 1);
    // Later writes join the queue behind it, in order.
    await assert.rejects(
      sender.submit(txidOf(3), envelopeText(3), null, async () => ({ handle: null })),
      /earlier writes wait for the test engine/,
    );
    assert.deepEqual(
      outbox.list().map((e) => e.txid),
      [txidOf(2), txidOf(3)],
    );
    outbox.close();
  });
});
