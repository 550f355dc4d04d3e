// src/event/reader.ts when a stage reads few fields (ct-filter --no-dns
// reads event, proto, sport and dport): the rest of the line is still
// checked, by the inline skip of plain strings and integers, so a line
// JSON.parse refuses is never read, whatever is damaged and wherever; the
// fields read are JSON.parse's, absent, repeated, behind an escaped key or
// nested under another key. And the objects the reader builds get their
// keys from its table of names: the same own properties as JSON.parse's,
// whatever the keys (many, colliding, long, escaped, non-ASCII, __proto__).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventReader, FieldLocator } from '../../src/event/reader.js';
import { ROOT, ndjsonFixtureFiles, bufferLines, damage, slowPathObject } from '../helpers.js';
import { readFileSync } from 'node:fs';

const { generate, rng } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href) as { generate: (n: number, seed: number) => Iterable<string>; rng: (seed: number) => () => number };

/** The readers of few fields: ct-filter's (shared values) and others. */
const FEW: { read: string[]; share?: boolean }[] = [
  { read: ['event'] },
  { read: ['event', 'proto', 'sport', 'dport'], share: true },
  { read: ['dport'] },
  { read: ['event', 'process'], share: true },
];
const readers = FEW.map((s) => ({ spec: s, r: new EventReader(s) }));

/** Whether each reader reads the line as JSON.parse does (or declines it); returns how many read it. */
function agreeAll(bytes: Buffer): number {
  const text = bytes.toString('utf8');
  const want = slowPathObject(text);
  let n = 0;
  for (const { spec, r } of readers) {
    const got = r.read(bytes, 0, bytes.length);
    if (got === undefined) continue;
    n++;
    assert.ok(want, `read a line JSON.parse refuses (${spec.read}): ${text.slice(0, 300)}`);
    const expected: Record<string, unknown> = {};
    for (const k of spec.read) expected[k] = Object.prototype.hasOwnProperty.call(want, k) ? want![k] : undefined;
    assert.deepStrictEqual({ ...got }, expected, text.slice(0, 300));
  }
  return n;
}

test('every fixture line and generated event: read by readers of one to four fields as JSON.parse reads it', () => {
  let lines = 0, read = 0;
  for (const f of ndjsonFixtureFiles()) {
    for (const line of bufferLines(readFileSync(f))) {
      lines++;
      read += agreeAll(line);
    }
  }
  for (const line of generate(20000, 5)) {
    lines++;
    assert.equal(agreeAll(Buffer.from(line)), readers.length, line.slice(0, 200));
    read += readers.length;
  }
  assert.ok(read > lines, `read ${read} for ${lines} lines`);
});

// Damage aimed at what the inline skip reads: strings and integers of fields not read.
const PIECES = ['"', '\\', '\\"', '\\u0041', '\\u00g1', '\\x', '\u0001', '\u001f', '\t', ' ', 'é', '0', '00', '-', '-0', '01', '1.', '.5', '1e', '1e+', '1E5', '2.5e-3', 'e', 'E',
  ',', ':', '}', '{', ']', '[', '"event":"x",', '"dport":"53",', '"event":', 'null', 'tru', '9007199254740993', '"ts":', '"process":{"pid":1},'];

test('randomly damaged events: a reader of few fields never reads a line JSON.parse refuses, and reads its fields as JSON.parse', () => {
  const r = rng(1918);
  let read = 0, tried = 0;
  for (const line of generate(4000, 23)) {
    for (let k = 0; k < 8; k++) {
      tried++;
      if (agreeAll(Buffer.from(damage(line, r, PIECES))) > 0) read++;
    }
  }
  assert.ok(read > 100 && read < tried, `read ${read} of ${tried}`);
});

test('damage in a field not read, one kind at a time: declined (by the reader and by ct-format\'s locator); the same fields written well: read', () => {
  const r = new EventReader({ read: ['event', 'proto', 'sport', 'dport'], share: true });
  const good = ['"x":"plain"', '"x":"esc\\"aped\\\\"', '"x":"\\u00e9t\\u00E9"', '"x":"héllo €"', '"x":0', '"x":-0', '"x":7', '"x":-12', '"x":1234567890123456789012',
    '"x":1.5', '"x":-0.25e-3', '"x":6E+2', '"x":true', '"x":null', '"x":[]', '"x":[1,"a",{"b":[2]}]', '"x":{}', '"x":{"k":"v","n":3,"e":"\\n"}', '"x":"' + 'a'.repeat(5000) + '"'];
  const bad = ['"x":"unterminated', '"x":"ctl\u0001char"', '"x":"tab\tin"', '"x":"\\x41"', '"x":"\\u00g0"', '"x":"\\u12"', '"x":"bad\\', '"x":01', '"x":00', '"x":-',
    '"x":1.', '"x":.5', '"x":1e', '"x":1e+', '"x":+1', '"x":12a', '"x":tru', '"x":nul', '"x":[1,]', '"x":{"k"}', '"x":{"k":}', '"x":{k:1}', '"x":{"k":1,}', '"x":"a"b"',
    '"x":[1', '"x":{"k":"v"'];
  const head = '{"event":"new","proto":"udp","sport":1234,';
  const tail = ',"dport":53}';
  for (const g of good) {
    for (const line of [head + g + tail, '{' + g + ',"event":"new","proto":"udp","sport":1234,"dport":53}', head + '"dport":53,' + g + '}']) {
      const got = r.readText(line);
      assert.ok(got, `declined a good line: ${line.slice(0, 120)}`);
      assert.deepStrictEqual({ ...got }, { event: 'new', proto: 'udp', sport: 1234, dport: 53 }, line.slice(0, 120));
    }
  }
  // ct-format's locator skips what it does not look for alike.
  const loc = new FieldLocator(['event', 'dport', 'reply.sport']);
  const located = (line: string) => {
    const b = Buffer.from(line);
    return loc.locate(b, 0, b.length);
  };
  for (const g of good) {
    const line = head + g + tail;
    assert.ok(located(line), line.slice(0, 120));
    assert.equal(loc.value(loc.slots.get('dport')!), 53);
  }
  for (const x of bad) {
    for (const line of [head + x + tail, '{' + x + ',"event":"new"}', head + '"dport":53,' + x + '}', '{"event":"new","reply":{' + x + ',"sport":1}}']) {
      assert.equal(slowPathObject(line), null, `JSON.parse reads ${line}`);
      assert.equal(r.readText(line), undefined, `read a damaged line: ${line}`);
      assert.equal(located(line), false, `located in a damaged line: ${line}`);
    }
  }
});

test('the field read: absent, repeated, behind an escaped key, nested under another key, of another type', () => {
  const r = new EventReader({ read: ['dport'] });
  const cases: [string, unknown][] = [
    ['{"event":"new"}', undefined],
    ['{"dport":53,"dport":80}', 80],
    ['{"dport":53,"x":1,"dport":"80"}', '80'],
    ['{"reply":{"dport":53},"x":{"y":{"dport":1}}}', undefined],
    ['{"reply":{"dport":53},"dport":443}', 443],
    ['{"dports":53,"dpor":1,"Dport":2}', undefined],
    ['{"dport":null}', null],
    ['{"dport":[53]}', [53]],
    ['{"dport":5.3e1}', 53],
  ];
  for (const [line, want] of cases) {
    const got = r.readText(line);
    assert.ok(got, line);
    assert.deepStrictEqual(got.dport, want, line);
  }
  // An escaped key might spell the name read: left to JSON.parse.
  assert.equal(r.readText('{"d\\u0070ort":53}'), undefined);
  assert.equal(r.readText('{"x":1,"\\u0064port":53}'), undefined);
});

test('built objects: keys from the table of names, the same own properties as JSON.parse, whatever the keys', () => {
  const r = new EventReader({ read: ['a'] });
  const check = (line: string) => {
    const got = r.readText(line);
    assert.ok(got, line);
    const want = JSON.parse(line).a;
    assert.deepStrictEqual(got.a, want, line);
    if (want && typeof want === 'object' && !Array.isArray(want)) assert.deepStrictEqual(Object.keys(got.a as object), Object.keys(want), line);
  };
  // More keys than the table has slots, so slots are taken over, and each key again after.
  const many = Array.from({ length: 3000 }, (_, i) => `k${i}`);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < many.length; i += 50) check(JSON.stringify({ a: Object.fromEntries(many.slice(i, i + 50).map((k, j) => [k, j])) }));
  }
  // Keys of one length and similar bytes, long keys, non-ASCII and escaped keys, a number-like key, the empty key.
  check('{"a":{"ab":1,"ba":2,"aB":3,"Ab":4,"ab":5}}');
  check('{"a":{"' + 'k'.repeat(31) + '":1,"' + 'k'.repeat(32) + '":2,"' + 'k'.repeat(33) + '":3,"' + 'k'.repeat(200) + '":4}}');
  check('{"a":{"é":1,"\\u00e9":2,"\\n":3,"x\\"y":4,"€uro":5}}');
  check('{"a":{"0":1,"1":2,"10":3,"":4,"constructor":5,"toString":6,"hasOwnProperty":7}}');
  check('{"a":[{"src":"1.2.3.4","sport":1},{"sport":2,"src":"5.6.7.8"}]}');
  // A key read as __proto__ would set the prototype: left to JSON.parse, however it is spelled.
  assert.equal(r.readText('{"a":{"__proto__":{"x":1}}}'), undefined);
  assert.equal(r.readText('{"a":{"__pr\\u006fto__":{"x":1}}}'), undefined);
  // The keys of the same object again, from the table: still right after other objects took slots.
  check('{"a":{"src":"1.2.3.4","sport":1,"dst":"5.6.7.8","dport":2}}');
});
