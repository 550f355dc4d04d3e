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
import { Writable } from 'node:stream';
import { runLines } from '../../src/lines/run.js';
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

async function run(sources: Source[], maxLine = 1 << 20): Promise<{ out: string; diags: string[]; counts: unknown }> {
  let out = '';
  const sink = new Writable({ write(c, _e, cb) { out += c.toString(); cb(); } });
  const diags: string[] = [];
  const counts = await runLines({
    spec: { name: 'filter', options: { spec: {} }, parallel: false },
    sources, out: sink, jobs: 0, maxLine,
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
  assert.deepEqual(direct.counts, { lines: a.length + b.length + 1, bad: 1, failedSources: 0 });
});

test('a file with no line end at all, longer than a block: one over-long line', async () => {
  const f = path.join(tmp, 'one.ndjson');
  writeFileSync(f, 'x'.repeat(2_500_000));
  const r = await run([asFile('one', f)]);
  assert.equal(r.out, '');
  assert.equal(r.diags.length, 1);
  assert.match(r.diags[0], /^one:1: line longer than 1048576 bytes/);
});
