/**
 * Short form of `npm run load` (issue 7): the same program with small numbers — 60 logins at once,
 * 300 sessions making requests for 4 s — must finish with 0 errors and write its figures and chart.
 * The 10-minute run with 1,000 logins and 10,000 sessions is in docs/reliability.md.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from './helpers.js';

const run = promisify(execFile);
const load = new URL('../bench/load.ts', import.meta.url).pathname;

describe('npm run load (short form)', () => {
  it('logs in, holds sessions that make requests, reports 0 errors and plots the memory', async () => {
    const out = tempDir('kl-load-');
    const args = ['--logins', '60', '--sessions', '300', '--identities', '6', '--duration', '4s'];
    await run(
      process.execPath,
      ['--import', 'tsx', load, ...args, '--interval', '500ms', '--sample', '250ms', '--out', out],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const r = JSON.parse(readFileSync(join(out, 'load.json'), 'utf8'));
    assert.equal(r.errors.total, 0, JSON.stringify(r.errors));
    assert.equal(r.loginBurst.ok, 60);
    assert.equal(r.openSessions.ok, 300);
    assert.equal(r.soak.unexpectedCloses, 0);
    // 300 sessions, one request each per 0.4–0.6 s, for 4 s: about 2,400 answered requests.
    assert.ok(r.soak.requests >= 1500, `${r.soak.requests} requests answered`);
    assert.ok(r.soak.roundTripMs.p50 > 0 && r.soak.roundTripMs.p99 >= r.soak.roundTripMs.p50);
    // The memory samples cover the run, and the chart draws every one of them.
    const phases = new Set(r.samples.map((s: { phase: string }) => s.phase));
    for (const p of ['login burst', 'open sessions', 'soak', 'close']) assert.ok(phases.has(p), p);
    assert.ok(r.samples.every((s: { serverRssMiB: number }) => s.serverRssMiB > 10));
    assert.ok(r.samples.some((s: { sessions: number }) => s.sessions === 300));
    const svg = readFileSync(join(out, 'load.svg'), 'utf8');
    const server = /<polyline data-series="server RSS"[^>]* points="([^"]+)"/.exec(svg);
    assert.ok(server, 'the server RSS line is drawn');
    assert.equal(server[1]!.split(' ').length, r.samples.length);
  });
});
