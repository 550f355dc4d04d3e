// ct-flows builds its records from the JSON text of the events' fields
// (src/flows/scan.ts, tracker.ts), not by JSON.stringify of an object. Here
// that text is checked against an oracle, a plain implementation of the
// same pairing on parsed objects that writes each record with
// JSON.stringify, over streams with unicode, escapes, control characters,
// lone surrogates, whitespace, numbers in other forms, unknown, duplicate and
// index keys: byte for byte the same output, through both the fast path
// and the slow one. And the scanner itself: a line it accepts is JSON that
// JSON.stringify(JSON.parse(line)) gives back unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FlowsStage } from '../../src/flows/processor.js';
import { Fields, KeyTable, scanLine } from '../../src/flows/scan.js';
import { KNOWN_FIELDS, tsMicros } from '../../src/flows/tracker.js';
import { processChunk } from '../../src/lines/chunk.js';
import { compileCheck, parseChecked } from '../../src/filter/validate.js';
import { isoMicros } from '../../src/event.js';
import { ROOT } from '../helpers.js';

const { generate, rng: genRng } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);

/** The generator's deterministic random numbers (Mulberry32). */
const rng: (seed: number) => () => number = genRng;

// ---------------------------------------------------------------- the oracle

type Ev = Record<string, any>;
const ORACLE_KNOWN = new Set([
  'ts', 'event', 'timeout', 'use', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply',
  'finished', 'reason', 'incomplete', 'duration', 'state', 'status', 'counters', 'mark', 'labels', 'helper', 'secmark', 'start', 'stop',
  'zone', 'icmp', 'community_id', 'host', 'dump', 'direction', 'process', 'peer', 'attribution',
]);
const CHANGING = ['state', 'status', 'counters', 'mark', 'labels', 'helper', 'secmark', 'start', 'stop'];
interface OFlow { key: string | number; base: Ev; baseUs: number; latest: Ev | null; incomplete: boolean }

/** ct-flows as it was written first: parsed objects, one record object per flow, JSON.stringify. No interim records. */
function oracle(text: string, maxFlows: number): string {
  const check = compileCheck(['ts', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply', 'state', 'status', 'counters', 'start', 'stop', 'host', 'dump']);
  const open = new Map<string | number, OFlow>();
  let clock = 0;
  let host0: string | undefined;
  let out = '';
  const write = (f: OFlow, fin: Ev | null, finUs: number, reason: string | undefined) => {
    const b = f.base, l = f.latest;
    const pick = (k: string) => (l !== null && l[k] !== undefined ? l[k] : b[k]);
    let start: unknown = pick('start');
    let startUs: number | undefined;
    if (typeof start === 'string') startUs = tsMicros(start);
    else if (!f.incomplete) { start = b.ts; startUs = f.baseUs; } else start = undefined;
    let stop: unknown, stopUs: number | undefined;
    if (fin) {
      stop = l !== null && l.stop !== undefined ? l.stop : fin.stop;
      if (typeof stop === 'string') stopUs = tsMicros(stop);
      else { stop = fin.ts; stopUs = finUs; }
    } else stopUs = clock;
    const rec: Ev = {
      ts: fin ? fin.ts : isoMicros(clock), event: 'flow',
      id: b.id, family: b.family, proto: b.proto, src: b.src, sport: b.sport, dst: b.dst, dport: b.dport, reply: b.reply,
      start, stop, duration: startUs !== undefined && stopUs !== undefined ? Math.max(0, stopUs - startUs) / 1e6 : undefined,
      finished: fin !== null, reason, incomplete: f.incomplete ? true : undefined,
      state: pick('state'), status: pick('status'), counters: pick('counters'), mark: pick('mark'), labels: pick('labels'),
      helper: pick('helper'), secmark: pick('secmark'),
      zone: b.zone, icmp: b.icmp, community_id: b.community_id, host: b.host, dump: b.dump,
      direction: b.direction, process: b.process, peer: b.peer, attribution: b.attribution,
    };
    for (const k in b) if (!ORACLE_KNOWN.has(k)) rec[k] = b[k];
    out += JSON.stringify(rec) + '\n';
  };
  const absorb = (f: OFlow, ev: Ev) => {
    f.latest ??= {};
    for (const k of CHANGING) if (ev[k] !== undefined) f.latest[k] = ev[k];
  };
  const same = (a: Ev, b: Ev) => a.proto === b.proto && a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport &&
    (a.icmp === undefined || b.icmp === undefined || a.icmp?.id === b.icmp?.id);
  for (let line of text.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') continue;
    const ev = parseChecked(line, check, () => {});
    if (!ev) continue;
    if (ev.event !== 'new' && ev.event !== 'update' && ev.event !== 'destroy') {
      if (typeof ev.ts === 'string') { const us = tsMicros(ev.ts); if (us !== undefined && us > clock) clock = us; }
      out += line + '\n';
      continue;
    }
    const us = ev.ts === undefined ? undefined : tsMicros(ev.ts);
    if (us === undefined || !Number.isInteger(ev.id) || ev.id < 0) continue;
    if (us > clock) clock = us;
    let key: string | number = ev.id;
    if (ev.host !== undefined && ev.host !== host0) {
      if (host0 === undefined) host0 = ev.host;
      else key = ev.host + '\n' + ev.id;
    }
    let f = open.get(key);
    if (f && !same(f.base, ev)) { open.delete(key); write(f, null, 0, 'id-reused'); f = undefined; }
    const add = (incomplete: boolean) => {
      if (open.size >= maxFlows) {
        const oldest = open.values().next().value as OFlow;
        open.delete(oldest.key);
        write(oldest, null, 0, 'evicted');
      }
      open.set(key, { key, base: ev, baseUs: us, latest: null, incomplete });
    };
    if (ev.event === 'new') {
      if (!f) add(ev.dump === true);
      else if (f.incomplete && ev.dump !== true) { f.base = ev; f.baseUs = us; f.incomplete = false; } else absorb(f, ev);
    } else if (ev.event === 'update') {
      if (!f) add(true); else absorb(f, ev);
    } else if (!f) write({ key, base: ev, baseUs: us, latest: null, incomplete: true }, ev, us, undefined);
    else { open.delete(key); absorb(f, ev); write(f, ev, us, undefined); }
  }
  for (const f of open.values()) write(f, null, 0, 'end-of-input');
  return out;
}

/** The stage over `text` in chunks of whole lines, then the end of input, as the command does. */
function stage(text: string, maxFlows: number, chunkLines = 97): { out: string; fast: number; slow: number } {
  const s = new FlowsStage({ maxFlows });
  const all = text.split('\n');
  let out = '';
  for (let i = 0; i < all.length; i += chunkLines) {
    const part = all.slice(i, i + chunkLines).join('\n') + (i + chunkLines < all.length ? '\n' : '');
    out += processChunk(Buffer.from(part), s, 1 << 20).out.toString();
  }
  s.tracker.flush('end-of-input');
  return { out: out + s.take(), fast: s.paths.fast, slow: s.paths.slow };
}

// ---------------------------------------------------------------- streams

const ODD_STRINGS = [
  'plain', 'quote " and backslash \\ and slash /', 'tab\tnew line\ncarriage\rbell\x07escape\x1bdel\x7f', '\b\f\x00\x1f',
  'café', 'naïve ☃', '日本語のパス', 'emoji 😀 pair', 'line sep \u2028 para \u2029', 'lone high \ud800 end', 'lone low \udc00',
  '', ' ', '{"not":"an object"}', '\\u0041 as text', 'ends with backslash \\',
];

/** The same object as text JSON.parse reads the same, but not in JSON.stringify's form. */
function loose(v: unknown, r: () => number): string {
  if (typeof v === 'string') {
    let s = '"';
    for (const ch of v) {
      const c = ch.codePointAt(0)!;
      if (ch === '"' || ch === '\\') s += '\\' + ch;
      else if (ch === '/' && r() < 0.5) s += '\\/';
      else if (c < 0x20 || (r() < 0.1 && c < 0x10000)) s += '\\u' + c.toString(16).padStart(4, '0')[r() < 0.5 ? 'toUpperCase' : 'toLowerCase']();
      else s += ch;
    }
    return s + '"';
  }
  if (typeof v === 'number') return Number.isInteger(v) && r() < 0.3 ? `${v}.0` : r() < 0.2 ? `${v}e0` : String(v);
  if (Array.isArray(v)) return '[ ' + v.map((x) => loose(x, r)).join(' , ') + ' ]';
  if (v !== null && typeof v === 'object') return '{ ' + Object.entries(v).map(([k, x]) => loose(k, r) + ' : ' + loose(x, r)).join(', ') + ' }';
  return JSON.stringify(v);
}

/** A varied stream: generated events, some changed in content, some in form, some with odd keys; special records and bad lines among them. */
function stream(n: number, seed: number): string {
  const r = rng(seed);
  const out: string[] = [];
  for (const l of generate(n, seed) as Iterable<string>) {
    const ev = JSON.parse(l);
    const x = r();
    // Content: odd strings where the record copies them, kernel timestamps, rarer fields.
    if (ev.process && r() < 0.3) ev.process.cmdline = [ODD_STRINGS[Math.floor(r() * ODD_STRINGS.length)], ODD_STRINGS[Math.floor(r() * ODD_STRINGS.length)]];
    if (r() < 0.05) ev.community_id = ODD_STRINGS[Math.floor(r() * ODD_STRINGS.length)];
    if (r() < 0.05) ev.tag = { note: ODD_STRINGS[Math.floor(r() * ODD_STRINGS.length)], n: [1.5, -2, 1e21, 1e-7, 0.1] };
    if (r() < 0.03) { ev.labels = [1, 65]; ev.helper = 'ftp'; ev.secmark = 7; }
    if (ev.event !== 'update' && r() < 0.1) { ev.start = '2026-11-23T00:00:00.000100Z'; if (ev.event === 'destroy') ev.stop = '2026-11-23T00:00:09.5Z'; }
    if (ev.icmp && r() < 0.3) ev.icmp.id = r() < 0.5 ? String(ev.icmp.id) : { v: ev.icmp.id };
    // Streams of several hosts merged (flows keyed by host and id), no host, ids past 32 bits; by flow, so that they still pair.
    // Some flows have a twin on another host: the same id, another port (the same flow if keyed by id alone: its id reused).
    const h = ev.id % 11;
    const twin = h === 0 && ev.id % 2 === 0 ? JSON.stringify({ ...ev, host: 'web-4', sport: ev.sport === undefined ? undefined : (ev.sport + 1) % 65536 }) : null;
    if (h === 1) ev.host = 'web-2';
    else if (h === 2) ev.host = ev.id % 5 === 0 ? 'hôte-3' : 'web-3';
    else if (h === 3) delete ev.host;
    else if (h === 4) ev.id = ev.id * 65536 + 7;
    let line: string;
    if (x < 0.08) line = loose(ev, r); // not JSON.stringify's form: the slow path
    else if (x < 0.11) {
      // Keys in another order: the record's pieces are not next to each other in the line.
      const keys = Object.keys(ev);
      const o: Ev = {};
      for (const k of keys.reverse()) o[k] = ev[k];
      line = JSON.stringify(o);
    } else line = JSON.stringify(ev);
    // Keys JSON.parse treats specially, and duplicates: the slow path.
    const y = r();
    if (y < 0.02) line = line.slice(0, -1) + ',"7":"index key","__proto__":{"p":1}}';
    else if (y < 0.04) line = line.replace('"mark":0', '"mark":0,"mark":5');
    else if (y < 0.05) line = line.replace('"process":{', '"process":{"pid":1,');
    else if (y < 0.06) line = '{"0":true,' + line.slice(1);
    if (r() < 0.02) line += '\r';
    out.push(line);
    if (twin !== null) out.push(twin);
    if (r() < 0.005) out.push(['not json', '[1,2]', '{"ts":"2026-11-23T00:00:00.000000Z","event":"new"}', '{"event":"destroy","id":1,"ts":"x"}', '   ', ''][Math.floor(r() * 6)]);
  }
  // As the stage reads it: UTF-8 (a lone surrogate written raw comes back as U+FFFD).
  return Buffer.from(out.join('\n') + '\n').toString();
}

test('records are byte for byte those of the plain implementation (objects, JSON.stringify), through both paths', () => {
  const text = stream(12000, 11);
  const got = stage(text, 100000);
  assert.ok(got.fast > 8000 && got.slow > 800, `both paths taken (fast ${got.fast}, slow ${got.slow})`);
  const want = oracle(text, 100000);
  assert.ok(want.split('\n').length > 4000);
  if (got.out !== want) {
    const a = got.out.split('\n'), b = want.split('\n');
    const i = a.findIndex((l, k) => l !== b[k]);
    assert.equal(a[i], b[i], `first difference at output line ${i + 1}`);
  }
  assert.equal(got.out, want);
});

test('the same with a small --max-flows (evicted, then incomplete records) and another seed', () => {
  const text = stream(6000, 5);
  const got = stage(text, 40, 13);
  assert.match(got.out, /"reason":"evicted"/);
  assert.equal(got.out, oracle(text, 40));
});

test('unicode, escapes and odd keys in a NEW: the record copies them as JSON.stringify writes them', () => {
  for (const s of ODD_STRINGS) {
    const ev: Ev = {
      ts: '2026-11-23T00:00:01.000000Z', event: 'new', id: 9, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport: 4000, dst: '10.0.0.6', dport: 80,
      reply: { src: '10.0.0.6', sport: 80, dst: '10.0.0.5', dport: 4000 }, status: ['CONFIRMED'], community_id: s,
      process: { comm: s, cmdline: [s, s + s], container: null }, extra: { [s]: s },
    };
    const destroy = { ...ev, event: 'destroy', ts: '2026-11-23T00:00:02.000000Z', counters: { orig: { packets: 1, bytes: 60 }, reply: { packets: 0, bytes: 0 } } };
    for (const text of [JSON.stringify(ev), loose(ev, rng(3))]) {
      const input = Buffer.from(text + '\n' + JSON.stringify(destroy) + '\n').toString();
      const got = stage(input, 10);
      assert.equal(got.out, oracle(input, 10), JSON.stringify(s));
      if (text !== JSON.stringify(ev)) continue;
      // (JSON.stringify writes a lone surrogate as an escape, so the values come back whole.)
      const rec = JSON.parse(got.out);
      assert.equal(rec.community_id, s);
      assert.deepEqual(rec.process.cmdline, [s, s + s]);
      assert.deepEqual(rec.extra, { [s]: s });
    }
  }
});

// ---------------------------------------------------------------- the scanner

test('scanner: a line it accepts is JSON in JSON.stringify\'s form, and each field\'s text is JSON.stringify of its value', () => {
  const keys = new KeyTable(KNOWN_FIELDS);
  const f = new Fields(KNOWN_FIELDS.length);
  const r = rng(42);
  const base = stream(400, 17).split('\n').filter((l) => l.startsWith('{'));
  const bytes = ' {}[]":,\\/0123456789.-+eEtrufalsn\t\n\x01\x7fabu';
  let accepted = 0, declined = 0, mutantsAccepted = 0;
  const tryLine = (line: string, mutant: boolean) => {
    const buf = Buffer.from('#' + line + '#'); // offsets inside a larger buffer, as in a chunk
    if (!scanLine(buf, 1, buf.length - 1, keys, f)) {
      declined++;
      return;
    }
    accepted++;
    if (mutant) mutantsAccepted++;
    let parsed: Ev;
    assert.doesNotThrow(() => (parsed = JSON.parse(line)), line);
    assert.equal(JSON.stringify(parsed!), line, 'accepted, so in JSON.stringify\'s form');
    assert.equal(f.count, Object.keys(parsed!).length);
    for (let i = 0; i < f.count; i++) {
      const k = JSON.parse(buf.toString('latin1', f.keyStart[i], f.start[i] - 1));
      assert.equal(buf.toString('latin1', f.start[i], f.end[i]), JSON.stringify(parsed![k]), k);
      assert.equal(f.slot[i], KNOWN_FIELDS.indexOf(k));
    }
  };
  for (const line of base) {
    tryLine(line, false);
    for (let m = 0; m < 30; m++) {
      // One byte changed, inserted or removed.
      const at = Math.floor(r() * line.length);
      const b = bytes[Math.floor(r() * bytes.length)];
      const op = r();
      const mut = op < 0.4 ? line.slice(0, at) + b + line.slice(at + 1) : op < 0.7 ? line.slice(0, at) + b + line.slice(at) : line.slice(0, at) + line.slice(at + 1);
      if (/^[\x00-\x7f]*$/.test(mut)) tryLine(mut, true);
    }
  }
  assert.ok(accepted > 1000 && declined > 1000 && mutantsAccepted > 100, `accepted ${accepted} (mutants ${mutantsAccepted}), declined ${declined}`);
});

test('scanner: what it declines', () => {
  const keys = new KeyTable(KNOWN_FIELDS);
  const f = new Fields(KNOWN_FIELDS.length);
  const scan = (s: string) => scanLine(Buffer.from(s), 0, Buffer.byteLength(s), keys, f);
  assert.equal(scan('{"event":"new","id":1}'), true);
  for (const s of [
    '{"event": "new"}', ' {"event":"new"}', '{"event":"new"} ', // whitespace
    '{"event":"n\\u0065w"}', '{"event":"a\\/b"}', '{"x":"\\u001F"}', '{"x":"\\u0008"}', // escapes JSON.stringify does not write
    '{"id":1.0}', '{"id":1e3}', '{"id":-0}', '{"id":01}', '{"id":1234567890123456789}', // numbers not in their shortest form, or not numbers
    '{"id":1,"id":2}', '{"process":{"pid":1,"pid":2}}', // duplicate keys
    '{"7":1}', '{"process":{"0":1}}', '{"__proto__":1}', // keys JSON.parse puts first, or does not keep
    '{"x":"café"}', '{"x":"\ud83d\ude00"}', // not ASCII
    '{"x":"a\tb"}', '{"x":tru}', '{"x":[1,]}', '{"x":{}', '{}x', '[]', // not JSON
  ]) assert.equal(scan(s), false, s);
  for (const s of ['{"x":"\\u001f\\n\\"\\\\"}', '{"x":[1.5,-2,1e+21,1e-7,true,false,null,{}]}', '{"process":{"__proto__":1}}', '{"x":"\x7f"}']) {
    assert.equal(scan(s), true, s);
  }
});
