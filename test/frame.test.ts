/** The AEAD frame codec (src/protocol/frame.ts): wire text, round trip, and tampering. */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { encodeFrame, openFrame, sealFrame } from '../src/protocol/frame.js';

const key = randomBytes(32);
const iv = randomBytes(12);

describe('frame codec', () => {
  it('encodeFrame gives exactly JSON.stringify of the frame, for frames of every size', () => {
    for (let i = 0; i < 200; i++) {
      const frame = sealFrame({
        key,
        iv,
        sid: randomBytes(16).toString('base64url'),
        epoch: randomInt(0, 1_000_000),
        seq: i === 0 ? Number.MAX_SAFE_INTEGER : randomInt(0, 2 ** 47),
        dir: i % 2 ? 'c2s' : 's2c',
        plaintext: randomBytes(randomInt(0, 4096)),
      });
      const text = encodeFrame(frame);
      assert.equal(text, JSON.stringify(frame));
      assert.deepEqual(JSON.parse(text), frame);
    }
  });

  it('opens what it sealed; a flipped bit, another seq or another direction does not open', () => {
    const plaintext = randomBytes(1000);
    const frame = sealFrame({ key, iv, sid: 'A'.repeat(22), epoch: 3, seq: 7, dir: 'c2s', plaintext });
    assert.deepEqual(openFrame({ key, iv, dir: 'c2s', frame }), plaintext);
    const raw = Buffer.from(frame.ct, 'base64url');
    raw[5]! ^= 1;
    for (const bad of [
      { ...frame, ct: raw.toString('base64url') },
      { ...frame, seq: 8 },
      { ...frame, epoch: 4 },
      { ...frame, sid: 'B'.repeat(22) },
    ]) {
      assert.throws(() => openFrame({ key, iv, dir: 'c2s', frame: bad }), { code: 'KL_DECRYPTION_FAILED' });
    }
    assert.throws(() => openFrame({ key, iv, dir: 's2c', frame }), { code: 'KL_DECRYPTION_FAILED' });
  });
});
