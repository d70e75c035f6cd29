import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { toHex } from '../src/protocol/bytes.js';
import { canonicalBytes, canonicalize } from '../src/protocol/canonical-json.js';

/** RFC 8785's own test data (test/fixtures/rfc8785/README.md says where it comes from). */
const RFC8785 = new URL('./fixtures/rfc8785/', import.meta.url);

describe('RFC 8785 canonical JSON', () => {
  it('sorts object members by UTF-16 code units, recursively (RFC 8785 §3.2.3)', () => {
    // The sorting example of RFC 8785 §3.2.3: keys given in this order must come out sorted.
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'];
    const expected = `{${order.map((k) => `${JSON.stringify(k)}:${JSON.stringify(input[k as keyof typeof input])}`).join(',')}}`;
    assert.equal(canonicalize(input), expected);
    assert.equal(canonicalize({ b: [3, { z: 1, a: 2 }], a: null }), '{"a":null,"b":[3,{"a":2,"z":1}]}');
  });

  it('serialises numbers like ECMAScript (RFC 8785 §3.2.2.3 examples)', () => {
    const cases: Array<[number, string]> = [
      [0, '0'],
      [-0, '0'],
      [1e21, '1e+21'],
      [1e-7, '1e-7'],
      [333333333.3333332, '333333333.3333332'],
      [9007199254740991, '9007199254740991'],
      [-1.5, '-1.5'],
      [4.5, '4.5'],
      [2e-3, '0.002'],
    ];
    for (const [n, s] of cases) assert.equal(canonicalize(n), s, `number ${n}`);
  });

  it('escapes strings as JSON.stringify does, leaving non-ASCII as is', () => {
    assert.equal(canonicalize('a"\\\n\u0001é€'), '"a\\"\\\\\\n\\u0001é€"');
  });

  it('refuses values JSON cannot carry instead of dropping them', () => {
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      10n,
      () => 1,
      Symbol('x'),
      new Date(0),
      new Map(),
    ]) {
      assert.throws(() => canonicalize(bad), TypeError);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => canonicalize(cyclic), /cycle/);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.throws(() => canonicalize(deep), /too deep/);
  });

  it('matches every RFC 8785 test data pair (input → output, and the hex bytes of outhex)', () => {
    const names = readdirSync(new URL('input/', RFC8785)).filter((f) => f.endsWith('.json'));
    assert.deepEqual(names.sort(), [
      'arrays.json',
      'french.json',
      'structures.json',
      'unicode.json',
      'values.json',
      'weird.json',
    ]);
    for (const name of names) {
      const input = JSON.parse(readFileSync(new URL(`input/${name}`, RFC8785), 'utf8')) as unknown;
      const output = readFileSync(new URL(`output/${name}`, RFC8785));
      const outhex = readFileSync(new URL(`outhex/${name.replace(/\.json$/, '.txt')}`, RFC8785), 'utf8');
      const bytes = canonicalBytes(input);
      assert.equal(toHex(bytes), toHex(output), name);
      assert.equal(toHex(bytes), outhex.replace(/\s+/g, ''), `${name} (outhex)`);
      // The canonical form is a fixed point.
      assert.equal(canonicalize(JSON.parse(output.toString('utf8'))), output.toString('utf8'), name);
    }
  });

  it('omits undefined members (as JSON does) and is stable under key order', () => {
    assert.equal(canonicalize({ a: 1, b: undefined }), '{"a":1}');
    assert.equal(canonicalize({ x: 1, y: 2 }), canonicalize({ y: 2, x: 1 }));
  });
});
