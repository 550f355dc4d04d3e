// The shipper (src/es/shipper.ts) and transport (src/es/http.ts) against the
// local _bulk endpoint (test/es-server.ts), in one process: batching, every
// kind of failure the issue names, back-pressure, the drain deadline,
// failover between nodes. Each test asserts on what the endpoint stored.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EsServer } from '../es-server.js';
import { Transport } from '../../src/es/http.js';
import { Shipper, type DeadLetter, type ShipperOptions } from '../../src/es/shipper.js';
import { itemSource, itemAction } from '../../src/es/bulk.js';
import { sleep, waitFor } from '../helpers.js';

const servers: EsServer[] = [];
const transports: Transport[] = [];
afterEach(async () => {
  for (const t of transports.splice(0)) t.close();
  for (const s of servers.splice(0)) await s.close();
});

async function server(opts: ConstructorParameters<typeof EsServer>[0] = {}): Promise<EsServer> {
  const s = await new EsServer(opts).start();
  servers.push(s);
  return s;
}

interface Rig {
  shipper: Shipper;
  dead: DeadLetter[];
  warnings: string[];
  add(n: number, from?: number): void;
}

/** A shipper with fast retries and small batches; `add(n)` queues n small documents ids d0..dn-1. */
function rig(nodes: string[], o: Partial<ShipperOptions> & { timeoutMs?: number } = {}): Rig {
  const transport = new Transport({ nodes, timeoutMs: o.timeoutMs ?? 5000, maxSockets: 4 });
  transports.push(transport);
  const dead: DeadLetter[] = [];
  const warnings: string[] = [];
  const shipper = new Shipper({
    transport, op: 'index', flushBytes: 1000, flushIntervalMs: 50, concurrency: 2, backoffBaseMs: 5, backoffMaxMs: 40,
    deadLetter: (d) => dead.push(d), onWarning: (m) => warnings.push(m), ...o,
  });
  return {
    shipper, dead, warnings,
    add(n, from = 0) {
      for (let i = from; i < from + n; i++) shipper.add('ct-2026.11.24', `d${i}`, JSON.stringify({ n: i, pad: 'x'.repeat(50) }), i + 1);
    },
  };
}

function assertExactlyOnce(s: EsServer, n: number, index = 'ct-2026.11.24') {
  const docs = s.docs();
  assert.equal(docs.length, n, 'stored documents');
  const ids = new Set(docs.map((d) => d.id));
  for (let i = 0; i < n; i++) assert.ok(ids.has(`d${i}`), `d${i} stored`);
  for (const d of docs) {
    assert.equal(d.index, index);
    assert.equal(d.source.n, Number(d.id.slice(1)), 'the document stored under its own id');
  }
}

test('batches by bytes: 100 documents of ~100 bytes with flushBytes 1000 make about 13 requests; all stored once', async () => {
  const s = await server();
  const r = rig([s.url]);
  r.add(100);
  assert.equal(await r.shipper.drain(5000), true);
  assertExactlyOnce(s, 100);
  assert.ok(s.bulkRequests >= 10 && s.bulkRequests <= 15, `${s.bulkRequests} requests`);
  assert.equal(r.shipper.stats.created, 100);
  assert.equal(r.shipper.stats.pending, 0);
  for (const d of s.docs()) assert.equal(d.version, 1);
  assert.ok(s.connections <= 2, `keep-alive: ${s.connections} connections for ${s.bulkRequests} requests`);
  const req = s.log.find((l) => l.url.startsWith('/_bulk'))!;
  assert.equal(req.headers['content-type'], 'application/x-ndjson');
});

test('batches by time: one document is sent after the flush interval, without drain()', async () => {
  const s = await server();
  const r = rig([s.url], { flushBytes: 1 << 20, flushIntervalMs: 200 });
  const t0 = Date.now();
  r.add(1);
  await waitFor(() => s.count() === 1, 5000, 'the interval flush');
  assert.ok(Date.now() - t0 >= 180, 'not before the interval');
  assert.equal(s.bulkRequests, 1);
  assert.equal(await r.shipper.drain(1000), true);
});

test('whole-request 429, 500, 502 (an HTML proxy page), 503: retried until they pass; nothing lost or doubled', async () => {
  const s = await server();
  s.failNext(2, 429);
  s.failNext(1, 500);
  s.failNext(1, 502);
  s.failNext(1, 503);
  const r = rig([s.url]);
  r.add(30);
  assert.equal(await r.shipper.drain(10000), true);
  assertExactlyOnce(s, 30);
  assert.equal(r.shipper.stats.retriedRequests, 5);
  assert.equal(r.dead.length, 0);
  assert.match(r.warnings[0], /HTTP (429 es_rejected_execution_exception|500|502|503)/);
  assert.match(r.warnings.at(-1)!, /indexing again after/);
});

test('per-item 429: only the refused items are sent again', async () => {
  const s = await server();
  s.reject429Items(7);
  const r = rig([s.url]);
  r.add(20);
  assert.equal(await r.shipper.drain(10000), true);
  assertExactlyOnce(s, 20);
  assert.equal(r.shipper.stats.retriedItems, 7);
  assert.equal(s.writes, 20, 'no document written twice');
});

test('a connection dropped while the request arrives, and one dropped after it was applied: retried; the second overwrites itself', async () => {
  const s = await server();
  s.dropRequest(1, 'request');
  s.dropRequest(3, 'response');
  const r = rig([s.url], { concurrency: 1 });
  r.add(40);
  assert.equal(await r.shipper.drain(10000), true);
  assertExactlyOnce(s, 40);
  const overwritten = s.docs().filter((d) => d.version === 2).length;
  assert.ok(overwritten > 0, 'the batch applied before the drop was sent again');
  assert.equal(r.shipper.stats.created + r.shipper.stats.updated, 40);
  assert.equal(r.shipper.stats.updated, overwritten);
});

test('op_type create: a retried batch meets conflicts, counted as already indexed, not as failures', async () => {
  const s = await server();
  s.dropRequest(1, 'response');
  const r = rig([s.url], { op: 'create', concurrency: 1 });
  r.add(10);
  assert.equal(await r.shipper.drain(10000), true);
  assertExactlyOnce(s, 10);
  assert.ok(r.shipper.stats.exists >= 5, `the whole first batch came back as conflicts (${r.shipper.stats.exists})`);
  assert.equal(r.shipper.stats.exists + r.shipper.stats.created, 10);
  assert.equal(r.shipper.stats.rejected, 0);
  for (const d of s.docs()) assert.equal(d.version, 1);
});

test('an item refused for good goes to the dead letters with its error; the rest is indexed; drain says not all', async () => {
  const s = await server();
  s.rejectId('d3', 'mapper_parsing_exception', 400, 'failed to parse field [source.ip] of type [ip]');
  const r = rig([s.url]);
  r.add(10);
  assert.equal(await r.shipper.drain(5000), false);
  assert.equal(s.count(), 9);
  assert.equal(r.dead.length, 1);
  assert.equal(r.dead[0].reason, 'rejected');
  assert.equal(r.dead[0].status, 400);
  assert.equal(r.dead[0].error.type, 'mapper_parsing_exception');
  assert.equal(itemAction(r.dead[0].item).id, 'd3');
  assert.equal(r.dead[0].item.line, 4);
  assert.equal(JSON.parse(itemSource(r.dead[0].item)).n, 3);
  assert.equal(r.shipper.stats.rejected, 1);
});

test('a slow answer past the timeout is abandoned and retried; the document is stored once', async () => {
  const s = await server();
  s.slow(1500, 1);
  const r = rig([s.url], { timeoutMs: 300, concurrency: 1 });
  r.add(5);
  assert.equal(await r.shipper.drain(10000), true);
  assertExactlyOnce(s, 5);
  assert.ok(r.shipper.stats.retriedRequests >= 1);
  assert.match(r.warnings[0], /no answer within 0.3 s/);
});

test('back-pressure: while the endpoint is down the shipper is full and add()ers wait; memory holds a few batches; then everything arrives once', async () => {
  const s = await server();
  const r = rig([s.url], { concurrency: 1, flushIntervalMs: 20 });
  const down = s.down(800);
  await sleep(20);
  let added = 0;
  let waited = false;
  // A producer that respects room(): it must get stuck.
  const producer = (async () => {
    while (added < 500) {
      r.add(1, added);
      added++;
      if (r.shipper.full) {
        waited = true;
        await r.shipper.room();
      }
    }
  })();
  await sleep(400);
  assert.ok(waited, 'the producer was told to wait');
  assert.ok(added < 60, `only a few batches are taken while down (${added} documents of ~100 bytes, flushBytes 1000)`);
  assert.ok(r.shipper.stats.pending === added);
  await down;
  await producer;
  assert.equal(await r.shipper.drain(10000), true);
  assertExactlyOnce(s, 500);
  assert.match(r.warnings[0], /connection refused|connection reset|closed/);
});

test('the drain deadline: with the endpoint down, what is not acknowledged is dead-lettered as not indexed', async () => {
  const s = await server();
  await s.close();
  const r = rig([s.url]);
  r.add(25);
  const t0 = Date.now();
  assert.equal(await r.shipper.drain(400), false);
  assert.ok(Date.now() - t0 < 5000, 'drain returns at its deadline');
  assert.equal(r.dead.length, 25);
  assert.ok(r.dead.every((d) => d.reason === 'not-indexed' && /drain timeout/.test(d.error.reason)));
  assert.deepEqual(r.dead.map((d) => itemAction(d.item).id).sort(), Array.from({ length: 25 }, (_, i) => `d${i}`).sort());
  assert.equal(r.shipper.stats.notIndexed, 25);
  assert.equal(r.shipper.stats.pending, 0);
});

test('401 stops the shipper at once (credentials do not fix themselves): everything unsent is dead-lettered', async () => {
  const s = await server({ users: { elastic: 'right' } });
  const r = rig([s.url]);
  r.add(25);
  assert.equal(await r.shipper.drain(10000), false);
  assert.match(r.shipper.failure!.message, /HTTP 401 security_exception: missing authentication credentials/);
  assert.equal(r.dead.length, 25);
  assert.equal(s.count(), 0);
  await assert.rejects(r.shipper.room(), /401/);
});

test('413 (over http.max_content_length): the batch is halved until it passes; a single document too large is dead-lettered', async () => {
  const s = await server({ maxContentLength: 700 });
  const r = rig([s.url], { flushBytes: 4000 });
  r.add(30);
  r.shipper.add('ct-2026.11.24', 'huge', JSON.stringify({ pad: 'y'.repeat(2000) }), 31);
  assert.equal(await r.shipper.drain(10000), false);
  assertExactlyOnce(s, 30);
  assert.equal(r.dead.length, 1);
  assert.equal(itemAction(r.dead[0].item).id, 'huge');
  assert.equal(r.dead[0].status, 413);
});

test('several nodes: a dead one is skipped and the live one takes the load', async () => {
  const s = await server();
  const closed = await new Promise<number>((resolve) => {
    const t = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (t.address() as net.AddressInfo).port;
      t.close(() => resolve(p));
    });
  });
  const r = rig([`http://127.0.0.1:${closed}`, s.url]);
  r.add(60);
  assert.equal(await r.shipper.drain(10000), true);
  assertExactlyOnce(s, 60);
});

test('two live nodes share the requests', async () => {
  const a = await server();
  const b = await server();
  const r = rig([a.url, b.url], { concurrency: 1 });
  r.add(100);
  assert.equal(await r.shipper.drain(10000), true);
  assert.equal(a.count() + b.count(), 100);
  assert.ok(a.bulkRequests > 2 && b.bulkRequests > 2, `${a.bulkRequests} and ${b.bulkRequests}`);
});

test('backoff: capped, exponential, between half and all of the step', async () => {
  const s = await server();
  const lo = rig([s.url], { backoffBaseMs: 100, backoffMaxMs: 1000, random: () => 0 }).shipper;
  const hi = rig([s.url], { backoffBaseMs: 100, backoffMaxMs: 1000, random: () => 0.999999 }).shipper;
  assert.deepEqual([1, 2, 3, 4, 5, 30].map((n) => lo.backoff(n)), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual([1, 2, 3, 4, 5, 30].map((n) => hi.backoff(n)), [100, 200, 400, 800, 1000, 1000]);
});
