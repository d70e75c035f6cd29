/**
 * A real local EVM node for the EVM-engine tests: anvil (Foundry), from the npm package
 * @foundry-rs/anvil, on 127.0.0.1 at a free port, automining, optionally keeping its state in a file
 * (so a restart keeps the chain). Started and stopped by the tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { freePort } from './free-port.js';

/** Anvil's first development account: public knowledge, funds the test nodes' accounts. */
export const ANVIL_FUNDER_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

const require = createRequire(import.meta.url);

function anvilBinary(): string {
  const pkg = `@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`;
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil');
}

/** A running anvil. */
export interface Anvil {
  url: string;
  port: number;
  child: ChildProcess;
  /** One JSON-RPC call (e.g. `evm_snapshot`, `evm_revert`, `evm_mine`); throws the node's error. */
  rpc(method: string, params?: unknown[]): Promise<unknown>;
  stop(): Promise<void>;
}

/** One JSON-RPC call to `url`. */
async function rpcCall(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await r.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/** Starts anvil; resolves when its JSON-RPC answers. `stateFile` keeps the chain across restarts. */
export async function startAnvil(o: { port?: number; stateFile?: string } = {}): Promise<Anvil> {
  const port = o.port ?? (await freePort());
  const child = spawn(
    anvilBinary(),
    [
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--silent',
      ...(o.stateFile ? ['--state', o.stateFile, '--state-interval', '1'] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      });
      if (r.ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`anvil did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    child,
    rpc: (method, params) => rpcCall(url, method, params),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Starts anvil nodes for one test file and stops each after the file's tests (call it at the top
 * level of the file).
 */
export function anvilsStoppedAfter(): (o?: { port?: number; stateFile?: string }) => Promise<Anvil> {
  const started: Anvil[] = [];
  after(async () => {
    for (const a of started) await a.stop();
  });
  return async (o = {}) => {
    const a = await startAnvil(o);
    started.push(a);
    return a;
  };
}
