// src/event/reader.ts, the lazy event reader, held to JSON.parse: on every
// line of every NDJSON fixture, on generated events and on randomly damaged
// copies of them, a line it reads is one JSON.parse reads as an object, and
// each field it returns is JSON.parse's value of that field; whatever it
// declines goes to JSON.parse (the slow path). And it does read the
// compact lines ctpipe writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventReader } from '../../src/event/reader.js';
import { ATTRIBUTION_READS } from '../../src/commands/attribute.js';
import { ROOT, ndjsonFixtureFiles, bufferLines, damage, slowPathObject } from '../helpers.js';

const READ = [...ATTRIBUTION_READS, 'state', 'status', 'counters', 'labels', 'icmp', 'community_id', 'mark', 'zone', 'dump'];
const DECLINE = ['process', 'peer', 'direction', 'attribution', 'dns'];
const reader = new EventReader({ read: READ, decline: DECLINE });
const all = new EventReader({ read: [...READ, ...DECLINE] });

const slow = slowPathObject;

/** Check one line's bytes; returns whether the fast path read it. */
function agree(bytes: Buffer, r = reader, decline = DECLINE, read = READ): boolean {
  const got = r.read(bytes, 0, bytes.length);
  if (got === undefined) return false;
  const text = bytes.toString('utf8');
  const want = slow(text);
  assert.ok(want, `the fast path read a line JSON.parse refuses: ${text.slice(0, 200)}`);
  for (const d of decline) assert.ok(!(d in want!), `read a line with ${d}: ${text.slice(0, 200)}`);
  const expected: Record<string, unknown> = {};
  for (const k of read) expected[k] = Object.prototype.hasOwnProperty.call(want, k) ? want![k] : undefined;
  assert.deepStrictEqual({ ...got }, expected, text.slice(0, 300));
  return true;
}

test('every line of every NDJSON fixture: read as JSON.parse reads it, or left to JSON.parse', () => {
  const files = ndjsonFixtureFiles();
  assert.ok(files.length >= 15, `fixtures found: ${files.length}`);
  let fast = 0, lines = 0;
  for (const f of files) {
    for (const l of bufferLines(readFileSync(f))) {
      lines++;
      if (agree(l)) fast++;
      agree(l, all, [], [...READ, ...DECLINE]);
    }
  }
  // The fixtures are mostly attributed events (declined by `reader`) and hostile lines.
  assert.ok(lines > 500 && fast > 50, `lines ${lines}, read fast ${fast}`);
});

test('generated events: every one read on the fast path, with JSON.parse\'s values', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  let n = 0, fast = 0;
  for (const line of generate(20000, 7) as Iterable<string>) {
    n++;
    const b = Buffer.from(line);
    if (agree(b, all, [], [...READ, ...DECLINE])) fast++;
    // Unattributed, as ct-attribute's input is: read by the reader that declines attributed ones.
    const ev = JSON.parse(line);
    for (const d of DECLINE) delete ev[d];
    assert.ok(agree(Buffer.from(JSON.stringify(ev))), `not read fast: ${line.slice(0, 200)}`);
  }
  assert.equal(fast, n);
});

/** Mulberry32 (bench/gen-events.js), for damage the same on every run. */
const { rng } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href) as { rng: (seed: number) => () => number };

const PIECES = [' ', '\t', '"', '\\', '\\"', '\\u0041', '\\u00e9', 'é', '€', '{', '}', '[', ']', ',', ':', '0', '-', '1e5', '.5', 'true', 'null', 'fals', '"id":', '"src":', '"reply":{}', '"__proto__":', '\u0001', '\\x', '"process":1,', '9007199254740993', '-0', '1E+2', '00'];

test('randomly damaged events: never a value JSON.parse would not give, never a line it refuses', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const r = rng(42);
  let read = 0, tried = 0;
  for (const line of generate(3000, 11) as Iterable<string>) {
    for (let k = 0; k < 8; k++) {
      const s = damage(line, r, PIECES);
      tried++;
      if (agree(Buffer.from(s), all, [], [...READ, ...DECLINE])) read++;
      agree(Buffer.from(s));
    }
  }
  // Some damage leaves valid JSON (a value of another type, a repeated key): those are still read.
  assert.ok(read > 100 && read < tried, `read ${read} of ${tried}`);
});

test('what the fast path reads exactly as JSON.parse: repeated keys, numbers, escapes, non-ASCII, empty and nested values', () => {
  const r = new EventReader({ read: ['a', 'b', 'c'] });
  const cases = [
    '{"a":1,"a":2}', '{"a":-0}', '{"a":1e3,"b":1.5,"c":-12.25e-2}', '{"a":12345678901234567890}', '{"a":9007199254740993}',
    '{"a":123456789012345}', '{"a":-123456789012345}', '{"a":"\\u0041\\n\\"\\/"}', '{"a":"héllo €"}', '{"a":{},"b":[],"c":""}',
    '{"a":{"x":[1,{"y":null}],"x":true},"b":[[],[[]]]}', '{}', '{"z":{"__proto__":1},"a":1}', '{"a":"\\ud800"}',
    '{"a":{"\\u0078":1}}', '{"a":[1,2,3],"b":false,"c":null}', '{"a":"2026-11-23T07:41:33.965873Z","b":"2001:db8:5::5"}',
  ];
  for (const c of cases) {
    const b = Buffer.from(c);
    const got = r.read(b, 0, b.length);
    assert.ok(got, c);
    const want = JSON.parse(c);
    assert.deepStrictEqual({ ...got }, { a: want.a, b: want.b, c: want.c }, c);
    if (typeof want.a === 'number') assert.ok(Object.is(got.a, want.a), c);
  }
  // The same strings again come from the table of recent strings: still right.
  const b = Buffer.from('{"a":"2001:db8:5::6","b":"2001:db8:5::5"}');
  assert.deepStrictEqual({ ...r.read(b, 0, b.length) }, { a: '2001:db8:5::6', b: '2001:db8:5::5', c: undefined });
});

test('declined: whitespace, escaped keys, a __proto__ member of a field read, a declined field, anything not one JSON object', () => {
  const r = new EventReader({ read: ['a'], decline: ['p'] });
  for (const c of ['{ "a":1}', '{"a" :1}', '{"a":1 }', ' {"a":1}', '{"\\u0061":1}', '{"a":{"__proto__":{}}}', '{"p":1,"a":2}', '{"a":2,"p":null}',
    '[1]', '"x"', '{"a":1}x', '{"a":1,}', '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{"a":tru}', '{"a":"\u0001"}', '{"a":"\\x41"}', '{"a":"\\u00g0"}', '{"a"}', '{"a":}', '{', '',
    '{"a":' + '['.repeat(100) + ']'.repeat(100) + '}']) {
    const b = Buffer.from(c);
    assert.equal(r.read(b, 0, b.length), undefined, c);
  }
  // Within a line: only the bytes between start and end.
  const b = Buffer.from('xx{"a":7}yy');
  assert.deepStrictEqual({ ...r.read(b, 2, 9) }, { a: 7 });
  assert.deepStrictEqual({ ...r.readText('{"a":"é"}') }, { a: 'é' });
});

test('hostile lines: deep nesting and huge lines are declined or read within bounds, never thrown on', () => {
  const deep = '{"a":' + '['.repeat(400000) + ']'.repeat(400000) + '}';
  assert.equal(reader.readText(deep), undefined);
  const huge = JSON.stringify({ id: 1, event: 'new', status: Array.from({ length: 100000 }, (_, i) => `s${i}`) });
  const got = reader.readText(huge);
  assert.equal(got?.status instanceof Array && (got.status as string[]).length, 100000);
  // Wrong types are read as they are: the stage's own type check (validate.ts) says what is wrong.
  assert.deepStrictEqual(reader.readText('{"event":"new","id":"7","sport":-1,"reply":[1]}')?.reply, [1]);
  assert.throws(() => new EventReader({ read: ['__proto__'] }), /cannot read/);
  assert.throws(() => new EventReader({ read: ['a'], decline: ['a'] }), /twice/);
});

test('ct-attribute\'s input: an unattributed flow event is read fast; attributed events and special records are read whole', async () => {
  const { inputReader } = await import('../../src/commands/attribute.js');
  const fast = inputReader(['dns']);
  const at = (text: string) => {
    const buf = Buffer.from(text);
    return fast({ text, no: 1, buf, start: 0, end: buf.length });
  };
  const ev = { ts: '2026-11-23T07:41:33.965873Z', event: 'new', id: 7, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport: 38064, dst: '93.184.216.34', dport: 443, reply: { src: '93.184.216.34', sport: 443, dst: '10.0.0.5', dport: 38064 }, status: ['CONFIRMED'], host: 'h' };
  assert.equal(at(JSON.stringify(ev))?.dport, 443);
  assert.equal(at(JSON.stringify({ ...ev, dns: { name: 'x', age: 1 } })), undefined);
  assert.equal(at(JSON.stringify({ ...ev, attribution: { method: 'none', ok: false } })), undefined);
  assert.equal(at('{"ts":"x","event":"overrun","lost":7}'), undefined);
});
