// src/stage.ts: the through2 stage inside node's own pipeline: what the
// transform and the flush push arrives in order, a slow reader holds the
// writer back (nothing lost, little buffered), and an error given to the
// callback rejects the pipeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stage } from '../../src/stage.js';

test('stage: pushes from the transform and the flush arrive in order, through node pipeline()', async () => {
  const out: string[] = [];
  let seen = 0;
  await pipeline(
    Readable.from([['a', 'b'], ['skip'], ['c']], { objectMode: true }),
    stage({ writableObjectMode: true, readableObjectMode: false }, function (batch: string[], _enc, cb) {
      seen += batch.length;
      const text = batch.filter((x) => x !== 'skip').map((x) => `${x}\n`).join('');
      if (text) this.push(text);
      cb();
    }, function (cb) {
      cb(null, `end ${seen}\n`);
    }),
    new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }),
  );
  assert.equal(out.join(''), 'a\nb\nc\nend 4\n');
});

test('stage: a slow reader holds the writer back; every chunk arrives once, in order', async () => {
  const N = 2000;
  let produced = 0;
  let maxAhead = 0;
  const got: number[] = [];
  await pipeline(
    new Readable({
      objectMode: true,
      read() {
        if (produced === N) return void this.push(null);
        this.push(produced++);
      },
    }),
    stage({ writableObjectMode: true, readableObjectMode: true, writableHighWaterMark: 4, readableHighWaterMark: 4 }, function (n: number, _enc, cb) {
      cb(null, n * 2);
    }),
    new Writable({
      objectMode: true,
      highWaterMark: 1,
      write(n: number, _e, cb) {
        got.push(n);
        maxAhead = Math.max(maxAhead, produced - got.length);
        if (got.length % 100 === 0) setTimeout(cb, 1);
        else setImmediate(cb);
      },
    }),
  );
  assert.equal(got.length, N);
  assert.deepEqual(got.slice(0, 5), [0, 2, 4, 6, 8]);
  assert.ok(got.every((v, i) => v === 2 * i), 'in order, none lost or doubled');
  // Readable (16) + stage (4 + 4) + writer (1) buffers, and some slack: not the whole input.
  assert.ok(maxAhead < 64, `the producer ran ${maxAhead} chunks ahead of the reader`);
});

test('stage: an error given to the callback rejects the pipeline', async () => {
  await assert.rejects(
    pipeline(
      Readable.from([['a']], { objectMode: true }),
      stage({ objectMode: true }, function (_b, _enc, cb) { cb(new Error('boom')); }),
      new Writable({ objectMode: true, write(_c, _e, cb) { cb(); } }),
    ),
    /boom/,
  );
});
