/**
 * The writer of `serve`'s event lines (src/cli/console-writer.ts): it never blocks the server and
 * never holds more than its bound, whatever the reader of stdout does; and the JSON form of a line
 * cannot drive a terminal (src/cli/event-line.ts jsonLine).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { consoleWriter } from '../src/cli/console-writer.js';
import { jsonLine } from '../src/cli/event-line.js';

type Done = (err: NodeJS.ErrnoException | null, written: number) => void;

/** A stdout that answers only when told: what was written, and the pending callbacks. */
function heldOutput() {
  const written: string[] = [];
  const pending: Array<{ data: Buffer; done: Done }> = [];
  return {
    written,
    pending,
    write: (_fd: number, data: Buffer, done: Done) => pending.push({ data, done }),
    /** Completes the oldest write: all of it, `bytes` of it, or with `error`. */
    complete(o: { bytes?: number; error?: string } = {}) {
      const w = pending.shift()!;
      if (o.error) return w.done(Object.assign(new Error(o.error), { code: o.error }), 0);
      const n = o.bytes ?? w.data.length;
      written.push(w.data.subarray(0, n).toString());
      w.done(null, n);
    },
  };
}

describe('console writer of serve', () => {
  it('a reader that stops: one write in flight, at most maxWaiting lines kept, the loss said later', () => {
    const out = heldOutput();
    const w = consoleWriter({ write: out.write, maxWaiting: 10 });
    for (let i = 0; i < 1_000; i++) w.line(`line ${i}`);
    assert.equal(out.pending.length, 1, 'one write in flight, nothing else started');
    assert.equal(out.pending[0]!.data.toString(), 'line 0\n');
    assert.equal(w.dropped, 1_000 - 1 - 10, 'the first went out, ten wait, the rest are dropped');
    out.complete();
    assert.equal(out.pending.length, 1);
    const next = out.pending[0]!.data.toString().split('\n');
    assert.deepEqual(
      next.slice(0, 10),
      Array.from({ length: 10 }, (_, i) => `line ${i + 1}`),
    );
    assert.equal(next[10], '989 event line(s) dropped: stdout was not read fast enough');
    out.complete();
    assert.equal(out.pending.length, 0);
    w.line('after');
    out.complete();
    assert.equal(out.written.at(-1), 'after\n', 'the loss is said once');
  });

  it('a partial write goes on with the rest; a full pipe (EAGAIN) is tried again, nothing lost', async () => {
    const out = heldOutput();
    const w = consoleWriter({ write: out.write });
    w.line('abcdef');
    out.complete({ bytes: 2 });
    assert.equal(out.pending[0]!.data.toString(), 'cdef\n');
    out.complete({ error: 'EAGAIN' });
    w.line('more');
    assert.equal(out.pending.length, 0, 'waits before trying again');
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(out.pending[0]!.data.toString(), 'cdef\n');
    out.complete();
    out.complete();
    assert.equal(out.written.join(''), 'abcdef\nmore\n');
    assert.equal(w.gone, false);
  });

  it('any other error ends the output, once, and only the output', () => {
    const out = heldOutput();
    const told: string[] = [];
    const w = consoleWriter({ write: out.write, onGone: (err) => told.push(err.code ?? '') });
    w.line('one');
    w.line('two');
    out.complete({ error: 'ENOSPC' });
    assert.equal(w.gone, true);
    assert.deepEqual(told, ['ENOSPC']);
    w.line('three');
    assert.equal(out.pending.length, 0, 'nothing more is written');
  });
});

describe('JSON event lines', () => {
  it('escape what JSON leaves raw (C1, bidi, line separators, tags) and mean the same', () => {
    const value = { id: 'x\u009b[2J\u202eevil\u2028\u{E0041}@example.org', n: 1 };
    const text = jsonLine(value);
    assert.doesNotMatch(text, /[\u0080-\u009f\u2028\u2029\u202a-\u202e]/u);
    assert.doesNotMatch(text, /[\u{E0000}-\u{E007F}]/u);
    assert.match(text, /\\u009b\[2J\\u202eevil\\u2028\\udb40\\udc41@/);
    assert.deepEqual(JSON.parse(text), value);
  });
});
