// The event line writer against JSON.stringify: byte for byte the same, for
// every captured event, for randomized events (strings that need escapes,
// non-ASCII text, odd numbers, keys in other orders or unknown), and for
// values only JSON.stringify knows how to write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { LineWriter, eventJson } from '../../src/event-json.js';
import { splitMessages, decodeConntrack } from '../../src/netlink/conntrack.js';
import { nowTs } from '../../src/event.js';
import { FIXTURES } from '../helpers.js';

/** What ct-events wrote before: the line as JSON.stringify gives it, as UTF-8. */
const expected = (rec: unknown) => Buffer.from(JSON.stringify(rec) + '\n');

/** Lines through one writer, taken now and then, joined: the bytes a reader gets. */
function written(recs: unknown[], chunk?: number): Buffer {
  const w = new LineWriter(chunk);
  const out: Buffer[] = [];
  recs.forEach((r, i) => {
    w.line(r);
    if (i % 7 === 6) out.push(w.take());
  });
  out.push(w.take());
  return Buffer.concat(out);
}

function same(recs: unknown[], chunk?: number): void {
  const got = written(recs, chunk);
  const want = Buffer.concat(recs.map(expected));
  if (!got.equals(want)) {
    // Point at the first line that differs.
    for (const r of recs) {
      assert.equal(eventJson(r), JSON.stringify(r));
    }
    assert.fail(`bytes differ from JSON.stringify (chunk ${chunk})`);
  }
}

const DIR = path.join(FIXTURES, 'netlink');
const captured = readdirSync(DIR).filter((f) => f.endsWith('.hex')).sort().flatMap((f) => {
  const buf = Buffer.from(readFileSync(path.join(DIR, f), 'utf8').trim(), 'hex');
  return splitMessages(buf).map((m) => decodeConntrack(buf, m, { ts: nowTs(), host: 'web-1' })).filter((e) => e !== null);
});

test('every captured event, as decoded and as ConntrackSource marks a dump entry', () => {
  assert.ok(captured.length >= 20, `${captured.length} events`);
  same(captured);
  // ConntrackSource sets event and adds dump after decoding.
  const dumped = captured.map((e) => Object.assign({ ...e }, { event: 'new', dump: true }));
  same(dumped);
  for (const e of captured) assert.equal(eventJson(e), JSON.stringify(e));
});

test('overrun and stats records', () => {
  same([
    { ts: nowTs(), event: 'overrun', lost: 12, reason: 'queue', host: 'h' },
    { ts: nowTs(), event: 'overrun', lost: 1, reason: 'enobufs,queue' },
    { ts: nowTs(), event: 'stats', received: 10, written: 9, lost: 1, queued: 0, rcvbuf: 134217728, host: 'h' },
  ]);
});

// ---- randomized events -----------------------------------------------------

let seed = 20261123;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;

// Characters that JSON escapes or that are not ASCII, mixed with plain ones.
const NASTY = ['"', '\\', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u0080', 'é', '€', '\u2028',
  '\u2029', '\ud83d\ude00', '\ud800', '\udfff', '\udc00x', '/', '<', "'", ' ', '%', '{', '}'];
function text(): string {
  const n = Math.floor(rnd() * 12);
  let s = '';
  for (let i = 0; i < n; i++) s += rnd() < 0.3 ? pick(NASTY) : String.fromCharCode(0x20 + Math.floor(rnd() * 95));
  return s;
}
function num(): number {
  return pick([0, -0, 1, 42, 65535, 4294967295, 4294967296, 2 ** 53, 2 ** 53 + 2, -1, -4294967296, 1.5, 1e21, 1e-7,
    123456789.125, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, Math.floor(rnd() * 1e6)]);
}
const opt = <T>(v: T): T | undefined => (rnd() < 0.5 ? v : undefined);

function randomEvent(): Record<string, unknown> {
  const ports = rnd() < 0.7;
  const e: Record<string, unknown> = {
    ts: rnd() < 0.9 ? nowTs() : text(),
    event: pick(['new', 'update', 'destroy', text()]),
    id: num(),
    family: pick(['ipv4', 'ipv6']),
    proto: pick(['tcp', 'udp', 'icmp', '253']),
    src: pick(['10.0.0.5', '2001:db8::1', '::ffff:192.0.2.1', text()]),
  };
  if (ports) e.sport = num();
  e.dst = pick(['93.184.216.34', 'fe80::1', text()]);
  if (ports) e.dport = rnd() < 0.9 ? num() : undefined;
  e.reply = ports ? { src: text(), sport: num(), dst: '192.0.2.7', dport: opt(num()) } : { src: 'a', dst: text() };
  if (rnd() < 0.5) e.state = pick(['SYN_SENT', 'ESTABLISHED', text()]);
  e.status = Array.from({ length: Math.floor(rnd() * 4) }, () => (rnd() < 0.8 ? pick(['CONFIRMED', 'SEEN_REPLY']) : text()));
  if (rnd() < 0.8) e.timeout = num();
  e.mark = num();
  e.zone = num();
  if (rnd() < 0.2) e.icmp = { type: num(), code: num(), id: num() };
  if (rnd() < 0.8) e.community_id = '1:' + Buffer.from(text()).toString('base64');
  if (rnd() < 0.9) e.host = text();
  if (rnd() < 0.4) e.counters = { orig: { packets: num(), bytes: num() }, reply: { packets: num(), bytes: num() } };
  if (rnd() < 0.3) e.start = nowTs();
  if (rnd() < 0.3) e.stop = text();
  if (rnd() < 0.1) e.labels = [0, 5, 127];
  if (rnd() < 0.3) e.helper = text();
  if (rnd() < 0.1) e.secmark = num();
  if (rnd() < 0.3) {
    const u: Record<string, string> = {};
    for (let i = Math.floor(rnd() * 4); i > 0; i--) u[rnd() < 0.5 ? `CTA_TUPLE_ORIG.${i}` : text()] = rnd() < 0.5 ? 'cafe' : text();
    e.unknown = u;
  }
  if (rnd() < 0.2) e.dump = pick([true, false, 1, text()]);
  // Fields other stages add, and values JSON leaves out or writes as null.
  if (rnd() < 0.2) e[text()] = pick([null, true, undefined, () => 1, Symbol('s'), [undefined, () => 1, null], { x: [[]] }, text()]);
  if (rnd() < 0.1) e.process = { pid: num(), cmdline: [text(), text()], container: null, exe: opt(text()) };
  return e;
}

/** The same fields in another order (JSON keeps the object's own order). */
function shuffled(e: Record<string, unknown>): Record<string, unknown> {
  const keys = Object.keys(e);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  return Object.fromEntries(keys.map((k) => [k, e[k]]));
}

test('randomized events, with escapes and non-ASCII text, odd numbers, any key order', () => {
  const recs: unknown[] = [];
  for (let i = 0; i < 5000; i++) {
    const e = randomEvent();
    recs.push(rnd() < 0.2 ? shuffled(e) : e);
  }
  same(recs);
  same(recs.slice(0, 500), 64); // chunks smaller than a line: every line moves
});

test('strings needing escapes in unknown, helper and host come out as JSON.stringify writes them', () => {
  const [base] = captured;
  const e = {
    ...base, host: 'web "1"\\\n\u0001é😀\ud800', helper: 'ftp\u0000\t', unknown: { 'CTA_TUPLE_ORIG.\u2028"': '\udfff\u001f', 'é': 'ok' },
  };
  assert.equal(eventJson(e), JSON.stringify(e));
  same([e, base, e]);
});

// ---- values JSON.stringify has rules for ----------------------------------

class Point { constructor(public x = 1, public y = 2) {} }

test('values that are not plain data are written by JSON.stringify itself', () => {
  const recs: unknown[] = [
    { ts: new Date(0), event: 'new' },
    { event: 'new', b: Buffer.from('hi'), m: new Map([[1, 2]]), s: new Set([1]) },
    { event: 'new', boxed: [new Number(3), new String('x'), new Boolean(false)] },
    { event: 'new', p: new Point(), t: new Uint8Array([1, 2]) },
    { event: 'new', z: { toJSON: (k: string) => `key ${k}` } },
    { event: 'new', nested: { deeper: { toJSON: () => undefined } } },
    Object.assign(Object.create(null), { event: 'new', id: 1 }),
    { 2: 'two', 1: 'one', event: 'integer keys first' },
    [1, 'a', null, undefined],
    'a string',
    7,
    null,
  ];
  same(recs);
  let deep: any = { leaf: true };
  for (let i = 0; i < 200; i++) deep = { d: deep };
  same([deep]);
});

test('what JSON.stringify refuses, the writer refuses too, leaving nothing behind', () => {
  const w = new LineWriter();
  w.line({ event: 'new', id: 1 });
  const before = w.pending;
  const cyclic: any = { event: 'new' };
  cyclic.self = cyclic;
  assert.throws(() => w.line({ event: 'new', id: 1n }), TypeError);
  assert.throws(() => w.line(cyclic), TypeError);
  assert.throws(() => w.line({ event: 'new', get boom() { throw new Error('getter'); } }), /getter/);
  assert.throws(() => w.line(undefined), TypeError);
  assert.equal(w.pending, before);
  w.line({ event: 'destroy' });
  assert.equal(w.take().toString(), '{"event":"new","id":1}\n{"event":"destroy"}\n');
});

test('an enumerable property on Object.prototype does not leak into lines', () => {
  const [e] = captured;
  (Object.prototype as any).polluted = 'yes';
  try {
    same([e, { event: 'new', o: {} }]);
  } finally {
    delete (Object.prototype as any).polluted;
  }
  same([e]);
});

test('views handed out are never written over; long lines grow the chunk', () => {
  const w = new LineWriter(256);
  const views: Buffer[] = [];
  const recs: unknown[] = [];
  for (let i = 0; i < 300; i++) {
    const r = i % 50 === 49 ? { event: 'new', unknown: { '1': 'ab'.repeat(20000 + i) } } : captured[i % captured.length];
    recs.push(r);
    w.line(r);
    if (i % 3 === 0) views.push(w.take());
  }
  views.push(w.take());
  assert.ok(Buffer.concat(views).equals(Buffer.concat(recs.map(expected))));
});
