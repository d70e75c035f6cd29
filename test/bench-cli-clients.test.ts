/**
 * The benchmarks' shared command line, continued from test/bench-cli.test.ts (split so that each file
 * stays well within the test runner's time limit per file): the registration, session, start-up and load benchmarks, in their smallest smoke
 * configuration with `--json`, print one JSON document with their figures, baselines and run record,
 * and write nothing into the working tree.
 */
import { smokeJsonSuite } from './support/bench-runs.js';

smokeJsonSuite('benchmarks: --json of the registration, session, start-up and load benchmarks', [
  'register',
  'session',
  'cli-start',
  'load',
]);
