// src/input.ts flowingChunks: a stream's chunks taken in flowing mode, the
// stream paused only when `limit` bytes wait untaken, everything in order,
// errors and an early close thrown where the chunks are taken, leaving the
// loop early destroying the stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { flowingChunks } from '../../src/input.js';

/** A source that counts its pause() calls, fed by hand. */
function source(): Readable & { pauses: number } {
  const r = new Readable({ read() {} }) as Readable & { pauses: number };
  r.pauses = 0;
  const pause = r.pause.bind(r);
  r.pause = () => { r.pauses++; return pause(); };
  return r;
}

const chunk = (n: number, k: number) => Buffer.alloc(n, 97 + (k % 26));

test('chunks come in order and the stream is never paused while less than the limit waits', async () => {
  const r = source();
  const got: Buffer[] = [];
  const it = flowingChunks(r, 1 << 20);
  const done = (async () => { for await (const c of it) got.push(c as Buffer); })();
  // As a pipe's reads: 64 KiB each, taken as they come.
  for (let k = 0; k < 100; k++) {
    r.push(chunk(65536, k));
    await new Promise((res) => setImmediate(res));
  }
  r.push(null);
  await done;
  assert.equal(got.length, 100);
  got.forEach((c, k) => assert.ok(c.equals(chunk(65536, k)), `chunk ${k}`));
  assert.equal(r.pauses, 0);
});

test('a taker that falls behind: the stream paused at the limit and resumed when half is taken, nothing lost', async () => {
  const r = source();
  const it = flowingChunks(r, 200_000)[Symbol.asyncIterator]();
  for (let k = 0; k < 10; k++) r.push(chunk(50_000, k));
  await new Promise((res) => setImmediate(res));
  assert.ok(r.isPaused(), 'paused with 200,000 bytes or more waiting');
  assert.ok(r.pauses >= 1);
  const got: Buffer[] = [];
  got.push((await it.next()).value as Buffer);
  assert.ok(r.isPaused(), 'still paused with more than half waiting');
  got.push((await it.next()).value as Buffer);
  got.push((await it.next()).value as Buffer);
  assert.ok(!r.isPaused(), 'resumed with half taken');
  r.push(null);
  for (let x = await it.next(); !x.done; x = await it.next()) got.push(x.value as Buffer);
  assert.equal(got.length, 10);
  got.forEach((c, k) => assert.ok(c.equals(chunk(50_000, k)), `chunk ${k}`));
});

test('an error is thrown where the chunks are taken, after the chunks before it', async () => {
  const r = source();
  const got: string[] = [];
  r.push('a');
  r.push('b');
  setImmediate(() => r.destroy(Object.assign(new Error('EIO: i/o error, read'), { syscall: 'read' })));
  await assert.rejects(async () => { for await (const c of flowingChunks(r)) got.push(String(c)); }, /EIO/);
  assert.deepEqual(got, ['a', 'b']);
});

test('a stream closed before its end throws ERR_STREAM_PREMATURE_CLOSE', async () => {
  const r = source();
  r.push('a');
  setImmediate(() => r.destroy());
  await assert.rejects(async () => { for await (const _ of flowingChunks(r)) { /* taken */ } }, (e: NodeJS.ErrnoException) => e.code === 'ERR_STREAM_PREMATURE_CLOSE');
});

test('leaving the loop early destroys the stream; an error after that is not an unhandled one', async () => {
  const r = source();
  r.push('a');
  r.push('b');
  for await (const _ of flowingChunks(r)) break;
  assert.ok(r.destroyed);
  r.emit('error', new Error('late'));
});
