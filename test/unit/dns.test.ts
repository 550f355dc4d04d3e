// src/dns and src/netlink/nflog.ts: real NFLOG datagrams of DNS answers
// (captured from dnsmasq with scripts/capture-nflog.js), hostile DNS
// messages (pointer loops, forward pointers, long names, cut records), a
// mutation run over the real datagrams, and the name map's choice of name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { splitMessages, DecodeError } from '../../src/netlink/conntrack.js';
import { decodeLogged, bindRequest, NFULNL_CFG_F_SEQ } from '../../src/netlink/nflog.js';
import { parseAnswerPacket } from '../../src/dns/packet.js';
import { answerTs } from '../../src/dns/observer.js';
import { parseMessage, readName, resolution, DnsError } from '../../src/dns/message.js';
import { NameMap } from '../../src/dns/names.js';
import { DnsEnrichment } from '../../src/attribute/enrichments/dns.js';
import { Engine } from '../../src/attribute/engine.js';
import type { Answer, Source } from '../../src/attribute/source.js';
import type { DnsRecord, FlowEvent } from '../../src/event.js';

const FIX = new URL('../../../test/fixtures/nflog/', import.meta.url);

function logged(file: string): { buf: Buffer; start: number; end: number; seq?: number; micros?: number } {
  const buf = readFileSync(new URL(file, FIX));
  const msgs = splitMessages(buf);
  assert.equal(msgs.length, 1);
  const p = decodeLogged(buf, msgs[0]!);
  assert.ok(p);
  return { buf, ...p };
}

test('NFLOG: real datagrams of UDP and TCP answers decode to dns records', () => {
  const a = logged('udp-a-cname.bin');
  assert.equal(a.seq, 0);
  const r = parseAnswerPacket(a.buf.subarray(a.start, a.end), 'T');
  assert.deepEqual(r, { ts: 'T', event: 'dns', proto: 'udp', client: '127.0.0.1', cport: 49662, server: '127.0.0.1', sport: 53, name: 'alias.a.test', cnames: ['www.a.test'], answers: [{ addr: '10.99.0.1', ttl: 5 }] });
  const b = logged('udp-aaaa-cname.bin');
  assert.equal(b.seq, 1);
  assert.deepEqual(parseAnswerPacket(b.buf.subarray(b.start, b.end), 'T')?.answers, [{ addr: 'fd00:99::1', ttl: 5 }]);
  const t = logged('tcp-answer.bin');
  const tr = parseAnswerPacket(t.buf.subarray(t.start, t.end), 'T');
  assert.equal(tr?.proto, 'tcp');
  assert.equal(tr?.name, 'www.a.test');
  assert.equal('cnames' in tr!, false);
  // A segment without data (the server's SYN-ACK) is no answer.
  const s = logged('tcp-synack.bin');
  assert.equal(parseAnswerPacket(s.buf.subarray(s.start, s.end), 'T'), null);
});

test('NFLOG: the kernel\'s stamp of a packet is its answer\'s ts, unless it is far from our clock', () => {
  const a = logged('udp-a-cname.bin');
  assert.equal(a.micros, 1796516413759587);
  assert.equal(logged('tcp-answer.bin').micros, 1796516413761797);
  // Read 3 ms after the kernel logged it: stamped when logged.
  assert.equal(answerTs(a.micros, a.micros! + 3000), '2026-12-06T00:20:13.759587Z');
  // A stamp a little ahead of our clock (its slack): never later than now.
  assert.equal(answerTs(a.micros, a.micros! - 5), '2026-12-06T00:20:13.759582Z');
  // No stamp, or one from before the clock was set: the time it is read.
  assert.equal(answerTs(undefined, a.micros!), '2026-12-06T00:20:13.759587Z');
  assert.equal(answerTs(5e6, a.micros!), '2026-12-06T00:20:13.759587Z');
});

test('NFLOG: the bind request numbers packets and copies them whole', () => {
  const b = bindRequest(5300, 9);
  assert.equal(b.readUInt32LE(0), b.length);
  assert.equal(b.readUInt16LE(4), (4 << 8) | 1); // NFNL_SUBSYS_ULOG, NFULNL_MSG_CONFIG
  assert.equal(b.readUInt16BE(18), 5300);
  assert.ok(b.includes(Buffer.from([0, NFULNL_CFG_F_SEQ])), 'NFULA_CFG_FLAGS with the SEQ flag');
});

test('NFLOG: a cut attribute or a message without payload is a DecodeError', () => {
  const a = logged('udp-a-cname.bin');
  const cut = Buffer.from(a.buf.subarray(0, 60));
  cut.writeUInt32LE(60, 0);
  assert.throws(() => decodeLogged(cut, splitMessages(cut)[0]!), DecodeError);
});

/** A DNS message from parts: header fields, then raw bytes. */
function msg(qd: number, an: number, body: number[], flags = 0x8180): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(1, 0); h.writeUInt16BE(flags, 2); h.writeUInt16BE(qd, 4); h.writeUInt16BE(an, 6);
  return Buffer.concat([h, Buffer.from(body)]);
}
const Q = [1, 0x61, 1, 0x62, 0, 0, 1, 0, 1]; // "a.b" A IN

test('DNS: hostile names are refused, not followed', () => {
  // A pointer to itself, a pointer forward, a pointer into the header-less void.
  assert.throws(() => readName(msg(0, 0, [0xc0, 12]), 12, 14), /does not point back/);
  assert.throws(() => readName(msg(0, 0, [0xc0, 14, 0]), 12, 15), /does not point back/);
  // Two pointers to each other.
  const loop = msg(0, 0, [1, 0x61, 0xc0, 12, 0xc0, 14]);
  assert.throws(() => readName(loop, 16, loop.length), DnsError);
  // A name longer than 255 bytes.
  const long: number[] = [];
  for (let i = 0; i < 5; i++) long.push(63, ...new Array(63).fill(0x61));
  long.push(0);
  assert.throws(() => readName(msg(0, 0, long), 12, 12 + long.length), /longer than 255/);
  // A label past the end, an extended label type.
  assert.throws(() => readName(msg(0, 0, [9, 0x61]), 12, 14), /past the message/);
  assert.throws(() => readName(msg(0, 0, [0x40, 0]), 12, 14), /label type/);
  // Labels that would forge a dot or a line are escaped.
  assert.equal(readName(msg(0, 0, [3, 0x61, 0x2e, 0x0a, 1, 0x42, 0]), 12, 19).name, 'a\\046\\010.b');
});

test('DNS: cut and lying records throw DnsError', () => {
  assert.throws(() => parseMessage(Buffer.alloc(5)), /shorter than its header/);
  assert.throws(() => parseMessage(msg(1, 0, [1, 0x61, 0])), /question cut off/);
  assert.throws(() => parseMessage(msg(1, 1, Q)), /runs past the message/); // says one answer, has none
  assert.throws(() => parseMessage(msg(1, 1, [...Q, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 3, 1, 2, 3])), /A record of 3 bytes/);
  assert.throws(() => parseMessage(msg(1, 1, [...Q, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 9, 1, 2, 3])), /data cut off/);
  // 65535 answers claimed: at most 64 are read, the rest is never touched.
  const many: number[] = [...Q];
  for (let i = 0; i < 64; i++) many.push(0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, i);
  const m = parseMessage(msg(1, 65535, many));
  assert.equal(m.answers.length, 64);
  // A TTL with the top bit set is 0 (RFC 2181 8).
  const big = parseMessage(msg(1, 1, [...Q, 0xc0, 12, 0, 1, 0, 1, 0x80, 0, 0, 0, 0, 4, 10, 0, 0, 1]));
  assert.equal(big.answers[0]!.ttl, 0);
  // A CNAME loop ends; an error rcode or a query is no resolution.
  const cl = parseMessage(msg(1, 3, [...Q, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 4, 1, 0x63, 0xc0, 14, 0xc0, 29, 0, 5, 0, 1, 0, 0, 0, 5, 0, 2, 0xc0, 12, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 9]));
  assert.deepEqual(resolution(cl), { name: 'a.b', cnames: ['c.b'], answers: [{ addr: '10.0.0.9', ttl: 5 }] });
  assert.equal(resolution(parseMessage(msg(1, 1, [...Q, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4], 0x8183))), null);
  assert.equal(resolution(parseMessage(msg(1, 1, [...Q, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4], 0x0100))), null);
});

test('DNS: 20000 mutations of the real datagrams throw DnsError or DecodeError, nothing else', () => {
  const files = ['udp-a-cname.bin', 'udp-aaaa-cname.bin', 'tcp-answer.bin'];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let parsed = 0, refused = 0;
  for (let i = 0; i < 20000; i++) {
    const l = logged(files[i % files.length]!);
    const p = Buffer.from(l.buf.subarray(l.start, l.end));
    const flips = 1 + Math.floor(rnd() * 4);
    for (let k = 0; k < flips; k++) p[Math.floor(rnd() * p.length)] = Math.floor(rnd() * 256);
    const cutTo = rnd() < 0.2 ? Math.floor(rnd() * p.length) : p.length;
    try {
      parseAnswerPacket(p.subarray(0, cutTo), 'T');
      parsed++;
    } catch (e) {
      assert.ok(e instanceof DnsError || e instanceof DecodeError, String((e as Error).stack));
      refused++;
    }
  }
  assert.ok(parsed > 0 && refused > 0, `${parsed} parsed, ${refused} refused`);
});

function dns(ts: string, client: string, cport: number, name: string, addr: string, ttl: number, cnames?: string[]): DnsRecord {
  return { ts, event: 'dns', proto: 'udp', client, cport, server: '10.0.0.53', sport: 53, name, ...(cnames ? { cnames } : {}), answers: [{ addr, ttl }] };
}
function flow(ts: string, src: string, dst: string, pid: number, extra: Partial<FlowEvent> = {}): FlowEvent {
  return { ts, event: 'new', id: 1, family: 'ipv4', proto: 'tcp', src, sport: 40000, dst, dport: 443, reply: { src: dst, dst: src }, status: [], direction: 'out', process: { pid, entity_id: `e${pid}` }, ...extra };
}
function query(ts: string, src: string, sport: number, pid: number): FlowEvent {
  return { ts, event: 'new', id: 2, family: 'ipv4', proto: 'udp', src, sport, dst: '10.0.0.53', dport: 53, reply: { src: '10.0.0.53', dst: src }, status: [], direction: 'out', process: { pid, entity_id: `e${pid}` } };
}

test('name map: each client gets the name it asked for last; TTL; loopback stub; age', () => {
  const m = new NameMap();
  // Two processes on one address ask two names of one IP.
  m.noteQuery(query('2026-01-01T00:00:00.000Z', '10.0.0.5', 1111, 100));
  m.add(dns('2026-01-01T00:00:00.010Z', '10.0.0.5', 1111, 'a.test', '1.2.3.4', 60, ['cdn.test']));
  m.noteQuery(query('2026-01-01T00:00:00.020Z', '10.0.0.5', 2222, 200));
  m.add(dns('2026-01-01T00:00:00.030Z', '10.0.0.5', 2222, 'b.test', '1.2.3.4', 60));
  assert.deepEqual(m.lookup(flow('2026-01-01T00:00:00.510Z', '10.0.0.5', '1.2.3.4', 100)), { name: 'a.test', cnames: ['cdn.test'], age: 0.5, server: '10.0.0.53' });
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.510Z', '10.0.0.5', '1.2.3.4', 200))?.name, 'b.test');
  // A third process of that address, whose question was not seen: the address's last.
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.510Z', '10.0.0.5', '1.2.3.4', 300))?.name, 'b.test');
  // Another address of this host: what the host asked last. A container's (forwarded) that asked nothing: no name.
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.510Z', 'fd00::5', '1.2.3.4', 400))?.name, 'b.test');
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.510Z', '172.17.0.6', '1.2.3.4', 400, { direction: 'fwd' })), undefined);
  // Inbound flows get none.
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.510Z', '10.0.0.5', '1.2.3.4', 100, { direction: 'in' })), undefined);
  // Past the TTL the mapping is gone.
  assert.equal(m.lookup(flow('2026-01-01T00:01:00.100Z', '10.0.0.5', '1.2.3.4', 100)), undefined);
  // A TTL of 0 holds 1 s; a stub resolver's answer on loopback names a flow from any local address.
  m.add(dns('2026-01-01T00:02:00.000Z', '127.0.0.1', 3333, 'c.test', '5.6.7.8', 0));
  assert.equal(m.lookup(flow('2026-01-01T00:02:00.900Z', '10.0.0.5', '5.6.7.8', 500))?.name, 'c.test');
  assert.equal(m.lookup(flow('2026-01-01T00:02:01.100Z', '10.0.0.5', '5.6.7.8', 500)), undefined);
  // A forwarded flow (a container's) is not named by the host's stub answers.
  m.add(dns('2026-01-01T00:03:00.000Z', '127.0.0.1', 3334, 'd.test', '5.6.7.9', 60));
  assert.equal(m.lookup(flow('2026-01-01T00:03:00.100Z', '172.17.0.2', '5.6.7.9', 600, { direction: 'fwd' })), undefined);
});

test('name map: bounded by addresses and answers per address', () => {
  const m = new NameMap({ maxAddresses: 100 });
  for (let i = 0; i < 10000; i++) m.add(dns('2026-01-01T00:00:00.000Z', `10.1.${i >> 8}.${i & 255}`, 1000 + i, `n${i}.test`, `9.9.${i >> 8}.${i & 255}`, 600));
  assert.equal(m.lookup(flow('2026-01-01T00:00:01.000Z', '10.1.0.0', '9.9.0.0', 1)), undefined, 'the oldest address was forgotten');
  assert.equal(m.lookup(flow('2026-01-01T00:00:01.000Z', '10.1.39.15', '9.9.39.15', 1))?.name, 'n9999.test');
  for (let i = 0; i < 100; i++) m.add(dns('2026-01-01T00:00:00.000Z', `10.2.0.${i}`, 5, `m${i}.test`, '8.8.8.8', 600));
  assert.equal(m.lookup(flow('2026-01-01T00:00:01.000Z', '10.2.0.99', '8.8.8.8', 1))?.name, 'm99.test');
  assert.equal(m.lookup(flow('2026-01-01T00:00:01.000Z', '10.2.0.0', '8.8.8.8', 1)), undefined, 'beyond the last 8 answers for one address');
});

test('name map: a record taken in between two events of one remote is seen by the second (the last answers found are not kept past it)', () => {
  const m = new NameMap();
  const t = '2026-01-01T00:00:01.000Z';
  assert.equal(m.lookup(flow(t, '10.0.0.5', '1.2.3.4', 100)), undefined);
  m.add(dns('2026-01-01T00:00:00.000Z', '10.0.0.5', 1111, 'a.test', '1.2.3.4', 60));
  assert.equal(m.lookup(flow(t, '10.0.0.5', '1.2.3.4', 100))?.name, 'a.test');
  assert.equal(m.lookup(flow(t, '10.0.0.5', '1.2.3.4', 100))?.name, 'a.test');
  m.add(dns('2026-01-01T00:00:00.500Z', '10.0.0.5', 2222, 'b.test', '1.2.3.4', 60));
  assert.equal(m.lookup(flow(t, '10.0.0.5', '1.2.3.4', 100))?.name, 'b.test');
  // Another host's events (ct-events --host) are another map's, though the address is the same.
  assert.equal(m.lookup(flow(t, '10.0.0.5', '1.2.3.4', 100, { host: 'other' })), undefined);
  assert.equal(m.lookup(flow(t, '10.0.0.5', '1.2.3.4', 100))?.name, 'b.test');
  // A malformed record changes nothing, and is not taken for one.
  m.add({ ...dns('2026-01-01T00:00:00.600Z', '10.0.0.5', 3333, 'c.test', '1.2.3.4', 60), ts: 5 } as unknown as DnsRecord);
  assert.equal(m.lookup(flow(t, '10.0.0.5', '1.2.3.4', 100))?.name, 'b.test');
  // The host's own addresses, noted from its outbound flows one after another: what one of them asked names the others' flows.
  m.add(dns('2026-01-01T00:00:00.700Z', '10.0.0.7', 4444, 'other.test', '5.6.7.8', 60));
  assert.equal(m.lookup(flow(t, '10.0.0.6', '5.6.7.8', 100)), undefined, '10.0.0.7 not known as this host\'s');
  for (const src of ['10.0.0.6', '10.0.0.6', '10.0.0.7', '10.0.0.7']) m.noteQuery(flow(t, src, '9.9.9.9', 100));
  assert.equal(m.lookup(flow(t, '10.0.0.6', '5.6.7.8', 100))?.name, 'other.test');
  // Inbound NEW events teach nothing.
  m.add(dns('2026-01-01T00:00:00.800Z', '10.0.0.9', 5555, 'in.test', '5.6.7.9', 60));
  m.noteQuery(flow(t, '10.0.0.9', '9.9.9.9', 100, { direction: 'in' }));
  assert.equal(m.lookup(flow(t, '10.0.0.6', '5.6.7.9', 100)), undefined);
});

test('name map: an answer seen after a flow event never names it (records and events of one batch are taken in together)', () => {
  const m = new NameMap();
  m.add(dns('2026-01-01T00:00:00.000Z', '10.0.0.5', 1111, 'early.test', '1.2.3.4', 60));
  m.add(dns('2026-01-01T00:00:00.200Z', '10.0.0.5', 2222, 'late.test', '1.2.3.4', 60));
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.100Z', '10.0.0.5', '1.2.3.4', 100))?.name, 'early.test');
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.300Z', '10.0.0.5', '1.2.3.4', 100))?.name, 'late.test');
  m.add(dns('2026-01-01T00:00:01.000Z', '10.0.0.5', 3333, 'other.test', '5.6.7.8', 60));
  assert.equal(m.lookup(flow('2026-01-01T00:00:00.900Z', '10.0.0.5', '5.6.7.8', 100)), undefined);
});

/**
 * The dns enrichment behind a real engine, as ct-attribute runs it: the
 * flow's name is kept in the engine's record of the flow. `ok` pids are
 * attributed by a source that answers from the event (the others are
 * socket-gone and keep the event's own process).
 */
function dnsEngine(ok = new Set<number>()): { en: DnsEnrichment; named: (ev: FlowEvent) => string | undefined; engine: Engine } {
  const answer = <R extends Answer>(ev: FlowEvent, rec: R): R => (ev.process && ok.has(ev.process.pid) ? { ...rec, process: ev.process, attribution: { method: 'test', ok: true } } : rec);
  const source: Source = { name: 'test', wants: () => true, refine: answer, refineNow: answer, status: () => ({ method: 'test', live: true }) };
  const en = new DnsEnrichment();
  const engine = new Engine({ sources: [source], enrichments: [en], isLocal: (a) => a.startsWith('10.0.0.') });
  const named = (ev: FlowEvent) => {
    assert.equal(engine.runBatch([ev]), null, 'enriched at once');
    return ev.dns?.name;
  };
  return { en, named, engine };
}

for (const ok of [false, true]) {
  test(`dns enrichment: a flow keeps the name of its NEW for its UPDATE and DESTROY; an id handed out again is another flow (${ok ? 'attributed' : 'unattributed'})`, () => {
    const { en, named, engine } = dnsEngine(new Set(ok ? [100] : []));
    en.record(dns('2026-01-01T00:00:00.000Z', '10.0.0.5', 1111, 'a.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
    assert.equal(named(flow('2026-01-01T00:00:00.100Z', '10.0.0.5', '1.2.3.4', 100, { id: 7 })), 'a.test');
    // A later answer for the same address: the open flow keeps its first name, and the age of its NEW.
    en.record(dns('2026-01-01T00:00:01.000Z', '10.0.0.5', 1111, 'b.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
    const upd = flow('2026-01-01T00:00:02.000Z', '10.0.0.5', '1.2.3.4', 100, { id: 7, event: 'update' });
    assert.equal(named(upd), 'a.test');
    assert.equal(upd.dns?.age, 0.1);
    assert.equal(upd.attribution?.ok, ok);
    // An unnamed flow stays unnamed to its end, though a name for its remote came meanwhile.
    assert.equal(named(flow('2026-01-01T00:00:00.100Z', '10.0.0.5', '5.6.7.8', 100, { id: 8 })), undefined);
    en.record(dns('2026-01-01T00:00:00.200Z', '10.0.0.5', 2222, 'c.test', '5.6.7.8', 60) as unknown as Record<string, unknown>);
    assert.equal(named(flow('2026-01-01T00:00:00.300Z', '10.0.0.5', '5.6.7.8', 100, { id: 8, event: 'update' })), undefined);
    assert.equal(named(flow('2026-01-01T00:00:00.300Z', '10.0.0.5', '5.6.7.8', 100, { id: 8, event: 'destroy' })), undefined);
    // Forgotten with the flow at its DESTROY: a later event of that id is looked up anew.
    assert.equal(named(flow('2026-01-01T00:00:02.000Z', '10.0.0.5', '5.6.7.8', 100, { id: 8, event: 'update' })), 'c.test');
    // The same id with other ports (or another remote) is not the remembered flow: looked up anew.
    assert.equal(named(flow('2026-01-01T00:00:02.000Z', '10.0.0.5', '1.2.3.4', 100, { id: 7, event: 'update', sport: 40001 })), 'b.test');
    assert.equal(named(flow('2026-01-01T00:00:02.000Z', '10.0.0.5', '5.6.7.8', 100, { id: 7, event: 'destroy' })), 'c.test');
    // A flow whose NEW was not seen keeps the name of its first event seen.
    const first = flow('2026-01-01T00:00:02.000Z', '10.0.0.5', '1.2.3.4', 100, { id: 9, event: 'update' });
    assert.equal(named(first), 'b.test');
    en.record(dns('2026-01-01T00:00:03.000Z', '10.0.0.5', 1111, 'd.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
    assert.equal(named(flow('2026-01-01T00:00:04.000Z', '10.0.0.5', '1.2.3.4', 100, { id: 9, event: 'destroy' })), 'b.test');
    // Inbound flows are not named.
    en.record(dns('2026-01-01T00:00:05.000Z', '10.0.0.5', 1111, 'e.test', '9.9.9.9', 60) as unknown as Record<string, unknown>);
    assert.equal(named(flow('2026-01-01T00:00:05.100Z', '9.9.9.9', '10.0.0.5', 100, { id: 10 })), undefined);
    assert.equal(engine.flowCount, 2, 'ids 8 (its UPDATE after its DESTROY) and 10 are remembered');
  });
}

test('dns enrichment: ids from 2^31 up (half of the u32 range) are flows of their own, remembered to their DESTROY', () => {
  const { en, named } = dnsEngine();
  en.record(dns('2026-01-01T00:00:00.000Z', '10.0.0.5', 1111, 'a.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
  const high = 0xfffffff7, low = 0x7ffffff7;
  assert.equal(named(flow('2026-01-01T00:00:00.100Z', '10.0.0.5', '1.2.3.4', 100, { id: high })), 'a.test');
  en.record(dns('2026-01-01T00:00:01.000Z', '10.0.0.5', 1111, 'b.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
  assert.equal(named(flow('2026-01-01T00:00:01.100Z', '10.0.0.5', '1.2.3.4', 100, { id: low })), 'b.test');
  assert.equal(named(flow('2026-01-01T00:00:02.000Z', '10.0.0.5', '1.2.3.4', 100, { id: high, event: 'update' })), 'a.test');
  assert.equal(named(flow('2026-01-01T00:00:02.000Z', '10.0.0.5', '1.2.3.4', 100, { id: low, event: 'destroy' })), 'b.test');
  assert.equal(named(flow('2026-01-01T00:00:03.000Z', '10.0.0.5', '1.2.3.4', 100, { id: high, event: 'destroy' })), 'a.test');
});

test('dns enrichment: a flow whose event waits for a lookup is named from its own record, its later events from the same', async () => {
  // A source that answers only after a wait: the engine's promise path.
  const later = async <R extends Answer>(ev: FlowEvent, rec: R): Promise<R> => {
    await new Promise((r) => setTimeout(r, 5));
    return { ...rec, process: ev.process, attribution: { method: 'slow', ok: true } };
  };
  const source: Source = { name: 'slow', wants: () => true, refine: later, status: () => ({ method: 'slow', live: true }) };
  const en = new DnsEnrichment();
  const engine = new Engine({ sources: [source], enrichments: [en], isLocal: (a) => a.startsWith('10.0.0.') });
  en.record(dns('2026-01-01T00:00:00.000Z', '10.0.0.5', 1111, 'a.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
  const evs = [
    flow('2026-01-01T00:00:00.100Z', '10.0.0.5', '1.2.3.4', 100, { id: 21 }),
    flow('2026-01-01T00:00:00.100Z', '10.0.0.5', '1.2.3.4', 100, { id: 21, event: 'update' }),
  ];
  const w = engine.runBatch(evs);
  assert.ok(w, 'waits');
  en.record(dns('2026-01-01T00:00:00.050Z', '10.0.0.5', 2222, 'b.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
  await w;
  // Named when its lookup ended (b.test came meanwhile, before the flow's time); its UPDATE, which waited behind it, the same.
  assert.deepEqual(evs.map((e) => [e.dns?.name, e.attribution?.method]), [['b.test', 'slow'], ['b.test', 'slow']]);
  en.record(dns('2026-01-01T00:00:00.060Z', '10.0.0.5', 3333, 'c.test', '1.2.3.4', 60) as unknown as Record<string, unknown>);
  await engine.run([flow('2026-01-01T00:00:01.000Z', '10.0.0.5', '1.2.3.4', 100, { id: 21, event: 'destroy' })].map((e) => (evs.push(e), e)));
  assert.equal(evs[2]!.dns?.name, 'b.test');
  assert.equal(engine.flowCount, 0);
});
