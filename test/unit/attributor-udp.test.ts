// The attributor's UDP owner lookups, against this process's own sockets:
// events read together for one local endpoint ask sock_diag once.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createEngine } from '../../src/attribute/factory.js';
import type { FlowEvent } from '../../src/event.js';
import { needRoot } from '../helpers.js';

test('UDP: a batch of events from one socket asks sock_diag once, and every event gets the owner', { skip: needRoot() }, async (t) => {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  const sport = sock.address().port;
  const attr = createEngine({ euid: process.geteuid!(), bpf: false, netns: false });
  t.after(() => attr.close());
  const diag = (attr.source('sock_diag') as any).diag as { sent: { requests: number } };
  const events: FlowEvent[] = [];
  for (let i = 0; i < 50; i++) {
    const dport = 20000 + i;
    events.push({
      ts: new Date().toISOString(), event: 'new', id: 900000 + i, family: 'ipv4', proto: 'udp',
      src: '127.0.0.1', sport, dst: '192.0.2.1', dport,
      reply: { src: '192.0.2.1', sport: dport, dst: '127.0.0.1', dport: sport }, status: [],
    } as unknown as FlowEvent);
  }
  attr.beginBatch();
  const before = diag.sent.requests;
  await Promise.all(events.map((ev) => (attr.attributeNow(ev) ? undefined : attr.attribute(ev))));
  assert.equal(diag.sent.requests - before, 1, 'one sock_diag request for the batch');
  for (const ev of events) {
    assert.equal(ev.process?.pid, process.pid, `event ${ev.id} names this process`);
    assert.equal(ev.attribution?.method, 'sock_diag');
  }
});

/** A NEW event of a UDP flow from 127.0.0.1:sport to 127.0.0.1:dport, received at `ts` (by default a moment ago: 2 ms). */
function localUdp(id: number, sport: number, dport: number, ts = new Date(Date.now() - 2).toISOString()): FlowEvent {
  return {
    ts, event: 'new', id, family: 'ipv4', proto: 'udp',
    src: '127.0.0.1', sport, dst: '127.0.0.1', dport,
    reply: { src: '127.0.0.1', sport: dport, dst: '127.0.0.1', dport: sport }, status: [],
  } as unknown as FlowEvent;
}

async function attributeBatch(attr: ReturnType<typeof createEngine>, events: FlowEvent[]): Promise<void> {
  attr.beginBatch();
  await Promise.all(events.map((ev) => (attr.attributeNow(ev) ? undefined : attr.attribute(ev))));
}

test('UDP: a closed socket\'s events received before sock_diag found nothing ask once, not once each; a later event asks again', { skip: needRoot() }, async (t) => {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const sport = sock.address().port;
  const ts = new Date().toISOString();
  sock.close();
  await new Promise((r) => setTimeout(r, 5));
  const attr = createEngine({ euid: process.geteuid!(), bpf: false, netns: false, peer: false });
  t.after(() => attr.close());
  const diag = (attr.source('sock_diag') as any).diag as { sent: { requests: number } };
  const before = diag.sent.requests;
  // Two batches: the first asks once for all of its events, the second not at all.
  for (let b = 0; b < 2; b++) {
    const events = Array.from({ length: 20 }, (_, i) => localUdp(910000 + 20 * b + i, sport, 30000 + 20 * b + i, ts));
    await attributeBatch(attr, events);
    for (const ev of events) assert.deepEqual(ev.attribution, { method: 'sock_diag', ok: false, reason: 'socket-gone' });
  }
  assert.equal(diag.sent.requests - before, 1, 'one sock_diag request for the 40 events');
  // An event received after that answer may be a new socket's: asked again.
  await new Promise((r) => setTimeout(r, 5));
  await attributeBatch(attr, [localUdp(910100, sport, 31000)]);
  assert.equal(diag.sent.requests - before, 2);
});

/** A UDP socket of this process (its port `sport`), a listening one (`lport`), and an engine of sock_diag alone; all closed after the test. */
async function clientAndListener(t: TestContext): Promise<{ sport: number; lport: number; attr: ReturnType<typeof createEngine> }> {
  const bound = async () => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    t.after(() => s.close());
    return s.address().port;
  };
  const sport = await bound();
  const lport = await bound();
  const attr = createEngine({ euid: process.geteuid!(), bpf: false, netns: false });
  t.after(() => attr.close());
  return { sport, lport, attr };
}

test('UDP: local flows to many ports nobody listens on: their peers are not asked for one by one (a census of the ports), and a listening peer is still named', { skip: needRoot() }, async (t) => {
  const { sport, lport, attr } = await clientAndListener(t);
  const diag = (attr.source('sock_diag') as any).diag as { sent: { requests: number } };
  // Ports free now (bound and released), so that none has a socket.
  const free: number[] = [];
  while (free.length < 400) {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    const p = s.address().port;
    s.close();
    if (p !== sport && p !== lport && !free.includes(p)) free.push(p);
  }
  const before = diag.sent.requests;
  let id = 920000;
  const all: FlowEvent[] = [];
  for (let b = 0; b < 8; b++) {
    // Each batch received after the one before was answered, as a live stream.
    await new Promise((r) => setTimeout(r, 3));
    const events = free.slice(50 * b, 50 * b + 50).map((p) => localUdp(id++, sport, p));
    events.push(localUdp(id++, sport, lport));
    await attributeBatch(attr, events);
    all.push(...events);
  }
  const asked = diag.sent.requests - before;
  assert.ok(asked < 100, `sock_diag requests for 408 events of 401 distinct peer ports: ${asked}, fewer than 100`);
  for (const ev of all) {
    assert.equal(ev.process?.pid, process.pid, `event ${ev.id} names this process`);
    if (ev.dport === lport) assert.equal(ev.peer?.pid, process.pid, `event ${ev.id}: the listening peer is named`);
    else assert.equal(ev.peer, undefined, `event ${ev.id}: nobody listens on ${ev.dport}`);
  }
});

test('UDP: a batch read after the last census began is answered at once from a census taken before it is tried (runBatch), peers named as before; a later event is not answered from it', { skip: needRoot() }, async (t) => {
  const { sport, lport, attr } = await clientAndListener(t);
  const src = attr.source('sock_diag') as any;
  const used = new Set([sport, lport]);
  /** `n` ports free now (bound and released), none given before. */
  const freePorts = async (n: number) => {
    const out: number[] = [];
    while (out.length < n) {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1');
      await once(s, 'listening');
      const p = s.address().port;
      s.close();
      if (!used.has(p)) {
        used.add(p);
        out.push(p);
      }
    }
    return out;
  };
  let id = 930000;
  // Until a census has been found worth taking, events wait for it (refine); the listener's end is learnt.
  for (let b = 0; b < 3; b++) {
    await new Promise((r) => setTimeout(r, 3));
    await attr.run([...(await freePorts(50)).map((p) => localUdp(id++, sport, p)), localUdp(id++, sport, lport)]);
  }
  const census = src.census.get(17);
  assert.ok(census?.ports, 'a census was taken');
  // A census is taken when the ends it answers outnumber the sockets it lists (CENSUS_AFTER more): batches big enough on any host.
  const size = census.ports.size + 40;
  const ahead0 = src.stats.censusesAhead;
  for (let b = 0; b < 6; b++) {
    const ports = await freePorts(size);
    await new Promise((r) => setTimeout(r, 3));
    // Stamped now: not before any census begun so far (to the millisecond), as a live stream's events are.
    const ts = new Date(Date.now() + 1).toISOString();
    const events = ports.map((p) => localUdp(id++, sport, p, ts));
    events.push(localUdp(id++, sport, lport, ts));
    assert.equal(attr.runBatch(events), null, `batch ${b}: every event answered at once`);
    for (const ev of events) {
      assert.equal(ev.process?.pid, process.pid, `event ${ev.id} names this process`);
      if (ev.dport === lport) assert.equal(ev.peer?.pid, process.pid, `event ${ev.id}: the listening peer is named`);
      else assert.equal(ev.peer, undefined, `event ${ev.id}: nobody listens on ${ev.dport}`);
    }
  }
  assert.equal(src.stats.censusesAhead - ahead0, 6, 'a census taken ahead of each batch');
  // A port bound after the last census, by an event stamped after it and tried outside any batch: asked for, not answered from that census.
  const [lateport] = await freePorts(1);
  const late = dgram.createSocket('udp4');
  late.bind(lateport, '127.0.0.1');
  await once(late, 'listening');
  t.after(() => late.close());
  const ev = localUdp(id++, sport, lateport, new Date(Date.now() + 1).toISOString());
  if (!attr.attributeNow(ev)) await attr.attribute(ev);
  assert.equal(ev.peer?.pid, process.pid, 'the late listener is named');
  // And in a batch of its own.
  const ev2 = localUdp(id++, sport, lateport, new Date(Date.now() + 1).toISOString());
  await attr.run([ev2]);
  assert.equal(ev2.peer?.pid, process.pid, 'the late listener is named in a batch');
});

test('UDP: the first batch after a socket\'s owner entry grew too old is answered at once (renewed before it is tried), and a socket closed meanwhile is not renewed', { skip: needRoot() }, async (t) => {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  let open = true;
  t.after(() => { if (open) sock.close(); });
  const sport = sock.address().port;
  const attr = createEngine({ euid: process.geteuid!(), bpf: false, netns: false, peer: false });
  t.after(() => attr.close());
  const src = attr.source('sock_diag') as any;
  const batch = (from: number) => Array.from({ length: 20 }, (_, i) => {
    const dport = 20000 + from + i;
    return {
      ts: new Date().toISOString(), event: 'new', id: 940000 + from + i, family: 'ipv4', proto: 'udp',
      src: '127.0.0.1', sport, dst: '192.0.2.1', dport,
      reply: { src: '192.0.2.1', sport: dport, dst: '127.0.0.1', dport: sport }, status: [],
    } as unknown as FlowEvent;
  });
  const first = batch(0);
  await attr.run(first);
  for (const ev of first) assert.equal(ev.process?.pid, process.pid);
  // Past the entry's age (UDP_OWNER_MS, 200 ms).
  await new Promise((r) => setTimeout(r, 250));
  const second = batch(100);
  assert.equal(attr.runBatch(second), null, 'every event answered at once');
  for (const ev of second) assert.equal(ev.process?.pid, process.pid, `event ${ev.id} names this process`);
  assert.equal(src.stats.renewedAhead, 1, 'the entry renewed once for the batch');
  // Closed when its entry is too old again: not renewed (refine() asks, and finds it gone).
  await new Promise((r) => setTimeout(r, 250));
  sock.close();
  open = false;
  await new Promise((r) => setTimeout(r, 5));
  const third = batch(200);
  await attr.run(third);
  assert.equal(src.stats.renewedAhead, 1, 'a closed socket\'s entry is not renewed');
  for (const ev of third) assert.deepEqual(ev.attribution, { method: 'sock_diag', ok: false, reason: 'socket-gone' }, `event ${ev.id}, after the close`);
});
