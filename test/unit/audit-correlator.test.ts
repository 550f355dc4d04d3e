// src/attribute/sources/audit/correlator.ts: NEW events against audit records of connect and
// send calls. sock_diag's answer confirmed or contradicted; audit alone when
// sock_diag found nothing; late records waited for; ambiguity (several
// processes, no clear order) gives no pid; records used once; later sends
// of a socket that already has its flow explained away; flows read together
// claiming their records before an ownerless one chooses; the window's
// edges; the bound on records. The clock is injected; waits use small real
// windows, and nothing here asserts on durations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Correlator, callFits, type Outcome } from '../../src/attribute/sources/audit/correlator.js';
import type { AuditEvent } from '../../src/attribute/sources/audit/records.js';
import type { FlowEvent } from '../../src/event.js';

const T0 = Date.parse('2026-11-23T07:41:33.000Z');
let serial = 100;

function rec(pid: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    serial: ++serial, time: T0 - 5, arch: 0xc000003e, syscall: 42, call: 'connect', success: true, exit: 0, fd: 3, a2: 16, a3: 0,
    pid, ppid: 1, uid: 0, gid: 0, euid: 0, egid: 0, fsuid: 0, auid: null, comm: 'c', exe: '/bin/c', keys: ['ctpipe-1'],
    addr: { family: 'ipv4', addr: '10.0.0.2', port: 80 }, cmdline: ['c'], cmdlineCut: false, ...over,
  };
}

let id = 0;
function ev(over: Partial<FlowEvent> = {}): FlowEvent {
  return {
    ts: new Date(T0).toISOString(), event: 'new', id: ++id, family: 'ipv4', proto: 'tcp', src: '10.0.0.1', sport: 40000 + id, dst: '10.0.0.2', dport: 80,
    reply: { src: '10.0.0.2', sport: 80, dst: '10.0.0.1', dport: 40000 + id }, status: [], ...over,
  };
}

function corr(windowMs = 2000, extra: Record<string, unknown> = {}): Correlator {
  return new Correlator({ windowMs, now: () => T0 + 1, settleMs: 0, ...extra });
}

const pidOf = (o: Outcome) => ('record' in o ? o.record.pid : null);

test('sock_diag found nothing: the one record names the process', async () => {
  const c = corr();
  c.add(rec(7));
  const t = c.expect(ev())!;
  const o = await c.settle(t, { pid: null });
  assert.equal(o.kind, 'match');
  assert.equal(pidOf(o), 7);
  assert.equal(c.stats.match, 1);
});

test('sock_diag and the record agree; the record is then used up', async () => {
  const c = corr(40);
  c.add(rec(7));
  const o = await c.settle(c.expect(ev())!, { pid: 7 });
  assert.equal(o.kind, 'agree');
  const o2 = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(o2.kind, 'none', 'one connect made one flow');
});

test('sock_diag answered before the record came: the late record is claimed, not given to the next flow', async () => {
  const c = corr(40);
  const o = await c.settle(c.expect(ev())!, { pid: 7 });
  assert.equal(o.kind, 'none', 'nothing to confirm: sock_diag stands, at once');
  c.add(rec(7));
  const o2 = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(o2.kind, 'none');
});

test('a late record is waited for', async () => {
  const c = corr(5000);
  const p = c.settle(c.expect(ev())!, { pid: null });
  assert.equal(c.waiting, 1);
  setTimeout(() => c.add(rec(9)), 20);
  const o = await p;
  assert.equal(o.kind, 'match');
  assert.equal(pidOf(o), 9);
  assert.equal(c.stats.waited, 1);
});

test('no record within the window: no verdict', async () => {
  const c = corr(30);
  const o = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(o.kind, 'none');
  assert.equal(c.waiting, 0);
});

test('two processes at the same moment: ambiguous, no pid', async () => {
  const c = corr();
  c.add(rec(7));
  c.add(rec(8));
  const o = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(o.kind, 'ambiguous');
  assert.deepEqual(o.kind === 'ambiguous' && o.pids.sort(), [7, 8]);
});

test('an ambiguous flow still takes a record, and the next flow among the same records is ambiguous too', async () => {
  const c = corr(60);
  c.add(rec(7));
  c.add(rec(8));
  const a = await c.settle(c.expect(ev())!, { pid: null });
  const b = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(a.kind, 'ambiguous');
  assert.equal(b.kind, 'ambiguous', 'which of 7 and 8 is left is not known');
  assert.deepEqual(b.kind === 'ambiguous' && b.pids.sort(), [7, 8]);
  const d = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(d.kind, 'none', 'both records are taken');
});

test('a record whose flow never came (a datagram joining an existing entry) is not given to a later flow', async () => {
  const c = corr(100);
  c.add(rec(5, { time: T0 - 50 })); // no NEW event will come for it
  c.add(rec(6, { time: T0 - 5 }));
  assert.equal((await c.settle(c.expect(ev())!, { pid: 6 })).kind, 'agree');
  assert.equal(c.stats.orphaned, 1);
  const o = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(o.kind, 'none', JSON.stringify(o));
});

test('two processes clearly apart in time: the first record is the earlier flow\'s', async () => {
  const c = corr(2000, { orderMarginMs: 12 });
  c.add(rec(7, { time: T0 - 100 }));
  c.add(rec(8, { time: T0 - 50 }));
  const a = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(pidOf(a), 7);
  const b = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(pidOf(b), 8);
});

test('UDP: records of two processes in the window are ambiguous however far apart (a datagram may have made no flow)', async () => {
  const c = corr(200);
  const udp = { proto: 'udp' as const };
  c.add(rec(7, { call: 'sendto', syscall: 44, time: T0 - 100 })); // its datagram joined an existing entry: no NEW
  c.add(rec(8, { call: 'sendto', syscall: 44, time: T0 - 5 }));
  const o = await c.settle(c.expect(ev(udp))!, { pid: null });
  assert.equal(o.kind, 'ambiguous');
});

test('flows read together claim their records before an ownerless one chooses', async () => {
  const c = corr();
  for (const p of [1, 2, 3]) c.add(rec(p));
  const t1 = c.expect(ev())!, t2 = c.expect(ev())!, t3 = c.expect(ev())!;
  // The ownerless flow answers first, but waits for the others' claims.
  const p1 = c.settle(t1, { pid: null });
  assert.equal(c.waiting, 3);
  const p3 = c.settle(t3, { pid: 3 });
  const p2 = c.settle(t2, { pid: 2 });
  const [o1, o2, o3] = await Promise.all([p1, p2, p3]);
  assert.deepEqual([o1.kind, pidOf(o1)], ['match', 1]);
  assert.equal(o2.kind, 'agree');
  assert.equal(o3.kind, 'agree');
});

test('a flow waiting for its own record does not lend it to an ownerless flow', async () => {
  const c = corr(5000);
  c.add(rec(1));
  const t1 = c.expect(ev())!, t2 = c.expect(ev())!;
  const p2 = c.settle(t2, { pid: 2 }); // another's record is there, its own is late
  const p1 = c.settle(t1, { pid: null });
  const o1 = await p1;
  assert.deepEqual([o1.kind, pidOf(o1)], ['match', 1]);
  setTimeout(() => c.add(rec(2)), 10);
  assert.equal((await p2).kind, 'agree');
});

test('sock_diag and audit disagree: no pid', async () => {
  const c = corr(30);
  c.add(rec(8));
  const o = await c.settle(c.expect(ev())!, { pid: 7 });
  assert.equal(o.kind, 'disagree');
  assert.equal(o.kind === 'disagree' && o.pid, 8);
  assert.equal(c.stats.disagree, 1);
});

test('an inherited socket: the connecting parent still holds it, so they agree', async () => {
  const c = corr(30);
  c.add(rec(8));
  const o = await c.settle(c.expect(ev())!, { pid: 9, holders: [8, 9] });
  assert.equal(o.kind, 'agree');
});

test('later sends of a socket whose flow is known do not count against another flow', async () => {
  const c = corr();
  const udp = { proto: 'udp' as const, dport: 53, dst: '10.0.0.53', reply: { src: '10.0.0.53', sport: 53, dst: '10.0.0.1', dport: 1 } };
  const send = (pid: number, t: number, fd = 4) => rec(pid, { call: 'sendto', syscall: 44, fd, time: t, addr: { family: 'ipv4', addr: '10.0.0.53', port: 53 } });
  c.add(send(7, T0 - 20));
  assert.equal((await c.settle(c.expect(ev(udp))!, { pid: 7 })).kind, 'agree');
  // Process 7 sends twice more on the same socket (no new flow), then 8 sends (a new flow).
  c.add(send(7, T0 - 10));
  c.add(send(7, T0 - 9));
  c.add(send(8, T0 - 9));
  const o = await c.settle(c.expect(ev(udp))!, { pid: null });
  assert.deepEqual([o.kind, pidOf(o)], ['match', 8]);
  // A new socket of process 7 (another descriptor) is a new flow again.
  c.add(send(7, T0 - 2, 5));
  const o2 = await c.settle(c.expect(ev(udp))!, { pid: null });
  assert.deepEqual([o2.kind, pidOf(o2)], ['match', 7]);
});

test('calls fit protocols: TCP from connect or a Fast Open send, UDP from connect or any send', () => {
  assert.ok(callFits('tcp', rec(1)));
  assert.ok(!callFits('tcp', rec(1, { call: 'sendto', a3: 0 })));
  assert.ok(callFits('tcp', rec(1, { call: 'sendto', a3: 0x20000000 })));
  assert.ok(callFits('tcp', rec(1, { call: 'sendmsg', a2: 0x20000000 })));
  assert.ok(callFits('udp', rec(1, { call: 'sendmmsg' })));
  assert.ok(callFits('udp', rec(1)));
});

test('a UDP send does not name a TCP flow to the same place', async () => {
  const c = corr(30);
  c.add(rec(7, { call: 'sendto', syscall: 44 }));
  assert.equal((await c.settle(c.expect(ev())!, { pid: null })).kind, 'none');
});

test('the window: records before it or after the event are not candidates', async () => {
  const c = corr(200);
  c.add(rec(7, { time: T0 - 500 }));
  c.add(rec(8, { time: T0 + 100 }));
  assert.equal((await c.settle(c.expect(ev())!, { pid: null })).kind, 'none');
  // Another address or port is another place.
  c.add(rec(9, { addr: { family: 'ipv4', addr: '10.0.0.2', port: 81 } }));
  assert.equal((await c.settle(c.expect(ev())!, { pid: null })).kind, 'none');
});

test('a socket found without its owner: records of its uid only', async () => {
  const c = corr();
  c.add(rec(7, { fsuid: 0 }));
  c.add(rec(8, { fsuid: 65534, uid: 65534 }));
  const o = await c.settle(c.expect(ev())!, { pid: null, uid: 65534 });
  assert.deepEqual([o.kind, pidOf(o)], ['match', 8]);
});

test('records kept: failed calls and other families are not; the bound drops the oldest', () => {
  const c = corr(2000, { maxRecords: 10 });
  assert.equal(c.add(rec(1, { success: false, exit: -111 })), false);
  assert.equal(c.add(rec(1, { addr: null })), false);
  assert.equal(c.add(rec(1, { call: null })), false);
  assert.equal(c.add(rec(1, { success: false, exit: -115 })), true, 'a non-blocking connect counts');
  for (let i = 0; i < 30; i++) c.add(rec(100 + i, { addr: { family: 'ipv4', addr: '10.0.1.1', port: 1000 + i } }));
  assert.ok(c.held <= 10);
  assert.ok(c.stats.evicted >= 20);
});

test('events from long ago, inbound flows and other protocols get no ticket or a silent cancel', async () => {
  const c = corr();
  assert.equal(c.expect(ev({ ts: '2020-01-01T00:00:00.000000Z' })), null);
  assert.equal(c.expect(ev({ proto: 'icmp', dport: undefined })), null);
  assert.equal(c.expect(ev({ event: 'destroy' })), null);
  const t = c.expect(ev())!;
  c.cancel(t);
  assert.equal(c.waiting, 0);
  assert.equal((await c.settle(t, { pid: null })).kind, 'none');
  assert.equal(c.stats.none, 0, 'a cancelled flow is not counted');
});

test('close() answers every waiting flow', async () => {
  const c = corr(60000);
  const p = c.settle(c.expect(ev())!, { pid: null });
  c.close();
  assert.equal((await p).kind, 'none');
});

test('a flow read later than its window (a busy ct-events): its own record is older than the window, and the next flow\'s is not given to it', async () => {
  const c = corr(30, { orderMarginMs: 1 });
  // Client 1 connected 50 ms before its event was read; client 2, 10 ms before.
  c.add(rec(1, { time: T0 - 50 }));
  c.add(rec(2, { time: T0 - 10 }));
  const o1 = await c.settle(c.expect(ev())!, { pid: null });
  assert.notEqual(pidOf(o1), 2, 'never the next client\'s pid');
  assert.equal(o1.kind, 'ambiguous');
  assert.deepEqual((o1 as { pids: number[] }).pids.sort(), [1, 2]);
  // The old record was taken by the first flow; the second is left unsure, not wrong.
  const o2 = await c.settle(c.expect(ev())!, { pid: null });
  assert.notEqual(pidOf(o2), 1);
  // All of one process: that process, whichever record is this flow's.
  const e = corr(30, { orderMarginMs: 1 });
  e.add(rec(4, { time: T0 - 50 }));
  e.add(rec(4, { time: T0 - 10 }));
  const o3 = await e.settle(e.expect(ev())!, { pid: null });
  assert.deepEqual([o3.kind, pidOf(o3)], ['match', 4]);
  // Without the old record the window alone decides, as before.
  const d = corr(30, { orderMarginMs: 1 });
  d.add(rec(3, { time: T0 - 10 }));
  assert.equal(pidOf(await d.settle(d.expect(ev())!, { pid: null })), 3);
});

test('a record that comes after its flow was settled without one is not given, as sure, to the next flow', async () => {
  const c = corr(30);
  const o1 = await c.settle(c.expect(ev())!, { pid: null });
  assert.equal(o1.kind, 'none', 'no record came in time');
  // Flow 1's record comes late; then flow 2's.
  c.add(rec(1, { time: T0 - 25 }));
  c.add(rec(2, { time: T0 + 1 }));
  const o2 = await c.settle(c.expect(ev())!, { pid: null });
  assert.notEqual(pidOf(o2), 1, 'never the settled flow\'s process');
  assert.equal(o2.kind, 'ambiguous');
});

test('sock_diag named an owner read as it exited: its own late record is waited for and agrees', async () => {
  const c = corr(5000);
  const p = c.settle(c.expect(ev())!, { pid: 7, partial: true });
  assert.equal(c.waiting, 1, 'not answered at once');
  setTimeout(() => c.add(rec(7)), 20);
  const o = await p;
  assert.equal(o.kind, 'agree');
  assert.equal(pidOf(o), 7);
});

test('sock_diag named an owner read as it exited and no record comes: its answer stands after the window', async () => {
  const c = corr(30);
  const o = await c.settle(c.expect(ev())!, { pid: 7, partial: true });
  assert.equal(o.kind, 'none');
  assert.equal(c.waiting, 0);
});
