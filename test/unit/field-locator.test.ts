// src/event/reader.ts' FieldLocator (where a line's fields are, for
// ct-format's byte renderers) held to JSON.parse: on every NDJSON fixture's
// lines, generated events and randomly damaged copies of them, a line it
// locates is one JSON.parse reads as an object, each path's value (read
// back with value()) is JSON.parse's, absent where JSON.parse's is, and its
// kind says truly whether its bytes are its text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FieldLocator, ABSENT, STR, INT, ARRAY } from '../../src/event/reader.js';
import { ROOT, ndjsonFixtureFiles, bufferLines, damage, slowPathObject } from '../helpers.js';

const PATHS = ['ts', 'event', 'id', 'src', 'sport', 'dport', 'reply', 'reply.src', 'reply.sport', 'status', 'process', 'process.pid', 'process.cmdline',
  'process.user', 'process.container.id', 'process.parent.pid', 'counters.orig.bytes', 'dns.name', 'host', 'community_id'];
const loc = new FieldLocator(PATHS);

const { generate, rng } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href) as {
  generate: (n: number, seed: number) => Iterable<string>; rng: (seed: number) => () => number;
};

const slow = slowPathObject;

/** A path's value as template.ts' getters read it: absent when a step is not an object. */
function at(o: unknown, p: string): unknown {
  for (const k of p.split('.')) {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return undefined;
    o = Object.prototype.hasOwnProperty.call(o, k) ? (o as Record<string, unknown>)[k] : undefined;
  }
  return o;
}

/** Check one line; returns whether it was located. */
function agree(bytes: Buffer, l = loc, paths = PATHS): boolean {
  if (!l.locate(bytes, 0, bytes.length)) return false;
  const text = bytes.toString('utf8');
  const want = slow(text);
  assert.ok(want, `located a line JSON.parse refuses: ${text.slice(0, 200)}`);
  for (const p of paths) {
    const slot = l.slots.get(p)!;
    const v = at(want, p);
    const got = l.value(slot);
    assert.deepStrictEqual(got, v, `${p} in ${text.slice(0, 300)}`);
    if (typeof v === 'number') assert.ok(Object.is(got, v), `${p}: ${text.slice(0, 200)}`);
    assert.equal(l.kind[slot] === ABSENT, v === undefined, `${p} absent: ${text.slice(0, 200)}`);
    const raw = bytes.toString('utf8', l.from[slot], l.to[slot]);
    if (l.kind[slot] === STR) assert.equal(raw, v, `${p}: its bytes are its text`);
    if (l.kind[slot] === INT) {
      assert.equal(raw, String(v), `${p}: its text is String() of it`);
      assert.equal(l.int(slot), v);
    }
    if (l.kind[slot] === ARRAY) assert.equal(l.allStrings(slot), (v as unknown[]).every((x) => typeof x === 'string'), `${p}: all strings`);
  }
  return true;
}

test('every line of every NDJSON fixture: located as JSON.parse reads it, or left to JSON.parse', () => {
  let fast = 0, lines = 0;
  for (const f of ndjsonFixtureFiles()) {
    for (const l of bufferLines(readFileSync(f))) {
      lines++;
      if (agree(l)) fast++;
    }
  }
  assert.ok(lines > 500 && fast > 300, `lines ${lines}, located ${fast}`);
});

test('generated events: every one located, with JSON.parse\'s values', () => {
  let n = 0;
  for (const line of generate(20000, 7)) {
    n++;
    assert.ok(agree(Buffer.from(line)), line.slice(0, 200));
  }
  assert.equal(n, 20000);
});

const PIECES = [' ', '\t', '"', '\\', '\\"', '\\u0041', '\\u00e9', 'é', '€', '{', '}', '[', ']', ',', ':', '0', '-', '1e5', '.5', 'true', 'null', 'fals', '"pid":', '"src":',
  '"reply":{}', '"process":[1],', '"__proto__":', '\u0001', '\u007f', '\\x', '"process":1,', '"process":{"pid":2},', '9007199254740993', '-0', '1E+2', '00', '1.0'];

test('randomly damaged events: never a value JSON.parse would not give, never a line it refuses', () => {
  const r = rng(43);
  let located = 0, tried = 0;
  for (const line of generate(3000, 12)) {
    for (let k = 0; k < 8; k++) {
      const s = damage(line, r, PIECES);
      tried++;
      if (agree(Buffer.from(s))) located++;
    }
  }
  assert.ok(located > 100 && located < tried, `located ${located} of ${tried}`);
});

test('repeated keys, kinds, and what is declined', () => {
  const l = new FieldLocator(['a', 'p.x', 'p.y.z']);
  const paths = ['a', 'p.x', 'p.y.z'];
  for (const c of ['{"p":{"x":1},"p":2}', '{"p":{"x":1},"p":{"y":{"z":"q"}}}', '{"p":{"x":1,"x":"s"}}', '{"a":-0,"p":null}', '{"a":1.0}', '{"a":12345678901234567}',
    '{"a":"\\u0041","p":{"x":"é"}}', '{"a":"x\u007fy"}', '{"a":[],"p":{"q":{"\\u0078":1},"x":[1,"a"]}}', '{"p":"x"}', '{"a":{"__proto__":1}}', '{}']) {
    assert.ok(agree(Buffer.from(c), l, paths), c);
  }
  // Whitespace, an escaped key where names are looked for, a path through an array, not one object.
  for (const c of ['{ "a":1}', '{"\\u0061":1}', '{"p":{"\\u0078":1}}', '{"p":[1]}', '[1]', '{"a":1}x', '{"a":01}', '{"a":"\u0001"}', '{"a":' + '['.repeat(100) + ']'.repeat(100) + '}']) {
    assert.equal(l.locate(Buffer.from(c), 0, Buffer.byteLength(c)), false, c);
  }
  const kinds = (c: string) => (l.locate(Buffer.from(c), 0, Buffer.byteLength(c)), [...l.kind]);
  assert.deepEqual(kinds('{"a":"plain","p":{"x":7}}'), [STR, INT, ABSENT]);
  assert.notEqual(kinds('{"a":"\\n"}')[0], STR);
  assert.notEqual(kinds('{"a":"é"}')[0], STR);
  assert.notEqual(kinds('{"a":-0}')[0], INT);
  assert.notEqual(kinds('{"a":1e2}')[0], INT);
  // Within a line: only the bytes between start and end.
  const b = Buffer.from('xx{"a":7}yy');
  assert.ok(l.locate(b, 2, 9));
  assert.equal(l.value(0), 7);
  assert.throws(() => new FieldLocator(['p.__proto__']), /cannot find/);
  assert.throws(() => new FieldLocator(['a"b']), /cannot find/);
});

test('names whose whole hashes are equal ("Aa", "BB") at one level: every line left to the slow path, no endless table', () => {
  const line = Buffer.from('{"Aa":1,"BB":{"Aa":"x","BB":"y"}}');
  for (const paths of [['Aa', 'BB'], ['BB.Aa', 'BB.BB'], ['ts', 'Aa', 'BB', 'src']]) {
    const l = new FieldLocator(paths);
    assert.equal(l.locate(line, 0, line.length), false, paths.join(','));
  }
  // One of the two at each level is found on the fast path.
  const one = new FieldLocator(['Ab', 'BB.BB']);
  assert.equal(one.locate(line, 0, line.length), true);
  assert.equal(one.value(one.slots.get('BB.BB')!), 'y');
});
