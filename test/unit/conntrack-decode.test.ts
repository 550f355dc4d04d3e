// The ctnetlink decoder against real datagrams captured from the kernel
// (test/fixtures/netlink, recorded by scripts/capture-fixtures.js), checked
// against what conntrack(8) printed for the same events; then cut,
// corrupted and extended copies of them, which must give a DecodeError and
// never any other exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { endianness } from 'node:os';
import path from 'node:path';
import {
  splitMessages, decodeConntrack, DecodeError, CommunityIdCache, NLMSG_DONE, NLM_F_MULTI, type NlMessage,
} from '../../src/netlink/conntrack.js';
import { communityIdFromStrings } from '../../src/community-id.js';
import { FIXTURES } from '../helpers.js';

const DIR = path.join(FIXTURES, 'netlink');
const TS = '2026-01-02T03:04:05.000006Z';

interface Fixture {
  name: string;
  buf: Buffer;
  meta: any;
}

const fixtures: Fixture[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.hex'))
  .sort()
  .map((f) => {
    const name = f.slice(0, -4);
    return {
      name,
      buf: Buffer.from(readFileSync(path.join(DIR, f), 'utf8').trim(), 'hex'),
      meta: JSON.parse(readFileSync(path.join(DIR, `${name}.json`), 'utf8')),
    };
  });
const events = fixtures.filter((f) => !f.name.startsWith('dump-'));
const byName = (n: string) => {
  const f = fixtures.find((x) => x.name === n);
  assert.ok(f, `fixture ${n}`);
  return f;
};
const LE = endianness() === 'LE';

function decodeAll(buf: Buffer) {
  return splitMessages(buf).map((m) => decodeConntrack(buf, m, { ts: TS, host: 'h' })).filter((e) => e !== null);
}

test('fixtures cover what the issue asks for', () => {
  const have = new Set(events.flatMap((f) => f.meta.expect.map((e: any) => `${e.family}/${e.proto}/${e.event}`)));
  for (const want of ['ipv4/tcp/new', 'ipv4/tcp/update', 'ipv4/tcp/destroy', 'ipv4/udp/new', 'ipv4/udp/destroy',
    'ipv4/icmp/new', 'ipv4/icmp/destroy', 'ipv6/tcp/new', 'ipv6/udp/destroy', 'ipv6/icmpv6/new', 'ipv6/icmpv6/destroy']) {
    assert.ok(have.has(want), `a fixture with ${want}`);
  }
  assert.ok(events.some((f) => f.meta.expect.some((e: any) => e.counters && e.start && e.stop)), 'counters and timestamps');
  assert.ok(events.some((f) => f.meta.expect.some((e: any) => e.reply.dst !== e.src)), 'a NAT reply tuple');
});

for (const f of events) {
  test(`${f.name}: decodes as conntrack(8) showed it`, () => {
    // Netlink headers are host-endian: a fixture is only valid on its own byte order.
    assert.equal(f.meta.byteorder, endianness(), 'captured on this byte order (recapture with scripts/capture-fixtures.js)');
    const evs = decodeAll(f.buf);
    assert.equal(evs.length, f.meta.expect.length);
    evs.forEach((ev, i) => {
      const x = f.meta.expect[i];
      assert.equal(ev.ts, TS);
      assert.equal(ev.host, 'h');
      assert.equal(ev.event, x.event);
      assert.equal(ev.id, x.id);
      assert.equal(ev.family, x.family);
      assert.equal(ev.proto, x.proto);
      assert.equal(ev.src, x.src);
      assert.equal(ev.dst, x.dst);
      assert.equal(ev.sport, x.sport);
      assert.equal(ev.dport, x.dport);
      assert.deepEqual(ev.reply, x.reply);
      assert.equal(ev.timeout, x.timeout);
      assert.equal(ev.state, x.state);
      assert.equal(ev.mark, x.mark ?? 0);
      assert.equal(ev.zone, 0);
      assert.deepEqual(ev.icmp, x.icmp);
      assert.deepEqual(ev.counters, x.counters);
      // conntrack prints [UNREPLIED] when SEEN_REPLY is clear, [ASSURED] when ASSURED is set.
      assert.equal(ev.status.includes('SEEN_REPLY'), !x.flags.includes('UNREPLIED'), 'SEEN_REPLY');
      assert.equal(ev.status.includes('ASSURED'), x.flags.includes('ASSURED'), 'ASSURED');
      assert.ok(ev.status.includes('CONFIRMED'));
      assert.equal(ev.status.includes('DYING'), ev.event === 'destroy');
      // conntrack shows start/stop to the second, in UTC here.
      assert.equal(ev.start?.slice(0, 19), x.start?.slice(0, 19));
      assert.equal(ev.stop?.slice(0, 19), x.stop?.slice(0, 19));
      if (ev.start) assert.match(ev.start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      if (ev.start && ev.stop) assert.ok(ev.stop >= ev.start);
      assert.equal(ev.unknown, undefined, 'every attribute the kernel sent is known');
      // Community ID over the original tuple (ICMP: type/code in the port slots).
      const cid = ev.icmp
        ? communityIdFromStrings(x.proto === 'icmp' ? 1 : 58, x.src, x.dst, x.icmp.type, x.icmp.code)
        : communityIdFromStrings(x.proto === 'tcp' ? 6 : 17, x.src, x.dst, x.sport, x.dport);
      assert.equal(ev.community_id, cid);
    });
  });
}

test('the TCP handshake and close arrive as state changes of one id', () => {
  const seq = events.filter((f) => f.name.startsWith('tcp4-')).map((f) => decodeAll(f.buf)[0]);
  assert.deepEqual(seq.map((e) => e.event), ['new', 'update', 'update', 'update', 'update', 'update', 'destroy']);
  assert.deepEqual(seq.map((e) => e.state), ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'LAST_ACK', 'TIME_WAIT', 'TIME_WAIT']);
  assert.equal(new Set(seq.map((e) => e.id)).size, 1);
});

test('NAT: the reply tuple carries the masqueraded address and the status says SRC_NAT', () => {
  for (const n of ['nat-tcp4-1-new', 'nat-tcp4-2-destroy']) {
    const [ev] = decodeAll(byName(n).buf);
    assert.equal(ev.src, '192.168.77.1');
    assert.equal(ev.reply.src, '10.77.0.2');
    assert.equal(ev.reply.dst, '10.77.0.1');
    assert.equal(ev.reply.dport, ev.sport); // masquerade kept the port
    assert.ok(ev.status.includes('SRC_NAT') && ev.status.includes('SRC_NAT_DONE'), ev.status.join());
  }
});

test('ICMP: type, code and echo id; the reply tuple holds the echo reply', () => {
  const [v4] = decodeAll(byName('icmp4-1-new').buf);
  assert.equal(v4.icmp?.type, 8);
  assert.equal(v4.icmp?.code, 0);
  assert.equal(v4.sport, undefined);
  assert.equal(v4.dport, undefined);
  const [v6] = decodeAll(byName('icmp6-2-destroy').buf);
  assert.equal(v6.icmp?.type, 128);
  assert.equal(v6.src, '::1');
});

test('a dump reply: several NLM_F_MULTI entries in one datagram, then NLMSG_DONE', () => {
  const first = byName('dump-1');
  const msgs = splitMessages(first.buf);
  assert.ok(msgs.length >= 5, `${msgs.length} messages`);
  for (const m of msgs) assert.ok(m.flags & NLM_F_MULTI);
  const evs = decodeAll(first.buf);
  // A dump entry is an IPCTNL_MSG_CT_NEW without NLM_F_CREATE.
  assert.ok(evs.every((e) => e.event === 'update'));
  const udp = evs.filter((e) => e.proto === 'udp').map((e) => e.dport).sort();
  assert.deepEqual(udp, first.meta.expect.udp4_dports);
  const tcp6 = evs.find((e) => e.family === 'ipv6' && e.proto === 'tcp');
  assert.equal(tcp6?.dport, first.meta.expect.tcp6_dport);
  // Dumps carry accounting and the start time.
  assert.ok(evs.every((e) => e.counters && e.start && !e.stop));
  const done = byName('dump-2');
  const [d] = splitMessages(done.buf);
  assert.equal(d.type, NLMSG_DONE);
  assert.equal(decodeConntrack(done.buf, d, { ts: TS }), null);
});

// ---- malformed input -------------------------------------------------------

/** Decode a datagram the way ConntrackSource does: DecodeError or a result, nothing else. */
function outcome(buf: Buffer): 'ok' | 'error' {
  try {
    decodeAll(buf);
    return 'ok';
  } catch (e) {
    if (e instanceof DecodeError) return 'error';
    throw new Error(`not a DecodeError: ${(e as Error)?.stack ?? e}`);
  }
}

const putU16 = (b: Buffer, o: number, v: number) => (LE ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
const putU32 = (b: Buffer, o: number, v: number) => (LE ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
const getU16 = (b: Buffer, o: number) => (LE ? b.readUInt16LE(o) : b.readUInt16BE(o));

/** Top-level attributes of the one message in a datagram: [offset, len, type]. */
function topAttrs(buf: Buffer, m: NlMessage): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (let s = m.start + 4; s + 4 <= m.end; s += (getU16(buf, s) + 3) & ~3) out.push([s, getU16(buf, s), getU16(buf, s + 2) & 0x3fff]);
  return out;
}

/**
 * Rebuild a one-message datagram with `attr` appended inside the nest that
 * `path` names (attribute types, outermost first; [] for the top level),
 * fixing the length of every enclosing nest and of the message.
 */
function withAttr(buf: Buffer, attr: Buffer, path: number[] = []): Buffer {
  const [m] = splitMessages(buf);
  const pad = Buffer.alloc((4 - (attr.length % 4)) % 4);
  const ins = Buffer.concat([attr, pad]);
  const parents: number[] = [];
  let s = m.start + 4, e = m.end;
  for (const type of path) {
    let found = -1;
    for (let o = s; o + 4 <= e; o += (getU16(buf, o) + 3) & ~3) {
      if ((getU16(buf, o + 2) & 0x3fff) === type) { found = o; break; }
    }
    assert.ok(found >= 0, `attribute ${type} in ${path}`);
    parents.push(found);
    s = found + 4;
    e = found + getU16(buf, found);
  }
  const out = Buffer.concat([buf.subarray(0, e), ins, buf.subarray(e, m.end)]);
  for (const o of parents) putU16(out, o, getU16(out, o) + ins.length);
  putU32(out, 0, out.length);
  return out;
}

const nla = (type: number, payload: Buffer) => {
  const b = Buffer.alloc(4 + payload.length);
  putU16(b, 0, b.length);
  putU16(b, 2, type);
  payload.copy(b, 4);
  return b;
};

test('a cut netlink header is a DecodeError', () => {
  const { buf } = byName('tcp4-1-new');
  for (const n of [1, 4, 8, 15]) {
    assert.throws(() => splitMessages(buf.subarray(0, n)), DecodeError, `${n} bytes`);
  }
  assert.deepEqual(splitMessages(Buffer.alloc(0)), []);
});

test('a message length past the datagram or shorter than its header is a DecodeError', () => {
  const b = Buffer.from(byName('udp6-1-new').buf);
  putU32(b, 0, b.length + 4);
  assert.throws(() => splitMessages(b), /truncated netlink message/);
  putU32(b, 0, 8);
  assert.throws(() => splitMessages(b), /shorter than its header/);
});

test('a message without its nfgenmsg header is a DecodeError', () => {
  const b = Buffer.from(byName('udp4-mark-1-new').buf.subarray(0, 18));
  putU32(b, 0, 18);
  assert.throws(() => decodeAll(b), /nfgenmsg/);
});

test('an attribute length past the end is a DecodeError', () => {
  const src = byName('tcp4-7-destroy').buf;
  const [m] = splitMessages(src);
  for (const [off, len, type] of topAttrs(src, m)) {
    const b = Buffer.from(src);
    putU16(b, off, len + (m.end - off)); // runs past the message
    assert.equal(outcome(b), 'error', `attribute ${type}`);
    const c = Buffer.from(src);
    putU16(c, off, 2); // shorter than an attribute header
    assert.equal(outcome(c), 'error', `attribute ${type} of length 2`);
  }
  // Inside a nest: the first attribute of CTA_TUPLE_ORIG claims more than the nest holds.
  const b = Buffer.from(src);
  const [orig] = topAttrs(b, m).filter(([, , t]) => t === 1);
  putU16(b, orig[0] + 4, orig[1]);
  assert.throws(() => decodeAll(b), /CTA_TUPLE_ORIG: attribute 1 length/);
});

test('an attribute too short for its value is a DecodeError naming it', () => {
  const src = byName('udp4-mark-1-new').buf;
  const [m] = splitMessages(src);
  const [id] = topAttrs(src, m).filter(([, , t]) => t === 12); // CTA_ID, 4 bytes
  const b = Buffer.from(src);
  putU16(b, id[0], 6);
  assert.throws(() => decodeAll(b), /CTA_ID: 2 bytes, expected at least 4/);
});

test('messages missing the original tuple or the id are a DecodeError', () => {
  const src = byName('udp6-1-new').buf;
  const [m] = splitMessages(src);
  for (const type of [1, 12]) {
    const b = Buffer.from(src);
    const [a] = topAttrs(b, m).filter(([, , t]) => t === type);
    putU16(b, a[0] + 2, 0x3000); // an unknown type instead
    assert.throws(() => decodeAll(b), DecodeError);
  }
});

test('every prefix of every captured datagram decodes or gives a DecodeError', () => {
  let errors = 0;
  for (const f of fixtures) {
    for (let n = 0; n < f.buf.length; n++) {
      const cut = Buffer.from(f.buf.subarray(0, n));
      if (outcome(cut) === 'error') errors++;
      // The same bytes with the header length patched to match: a message cut
      // inside its attributes rather than inside the datagram.
      if (n >= 16) {
        putU32(cut, 0, n);
        if (outcome(cut) === 'error') errors++;
      }
    }
  }
  assert.ok(errors > 0);
});

test('random corruption decodes or gives a DecodeError, never another exception', () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  let ok = 0, bad = 0;
  for (let round = 0; round < 4000; round++) {
    const f = fixtures[round % fixtures.length];
    const b = Buffer.from(f.buf);
    const flips = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < flips; i++) {
      // Skip the netlink header most of the time, so the attributes get hit.
      const at = 16 + Math.floor(rnd() * (b.length - 16));
      b[at] = rnd() < 0.5 ? Math.floor(rnd() * 256) : b[at] ^ (1 << Math.floor(rnd() * 8));
    }
    if (outcome(b) === 'ok') ok++;
    else bad++;
  }
  assert.ok(ok > 0 && bad > 0, `${ok} decoded, ${bad} rejected`);
});

test('addresses of different families in one tuple are a DecodeError', () => {
  // CTA_IP_V4_SRC replaced by a CTA_IP_V6_SRC of the same size class: rebuild
  // the orig tuple's IP nest as v4 src + v6 dst.
  const src = byName('udp4-mark-1-new').buf;
  const [m] = splitMessages(src);
  const [orig] = topAttrs(src, m).filter(([, , t]) => t === 1);
  const tupleIp = nla(1 | 0x8000, Buffer.concat([nla(1, Buffer.from([10, 0, 0, 1])), nla(4, Buffer.alloc(16, 1))]));
  const rest = src.subarray(orig[0] + 4, orig[0] + orig[1]);
  // Drop the first nested attribute (the original CTA_TUPLE_IP) and put ours first.
  const firstLen = (getU16(rest, 0) + 3) & ~3;
  const newOrig = nla(1 | 0x8000, Buffer.concat([tupleIp, rest.subarray(firstLen)]));
  const out = Buffer.concat([src.subarray(0, orig[0]), newOrig, src.subarray(orig[0] + ((orig[1] + 3) & ~3), m.end)]);
  putU32(out, 0, out.length);
  assert.equal(outcome(out), 'error');
});

test('unknown attributes are kept under `unknown`, top level and nested, as hex', () => {
  const base = byName('tcp6-1-new').buf;
  let b = withAttr(base, nla(200, Buffer.from('cafe', 'hex')));
  b = withAttr(b, nla(77, Buffer.from('0102030405', 'hex')), [1]); // inside CTA_TUPLE_ORIG
  b = withAttr(b, nla(77, Buffer.from('0a0b', 'hex')), [2]); // inside CTA_TUPLE_REPLY
  b = withAttr(b, nla(9, Buffer.from('11', 'hex')), [1, 1]); // inside CTA_TUPLE_ORIG > CTA_TUPLE_IP
  b = withAttr(b, nla(9, Buffer.from('22', 'hex')), [2, 1]); // inside CTA_TUPLE_REPLY > CTA_TUPLE_IP
  const [ev] = decodeAll(b);
  const [plain] = decodeAll(base);
  assert.equal(ev.id, plain.id);
  assert.deepEqual(ev.reply, plain.reply);
  assert.ok(ev.unknown);
  assert.equal(ev.unknown['200'], 'cafe');
  const nested = Object.entries(ev.unknown).filter(([k]) => k.endsWith('.77'));
  // One entry per place: the orig tuple's and the reply tuple's are both kept.
  assert.deepEqual(nested.map(([, v]) => v).sort(), ['0102030405', '0a0b']);
  assert.equal(new Set(nested.map(([k]) => k)).size, 2);
  const deeper = Object.entries(ev.unknown).filter(([k]) => k.endsWith('.9'));
  assert.deepEqual(deeper.map(([, v]) => v).sort(), ['11', '22'], JSON.stringify(ev.unknown));
  // Flags in the type (NLA_F_NESTED, NLA_F_NET_BYTEORDER) are not part of the number.
  const c = withAttr(base, nla(201 | 0x4000, Buffer.from('01', 'hex')));
  assert.equal(decodeAll(c)[0].unknown?.['201'], '01');
});

test('messages of other types and subsystems are passed over, not errors', () => {
  const b = Buffer.from(byName('udp4-mark-1-new').buf);
  putU16(b, 4, (2 << 8) | 0); // NFNL_SUBSYS_CTNETLINK_EXP
  assert.deepEqual(decodeAll(b), []);
  putU16(b, 4, (1 << 8) | 4); // IPCTNL_MSG_CT_GET_CTRZERO
  assert.deepEqual(decodeAll(b), []);
});

test('CommunityIdCache: every captured lifecycle gives the same community_id with and without it; DESTROY ends the entry; a reused id with another tuple is hashed anew', () => {
  const cache = new CommunityIdCache();
  let n = 0;
  for (const f of events) {
    for (const m of splitMessages(f.buf)) {
      const plain = decodeConntrack(f.buf, m, { ts: TS });
      const cached = decodeConntrack(f.buf, m, { ts: TS, cidCache: cache });
      if (!plain) continue;
      n++;
      assert.equal(cached!.community_id, plain.community_id, f.name);
      assert.deepEqual(Object.keys(cached!), Object.keys(plain), f.name);
    }
  }
  assert.ok(n >= 10);
  // Later events of a flow were answered from the cache.
  assert.ok(cache.hits > 0, `hits ${cache.hits}`);
  // NEW fills, DESTROY takes and ends the entry: a second DESTROY is hashed anew.
  const c2 = new CommunityIdCache();
  const newF = byName('tcp4-1-new'), destroyF = byName('tcp4-7-destroy');
  decodeConntrack(newF.buf, splitMessages(newF.buf)[0], { ts: TS, cidCache: c2 });
  assert.deepEqual([c2.hits, c2.misses], [0, 1]);
  decodeConntrack(destroyF.buf, splitMessages(destroyF.buf)[0], { ts: TS, cidCache: c2 });
  assert.deepEqual([c2.hits, c2.misses], [1, 1]);
  decodeConntrack(destroyF.buf, splitMessages(destroyF.buf)[0], { ts: TS, cidCache: c2 });
  assert.deepEqual([c2.hits, c2.misses], [1, 2]);
  // The same conntrack id on another flow (ids are reused): not taken from the cache.
  const udp = byName('udp4-mark-1-new');
  const um = splitMessages(udp.buf)[0];
  const tcpEv = decodeConntrack(newF.buf, splitMessages(newF.buf)[0], { ts: TS, cidCache: c2 })!;
  const other = Buffer.from(udp.buf);
  const udpEv = decodeConntrack(other, um, { ts: TS })!;
  // Give the UDP message the TCP flow's id: find the id's bytes (big-endian CTA_ID) and overwrite them.
  const idBytes = Buffer.alloc(4);
  idBytes.writeUInt32BE(udpEv.id);
  const at = other.indexOf(idBytes, um.start);
  assert.ok(at > 0);
  other.writeUInt32BE(tcpEv.id, at);
  const hits = c2.hits;
  const reused = decodeConntrack(other, um, { ts: TS, cidCache: c2 })!;
  assert.equal(reused.id, tcpEv.id);
  assert.equal(c2.hits, hits);
  assert.equal(reused.community_id, udpEv.community_id);
  assert.notEqual(reused.community_id, tcpEv.community_id);
});
