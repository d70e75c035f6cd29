// Compiles contracts/*.sol with solc-js (the pinned `solc` npm package) into dist/contracts/NAME.json
// ({ abi, bytecode, solcVersion, sourceHash }). Part of `npm run build`: the ABI and bytecode always
// come from this build, never from a copied file.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import solc from 'solc';

const dir = new URL('../contracts/', import.meta.url);
const out = new URL('../dist/contracts/', import.meta.url);
mkdirSync(out, { recursive: true });
const sources = Object.fromEntries(
  readdirSync(dir)
    .filter((f) => f.endsWith('.sol'))
    .map((f) => [f, { content: readFileSync(new URL(f, dir), 'utf8') }]),
);
// Up to date (same sources, same compiler): nothing to do, so a second build in a row is quick.
const built = existsSync(out)
  ? readdirSync(out)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(new URL(f, out), 'utf8')))
  : [];
const upToDate = Object.entries(sources).every(([file, { content }]) => {
  const hash = createHash('sha256').update(content).digest('hex');
  const made = built.filter((b) => b.source === `contracts/${file}`);
  return made.length > 0 && made.every((b) => b.sourceHash === hash && b.solcVersion === solc.version());
});
if (upToDate) process.exit(0);
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'london', // Besu/GoQuorum QBFT networks commonly run without PUSH0 (shanghai)
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const result = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (result.errors ?? []).filter((e) => e.severity === 'error');
for (const e of result.errors ?? []) process.stderr.write(`${e.formattedMessage}\n`);
if (errors.length) process.exit(1);
for (const [file, contracts] of Object.entries(result.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    writeFileSync(
      new URL(`${name}.json`, out),
      `${JSON.stringify(
        {
          contract: name,
          source: `contracts/${file}`,
          sourceHash: createHash('sha256').update(sources[file].content).digest('hex'),
          solcVersion: solc.version(),
          abi: c.abi,
          bytecode: `0x${c.evm.bytecode.object}`,
        },
        null,
        2,
      )}\n`,
    );
  }
}
