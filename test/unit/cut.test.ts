// cutLines: the one place bulk readers cut bytes into runs of whole lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countLines, cutLines, LineCutter, type Cut } from '../../src/lines/cut.js';

async function cuts(chunks: (string | Buffer)[], maxLine = 10): Promise<string[]> {
  const out: string[] = [];
  async function* src() { for (const c of chunks) yield c; }
  for await (const c of cutLines(src(), maxLine) as AsyncGenerator<Cut>) out.push(c.body ? `body:${c.body.toString('latin1')}` : `overlong:${c.overlong}`);
  return out;
}

test('runs end at a line end; a line begun in one chunk is joined to its end from the next, as a run of its own', async () => {
  assert.deepEqual(await cuts(['a\nb', 'c\nd\n']), ['body:a\n', 'body:bc\n', 'body:d\n']);
  assert.deepEqual(await cuts(['ab', 'c', '\n']), ['body:abc\n']);
  assert.deepEqual(await cuts(['a\nb', 'cd', 'e\nf\ng', '\n']), ['body:a\n', 'body:bcde\n', 'body:f\n', 'body:g\n']);
});

test('the runs of a chunk are views of it, not copies (only a line it shares with the chunk before is copied)', () => {
  const cutter = new LineCutter(100);
  const got: Buffer[] = [];
  const first = Buffer.from('one\ntw');
  const second = Buffer.from('o\nthree\nfour\nfi');
  cutter.push(first, (c) => got.push(c.body!));
  cutter.push(second, (c) => got.push(c.body!));
  assert.deepEqual(got.map((b) => b.toString()), ['one\n', 'two\n', 'three\nfour\n']);
  assert.equal(got[0].buffer, first.buffer);
  assert.equal(got[2].buffer, second.buffer);
  assert.equal(got[2].byteOffset, second.byteOffset + 2);
  assert.equal(cutter.pending, 2);
});

test('keepBom: the bytes as they came, a byte order mark at the start too', () => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  for (const chunks of [[Buffer.concat([bom, Buffer.from('a\n')])], [bom.subarray(0, 2), Buffer.concat([bom.subarray(2), Buffer.from('a\n')])], [Buffer.concat([bom, Buffer.from('a')])]]) {
    const cutter = new LineCutter(100, { keepBom: true });
    const got: Buffer[] = [];
    for (const c of chunks) cutter.push(c, (x) => got.push(x.body!));
    cutter.end((x) => got.push(x.body!));
    assert.deepEqual(Buffer.concat(got), Buffer.concat(chunks));
  }
});

test('countLines counts line ends', () => {
  assert.equal(countLines(Buffer.from('')), 0);
  assert.equal(countLines(Buffer.from('a\n\nb\nc')), 3);
});

test('the last line without its line end is the last run', async () => {
  assert.deepEqual(await cuts(['a\nlast']), ['body:a\n', 'body:last']);
});

test('a byte order mark at the very start is dropped, nowhere else', async () => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  assert.deepEqual(await cuts([Buffer.concat([bom, Buffer.from('a\n')]), Buffer.concat([bom, Buffer.from('b\n')])]), ['body:a\n', `body:${bom.toString('latin1')}b\n`]);
  assert.deepEqual(await cuts([Buffer.concat([bom, Buffer.from('x')])]), ['body:x'], 'a short input that is only a BOM and a line');
});

test('a line longer than maxLine is never held: counted, reported by length where it stands, and the stream goes on', async () => {
  assert.deepEqual(await cuts(['ok\n', 'x'.repeat(8), 'x'.repeat(8), 'xx\nnext\n']), ['body:ok\n', 'overlong:18', 'body:next\n']);
  assert.deepEqual(await cuts(['ok\n' + 'y'.repeat(12)]), ['body:ok\n', 'overlong:12'], 'at the end of the input');
  assert.deepEqual(await cuts(['short\n' + 'z'.repeat(11), '\nafter\n']), ['body:short\n', 'overlong:11', 'body:after\n']);
});
