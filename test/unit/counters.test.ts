// ct-events' poll of open flows' counters (src/netlink/counters.ts) without
// the kernel: which listed flows get a `counters` record; and ct-events'
// ready line. The kernel side is in test/e2e/flows.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pollEntry } from '../../src/netlink/counters.js';
import { readyLine } from '../../src/commands/events.js';
import type { FlowEvent } from '../../src/event.js';

function listed(id: number, bytes: number, over: Partial<FlowEvent> = {}): FlowEvent {
  return {
    ts: '2026-11-23T09:00:00.000000Z', event: 'update', id, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport: 40000, dst: '192.0.2.1', dport: 443,
    reply: { src: '192.0.2.1', sport: 443, dst: '10.0.0.5', dport: 40000 }, state: 'ESTABLISHED', status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'],
    timeout: 300, mark: 0, zone: 0, host: 'web-1',
    counters: { orig: { packets: 3, bytes }, reply: { packets: 2, bytes: 120 } }, ...over,
  } as FlowEvent;
}

/** Polls of lists of flows; the records each poll makes. */
function polls(...lists: FlowEvent[][]) {
  let seen = new Map();
  return lists.map((list) => {
    const next = new Map();
    const out = list.map((e) => pollEntry(e, seen, next)).filter((r) => r !== null);
    seen = next;
    return out;
  });
}

test('a record for a flow listed twice whose counters moved; none for its first listing, none when unchanged', () => {
  const [p1, p2, p3, p4] = polls([listed(1, 100)], [listed(1, 100)], [listed(1, 100)], [listed(1, 500)]);
  assert.deepEqual(p1, []);
  assert.equal(p2.length, 1, 'its first record: counters never written yet');
  assert.deepEqual(p3, [], 'unchanged since its last record');
  assert.equal(p4.length, 1);
  const r = p4[0]!;
  assert.deepEqual(Object.keys(r), ['ts', 'event', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'state', 'status', 'counters', 'host']);
  assert.equal(r.event, 'counters');
  assert.equal(r.counters.orig.bytes, 500);
});

test('no record: closing flows, flows without counters, an id reused by another tuple', () => {
  assert.deepEqual(polls([listed(1, 100)], [listed(1, 200, { state: 'TIME_WAIT' })])[1], []);
  assert.deepEqual(polls([listed(1, 100)], [listed(1, 200, { counters: undefined })])[1], []);
  const [, reused, later] = polls([listed(1, 100)], [listed(1, 200, { sport: 40001 })], [listed(1, 300, { sport: 40001 })]);
  assert.deepEqual(reused, [], 'another flow with the id: its first listing');
  assert.equal(later.length, 1);
  const [, udp] = polls([listed(2, 100, { proto: 'udp', state: undefined })], [listed(2, 150, { proto: 'udp', state: undefined })]);
  assert.equal(udp.length, 1);
  assert.equal('state' in udp[0]!, false);
});

test('ready line: tracking, what is listened for, counters', () => {
  assert.equal(readyLine('on', ['new', 'destroy'], ['all'], undefined, 60000, true), 'tracking on in this namespace; listening for new, destroy; counters of open flows every 60s');
  assert.equal(readyLine('enabled', ['new'], ['tcp', 'udp'], 'ipv6', 0, true), 'tracking on in this namespace (--enable-tracking); listening for new (tcp,udp ipv6); counters at the end of each flow');
  assert.equal(readyLine('off', ['new', 'update', 'destroy'], ['all'], undefined, 30000, false), 'tracking OFF in this namespace (see above); listening for new, update, destroy; no counters (net.netfilter.nf_conntrack_acct=0)');
  assert.match(readyLine('unknown', ['new'], [], undefined, 1000, true), /^tracking in this namespace not known/);
});
