/**
 * The registration profile split of bench:register (bench/support/register-profile.ts): a sample
 * counts for the innermost frame that belongs to a part; native frames, Node's own modules (other
 * than HTTP), @noble and src/protocol pass it to their caller; crypto with no caller on the stack
 * counts as crypto; idle time is left out; ms per registration share out the process CPU given.
 * The profile is built by hand in the inspector's format, one sample per millisecond.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CpuProfile, CpuProfileNode } from '../bench/support/profile-split.js';
import { splitRegistrationProfile } from '../bench/support/register-profile.js';

const ROOT = '/repo';
const file = (path: string) => `file://${ROOT}/${path}`;

/** A call tree from stacks (outermost first); returns the profile with one 1 ms sample per leaf listed. */
function profileOf(stacks: Array<Array<[string, string]>>): CpuProfile {
  const nodes: CpuProfileNode[] = [
    {
      id: 1,
      callFrame: { functionName: '(root)', scriptId: '0', url: '', lineNumber: -1, columnNumber: -1 },
    },
  ];
  const samples: number[] = [];
  for (const stack of stacks) {
    let parent = nodes[0]!;
    for (const [functionName, url] of stack) {
      const found = (parent.children ?? [])
        .map((id) => nodes.find((n) => n.id === id)!)
        .find((n) => n.callFrame.functionName === functionName && n.callFrame.url === url);
      if (found) {
        parent = found;
        continue;
      }
      const node: CpuProfileNode = {
        id: nodes.length + 1,
        callFrame: { functionName, scriptId: '1', url, lineNumber: 9, columnNumber: 4 },
      };
      nodes.push(node);
      parent.children = [...(parent.children ?? []), node.id];
      parent = node;
    }
    samples.push(parent.id);
  }
  return {
    nodes,
    startTime: 0,
    endTime: samples.length * 1000,
    samples,
    timeDeltas: samples.map((_, i) => (i === 0 ? 0 : 1000)),
  };
}

const TICKS: [string, string] = ['processTicksAndRejections', 'node:internal/process/task_queues'];
const policyVerify = [
  TICKS,
  ['acceptPublicKey', file('src/pgp/key-policy.ts')],
  ['verify', 'node:internal/crypto/sig'],
  ['verifyOneShot', ''],
] as Array<[string, string]>;
const blockSign = [
  ['listOnTimeout', 'node:internal/timers'],
  ['buildBlock', file('src/ledger/embedded-ledger.ts')],
  ['ed25519Sign', file('src/protocol/crypto/node.ts')],
  ['signOneShot', ''],
] as Array<[string, string]>;
const orphanCrypto = [
  TICKS,
  ['ed25519Verify', file('src/protocol/crypto/node.ts')],
  ['verifyOneShot', ''],
] as Array<[string, string]>;
const ajv = [
  ['preValidation', file('node_modules/fastify/lib/validation.js')],
  ['validate12', ''],
] as Array<[string, string]>;
const reply = [
  ['serialize', file('node_modules/fast-json-stringify/index.js')],
  ['stringify', ''],
] as Array<[string, string]>;
const canonicalForStatement = [
  ['verifyRegistration', file('src/server/registration-protocol.ts')],
  ['canonicalBytes', file('src/protocol/canonical-json.ts')],
] as Array<[string, string]>;

describe('bench:register profile split', () => {
  const profile = profileOf([
    policyVerify,
    policyVerify,
    blockSign,
    [['(idle)', '']],
    [['(garbage collector)', '']],
    orphanCrypto,
    ajv,
    reply,
    canonicalForStatement,
    [['(program)', '']],
  ]);

  it('counts each sample for the innermost frame that belongs to a part, native frames for their caller', () => {
    const p = splitRegistrationProfile(profile, 1, { root: ROOT });
    const ms = Object.fromEntries(Object.entries(p.parts).map(([k, v]) => [k, v.ms]));
    assert.deepEqual(ms, {
      openpgp: 2,
      ledger: 1, // node:crypto and src/protocol/crypto pass the block signature to src/ledger
      invites: 0,
      http: 1,
      schemas: 1, // an ajv-compiled validator has no URL but its name
      server: 1, // canonical JSON counts for the server code that asked for it
      crypto: 1, // no caller on the stack after an await
      gc: 1,
      program: 1,
      other: 0,
    });
    assert.equal(p.idleMs, 1);
    assert.equal(p.busyMs, 9);
    assert.equal(p.sampledMs, 10);
    assert.equal(p.msBasis, 'sampled time');
    assert.equal(p.parts.openpgp.msPerRegistration, 2);
    assert.deepEqual(p.topSelf[0], {
      fn: 'verifyOneShot',
      at: '(native)',
      part: 'openpgp',
      ms: 2,
      msPerRegistration: 2,
      share: +(2 / 9).toFixed(4),
    });
  });

  it('shares the process CPU out by share of busy samples, per registration', () => {
    const p = splitRegistrationProfile(profile, 2, { root: ROOT, cpuMs: 4.5 });
    assert.equal(p.msBasis, 'process CPU');
    // openpgp: 2 of 9 busy ms → 2/9 × 4.5 ms = 1 ms over 2 registrations.
    assert.equal(p.parts.openpgp.msPerRegistration, 0.5);
    assert.equal(p.parts.ledger.msPerRegistration, 0.25);
    const total = Object.values(p.parts).reduce((s, v) => s + v.msPerRegistration, 0);
    assert.ok(Math.abs(total - 2.25) < 1e-3, `parts add up to the CPU per registration (${total})`);
  });

  it('lists src/ files by the innermost src/ frame, and src/ functions by inclusive time', () => {
    const p = splitRegistrationProfile(profile, 1, { root: ROOT });
    const files = Object.fromEntries(p.srcFiles.map((f) => [f.file, f.ms]));
    assert.equal(files['src/pgp/key-policy.ts'], 2);
    assert.equal(files['src/protocol/crypto/node.ts'], 2); // block signature and the orphan verify
    assert.equal(files['src/protocol/canonical-json.ts'], 1);
    assert.equal(files['(no src/ frame)'], 4); // ajv, reply, GC, (program)
    const build = p.inclusiveSrc.find((f) => f.fn === 'buildBlock');
    assert.deepEqual(
      { at: build?.at, ms: build?.ms, part: build?.part },
      { at: 'src/ledger/embedded-ledger.ts:10:5', ms: 1, part: 'ledger' },
    );
  });
});
