import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { dataPaths } from '../src/ledger/data-dir.js';
import { openKeyFile } from '../src/ledger/sealed-key-file.js';
import { signTransaction, type TxEnvelope } from '../src/ledger/transactions.js';
import { verifyLedgerData } from '../src/ledger/verify-ledger.js';
import { isKlError } from '../src/protocol/errors.js';
import { freshLedger, PASSPHRASE, registration } from './helpers.js';

function setup() {
  const { ledger, dataDir } = freshLedger();
  const registrar = openKeyFile(dataPaths(dataDir).registrarKey, PASSPHRASE, 'registrar');
  const valid = signTransaction({
    chain: ledger.chainId,
    intent: { type: 'KeyRegistered', body: registration('valid@example.org') },
    signer: registrar,
    now: Date.now(),
    nonce: randomBytes(16).toString('hex'),
  });
  return { ledger, dataDir, valid };
}

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  );
  assert.ok(isKlError(err), `not a typed error: ${String(err)}`);
  return { code: err.code, message: err.message };
}

describe('malformed and oversized transactions', () => {
  it('get a typed error naming the problem, and nothing is written', async () => {
    const { ledger, dataDir, valid } = setup();
    const v = JSON.parse(JSON.stringify(valid)) as TxEnvelope & { tx: Record<string, unknown> };
    const cases: Array<[string, unknown, RegExp]> = [
      ['null', null, /must be an object/],
      ['array', [valid], /must be an object/],
      ['string', 'hello', /must be an object/],
      ['no signature', { tx: v.tx }, /sig is required/],
      ['extra envelope field', { ...v, extra: 1 }, /extra is not an allowed field/],
      ['extra tx field', { ...v, tx: { ...v.tx, admin: true } }, /tx.admin is not an allowed field/],
      [
        'extra body field',
        { ...v, tx: { ...v.tx, body: { ...(v.tx.body as object), isAdmin: true } } },
        /body.isAdmin is not an allowed field/,
      ],
      ['unknown type', { ...v, tx: { ...v.tx, type: 'MintCoins' } }, /tx.type must be one of/],
      ['time as text', { ...v, tx: { ...v.tx, time: '2026' } }, /tx.time must be an integer/],
      ['negative time', { ...v, tx: { ...v.tx, time: -1 } }, /tx.time must be between/],
      ['fractional version', { ...v, tx: { ...v.tx, v: 1.5 } }, /tx.v must be an integer/],
      ['short nonce', { ...v, tx: { ...v.tx, nonce: 'abc' } }, /tx.nonce has the wrong format/],
      [
        'bad fingerprint',
        { ...v, tx: { ...v.tx, body: { ...(v.tx.body as object), fingerprint: 'XYZ' } } },
        /body.fingerprint has the wrong format/,
      ],
      [
        'not an armored key',
        { ...v, tx: { ...v.tx, body: { ...(v.tx.body as object), publicKey: 'hello' } } },
        /body.publicKey has the wrong format/,
      ],
      [
        'oversized key',
        {
          ...v,
          tx: {
            ...v.tx,
            body: {
              ...(v.tx.body as object),
              publicKey: `-----BEGIN PGP PUBLIC KEY BLOCK-----\n${'A'.repeat(100_000)}\n-----END PGP PUBLIC KEY BLOCK-----`,
            },
          },
        },
        /at most 32768 characters/,
      ],
      [
        'prototype key',
        JSON.parse(`{"tx":${JSON.stringify(v.tx)},"sig":"${v.sig}","__proto__":{"x":1}}`),
        /__proto__ is not an allowed field/,
      ],
      ['signature too short', { ...v, sig: 'AAAA' }, /sig has the wrong format/],
    ];
    for (const [name, value, message] of cases) {
      const r = await rejection(ledger.submitSigned(value as TxEnvelope));
      assert.equal(r.code, 'KL_TX_MALFORMED', name);
      assert.match(r.message, message, name);
    }
    const r = await rejection(
      ledger.submit({
        type: 'AuditEvent',
        body: { event: 'login', at: 1, detail: { nested: { deep: 1 } } },
      } as never),
    );
    assert.match(r.message, /body.detail.nested must be a short string/);
    const r2 = await rejection(ledger.submit({ type: 'AuditEvent', body: { event: 'Login!', at: 1 } }));
    assert.match(r2.message, /body.event has the wrong format/);
    assert.equal(await ledger.checkpoint(), null);
    await ledger.submitSigned(valid); // the valid one still works afterwards
    await ledger.close();
    assert.ok(verifyLedgerData({ dataDir }).ok);
  });

  it('random mutations of a signed transaction are all refused with typed errors (2,000 cases)', async () => {
    const { ledger, dataDir, valid } = setup();
    const text = JSON.stringify(valid);
    const junk = [null, true, 0, -1, 1e308, '', 'x'.repeat(70_000), [], {}, { a: [] }, '\u0000', 'é'];
    let parsedCases = 0;
    for (let i = 0; i < 2000; i++) {
      let candidate: unknown;
      if (i % 2 === 0) {
        // Byte-level: flip, insert or delete a character, keep what still parses.
        const pos = randomInt(text.length);
        const ops = [
          () => text.slice(0, pos) + String.fromCharCode(randomInt(32, 127)) + text.slice(pos + 1),
          () => text.slice(0, pos) + text.slice(pos + 1),
          () => text.slice(0, pos) + '"' + text.slice(pos),
        ];
        try {
          candidate = JSON.parse(ops[randomInt(ops.length)]!());
        } catch {
          continue;
        }
      } else {
        // Structural: replace one field anywhere with junk.
        const copy = JSON.parse(text);
        const paths = [
          ['sig'],
          ['tx', 'v'],
          ['tx', 'chain'],
          ['tx', 'type'],
          ['tx', 'time'],
          ['tx', 'nonce'],
          ['tx', 'signer'],
          ['tx', 'body'],
          ['tx', 'body', 'id'],
          ['tx', 'body', 'name'],
          ['tx', 'body', 'fingerprint'],
          ['tx', 'body', 'publicKey'],
          ['tx', 'body', 'algorithm'],
        ];
        const path = paths[randomInt(paths.length)]!;
        let target = copy;
        for (const p of path.slice(0, -1)) target = target[p];
        target[path.at(-1)!] = junk[randomInt(junk.length)];
        candidate = copy;
      }
      if (JSON.stringify(candidate) === text) continue;
      parsedCases += 1;
      await rejection(ledger.submitSigned(candidate as TxEnvelope));
    }
    assert.ok(parsedCases > 500, `only ${parsedCases} cases exercised`);
    assert.equal(await ledger.checkpoint(), null, 'no mutation was accepted');
    await ledger.close();
    assert.ok(verifyLedgerData({ dataDir }).ok);
  });
});
