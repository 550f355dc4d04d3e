// The attributor's UDP owner lookups, against this process's own sockets:
// events read together for one local endpoint ask sock_diag once.
import { test } from 'node:test';
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
