// Input bytes to bulk items (src/es/mapper.ts) and the reader that runs it in
// worker threads (src/es/workers.ts): line numbers, bad and over-long lines,
// CRLF, blank lines, non-ASCII text, order, and the same result with and
// without workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { lineMapper, mapChunk, type MapperOptions, type MappedChunk } from '../../src/es/mapper.js';
import { mapInput } from '../../src/es/workers.js';
import { toEcsJson } from '../../src/es/ecs.js';
import { documentId } from '../../src/es/doc-id.js';
import { ROOT } from '../helpers.js';

const OPTS: MapperOptions = { op: 'index', raw: false, index: 'ct-%Y.%m.%d', dataStream: null, maxLine: 1 << 20 };
const ev = (i: number, extra = '') => `{"ts":"2026-11-24T00:00:${String(i % 60).padStart(2, '0')}.000000Z","event":"new","id":${i},"proto":"tcp","src":"10.0.0.1","sport":${1000 + i},"dst":"10.0.0.2","dport":80${extra}}`;

function items(c: MappedChunk) {
  const out = [];
  for (let k = 0; k < c.items; k++) {
    const [start, sourceAt, end, no] = c.meta.subarray(4 * k, 4 * k + 4);
    out.push({ action: JSON.parse(c.out.toString('utf8', start, sourceAt - 1)), source: JSON.parse(c.out.toString('utf8', sourceAt, end - 1)), no, tail: c.out.toString('utf8', end - 1, end) });
  }
  return out;
}

test('a chunk: one item per event with its line number; bad lines reported with theirs; blank lines counted; CRLF taken', () => {
  const text = [ev(1), '', '{oops', ev(2) + '\r', '   ', '{"event":"new"}', ev(3, ',"host":"wéb-1"')].join('\n') + '\n';
  const c = mapChunk(Buffer.from(text), lineMapper(OPTS), OPTS);
  assert.equal(c.lines, 7);
  assert.deepEqual(c.bad.map((b) => b.no), [3, 6]);
  assert.match(c.bad[0].message, /not JSON/);
  assert.match(c.bad[1].message, /"ts" is missing/);
  const it = items(c);
  assert.deepEqual(it.map((x) => x.no), [1, 4, 7]);
  for (const x of it) assert.equal(x.tail, '\n');
  assert.equal(it[0].action.index._index, 'ct-2026.11.24');
  const line1 = ev(1);
  assert.equal(it[0].action.index._id, documentId(JSON.parse(line1), line1));
  assert.deepEqual(it[0].source, JSON.parse(toEcsJson(JSON.parse(line1), { id: it[0].action.index._id }, line1)));
  assert.equal(it[2].source.host.name, 'wéb-1', 'non-ASCII text survives the byte offsets');
  assert.equal(c.out.length, c.meta[4 * 2 + 2]);
});

test('raw documents into a data stream get @timestamp; ones that have it are left as they are', () => {
  const o: MapperOptions = { op: 'create', raw: true, index: null, dataStream: 'logs-ct-default', maxLine: 1 << 20 };
  const withTs = '{"@timestamp":"2020-01-01T00:00:00Z","ts":"2026-11-24T00:00:00Z","event":"stats"}';
  const c = mapChunk(Buffer.from(ev(1) + '\n' + withTs), lineMapper(o), o);
  const it = items(c);
  assert.deepEqual(it[0].action, { create: { _index: 'logs-ct-default', _id: it[0].action.create._id } });
  assert.deepEqual(it[0].source, { '@timestamp': '2026-11-24T00:00:01.000000Z', ...JSON.parse(ev(1)) });
  assert.equal(c.out.toString('utf8', c.meta[5], c.meta[6] - 1), withTs, 'the last line, without a newline, is taken too');
});

test('an over-long line in a chunk is reported, not mapped', () => {
  const o = { ...OPTS, maxLine: 150 };
  const c = mapChunk(Buffer.from(ev(1) + '\n' + '{"x":"' + 'y'.repeat(200) + '"}\n' + ev(2) + '\n'), lineMapper(o), o);
  assert.equal(c.items, 2);
  assert.deepEqual(c.bad, [{ no: 2, message: 'line of 208 bytes is too long, skipped' }]);
});

async function collect(input: Readable, jobs: number, opts = OPTS, threshold?: number) {
  const got: { no: number; id: string }[] = [];
  const bad: { no: number; message: string }[] = [];
  const lines = await mapInput({
    input, mapper: opts, jobs, parallelThreshold: threshold,
    onChunk(c, base) {
      for (const b of c.bad) bad.push({ no: base + b.no, message: b.message });
      for (const x of items(c)) got.push({ no: base + x.no, id: x.action.index._id });
    },
  });
  return { got, bad, lines };
}

test('workers give the same items, in the same order, with the same line numbers as this thread; over-long lines across reads are skipped', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const lines: string[] = [...generate(30000, 4)];
  lines.splice(1000, 0, 'not json');
  lines.splice(20000, 0, '{"ts":"x"}');
  lines.splice(25000, 0, '{"pad":"' + 'z'.repeat(300000) + '"}');
  const text = lines.join('\n') + '\n';
  const o = { ...OPTS, maxLine: 100000 };
  // Reads of odd sizes, so lines are cut anywhere.
  const pieces = (size: number) => Readable.from((function* () { for (let i = 0; i < text.length; i += size) yield Buffer.from(text.slice(i, i + size)); })());
  const one = await collect(pieces(70001), 0, o);
  const par = await collect(pieces(50021), 2, o);
  assert.equal(one.lines, lines.length);
  assert.equal(par.lines, lines.length);
  assert.equal(one.got.length, lines.length - 3);
  assert.deepEqual(par.got, one.got);
  assert.deepEqual(par.bad, one.bad);
  assert.deepEqual(one.bad.map((b) => b.no), [1001, 20001, 25001]);
  assert.match(one.bad[2].message, /line of 300010 bytes is too long/);
  const line5 = lines[4];
  assert.equal(one.got[4].no, 5);
  assert.equal(one.got[4].id, documentId(JSON.parse(line5), line5));
});

test('a live stream of small reads is mapped in this thread as it comes', async () => {
  const input = new Readable({ read() {} });
  const seen: number[] = [];
  const done = mapInput({ input, mapper: OPTS, jobs: 2, onChunk: (c, base) => { for (let k = 0; k < c.items; k++) seen.push(base + c.meta[4 * k + 3]); } });
  input.push(ev(1) + '\n');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, [1], 'the first event is through before the next arrives');
  input.push(ev(2) + '\n' + ev(3));
  input.push(null);
  assert.equal(await done, 3);
  assert.deepEqual(seen, [1, 2, 3]);
});
