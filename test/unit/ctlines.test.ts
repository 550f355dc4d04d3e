// ct-events' hot path in C (native/src/ctlines.c): the NDJSON lines it makes
// of the captured datagrams in test/fixtures/netlink are, byte for byte,
// those of the JavaScript decoder and the LineWriter; its filters keep what
// ConntrackSource's keep; and of thousands of cut and corrupted copies, each
// is either left to the JavaScript decoder or written exactly as it would
// write it (never different text, never a crash).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { addon } from '../../src/native/addon.js';
import { linesArgs, type ConntrackLinesOptions } from '../../src/native/netlink.js';
import { splitMessages, decodeConntrack, PROTO_NUMBERS, AF_INET6 } from '../../src/netlink/conntrack.js';
import { LineWriter } from '../../src/event-json.js';
import { FIXTURES } from '../helpers.js';

const DIR = path.join(FIXTURES, 'netlink');
const TS = '2026-01-02T03:04:05.000006Z';
const fixtures = readdirSync(DIR)
  .filter((f) => f.endsWith('.hex') && !f.startsWith('dump-'))
  .sort()
  .map((f) => ({ name: f.slice(0, -4), buf: Buffer.from(readFileSync(path.join(DIR, f), 'utf8').trim(), 'hex') }));

/** What ct-events wrote for a datagram before: decodeConntrack() and the LineWriter; or the decoder's error. */
function jsLines(buf: Buffer, host?: string, keep: (e: any) => boolean = () => true): { text: string; count: number; decoded: number } | Error {
  try {
    const w = new LineWriter();
    let count = 0, decoded = 0;
    for (const m of splitMessages(buf)) {
      const ev = decodeConntrack(buf, m, { ts: TS, host });
      if (!ev) continue;
      decoded++;
      if (!keep(ev)) continue;
      w.line(ev);
      count++;
    }
    return { text: w.take().toString('utf8'), count, decoded };
  } catch (e) {
    return e as Error;
  }
}

function cLines(buf: Buffer, o: ConntrackLinesOptions = {}) {
  const r = addon().conntrackLines(buf, TS, ...linesArgs(o));
  return r && { text: r[0].toString('utf8'), count: r[1], decoded: r[2] };
}

test('every captured event is written in C, as the JavaScript decoder writes it', () => {
  assert.ok(fixtures.length >= 15);
  for (const f of fixtures) {
    for (const host of [undefined, 'web-1', 'a "quoted"\\ host\twith é and 😀']) {
      const c = cLines(f.buf, { host });
      assert.ok(c, `${f.name}: not left to JavaScript`);
      assert.deepEqual(c, jsLines(f.buf, host), f.name);
    }
  }
});

test('a datagram of several events: all their lines, in order', () => {
  const all = Buffer.concat(fixtures.map((f) => f.buf));
  const c = cLines(all, { host: 'h' });
  assert.ok(c);
  assert.equal(c.count, fixtures.length);
  assert.deepEqual(c, jsLines(all, 'h'));
});

test('the protocol and family filters keep what ConntrackSource keeps, and count every event decoded', () => {
  const all = Buffer.concat(fixtures.map((f) => f.buf));
  for (const protos of [['tcp'], ['udp', 'icmp'], ['icmpv6'], ['sctp']]) {
    const c = cLines(all, { protos: protos.map((p) => PROTO_NUMBERS[p]!) });
    assert.deepEqual(c, jsLines(all, undefined, (e) => protos.includes(e.proto)), protos.join(','));
    assert.equal(c!.decoded, fixtures.length);
  }
  const v6 = cLines(all, { family: AF_INET6 });
  assert.deepEqual(v6, jsLines(all, undefined, (e) => e.family === 'ipv6'));
  assert.ok(v6!.count > 0 && v6!.count < fixtures.length);
});

test('what only the JavaScript decoder writes is left to it: an unknown attribute, labels', () => {
  const f = fixtures.find((x) => x.name === 'udp4-mark-1-new')!;
  // An attribute the tables do not know (type 200), appended to the message.
  const extra = Buffer.from([8, 0, 200, 0, 1, 2, 3, 4]);
  const grown = Buffer.concat([f.buf, extra]);
  grown.writeUInt32LE(grown.length, 0);
  assert.equal(cLines(grown), null);
  const js = jsLines(grown);
  assert.ok(!(js instanceof Error) && /"unknown":\{"200":"01020304"\}/.test(js.text));
  // CTA_LABELS (22): a bitmap.
  const labels = Buffer.concat([f.buf, Buffer.from([8, 0, 22, 0, 1, 0, 0, 0])]);
  labels.writeUInt32LE(labels.length, 0);
  assert.equal(cLines(labels), null);
  // Not a ctnetlink message at all (NLMSG_NOOP): no line, nothing decoded, as in JavaScript.
  const noop = Buffer.alloc(16);
  noop.writeUInt32LE(16, 0);
  noop.writeUInt16LE(1, 4);
  assert.deepEqual(cLines(noop), { text: '', count: 0, decoded: 0 });
});

test('cut and corrupted datagrams: left to the JavaScript decoder, or written exactly as it writes them', () => {
  let seed = 17;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  let same = 0, left = 0;
  for (const f of fixtures) {
    for (let k = 0; k < 1500; k++) {
      const buf = Buffer.from(f.buf);
      for (let j = 1 + Math.floor(rnd() * 3); j > 0; j--) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
      const use = rnd() < 0.2 ? buf.subarray(0, Math.floor(rnd() * buf.length)) : buf;
      const c = cLines(use, { host: 'h' });
      if (c === null) { left++; continue; }
      const js = jsLines(use, 'h');
      assert.ok(!(js instanceof Error), `${f.name}: C wrote a datagram the decoder rejects (${(js as Error).message})`);
      assert.deepEqual(c, js, `${f.name}: ${use.toString('hex')}`);
      same++;
    }
  }
  assert.ok(same > 1000 && left > 1000, `both outcomes exercised (${same} written, ${left} left to JavaScript)`);
});
