/**
 * The benchmarks' shared command line, continued from test/bench-cli.test.ts (split so that each
 * file stays well within the test runner's time limit per file): the engine, open, start-up and load
 * benchmarks in their smallest smoke configuration with `--json` print one JSON document with their
 * figures, baselines and run record, and write nothing into the working tree.
 */
import { describe, it } from 'node:test';
import { BENCHMARKS, checkSmokeJson } from './support/bench-runs.js';

const HERE = ['ledger-evm', 'ledger-etcd', 'ledger-open', 'cli-start', 'load'];

describe('benchmarks: --json of the engine, open, start-up and load benchmarks', () => {
  for (const b of BENCHMARKS.filter((x) => HERE.includes(x.name))) {
    it(`${b.name}: --json prints one JSON document with its figures, baselines and run record; writes nothing`, () =>
      checkSmokeJson(b));
  }
});
