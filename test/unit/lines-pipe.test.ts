// A pipe as a line source (src/input.ts openPipe, src/lines/run.ts): read
// into buffers of 256 KiB used again once their output is written, through
// a named pipe filled by a real writer process. The lines out, the lines
// dropped, bad lines and their numbers, over-long lines, lines across reads,
// CRLF and a last line without its newline are as the same bytes read from
// a file; a buffer is never read into while a chunk of it is held, and is
// used again once released; an output that may keep what it is given
// (not a file or socket) gets buffers never used again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, constants, createReadStream, createWriteStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { runLines } from '../../src/lines/run.js';
import { openPipe, PIPE_READ, type Source } from '../../src/input.js';

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(tmpdir(), 'ctf-pipe-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

let fifos = 0;
/** A named pipe open for reading (not blocking), and a writer process copying `file` into it, slowly when `chunked`. */
function fifoFrom(file: string, chunked = false): { fd: number; writer: Promise<unknown> } {
  const fifo = path.join(tmp, `fifo${fifos++}`);
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  // dd in blocks of 100 KB, a pause between: reads of every size, lines across them.
  const cmd = chunked ? `for i in $(seq 0 200); do dd if="$1" bs=100000 skip=$i count=1 status=none; sleep 0.005; done > "$2"` : 'cat "$1" > "$2"';
  const writer = once(spawn('sh', ['-c', cmd, 'sh', file, fifo], { stdio: 'ignore' }), 'exit');
  return { fd, writer };
}

/** Lines of varied lengths, some dropped by `-p tcp`, some bad. */
function input(): { text: string; kept: string } {
  const lines: string[] = [];
  const kept: string[] = [];
  let x = 7;
  for (let i = 0; i < 6000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const proto = x % 3 === 0 ? 'udp' : 'tcp';
    const l = JSON.stringify({ ts: '2026-11-23T00:00:00.000001Z', event: 'new', id: i, proto, sport: 1000 + (i % 50000), dport: 443, pad: 'p'.repeat(x % 4000) });
    if (i % 997 === 5) lines.push('{"event":"new","proto":"tcp",broken');
    else if (i === 3000) lines.push(JSON.stringify({ event: 'new', proto: 'tcp', pad: 'L'.repeat(PIPE_READ * 2) }));
    else {
      lines.push(l);
      if (proto === 'tcp') kept.push(l);
    }
  }
  // The long line (kept: tcp) goes where it was.
  kept.splice(kept.findIndex((l) => JSON.parse(l).id > 3000), 0, lines[3000]);
  return { text: lines.join('\r\n') + '\r\n' + kept[0], kept: kept.join('\n') + '\n' + kept[0] + '\n' };
}

async function runInto(source: Source, out: Writable, spec: { proto?: string[] } = { proto: ['tcp'] }, jobs = 0): Promise<string[]> {
  const diags: string[] = [];
  await runLines({
    spec: { name: 'filter', options: { spec }, parallel: jobs > 0 },
    sources: [source], out, jobs, busySpanMs: jobs > 0 ? 2 : undefined,
    onDiag: (t) => diags.push(t),
    onSourceError: (s, e) => diags.push(`${s.name}: ${e.message}`),
  });
  return diags;
}

/**
 * A file stream whose writes take 20 ms to complete, the bytes taken from
 * memory only then (as a write a thread of libuv's takes up late would):
 * memory read into again before its output is written shows in the file.
 */
function lateWriter(file: string): Writable {
  const late = (fd: number, bufs: Buffer[], cb: (e: Error | null, n: number) => void) => setTimeout(() => {
    const data = Buffer.concat(bufs);
    writeSync(fd, data);
    cb(null, data.length);
  }, 20);
  return createWriteStream(file, {
    fs: {
      open: (p: string, f: string, m: number, cb: (e: Error | null, fd: number) => void) => cb(null, openSync(p, f, m)),
      write: (fd: number, b: Buffer, off: number, len: number, _pos: unknown, cb: (e: Error | null, n: number) => void) => late(fd, [b.subarray(off, off + len)], cb),
      writev: (fd: number, bufs: Buffer[], _pos: unknown, cb: (e: Error | null, n: number) => void) => late(fd, bufs, cb),
      close: (fd: number, cb: (e: Error | null) => void) => { closeSync(fd); cb(null); },
    },
  } as Parameters<typeof createWriteStream>[1]);
}

for (const [chunked, slow] of [[false, false], [true, false], [false, true], [true, true]]) {
  test(`a named pipe ${chunked ? 'written 100 KB at a time' : 'written at once'}: the output and the reports of the same bytes read from a file, into a file${slow ? ' whose writes complete late' : ''}`, async () => {
    const { text, kept } = input();
    const file = path.join(tmp, `in${chunked}${slow}.ndjson`);
    writeFileSync(file, text);
    const outFile = path.join(tmp, `out${chunked}${slow}.ndjson`);
    const { fd, writer } = fifoFrom(file, chunked);
    const out = slow ? lateWriter(outFile) : createWriteStream(outFile);
    const diags = await runInto({ name: 'stdin', fd, open: () => { throw new Error('a pipe is not read as a stream'); } }, out);
    out.end();
    await once(out, 'finish');
    closeSync(fd);
    await writer;
    const fileOut = path.join(tmp, `fileout${chunked}${slow}.ndjson`);
    const out2 = createWriteStream(fileOut);
    const diags2 = await runInto({ name: 'stdin', path: file, open: () => createReadStream(file) }, out2);
    out2.end();
    await once(out2, 'finish');
    assert.ok(readFileSync(outFile, 'utf8') === kept, 'the kept lines, in order');
    assert.ok(readFileSync(fileOut, 'utf8') === kept);
    assert.deepEqual(diags, diags2);
    assert.equal(diags.length, 7);
    assert.match(diags[0], /^stdin:6: not JSON/);
  });
}

for (const chunked of [false, true]) {
  test(`every line passed (the output a view of the memory read): not read into again before it is written, into a file whose writes complete late${chunked ? ', written 100 KB at a time' : ''}`, async () => {
    const lines: string[] = [];
    let x = 3;
    for (let i = 0; i < 8000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      lines.push(JSON.stringify({ event: 'new', id: i, proto: 'udp', sport: 1000 + (i % 50000), dport: 9, pad: String(i % 10).repeat(x % 2000) }));
    }
    const text = lines.join('\n') + '\n';
    const file = path.join(tmp, `all${chunked}.ndjson`);
    writeFileSync(file, text);
    const outFile = path.join(tmp, `allout${chunked}.ndjson`);
    const { fd, writer } = fifoFrom(file, chunked);
    const out = lateWriter(outFile);
    const diags = await runInto({ name: 'stdin', fd, open: () => { throw new Error('a pipe is not read as a stream'); } }, out, {});
    out.end();
    await once(out, 'finish');
    closeSync(fd);
    await writer;
    assert.deepEqual(diags, []);
    assert.ok(readFileSync(outFile, 'utf8') === text, 'every line as it came, in order');
  });
}

test('a pipe with worker threads allowed (jobs 2, a backlog measured over 2 ms: a fast writer starts them): the output and reports unchanged, into a file', async () => {
  const { text, kept } = input();
  const file = path.join(tmp, 'workers.ndjson');
  writeFileSync(file, (text + '\n').repeat(4));
  const want = kept.repeat(4);
  const outFile = path.join(tmp, 'workers-out.ndjson');
  const { fd, writer } = fifoFrom(file);
  const out = createWriteStream(outFile);
  // (Whether they start depends on the writer keeping ahead, as it nearly always does: the output is what is held.)
  const diags = await runInto({ name: 'stdin', fd, open: () => { throw new Error('a pipe is not read as a stream'); } }, out, { proto: ['tcp'] }, 2);
  out.end();
  await once(out, 'finish');
  closeSync(fd);
  await writer;
  assert.equal(diags.length, 28);
  assert.ok(readFileSync(outFile, 'utf8') === want, 'the kept lines, in order');
});

test('openPipe: a buffer is not read into while a chunk of it is held; once released it is used again', async () => {
  const file = path.join(tmp, 'blocks.bin');
  writeFileSync(file, Buffer.alloc(PIPE_READ * 12, 'x'));
  const { fd, writer } = fifoFrom(file, true);
  const pipe = openPipe(fd, { recycle: true })!;
  assert.ok(pipe);
  const held: Buffer[] = [];
  const seen = new Set<ArrayBufferLike>();
  let reused = 0, total = 0;
  for await (const c of pipe) {
    total += c.length;
    assert.ok(c.every((b) => b === 120), 'the bytes read, not overwritten');
    for (const h of held) assert.ok(h.every((b) => b === 120) && h.buffer !== c.buffer, 'a held chunk keeps its memory');
    if (seen.has(c.buffer)) reused++;
    seen.add(c.buffer);
    // Every other chunk held a while, the rest released at once.
    if (held.length < 3 && total % 2 === 0) held.push(c);
    else pipe.release(c);
    if (held.length === 3) for (const h of held.splice(0)) pipe.release(h);
  }
  pipe.close();
  closeSync(fd);
  await writer;
  assert.equal(total, PIPE_READ * 12);
  assert.ok(reused > 0, 'buffers used again');
});

test('openPipe: without recycle no buffer is used again; not a pipe: null', async () => {
  const file = path.join(tmp, 'blocks2.bin');
  writeFileSync(file, Buffer.alloc(PIPE_READ * 4, 'y'));
  const { fd, writer } = fifoFrom(file, true);
  const pipe = openPipe(fd, { recycle: false })!;
  const seen = new Set<ArrayBufferLike>();
  let total = 0;
  for await (const c of pipe) {
    assert.ok(!seen.has(c.buffer));
    seen.add(c.buffer);
    total += c.length;
    pipe.release(c);
  }
  pipe.close();
  closeSync(fd);
  await writer;
  assert.equal(total, PIPE_READ * 4);
  const f = openSync(file, 'r');
  assert.equal(openPipe(f, { recycle: true }), null);
  closeSync(f);
});
