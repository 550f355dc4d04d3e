// src/ndjson.ts: LineSplitter's line numbers whatever the chunking, CRLF,
// blank lines, over-long lines, UTF-8 split across chunks; parseObject,
// toLine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LineSplitter, MAX_DEPTH, MAX_LINE, nestsDeeper, parseObject, toLine, type Line } from '../../src/ndjson.js';

interface Split {
  lines: Pick<Line, 'text' | 'no'>[];
  batches: number;
  tooLong: Array<[number, number]>;
  /** Other lines skipped: number and why. */
  notText: Array<[number, string]>;
}

async function split(chunks: Array<Buffer | string>): Promise<Split> {
  const tooLong: Array<[number, number]> = [];
  const notText: Array<[number, string]> = [];
  const splitter = new LineSplitter((no, why) => {
    const m = /^line of (\d+) bytes is too long, skipped$/.exec(why);
    if (m) tooLong.push([no, Number(m[1])]);
    else notText.push([no, why]);
  });
  const lines: Pick<Line, 'text' | 'no'>[] = [];
  let batches = 0;
  await pipeline(
    Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)), { objectMode: true }),
    splitter,
    new Writable({
      objectMode: true,
      write(batch: Line[], _e, cb) {
        assert.ok(Array.isArray(batch) && batch.length > 0, 'a batch is a non-empty array');
        batches++;
        // Each line's bytes come with it, as they were read.
        for (const l of batch) assert.equal(l.buf.toString('utf8', l.start, l.end), l.text);
        lines.push(...batch.map((l) => ({ text: l.text, no: l.no })));
        cb();
      },
    }),
  );
  return { lines, batches, tooLong, notText };
}

/** Cut a buffer into chunks at the given byte offsets. */
function cut(b: Buffer, at: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const a of [...at, b.length]) {
    out.push(b.subarray(prev, a));
    prev = a;
  }
  return out;
}

const TEXT = '{"a":1}\n{"b":2}\n\n{"c":"x"}\r\n   \n{"d":4}';
const WANT = [
  { text: '{"a":1}', no: 1 },
  { text: '{"b":2}', no: 2 },
  { text: '{"c":"x"}', no: 4 },
  { text: '{"d":4}', no: 6 },
];

test('line numbers count every line, blank ones included; a last line without \\n is kept', async () => {
  const r = await split([TEXT]);
  assert.deepEqual(r.lines, WANT);
  assert.deepEqual(r.tooLong, []);
});

test('the same lines and numbers for every way of cutting the input in two and three', async () => {
  const b = Buffer.from(TEXT);
  for (let i = 0; i <= b.length; i++) {
    assert.deepEqual((await split(cut(b, [i]))).lines, WANT, `cut at ${i}`);
    for (let j = i; j <= b.length; j += 3) assert.deepEqual((await split(cut(b, [i, j]))).lines, WANT, `cut at ${i}, ${j}`);
  }
});

test('one byte at a time', async () => {
  const b = Buffer.from(TEXT);
  const r = await split([...b].map((x) => Buffer.from([x])));
  assert.deepEqual(r.lines, WANT);
});

test('CRLF: the \\r is removed, even when \\r and \\n arrive in different chunks', async () => {
  const r = await split(['{"a":1}\r', '\n{"b":2}\r\n', '\r\n']);
  assert.deepEqual(r.lines, [{ text: '{"a":1}', no: 1 }, { text: '{"b":2}', no: 2 }]);
  // A \r inside a line is content.
  const s = await split(['a\rb\n']);
  assert.deepEqual(s.lines, [{ text: 'a\rb', no: 1 }]);
});

test('lines are handed on in batches, one per chunk, not one object per line', async () => {
  const many = Array.from({ length: 1000 }, (_, i) => `{"i":${i}}\n`).join('');
  const r = await split([many]);
  assert.equal(r.lines.length, 1000);
  assert.equal(r.lines[999].no, 1000);
  assert.equal(r.batches, 1);
});

test('empty input and input of blank lines only give no lines', async () => {
  assert.deepEqual((await split([])).lines, []);
  assert.deepEqual((await split([''])).lines, []);
  assert.deepEqual((await split(['\n\n\r\n \n'])).lines, []);
});

test('multi-byte UTF-8 split across chunks is decoded whole', async () => {
  const text = '{"who":"Zoë 🙂 日本"}\n{"n":"é"}\n';
  const b = Buffer.from(text);
  for (let i = 0; i <= b.length; i++) {
    for (const j of [i + 1, i + 2, i + 3]) {
      if (j > b.length) continue;
      const r = await split(cut(b, [i, j]));
      assert.deepEqual(r.lines.map((l) => l.text), ['{"who":"Zoë 🙂 日本"}', '{"n":"é"}'], `cut at ${i}, ${j}`);
      assert.ok(!r.lines.some((l) => l.text.includes('\ufffd')));
    }
  }
});

test('an over-long line is reported with its number and skipped; the lines after it keep their numbers', async () => {
  const long = 'x'.repeat(MAX_LINE + 10);
  // Whole in one chunk.
  let r = await split([`{"a":1}\n${long}\n{"b":2}\n`]);
  assert.deepEqual(r.lines, [{ text: '{"a":1}', no: 1 }, { text: '{"b":2}', no: 3 }]);
  assert.deepEqual(r.tooLong.map(([no]) => no), [2]);
  // Arriving in pieces, with no newline for longer than the limit.
  const pieces = [`{"a":1}\n`];
  for (let i = 0; i < long.length; i += 65536) pieces.push(long.slice(i, i + 65536));
  pieces.push('\n{"b":2}\n');
  r = await split(pieces);
  assert.deepEqual(r.lines, [{ text: '{"a":1}', no: 1 }, { text: '{"b":2}', no: 3 }]);
  assert.deepEqual(r.tooLong.map(([no]) => no), [2], 'reported once');
  assert.ok(r.tooLong[0][1] > MAX_LINE);
  // Two in a row.
  r = await split([`${long}\n${long}\n{"c":3}`]);
  assert.deepEqual(r.lines, [{ text: '{"c":3}', no: 3 }]);
  assert.deepEqual(r.tooLong.map(([no]) => no), [1, 2]);
  // Exactly at the limit is accepted.
  const edge = 'y'.repeat(MAX_LINE);
  r = await split([edge.slice(0, 1000), edge.slice(1000), '\n']);
  assert.equal(r.lines.length, 1);
  assert.equal(r.lines[0].text.length, MAX_LINE);
});

test('a byte order mark is dropped at the start of the input only; a line that is not UTF-8 is reported and skipped', async () => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  for (const chunks of [[Buffer.concat([bom, Buffer.from('{"a":1}\n')])], [bom.subarray(0, 1), bom.subarray(1), Buffer.from('{"a":1}\n')]]) {
    const r = await split(chunks);
    assert.deepEqual(r.lines, [{ text: '{"a":1}', no: 1 }]);
    assert.deepEqual(r.notText, []);
  }
  const later = await split([Buffer.concat([Buffer.from('{"a":1}\n'), bom, Buffer.from('{"b":2}\n')])]);
  assert.deepEqual(later.lines.map((l) => l.text), ['{"a":1}', '\ufeff{"b":2}'], 'kept, for the parser to refuse');
  const bad = Buffer.concat([Buffer.from('{"a":"é"}\n{"b":"'), Buffer.from([0xff, 0xc3]), Buffer.from('"}\r\n{"c":"ü"}\n')]);
  for (let i = 0; i <= bad.length; i += 3) {
    const r = await split(cut(bad, [i]));
    assert.deepEqual(r.lines, [{ text: '{"a":"é"}', no: 1 }, { text: '{"c":"ü"}', no: 3 }], `cut at ${i}`);
    assert.deepEqual(r.notText, [[2, 'not valid UTF-8, skipped']]);
  }
});

test('parseObject: nesting deeper than MAX_DEPTH is refused (JSON.stringify of it would overflow the stack)', () => {
  const deep = (n: number) => '{"a":' + '['.repeat(n) + ']'.repeat(n) + '}';
  assert.equal(typeof parseObject(deep(MAX_DEPTH - 1)), 'object');
  assert.throws(() => parseObject(deep(MAX_DEPTH)), new RegExp(`^Error: nested deeper than ${MAX_DEPTH} levels$`));
  assert.throws(() => parseObject(deep(400000)), /nested deeper/);
  // Brackets inside strings do not count.
  assert.equal(typeof parseObject(JSON.stringify({ s: '['.repeat(5000), t: '\\"{'.repeat(3000) })), 'object');
  assert.equal(nestsDeeper('[' + '"\\\\",'.repeat(MAX_DEPTH) + '1]'), false);
});

test('parseObject: objects only, with a reason fit for stdin:N', () => {
  assert.deepEqual(parseObject('{"a":[1,{"b":null}]}'), { a: [1, { b: null }] });
  assert.throws(() => parseObject('{"a":'), /^Error: not JSON: /);
  assert.throws(() => parseObject('[1,2]'), /not a JSON object: array/);
  assert.throws(() => parseObject('null'), /not a JSON object: null/);
  assert.throws(() => parseObject('42'), /not a JSON object: number/);
  assert.throws(() => parseObject('"s"'), /not a JSON object: string/);
});

test('toLine: one JSON object, newline-terminated, with no newline inside', () => {
  const s = toLine({ a: 'multi\nline', b: '\u2028' });
  assert.ok(s.endsWith('\n'));
  assert.equal(s.indexOf('\n'), s.length - 1);
  assert.deepEqual(JSON.parse(s), { a: 'multi\nline', b: '\u2028' });
});
