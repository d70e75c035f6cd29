import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLayers, importsOf, readTree } from './support/layers.js';

describe('architecture: layers import only what they may', () => {
  it('the source tree follows the layer rules (client never imports server)', () => {
    const files = readTree(new URL('../src', import.meta.url).pathname);
    assert.ok(files.size > 10);
    assert.deepEqual(checkLayers(files), []);
  });

  it('the checker catches a client importing server code, storage, or a lower layer reaching up', () => {
    const problems = checkLayers(
      new Map([
        [
          'client/login.ts',
          "import { startServer } from '../server/app.js';\nimport x from '../ledger/embedded-ledger.js';",
        ],
        ['client/ok.ts', "import { verifyTransactionReceipt } from '../ledger/proofs.js';"],
        [
          'protocol/frame.ts',
          "import { readFileSync } from 'node:fs';\nexport { a } from '../ledger/merkle.js';",
        ],
        ['ledger/x.ts', "const m = await import('../server/hooks.js');"],
        [
          'dashboard/app.ts',
          "import { startServer } from '../server/app.js';\nimport { EmbeddedLedger } from '../ledger/embedded-ledger.js';\nimport x from 'left-pad';",
        ],
        ['dashboard/verifier.ts', "export { verifyTransactionReceipt } from '../ledger/proofs.js';"],
      ]),
    );
    assert.deepEqual(problems, [
      'client/login.ts: client must not import server (../server/app.js)',
      'client/login.ts: client must not import ledger storage (../ledger/embedded-ledger.js)',
      'protocol/frame.ts: protocol must not import node:fs',
      'protocol/frame.ts: protocol must not import ledger (../ledger/merkle.js)',
      'ledger/x.ts: ledger must not import server (../server/hooks.js)',
      'dashboard/app.ts: dashboard must not import server (../server/app.js)',
      'dashboard/app.ts: dashboard must not import ledger storage (../ledger/embedded-ledger.js)',
      'dashboard/app.ts: dashboard must not import left-pad',
    ]);
  });

  it('reads static, re-export and dynamic imports', () => {
    assert.deepEqual(
      importsOf(
        "import a from 'a';\nimport type { B } from './b.js';\nexport * from \"./c.js\";\nawait import('d');",
      ),
      ['a', './b.js', './c.js', 'd'],
    );
  });
});
