// src/lines/run.ts reading files: a regular file is read in 1 MiB blocks
// into two buffers in turn, the next read under way while a chunk is
// processed, each chunk cut at a line end. Files of several megabytes with
// lines across the block ends, an over-long line, CRLF and a last line
// without its newline come out as the same files read as streams do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { runLines, Gate, type RunCounts } from '../../src/lines/run.js';
import type { Source } from '../../src/input.js';

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(tmpdir(), 'ctf-lines-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Lines of varied lengths (a few bytes to a few kilobytes), so that block ends fall anywhere. */
function lines(n: number, seed: number): string[] {
  const out: string[] = [];
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(JSON.stringify({ event: 'x', n: i, pad: 'p'.repeat(x % 3000) }));
  }
  return out;
}

async function run(sources: Source[], maxLine = 1 << 20, jobs = 0, busySpanMs?: number): Promise<{ out: string; diags: string[]; counts: RunCounts }> {
  let out = '';
  const sink = new Writable({ write(c, _e, cb) { out += c.toString(); cb(); } });
  const diags: string[] = [];
  const counts = await runLines({
    spec: { name: 'filter', options: { spec: {} }, parallel: jobs > 0 },
    sources, out: sink, jobs, maxLine, busySpanMs,
    onDiag: (t) => diags.push(t),
    onSourceError: (s, e) => diags.push(`${s.name}: ${e.message}`),
  });
  return { out, diags, counts };
}

const asFile = (name: string, file: string): Source => ({ name, path: file, open: () => createReadStream(file) });
const asStream = (name: string, file: string): Source => ({ name, open: () => createReadStream(file, { highWaterMark: 64 * 1024 }) });

test('files of several blocks read directly are the same lines as read as streams, in order, across files', async () => {
  const a = lines(3000, 1), b = lines(2500, 2);
  const long = JSON.stringify({ event: 'x', pad: 'L'.repeat(1_500_000) });
  // A's lines with CRLF, an over-long line in the middle of B, and B's last line without its newline.
  const fa = path.join(tmp, 'a.ndjson'), fb = path.join(tmp, 'b.ndjson'), fe = path.join(tmp, 'empty.ndjson');
  writeFileSync(fa, a.join('\r\n') + '\r\n');
  writeFileSync(fb, b.slice(0, 1000).join('\n') + '\n' + long + '\n' + b.slice(1000).join('\n'));
  writeFileSync(fe, '');
  const want = a.join('\n') + '\n' + b.join('\n') + '\n';
  const direct = await run([asFile('a', fa), asFile('empty', fe), asFile('b', fb)]);
  const streamed = await run([asStream('a', fa), asStream('empty', fe), asStream('b', fb)]);
  assert.ok(want.length > 3 << 20, 'several blocks');
  assert.equal(direct.out, want);
  assert.equal(streamed.out, want);
  // (The length has a `+` when it was counted across reads, as it may be in a stream.)
  for (const r of [direct, streamed]) {
    assert.equal(r.diags.length, 1);
    assert.equal(r.diags[0].replace('+', ''), `b:1001: line longer than 1048576 bytes (${long.length}), skipped`);
  }
  assert.deepEqual(direct.counts, streamed.counts);
  assert.deepEqual(direct.counts, { lines: a.length + b.length + 1, bad: 1, failedSources: 0, parallel: false });
});

test('a file with no line end at all, longer than a block: one over-long line', async () => {
  const f = path.join(tmp, 'one.ndjson');
  writeFileSync(f, 'x'.repeat(2_500_000));
  const r = await run([asFile('one', f)]);
  assert.equal(r.out, '');
  assert.equal(r.diags.length, 1);
  assert.match(r.diags[0], /^one:1: line longer than 1048576 bytes/);
});

/** Flow events of about 600 bytes, as ct-attribute writes them. */
function events(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(JSON.stringify({ ts: '2026-11-23T00:00:00.000001Z', event: 'new', id: i, family: 'ipv4', proto: 'udp', src: '10.0.0.5', sport: 40000 + (i % 20000), dst: '127.201.0.1', dport: 10000 + (i % 50000),
      process: { pid: 4242, uid: 0, user: 'root', comm: 'flood', cmdline: ['flood', String(i), 'x'.repeat(300)] }, attribution: { method: 'bpf', ok: true } }));
  }
  return out;
}

test('a stream this thread keeps up with stays in this thread, whatever the size of its reads', async () => {
  const ev = events(4000);
  const input = new PassThrough();
  const done = run([{ name: 'stdin', open: () => input }], 1 << 20, 2);
  // 64 KiB and more a write (reads of that size started the workers before), with pauses between.
  for (let i = 0; i < ev.length; i += 120) {
    input.write(ev.slice(i, i + 120).join('\n') + '\n');
    await new Promise((r) => setTimeout(r, 20));
  }
  input.end();
  const r = await done;
  assert.equal(r.out, ev.join('\n') + '\n');
  assert.deepEqual(r.counts, { lines: ev.length, bad: 0, failedSources: 0, parallel: false });
});

test('a stream that keeps this thread busy (a backlog) goes to worker threads, the output unchanged', async () => {
  const ev = events(40_000);
  const text = ev.join('\n') + '\n';
  const input = new PassThrough({ highWaterMark: 64 * 1024 });
  // Stretches of 2 ms: the backlog is seen within the first megabytes however fast the machine.
  const done = run([{ name: 'stdin', open: () => input }], 1 << 20, 2, 2);
  // Everything is there at once, in reads of 64 KiB: this thread never waits for input.
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += 64 * 1024) if (!input.write(buf.subarray(i, i + 64 * 1024))) await new Promise((r) => input.once('drain', r));
  input.end();
  const r = await done;
  assert.ok(r.out === text, 'the same lines, in order');
  assert.deepEqual(r.counts, { lines: ev.length, bad: 0, failedSources: 0, parallel: true });
});

test('a file is bulk input: worker threads from its first block', async () => {
  const f = path.join(tmp, 'bulk.ndjson');
  const ev = events(3000);
  writeFileSync(f, ev.join('\n') + '\n');
  const r = await run([asFile('bulk', f)], 1 << 20, 2);
  assert.equal(r.out, ev.join('\n') + '\n');
  assert.deepEqual(r.counts, { lines: ev.length, bad: 0, failedSources: 0, parallel: true });
});

test('output that keeps coming is gathered into fewer writes, in order; a line after a quiet spell is written at once', async () => {
  const ev = events(2000);
  const input = new PassThrough();
  const writes: string[] = [];
  // writev, as fs streams have: what is held goes in one call.
  const sink = new Writable({
    write(c, _e, cb) { writes.push(c.toString()); cb(); },
    writev(cs, cb) { writes.push(cs.map((c) => c.chunk.toString()).join('')); cb(); },
  });
  const done = runLines({
    spec: { name: 'filter', options: { spec: {} }, parallel: false }, sources: [{ name: 'stdin', open: () => input }], out: sink, jobs: 0,
    onDiag: () => {}, onSourceError: () => {},
  });
  // A line a chunk, each taken before the next comes.
  for (const e of ev) {
    input.write(e + '\n');
    await new Promise((r) => setImmediate(r));
  }
  // Then quiet, then one line: written before any timer could have run.
  await new Promise((r) => setTimeout(r, 50));
  const before = writes.join('');
  assert.equal(before, ev.join('\n') + '\n', 'everything held was written within the quiet spell');
  input.write('{"event":"stats","n":1}\n');
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(writes.join('').slice(before.length), '{"event":"stats","n":1}\n');
  input.write('{"event":"stats","n":2}\n');
  input.end();
  await done;
  assert.equal(writes.join(''), ev.join('\n') + '\n{"event":"stats","n":1}\n{"event":"stats","n":2}\n');
  assert.ok(writes.length < ev.length / 4, `${writes.length} writes for ${ev.length} chunks`);
});

test('the output gate holds a chunk only in a burst (less than 2 ms after the last one): one after a quieter spell goes at once, with what was held', async () => {
  // A clock the test moves, so that every decision below is the gate's, not the machine's timing.
  let t = 1000;
  const writes: string[] = [];
  const sink = new Writable({
    write(c, _e, cb) { writes.push(c.toString()); cb(); },
    writev(cs, cb) { writes.push(cs.map((c) => c.chunk.toString()).join('')); cb(); },
  });
  const gate = new Gate(sink, undefined, () => t);
  const put = async (at: number, s: string) => {
    t = at;
    await gate.put(Buffer.from(s));
  };
  await put(1000, 'a\n');
  assert.deepEqual(writes, ['a\n'], 'the first chunk at once');
  // 3 ms later: sooner than a write every 5 ms would allow, but not a burst (lines one by one, a few hundred a second).
  await put(1003, 'b\n');
  assert.deepEqual(writes, ['a\n', 'b\n'], 'a chunk 3 ms after the last is not held');
  await put(1003.5, 'c\n');
  await put(1004, 'd\n');
  assert.deepEqual(writes, ['a\n', 'b\n'], 'chunks in a burst are held');
  await put(1007, 'e\n');
  assert.deepEqual(writes, ['a\n', 'b\n', 'c\nd\ne\n'], 'a chunk after a quieter spell goes at once, after what was held, in one write');
  await put(1007.1, 'f\n');
  assert.deepEqual(writes.length, 3, 'held again in a burst');
  // flush() (the timer's, 5 ms after the last write, or the end's) writes what is held.
  await gate.flush();
  assert.deepEqual(writes, ['a\n', 'b\n', 'c\nd\ne\n', 'f\n']);
  await put(1008, 'g\n');
  await put(1009.5, 'h\n');
  await put(1011, 'i\n');
  assert.equal(writes.length, 4, 'a burst (chunks 1.5 ms apart): held');
  await gate.flush();
  await put(1012.5, 'j\n');
  assert.equal(writes.length, 5, 'held after the flush at 1011');
  await put(1014, 'k\n');
  await put(1015.5, 'l\n');
  await gate.flush();
  assert.equal(writes.join(''), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n', 'everything, in order');
});
