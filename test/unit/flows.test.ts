// ct-flows' library, in process: pairing (src/flows/tracker.ts) with reused
// ids, missing NEWs, evictions, interim records, the stream clock and the
// end-of-input flush; the line processor (src/flows/processor.ts) with bad
// lines and records that pass through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowTracker, flowInputOf, tsMicros } from '../../src/flows/tracker.js';
import { FlowsStage } from '../../src/flows/processor.js';
import { processChunk, type Diag } from '../../src/lines/chunk.js';
import { isoMicros } from '../../src/event.js';
import { parseDuration } from '../../src/units.js';

type Ev = Record<string, any>;
const T0 = Date.UTC(2026, 10, 23, 9, 0, 0) * 1000; // µs
const at = (sec: number) => isoMicros(T0 + Math.round(sec * 1e6));

/** A flow event of kind `event` at `sec` seconds after T0, for flow `n` (tuple from n unless given). */
function ev(event: string, sec: number, id: number, over: Ev = {}): Ev {
  const sport = over.sport ?? 40000 + id;
  const e: Ev = {
    ts: at(sec), event, id, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport, dst: '93.184.216.34', dport: 443,
    reply: { src: '93.184.216.34', sport: 443, dst: '192.0.2.7', dport: sport },
    state: event === 'new' ? 'SYN_SENT' : event === 'update' ? 'ESTABLISHED' : 'TIME_WAIT',
    status: event === 'new' ? ['CONFIRMED'] : ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'],
    mark: 0, zone: 0, community_id: `1:cid${id}`, host: 'web-1',
  };
  if (event !== 'destroy') e.timeout = 120;
  if (event === 'new') {
    e.direction = 'out';
    e.process = { pid: 2314, user: 'alice', comm: 'curl', cmdline: ['curl', 'https://example.com/'] };
    e.attribution = { method: 'sock_diag', ok: true };
  } else {
    e.direction = 'out';
    e.attribution = { method: 'cache', ok: true };
  }
  return { ...e, ...over };
}

function tracker(o: { maxFlows?: number; reportEvery?: number; now?: () => number } = {}) {
  const out: Ev[] = [];
  const t = new FlowTracker({ maxFlows: o.maxFlows ?? 1000, reportEvery: o.reportEvery, now: o.now, onRecord: (r) => out.push(JSON.parse(r)) });
  const feed = (...evs: Ev[]) => { for (const e of evs) t.event(flowInputOf(e), tsMicros(e.ts)!); };
  return { t, out, feed };
}

test('tsMicros: the ct-events form and other ISO 8601 forms; not a timestamp: undefined', () => {
  assert.equal(tsMicros('2026-11-23T09:00:00.000001Z'), T0 + 1);
  assert.equal(tsMicros('2026-11-23T09:00:01.500000Z'), T0 + 1500000);
  assert.equal(tsMicros('2026-11-23T10:00:00.25+01:00'), T0 + 250000);
  assert.equal(tsMicros('2026-11-23T09:00:00Z'), T0);
  for (const bad of ['', 'yesterday', '2026-11-23T09:00:00.00000xZ', '2026-13-23T09:00:00.000000Z']) assert.equal(tsMicros(bad), undefined, bad);
});

test('NEW then DESTROY: one finished record; times, state, counters from the DESTROY, process from the NEW', () => {
  const { t, out, feed } = tracker();
  const counters = { orig: { packets: 9, bytes: 100364 }, reply: { packets: 6, bytes: 5244 } };
  feed(ev('new', 0, 7), ev('update', 0.5, 7), ev('destroy', 2.25, 7, { counters, status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'DYING'] }));
  assert.equal(out.length, 1);
  const r = out[0];
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(r))), [
    'ts', 'event', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply', 'start', 'stop', 'duration', 'finished',
    'state', 'status', 'counters', 'mark', 'zone', 'community_id', 'host', 'direction', 'process', 'attribution',
  ], 'in this order, absent fields left out');
  assert.equal(r.event, 'flow');
  assert.equal(r.ts, at(2.25));
  assert.equal(r.start, at(0));
  assert.equal(r.stop, at(2.25));
  assert.equal(r.duration, 2.25);
  assert.equal(r.finished, true);
  assert.equal(r.reason, undefined);
  assert.equal(r.incomplete, undefined);
  assert.equal(r.state, 'TIME_WAIT');
  assert.deepEqual(r.status, ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'DYING']);
  assert.deepEqual(r.counters, counters);
  assert.deepEqual(r.process, ev('new', 0, 7).process);
  assert.deepEqual(r.attribution, { method: 'sock_diag', ok: true }, 'attribution of the NEW');
  assert.equal(r.community_id, '1:cid7');
  assert.deepEqual(r.reply, ev('new', 0, 7).reply);
  assert.equal(r.timeout, undefined);
  assert.equal(t.size, 0);
  assert.equal(t.counts.finished, 1);
});

test('kernel timestamps (nf_conntrack_timestamp) win over the times events were received', () => {
  const { out, feed } = tracker();
  feed(ev('new', 0.010, 3), ev('destroy', 5.020, 3, { start: at(0.001), stop: at(5.000) }));
  assert.equal(out[0].start, at(0.001));
  assert.equal(out[0].stop, at(5.000));
  assert.equal(out[0].duration, 4.999);
  assert.equal(out[0].ts, at(5.020));
});

test('ids are reused: a NEW for an open id with another tuple writes the old flow (id-reused) and opens the new one', () => {
  const { t, out, feed } = tracker();
  feed(ev('new', 0, 5, { sport: 50001 }));
  feed(ev('new', 1, 5, { sport: 50002 }));
  assert.equal(out.length, 1);
  assert.equal(out[0].sport, 50001);
  assert.equal(out[0].finished, false);
  assert.equal(out[0].reason, 'id-reused');
  assert.equal(out[0].stop, undefined);
  assert.equal(out[0].ts, at(1));
  assert.equal(out[0].duration, 1, 'open from start until the record was written');
  feed(ev('destroy', 3, 5, { sport: 50002 }));
  assert.equal(out.length, 2);
  assert.equal(out[1].sport, 50002);
  assert.equal(out[1].finished, true);
  assert.equal(out[1].start, at(1), 'the second flow starts at its own NEW');
  assert.equal(out[1].duration, 2);
  assert.equal(t.counts.idReused, 1);
});

test('ids are reused: a DESTROY whose tuple differs from the open flow of its id is not paired with it', () => {
  const { t, out, feed } = tracker();
  feed(ev('new', 0, 5, { sport: 50001 }), ev('destroy', 4, 5, { sport: 50009 }));
  assert.equal(out.length, 2);
  assert.deepEqual([out[0].sport, out[0].reason, out[0].finished], [50001, 'id-reused', false]);
  assert.deepEqual([out[1].sport, out[1].finished, out[1].incomplete], [50009, true, true]);
  assert.equal(out[1].process, undefined, 'never the process of another flow');
  assert.equal(t.size, 0);
});

test('the same id on two hosts is two flows', () => {
  const { t, out, feed } = tracker();
  feed(ev('new', 0, 5, { host: 'a' }), ev('new', 0.1, 5, { host: 'b' }));
  assert.equal(t.size, 2);
  feed(ev('destroy', 1, 5, { host: 'b' }));
  assert.deepEqual(out.map((r) => [r.host, r.finished, r.incomplete]), [['b', true, undefined]]);
});

test('DESTROY without its NEW: a record marked incomplete, start only from the kernel timestamp', () => {
  const { t, out, feed } = tracker();
  feed(ev('destroy', 9, 11));
  assert.equal(out.length, 1);
  assert.equal(out[0].incomplete, true);
  assert.equal(out[0].finished, true);
  assert.equal(out[0].start, undefined, 'the NEW time is not known');
  assert.equal(out[0].duration, undefined);
  assert.equal(out[0].stop, at(9));
  assert.deepEqual(out[0].attribution, { method: 'cache', ok: true });
  feed(ev('destroy', 10, 12, { start: at(2), stop: at(9.5) }));
  assert.deepEqual([out[1].start, out[1].stop, out[1].duration, out[1].incomplete], [at(2), at(9.5), 7.5, true]);
  assert.equal(t.counts.incomplete, 2);
});

test('an UPDATE or a --dump entry opens an incomplete flow; the real NEW, if it comes after, makes it complete', () => {
  const { out, feed } = tracker();
  feed(ev('update', 1, 21), ev('destroy', 2, 21));
  assert.deepEqual([out[0].incomplete, out[0].start, out[0].finished], [true, undefined, true]);
  feed(ev('new', 3, 22, { dump: true }), ev('destroy', 4, 22));
  assert.deepEqual([out[1].incomplete, out[1].dump, out[1].start], [true, true, undefined]);
  feed(ev('new', 5, 23, { dump: true }), ev('new', 5.1, 23), ev('destroy', 6, 23));
  assert.deepEqual([out[2].incomplete, out[2].dump, out[2].start], [undefined, undefined, at(5.1)]);
  assert.equal(out.length, 3);
});

test('--max-flows: the oldest open flow is written out early (evicted) and counted; its DESTROY later is incomplete', () => {
  const { t, out, feed } = tracker({ maxFlows: 3 });
  feed(ev('new', 0, 1), ev('new', 1, 2), ev('new', 2, 3));
  assert.equal(out.length, 0);
  feed(ev('new', 3, 4));
  assert.equal(t.size, 3);
  assert.equal(out.length, 1);
  assert.deepEqual([out[0].id, out[0].finished, out[0].reason, out[0].ts, out[0].duration], [1, false, 'evicted', at(3), 3]);
  assert.equal(out[0].process.comm, 'curl', 'an evicted flow keeps what was known');
  feed(ev('new', 4, 5));
  assert.deepEqual(out.map((r) => r.id), [1, 2]);
  assert.equal(t.counts.evicted, 2);
  feed(ev('destroy', 5, 1));
  assert.deepEqual([out[2].id, out[2].incomplete, out[2].finished], [1, true, true]);
  feed(ev('destroy', 6, 4));
  assert.deepEqual([out[3].id, out[3].incomplete, out[3].start], [4, undefined, at(3)]);
  assert.equal(t.size, 2);
});

test('--report-every: interim records for open flows, again each period, by the stream clock; none once finished', () => {
  const { t, out, feed } = tracker({ reportEvery: 10e6 });
  feed(ev('new', 0, 1), ev('new', 4, 2));
  feed(ev('update', 9.9, 1));
  assert.equal(out.length, 0);
  feed(ev('new', 10, 3)); // the clock reaches 10 s: flow 1 is due
  assert.deepEqual(out.map((r) => [r.id, r.reason, r.finished, r.ts, r.duration, r.state]), [[1, 'interim', false, at(10), 10, 'ESTABLISHED']]);
  feed(ev('destroy', 13, 2));
  assert.deepEqual(out.slice(1).map((r) => [r.id, r.reason]), [[2, undefined]], 'flow 2 finished before it was due');
  feed(ev('new', 21, 4)); // flow 3 (opened at 10, due 20) and flow 1 (reported at 10, due 20) are due, in that order
  assert.deepEqual(out.slice(2).map((r) => [r.id, r.reason, r.duration]), [[3, 'interim', 11], [1, 'interim', 21]]);
  feed(ev('destroy', 22, 1, { counters: { orig: { packets: 3, bytes: 180 }, reply: { packets: 2, bytes: 120 } } }));
  const last = out.at(-1)!;
  assert.deepEqual([last.id, last.finished, last.start, last.duration], [1, true, at(0), 22]);
  assert.equal(t.counts.interim, 3);
  assert.equal(t.size, 2);
});

test('special records move the stream clock; advance() moves it with the wall clock while the input is quiet', () => {
  let wall = 5_000_000_000;
  const { t, out, feed } = tracker({ reportEvery: 60e6, now: () => wall });
  feed(ev('new', 0, 1));
  t.at(T0 + 59e6);
  assert.equal(out.length, 0);
  t.at(T0 + 60e6); // a stats heartbeat a minute in
  assert.equal(out.length, 1);
  assert.equal(out[0].reason, 'interim');
  wall += 30e6;
  t.advance();
  assert.equal(out.length, 1);
  wall += 30e6;
  t.advance();
  assert.equal(out.length, 2, 'a minute of quiet later');
  assert.equal(out[1].ts, at(120));
});

test('a clock that goes back (merged streams) never moves the stream clock back', () => {
  const { t, feed } = tracker();
  feed(ev('new', 10, 1), ev('new', 5, 2));
  assert.equal(t.clock, T0 + 10e6);
});

test('end of input: open flows are written in order, marked not finished, and forgotten', () => {
  const { t, out, feed } = tracker();
  feed(ev('new', 0, 1), ev('new', 1, 2), ev('destroy', 2, 1), ev('new', 3, 3));
  assert.equal(t.flush('end-of-input', 1), true, 'in parts: one flow left');
  assert.equal(t.size, 1);
  assert.equal(t.flush('end-of-input', 1), false);
  assert.deepEqual(out.map((r) => [r.id, r.finished, r.reason ?? null, r.stop ?? null]), [
    [1, true, null, at(2)], [2, false, 'end-of-input', null], [3, false, 'end-of-input', null],
  ]);
  assert.deepEqual([out[1].ts, out[1].duration], [at(3), 2]);
  assert.equal(t.size, 0);
  assert.equal(t.counts.flushed, 2);
  t.flush('signal');
  assert.equal(out.length, 3);
});

test('fields the tracker does not know are kept from the NEW', () => {
  const { out, feed } = tracker();
  feed(ev('new', 0, 1, { tag: 'blue', labels: [1] }), ev('destroy', 1, 1, { labels: [1, 4] }));
  assert.equal(out[0].tag, 'blue');
  assert.deepEqual(out[0].labels, [1, 4], 'labels as they were at the end');
});

test('ICMP: the icmp id is part of the tuple', () => {
  const { out, feed } = tracker();
  const icmp = (event: string, sec: number, icmpId: number) => ev(event, sec, 8, { proto: 'icmp', sport: undefined, dport: undefined, reply: { src: '93.184.216.34', dst: '10.0.0.5' }, icmp: { type: 8, code: 0, id: icmpId } });
  feed(icmp('new', 0, 100), icmp('destroy', 1, 101));
  assert.deepEqual(out.map((r) => [r.icmp.id, r.finished, r.reason ?? null, r.incomplete ?? null]), [[100, false, 'id-reused', null], [101, true, null, true]]);
  assert.equal('sport' in JSON.parse(JSON.stringify(out[0])), false);
});

// ---------------------------------------------------------------- the line processor

function run(stage: FlowsStage, text: string): { out: string; diags: Diag[]; bad: number } {
  const r = processChunk(Buffer.from(text), stage, 1 << 20);
  return { out: r.out.toString(), diags: r.diags, bad: r.bad };
}

test('processor: special records and other records pass byte for byte, in order with the flow records', () => {
  const stage = new FlowsStage({ maxFlows: 10 });
  const overrun = '{"ts":"2026-11-23T09:00:01.000000Z", "event":"overrun","lost":3,"reason":"enobufs"}';
  const stats = '{"event":"stats","received":1}';
  const text = [JSON.stringify(ev('new', 0, 1)), overrun, JSON.stringify(ev('update', 1.5, 1)), JSON.stringify(ev('destroy', 2, 1)), stats, '{"event":"flow","id":99}'].join('\n') + '\n';
  const r = run(stage, text);
  assert.equal(r.bad, 0);
  const lines = r.out.split('\n');
  assert.equal(lines[0], overrun);
  assert.equal(JSON.parse(lines[1]).event, 'flow');
  assert.equal(JSON.parse(lines[1]).id, 1);
  assert.equal(lines[2], stats);
  assert.equal(lines[3], '{"event":"flow","id":99}');
  assert.equal(lines.length, 5);
});

test('processor: bad lines are reported with why and skipped; the flows around them are still paired', () => {
  const stage = new FlowsStage({ maxFlows: 10 });
  const text = [
    JSON.stringify(ev('new', 0, 1)),
    'not json',
    '[1]',
    '{"ts":"2026-11-23T09:00:00.000000Z","id":3}',
    JSON.stringify({ ...ev('new', 0, 2), id: undefined }),
    JSON.stringify(ev('new', 0, 4, { ts: 'yesterday' })),
    JSON.stringify(ev('new', 0, 5, { sport: '80' })),
    JSON.stringify(ev('new', 0, 6, { id: 1.5 })),
    JSON.stringify({ ...ev('new', 0, 7), ts: undefined }),
    JSON.stringify(ev('destroy', 1, 1)),
  ].join('\n') + '\n';
  const r = run(stage, text);
  assert.equal(r.bad, 8);
  assert.deepEqual(r.diags.map((d) => d.no), [2, 3, 4, 5, 6, 7, 8, 9]);
  const m = r.diags.map((d) => d.message);
  assert.match(m[0], /^not JSON/);
  assert.match(m[1], /not a JSON object: array/);
  assert.match(m[2], /no "event" field/);
  assert.match(m[3], /no "id" field/);
  assert.match(m[4], /^ts: not an ISO 8601 timestamp/);
  assert.match(m[5], /^sport: expected a port number/);
  assert.match(m[6], /^id: expected a whole number/);
  assert.match(m[7], /no "ts" field/);
  const recs = r.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(recs.map((x) => [x.id, x.finished]), [[1, true]]);
});

test('parseDuration: plain seconds and units', () => {
  assert.equal(parseDuration('90'), 90e6);
  assert.equal(parseDuration('1.5'), 1.5e6);
  assert.equal(parseDuration('30s'), 30e6);
  assert.equal(parseDuration('15m'), 900e6);
  assert.equal(parseDuration('1h'), 3600e6);
  assert.equal(parseDuration('2d'), 172800e6);
  assert.equal(parseDuration('250ms'), 250e3);
  for (const bad of ['', 'h', '-1s', '1w', '1 hour', '1e3']) assert.equal(parseDuration(bad), null, bad);
});

test('issue 20 fields ride along: dns, process.entity_id, parent, ancestors and hash from the NEW', () => {
  const { out, feed } = tracker();
  const process = {
    pid: 2314, comm: 'curl', entity_id: 'Eabcdefghijklmnopqrstu', hash: { sha256: 'cd'.repeat(32) }, exe_deleted: true,
    parent: { pid: 2300, comm: 'bash', exe: '/usr/bin/bash', entity_id: 'Pabcdefghijklmnopqrstu' },
    ancestors: [{ pid: 1000, comm: 'sshd' }, { pid: 1, comm: 'systemd' }],
  };
  const dns = { name: 'example.com', cnames: ['edge.example.net'], age: 0.012, server: '10.0.0.53' };
  feed(ev('new', 0, 9, { process, dns }), ev('destroy', 1, 9));
  assert.equal(out.length, 1);
  assert.deepEqual(out[0].dns, dns);
  assert.deepEqual(out[0].process, process);
});

test('counters records (ct-events --counters-every): folded into the open flow\'s interim and final records, consumed; not for another tuple or a flow not open; bad ones reported', () => {
  const stage = new FlowsStage({ maxFlows: 10, reportEvery: 10e6 });
  const c1 = { orig: { packets: 20, bytes: 30864 }, reply: { packets: 12, bytes: 644 } };
  const c2 = { orig: { packets: 40, bytes: 61728 }, reply: { packets: 24, bytes: 1288 } };
  const counters = (sec: number, id: number, c: Ev, over: Ev = {}) => JSON.stringify({
    ts: at(sec), event: 'counters', id, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport: 40000 + id, dst: '93.184.216.34', dport: 443,
    state: 'ESTABLISHED', status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'], counters: c, host: 'web-1', ...over,
  });
  const r = run(stage, [
    JSON.stringify(ev('new', 0, 1)),
    counters(5, 1, c1),
    counters(6, 2, c2), // no flow 2 open: dropped
    counters(7, 1, c2, { sport: 1 }), // another tuple with the same id: not this flow's
    counters(9, 1, c1, { counters: { orig: 'lots' } }),
    JSON.stringify(ev('update', 11, 1, { timeout: 300 })), // the interim record at 10 s is due
    counters(15, 1, c2),
    JSON.stringify(ev('update', 21, 1, { timeout: 300 })),
  ].join('\n') + '\n');
  assert.equal(r.bad, 1);
  assert.match(r.diags[0].message, /counters record: counters: expected/);
  const recs = r.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(recs.every((x) => x.event === 'flow'), 'counters records are not passed on');
  assert.equal(recs.length, 2);
  assert.equal(recs[0].reason, 'interim');
  assert.deepEqual(recs[0].counters, c1);
  assert.equal(recs[0].state, 'ESTABLISHED');
  assert.equal(recs[1].reason, 'interim');
  assert.deepEqual(recs[1].counters, c2);
  assert.equal(stage.tracker.counts.polled, 2);
  // The DESTROY's own counters, when it has them, are the final word.
  const fin = { orig: { packets: 50, bytes: 70000 }, reply: { packets: 30, bytes: 2000 } };
  const end = run(stage, JSON.stringify(ev('destroy', 25, 1, { counters: fin })) + '\n');
  assert.deepEqual(JSON.parse(end.out).counters, fin);
});

test('a flow opened by UPDATEs, then its own NEW: the NEW is the start, the UPDATEs\' changing fields still win over the NEW\'s', () => {
  const { out, feed } = tracker();
  const c1 = { orig: { packets: 1, bytes: 2 }, reply: { packets: 3, bytes: 4 } };
  feed(
    ev('update', 1, 1, { state: 'ESTABLISHED', mark: undefined, counters: c1 }),
    ev('update', 2, 1, { state: 'FIN_WAIT', status: undefined, mark: 5 }),
    ev('new', 3, 1, { state: 'SYN_SENT', mark: 0, labels: [1] }),
    ev('destroy', 4, 1, { state: undefined, status: ['DYING'], mark: undefined }),
  );
  assert.equal(out.length, 1);
  const r = out[0];
  assert.deepEqual([r.start, r.stop, r.duration, r.incomplete], [at(3), at(4), 1, undefined]);
  // state and mark from the second UPDATE (a later event's); the first UPDATE's counters were its opening values, which the NEW's replace (none); labels the NEW's, status the DESTROY's.
  assert.deepEqual([r.state, r.mark, r.counters, r.labels, r.status], ['FIN_WAIT', 5, undefined, [1], ['DYING']]);
  assert.equal(r.process.pid, 2314);
});
