// cutLines: the one place bulk readers cut bytes into runs of whole lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutLines, type Cut } from '../../src/lines/cut.js';

async function cuts(chunks: (string | Buffer)[], maxLine = 10): Promise<string[]> {
  const out: string[] = [];
  async function* src() { for (const c of chunks) yield c; }
  for await (const c of cutLines(src(), maxLine) as AsyncGenerator<Cut>) out.push(c.body ? `body:${c.body.toString('latin1')}` : `overlong:${c.overlong}`);
  return out;
}

test('runs end at a line end; the bytes after the last one come with the next chunk', async () => {
  assert.deepEqual(await cuts(['a\nb', 'c\nd\n']), ['body:a\n', 'body:bc\nd\n']);
  assert.deepEqual(await cuts(['ab', 'c', '\n']), ['body:abc\n']);
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
