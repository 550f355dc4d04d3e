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

// The memory of big values (Memo in reader.ts): a line whose value is byte
// for byte one checked before is not checked again. A line one byte away
// from the remembered value must still get JSON.parse's answer, whatever
// the byte and wherever it is.
const OWNER = {
  pid: 20264, ppid: 20141, uid: 0, user: 'root', gid: 0, group: 'root', comm: 'python3', exe: '/usr/bin/python3.11',
  cmdline: ['/usr/bin/python3', '-c', 'import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b"p", ("127.1.1.1", 9))'],
  cgroup: '/system.slice/x.service', unit: 'x.service', container: null, start_time: '2026-12-06T11:50:37.500Z', entity_id: 'zgfV0LGiSvxDCmFIXfbHTw',
  parent: { pid: 20141, comm: 'node', exe: '/usr/bin/node', cmdline: ['node', 'bench/pipeline.bench.js'], start_time: '2026-12-06T11:50:37.010Z' },
  ancestors: [{ pid: 1, comm: 'systemd', exe: '/usr/lib/systemd/systemd', cmdline: ['/sbin/init', 'splash', 'é€'] }],
};
const flow = (id: number, process: unknown = OWNER) => JSON.stringify({
  ts: '2026-12-06T11:50:37.942699Z', event: 'new', id, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: 47463, dst: '127.201.255.1', dport: 9,
  reply: { src: '127.201.255.1', sport: 9, dst: '127.0.0.1', dport: 47463 }, status: ['CONFIRMED'], direction: 'local', process, attribution: { method: 'bpf', ok: true },
});

test('a big value the same bytes as the last line\'s is not checked again; a line one byte away from it, anywhere, still gets JSON.parse\'s answer', () => {
  const kinds: [() => EventReader, string[]][] = [
    [() => new EventReader({ read: ['event', 'proto', 'dport'] }), ['event', 'proto', 'dport']], // process only checked
    [() => new EventReader({ read: ['event', 'process'], share: true }), ['event', 'process']], // process decoded, shared
    [() => new EventReader({ read: ['event', 'process'] }), ['event', 'process']], // process decoded afresh each line
  ];
  const line = flow(1);
  const at = line.indexOf('"process":') + 10;
  const stop = line.indexOf(',"attribution"');
  assert.ok(stop - at > 500);
  const BYTES = ['"', '\\', '{', '}', '[', ']', ',', ':', '0', '-', 'e', 'x', ' ', '\u0001', '\u007f', 'é'];
  const edits: string[] = [];
  for (let p = at - 1; p <= stop + 1; p++) {
    for (const c of BYTES) edits.push(line.slice(0, p) + c + line.slice(p + 1)); // a byte replaced
    edits.push(line.slice(0, p) + line.slice(p + 1)); // a byte gone
    edits.push(line.slice(0, p) + 'a' + line.slice(p)); // a byte more
  }
  // The line cut inside the remembered value, or just after it.
  for (const end of [at + 1, stop - 1, stop, stop + 1]) edits.push(line.slice(0, end));
  let read = 0, declined = 0;
  for (const [make, fields] of kinds) {
    // Each edit right after the line, remembered (a reader of its own), and in one stream of them all.
    const stream = make();
    const r0 = make();
    assert.ok(agree(Buffer.from(line), r0, [], fields));
    for (const e of edits) {
      const r = make();
      assert.ok(agree(Buffer.from(line), r, [], fields));
      assert.ok(agree(Buffer.from(line), r, [], fields));
      if (agree(Buffer.from(e), r, [], fields)) read++;
      else declined++;
      assert.ok(agree(Buffer.from(line), r, [], fields));
      agree(Buffer.from(e), stream, [], fields);
      assert.ok(agree(Buffer.from(line), stream, [], fields));
    }
  }
  // Some of those edits leave valid JSON (a digit for a digit, a letter in a string): read, with their own values.
  assert.ok(read > 1000 && declined > 10000, `read ${read}, declined ${declined}`);
});

test('the remembered value: shared when asked for (share), a fresh object otherwise; values that keep changing, and names of one hash', () => {
  const shared = new EventReader({ read: ['event', 'process'], share: true });
  const fresh = new EventReader({ read: ['event', 'process'] });
  const a = shared.readText(flow(1))!, b = shared.readText(flow(2))!;
  assert.equal(a.process, b.process, 'the same object');
  assert.deepStrictEqual(b.process, OWNER);
  const c = fresh.readText(flow(1))!, d = fresh.readText(flow(2))!;
  assert.notEqual(c.process, d.process);
  assert.deepStrictEqual(d.process, OWNER);
  // A value that changes every line (a new pid each time), then stays.
  for (let i = 0; i < 300; i++) {
    const owner = i < 200 ? { ...OWNER, pid: i } : OWNER;
    assert.deepStrictEqual(shared.readText(flow(i, owner))!.process, owner);
  }
  // "Aa" and "BB" hash alike: a value remembered unread under one is decoded when the other, read, holds the same bytes.
  const r = new EventReader({ read: ['BB'], share: true });
  const big = JSON.stringify(OWNER);
  assert.deepStrictEqual(r.readText(`{"Aa":${big}}`), { BB: undefined });
  assert.deepStrictEqual(r.readText(`{"BB":${big}}`), { BB: OWNER });
  assert.deepStrictEqual(r.readText(`{"Aa":${big},"BB":${big}}`), { BB: OWNER });
  assert.deepStrictEqual(r.readText(`{"BB":${big},"Aa":${big.replace('python3', 'python4')}}`), { BB: OWNER });
  // Big strings and numbers are not remembered (only objects and arrays): still read right.
  const s = new EventReader({ read: ['n'] });
  const long = 'x'.repeat(300);
  for (const t of [`{"s":"${long}","n":1}`, `{"s":"${long}","n":2}`, `{"s":"${long}x","n":3}`, `{"n":${'1'.repeat(250)}}`, `{"n":${'1'.repeat(250)}5}`, `{"n":${'1'.repeat(250)}}`]) {
    assert.deepStrictEqual({ ...s.readText(t) }, { n: JSON.parse(t).n }, t);
  }
});

test('fields whose names\' whole hashes are equal ("Aa", "BB"): every line left to JSON.parse, no endless table', () => {
  const line = Buffer.from('{"Aa":1,"BB":2,"Ab":3}');
  assert.equal(new EventReader({ read: ['Aa', 'BB'] }).read(line, 0, line.length), undefined);
  assert.equal(new EventReader({ read: ['Aa'], decline: ['BB'] }).read(line, 0, line.length), undefined);
  assert.deepEqual(new EventReader({ read: ['Aa', 'Ab'] }).read(line, 0, line.length), { Aa: 1, Ab: 3 });
});
