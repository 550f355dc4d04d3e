// The ECS mapping (src/es/ecs.ts): fields for each kind of event in the
// fixture, NAT from the reply tuple, special records, odd input, the JSON
// writer against the object builder, the template's types, and the man
// page's table against the code's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { toEcs, toEcsJson, ECS_FIELDS, CTPIPE_TYPES, documentMapping, isoToMicros, ECS_VERSION } from '../../src/es/ecs.js';
import { FIXTURES, ROOT } from '../helpers.js';

const lines = readFileSync(path.join(FIXTURES, 'es', 'events.ndjson'), 'utf8').trim().split('\n');
const ev = lines.map((l) => JSON.parse(l));
const ecs = (i: number) => toEcs(ev[i], { id: `id${i}` });

test('outbound TCP with source NAT: source, destination, source.nat from the reply tuple, process, user', () => {
  const d = ecs(0);
  assert.equal(d['@timestamp'], '2026-11-23T23:59:59.999999Z');
  assert.deepEqual(d.ecs, { version: ECS_VERSION });
  assert.deepEqual(d.event, { kind: 'event', category: ['network'], type: ['connection', 'start'], action: 'new', module: 'ctpipe', dataset: 'ctpipe.conntrack', id: 'id0' });
  assert.deepEqual(d.source, { ip: '10.0.0.5', port: 38064, nat: { ip: '192.0.2.7', port: 61000 } });
  assert.deepEqual(d.destination, { ip: '93.184.216.34', port: 443 });
  assert.deepEqual(d.network, { transport: 'tcp', iana_number: '6', type: 'ipv4', community_id: ev[0].community_id, direction: 'egress' });
  assert.deepEqual(d.process, {
    pid: 2314, parent: { pid: 2290 }, name: 'curl', executable: '/usr/bin/curl', args: ['curl', '-s', 'https://example.com/'], args_count: 3,
    command_line: 'curl -s https://example.com/', start: '2026-11-23T23:59:58.120000Z',
  });
  assert.deepEqual(d.user, { id: '1000', name: 'alice' });
  assert.deepEqual(d.group, { id: '1000', name: 'alice' });
  assert.deepEqual(d.host, { name: 'web-1' });
  assert.deepEqual(d.related, { ip: ['10.0.0.5', '93.184.216.34', '192.0.2.7'], user: ['alice'] });
  assert.equal(d.container, undefined, 'container: null gives no container fields');
  assert.deepEqual(d.ctpipe, ev[0], 'the original record, whole, under ctpipe');
});

test('destroy: counters to source/destination/network bytes and packets, start/stop to event.start/end/duration', () => {
  const d = ecs(1);
  assert.deepEqual(d.event.type, ['connection', 'end']);
  assert.equal(d.event.start, '2026-11-23T23:59:59.999001Z');
  assert.equal(d.event.end, '2026-11-24T00:00:01.249500Z');
  assert.equal(d.event.duration, 1_250_499_000, 'nanoseconds, microsecond digits kept');
  assert.equal(d.source.bytes, 1480);
  assert.equal(d.source.packets, 12);
  assert.equal(d.destination.bytes, 7311);
  assert.equal(d.destination.packets, 10);
  assert.equal(d.network.bytes, 1480 + 7311);
  assert.equal(d.network.packets, 22);
});

test('inbound with destination NAT to a container: destination.nat, container, ingress', () => {
  const d = ecs(2);
  assert.deepEqual(d.destination, { ip: '203.0.113.10', port: 80, nat: { ip: '172.17.0.2', port: 8080 } });
  assert.deepEqual(d.source, { ip: '198.51.100.9', port: 50123 }, 'no source NAT');
  assert.equal(d.network.direction, 'ingress');
  assert.deepEqual(d.container, { id: ev[2].process.container.id, runtime: 'docker', name: 'web', image: { name: 'nginx:1.27' } });
  assert.deepEqual(d.user, { id: '33', name: 'www-data' });
});

test('IPv6, ICMPv6 (no ports, IANA keyword ipv6-icmp), unattributed: no process or user fields', () => {
  const udp = ecs(3);
  assert.equal(udp.network.type, 'ipv6');
  assert.equal(udp.network.transport, 'udp');
  assert.equal(udp.network.iana_number, '17');
  const icmp = ecs(4);
  assert.equal(icmp.network.transport, 'ipv6-icmp');
  assert.equal(icmp.network.iana_number, '58');
  assert.deepEqual(icmp.source, { ip: '2001:db8:5::5' });
  assert.deepEqual(icmp.destination, { ip: '2606:4700::6810:84e5' });
  for (const k of ['process', 'user', 'group', 'container']) assert.equal(icmp[k], undefined, k);
  assert.equal(icmp.related.user, undefined);
});

test('update, local, forwarded and SCTP flows', () => {
  const local = ecs(5);
  assert.deepEqual(local.event.type, ['connection', 'change']);
  assert.equal(local.network.direction, 'internal');
  assert.deepEqual(local.related.ip, ['127.0.0.1'], 'each address once');
  assert.equal(local.source.nat, undefined);
  const fwd = ecs(8);
  assert.equal(fwd.network.direction, 'unknown');
  assert.deepEqual(fwd.source.nat, { ip: '192.0.2.7' }, 'port unchanged: no nat.port');
  const sctp = ecs(10);
  assert.equal(sctp.network.transport, 'sctp');
  assert.equal(sctp.network.iana_number, '132');
});

test('special records: overrun is a pipeline_error, stats a metric; both keep their fields under ctpipe', () => {
  const o = ecs(6);
  assert.deepEqual(o.event, { kind: 'pipeline_error', action: 'overrun', module: 'ctpipe', dataset: 'ctpipe.stream', id: 'id6' });
  assert.equal(o['@timestamp'], ev[6].ts);
  assert.deepEqual(o.ctpipe, ev[6]);
  assert.deepEqual(o.host, { name: 'web-1' });
  const s = ecs(7);
  assert.equal(s.event.kind, 'metric');
  assert.equal(s.event.action, 'stats');
  assert.equal(s.ctpipe.received, 1012);
  assert.equal(s.network, undefined);
});

test('odd input never throws; fields of the wrong kind are left out', () => {
  const odd = [
    {},
    { ts: 5, event: 'new', src: 7, sport: '80', process: 'x', counters: null, reply: [] },
    { event: 'new', process: { pid: '12', cmdline: ['a', 3], uid: 'root', container: 'c' }, counters: { orig: 3 } },
    { event: 'destroy', start: 'never', stop: '2026-11-24T00:00:00Z', direction: 'sideways', proto: '253' },
    { event: 'destroy', start: '2026-11-24T00:00:02Z', stop: '2026-11-24T00:00:01Z' },
  ];
  for (const r of odd) {
    const d = toEcs(r, { id: 'x' });
    assert.deepEqual(JSON.parse(toEcsJson(r, { id: 'x' }, JSON.stringify(r))), d);
  }
  const d1 = toEcs(odd[1], { id: 'x' });
  assert.equal(d1['@timestamp'], undefined);
  assert.equal(d1.source, undefined);
  assert.equal(d1.process, undefined);
  const d2 = toEcs(odd[2], { id: 'x' });
  assert.equal(d2.process, undefined, 'pid as text and a cmdline with a number are not taken');
  assert.deepEqual(d2.user, { id: 'root' }, 'uid given as text is kept as the keyword it is');
  const d3 = toEcs(odd[3], { id: 'x' });
  assert.equal(d3.event.duration, undefined);
  assert.equal(d3.network.direction, undefined);
  assert.equal(d3.network.transport, '253');
  assert.equal(d3.network.iana_number, '253');
  assert.equal(toEcs(odd[4], { id: 'x' }).event.duration, undefined, 'stop before start: no duration');
});

test('toEcsJson is JSON.stringify(toEcs()) in content, for every fixture line and 20,000 generated ones, with escapes', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const all: string[] = [...lines, ...generate(20000, 11)];
  const tricky = { ts: '2026-11-24T00:00:00Z', event: 'new', src: 'a"b\\c\u0001', process: { comm: 'é😀\u2028', cmdline: ['x"y', '\ud800'], pid: 1 } };
  all.push(JSON.stringify(tricky));
  for (const line of all) {
    const r = JSON.parse(line);
    const text = toEcsJson(r, { id: 'abc' }, line);
    assert.deepEqual(JSON.parse(text), toEcs(r, { id: 'abc' }));
    assert.ok(!text.includes('\n'));
  }
});

test('isoToMicros keeps the microseconds Date.parse drops', () => {
  assert.equal(isoToMicros('1970-01-01T00:00:00.000001Z'), 1);
  assert.equal(isoToMicros('2026-11-24T00:00:01.249500Z')! - isoToMicros('2026-11-24T00:00:01Z')!, 249500);
  assert.equal(isoToMicros('1970-01-01T00:00:01+01:00'), -3_599_000_000);
  assert.equal(isoToMicros('nope'), undefined);
  assert.equal(isoToMicros(12), undefined);
});

test('the mapping types every ECS field and ctpipe field; addresses are ip, times date, counts long', () => {
  const m = documentMapping(false);
  const typeOf = (props: any, dotted: string) => dotted.split('.').reduce((o, k, i, a) => (i === a.length - 1 ? o?.[k] : o?.[k]?.properties), props);
  for (const f of ECS_FIELDS) assert.equal(typeOf(m.properties, f.ecs)?.type, f.type, f.ecs);
  assert.equal(typeOf(m.properties, 'source.ip').type, 'ip');
  assert.equal(typeOf(m.properties, '@timestamp').type, 'date');
  assert.equal(typeOf(m.properties, 'ctpipe.reply.dst').type, 'ip');
  assert.equal(typeOf(m.properties, 'ctpipe.process.container.id').type, 'keyword');
  assert.equal(typeOf(m.properties, 'ctpipe.counters.reply.bytes').type, 'long');
  assert.deepEqual(typeOf(m.properties, 'ctpipe.unknown'), { type: 'object', enabled: false }, 'kernel attribute numbers are stored, never mapped');
  const raw = documentMapping(true);
  assert.equal(typeOf(raw.properties, 'src').type, 'ip');
  assert.equal(typeOf(raw.properties, 'ts').type, 'date');
  assert.equal(typeOf(raw.properties, '@timestamp').type, 'date');
  assert.equal(typeOf(raw.properties, 'source'), undefined, 'no ECS fields in a raw mapping');
  for (const [k, t] of Object.entries(CTPIPE_TYPES)) assert.ok(['date', 'ip', 'keyword', 'long', 'double', 'boolean', 'object-disabled'].includes(t), k);
});

test('issue 20 fields: destination.domain, related.hosts, process.entity_id, process.hash.sha256, process.parent.*', () => {
  const e = {
    ...ev[0],
    dns: { name: 'www.example.com', cnames: ['edge.cdn.test'], age: 0.25, server: '10.0.0.53' },
    process: {
      ...ev[0].process, entity_id: 'Eabcdefghijklmnopqrstu', hash: { sha256: 'ab'.repeat(32) },
      parent: { pid: 7, comm: 'bash', exe: '/usr/bin/bash', cmdline: ['bash', '-l'], start_time: '2026-11-23T07:00:00.000Z', entity_id: 'Pabcdefghijklmnopqrstu' },
      ancestors: [{ pid: 1, comm: 'systemd' }],
    },
  };
  const d = toEcs(e, { id: 'x' });
  assert.equal(d.destination.domain, 'www.example.com');
  assert.deepEqual(d.related.hosts, ['www.example.com', 'edge.cdn.test']);
  assert.equal(d.process.entity_id, 'Eabcdefghijklmnopqrstu');
  assert.equal(d.process.hash.sha256, 'ab'.repeat(32));
  assert.deepEqual(d.process.parent, { pid: ev[0].process.ppid, entity_id: 'Pabcdefghijklmnopqrstu', name: 'bash', executable: '/usr/bin/bash', args: ['bash', '-l'], start: '2026-11-23T07:00:00.000Z' });
  assert.deepEqual(JSON.parse(toEcsJson(e, { id: 'x' }, JSON.stringify(e))), JSON.parse(JSON.stringify(d)), 'the JSON writer agrees');
  // A pending hash has no digest to map.
  assert.equal(toEcs({ ...e, process: { ...e.process, hash: { pending: true } } }, { id: 'x' }).process.hash, undefined);
});

test('man/ct-es.1.md lists every ECS field of the table', () => {
  const man = readFileSync(path.join(ROOT, 'man', 'ct-es.1.md'), 'utf8');
  for (const f of ECS_FIELDS) assert.ok(man.includes('`' + f.ecs + '`'), `${f.ecs} is missing from the man page's mapping table`);
});

test('ct-flows\' flow records: network events of their own dataset, ending the connection when finished', () => {
  const rec = {
    ts: '2026-11-24T00:00:01.249500Z', event: 'flow', id: 5, family: 'ipv4', proto: 'tcp', src: '10.0.0.1', sport: 40000, dst: '10.0.0.2', dport: 443,
    reply: { src: '10.0.0.2', sport: 443, dst: '10.0.0.1', dport: 40000 }, start: '2026-11-23T23:59:59.999001Z', stop: '2026-11-24T00:00:01.249500Z',
    duration: 1.250499, finished: true, counters: { orig: { packets: 12, bytes: 1480 }, reply: { packets: 10, bytes: 7311 } },
  };
  const d = toEcs(rec, { id: 'f' }) as any;
  assert.equal(d.event.kind, 'event');
  assert.deepEqual(d.event.category, ['network']);
  assert.deepEqual(d.event.type, ['connection', 'end']);
  assert.equal(d.event.dataset, 'ctpipe.flow');
  assert.equal(d.event.duration, 1_250_499_000);
  assert.equal(d.network.bytes, 1480 + 7311);
  assert.equal(d.destination.port, 443);
  const interim = toEcs({ ...rec, finished: false, reason: 'interim', stop: undefined }, { id: 'g' }) as any;
  assert.deepEqual(interim.event.type, ['connection', 'info']);
});
