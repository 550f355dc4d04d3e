// --setup (src/es/setup.ts) against the endpoint answering as Elasticsearch
// 7.5 / 7.17 / 8 / 9 and OpenSearch 1 / 2 / 3, and the template's mappings
// against real documents: every ECS and raw document of the generated stream
// passes the type checks, and a wrong address is refused as ES would.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EsServer, FLAVORS, filterPath } from '../es-server.js';
import { Transport } from '../../src/es/http.js';
import { setup, readClusterInfo, templateFor, SetupError } from '../../src/es/setup.js';
import { Shipper, type DeadLetter } from '../../src/es/shipper.js';
import { toEcsJson } from '../../src/es/ecs.js';
import { documentId } from '../../src/es/doc-id.js';
import { compilePattern } from '../../src/es/index-name.js';
import { ROOT } from '../helpers.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function cluster(flavor: keyof typeof FLAVORS) {
  const s = await new EsServer({ flavor: FLAVORS[flavor] }).start();
  const t = new Transport({ nodes: [s.url], timeoutMs: 5000, maxSockets: 2 });
  cleanup.push(() => s.close(), () => t.close());
  return { s, t };
}

test('GET / tells Elasticsearch from OpenSearch, and the version', () => {
  assert.deepEqual(readClusterInfo('{"version":{"number":"8.15.0","build_flavor":"default"},"tagline":"You Know, for Search"}'), { product: 'elasticsearch', version: '8.15.0', major: 8, minor: 15 });
  assert.deepEqual(readClusterInfo('{"version":{"distribution":"opensearch","number":"2.17.1"}}'), { product: 'opensearch', version: '2.17.1', major: 2, minor: 17 });
  assert.throws(() => readClusterInfo('<html>'), SetupError);
  assert.throws(() => readClusterInfo('{"ok":true}'), /version.number/);
});

test('template API by version: legacy _template before 7.8, composable after and on every OpenSearch; no data streams before 7.9', () => {
  const o = { name: 'ct', pattern: 'ct-*', dataStream: false, raw: false };
  assert.equal(templateFor({ product: 'elasticsearch', version: '7.5.2', major: 7, minor: 5 }, o).path, '/_template/ct');
  assert.equal(templateFor({ product: 'elasticsearch', version: '7.17.0', major: 7, minor: 17 }, o).path, '/_index_template/ct');
  assert.equal(templateFor({ product: 'opensearch', version: '1.0.0', major: 1, minor: 0 }, o).path, '/_index_template/ct');
  const ds = templateFor({ product: 'elasticsearch', version: '9.1.0', major: 9, minor: 1 }, { ...o, pattern: 'logs-ctpipe-default', dataStream: true });
  assert.deepEqual(ds.body.data_stream, {});
  assert.equal(ds.body.priority, 200);
  assert.throws(() => templateFor({ product: 'elasticsearch', version: '7.5.2', major: 7, minor: 5 }, { ...o, dataStream: true }), /no data streams/);
  assert.throws(() => templateFor({ product: 'elasticsearch', version: '6.8.0', major: 6, minor: 8 }, o), /too old/);
});

for (const flavor of ['es7.5', 'es7', 'es8', 'es9', 'opensearch1', 'opensearch2', 'opensearch3'] as const) {
  test(`--setup on ${flavor}: the template is installed where that version looks for it`, async () => {
    const { s, t } = await cluster(flavor);
    const said = await setup(t, { name: 'ct', pattern: 'ct-*', dataStream: false, raw: false });
    assert.match(said[0], flavor.startsWith('opensearch') ? /OpenSearch/ : /Elasticsearch/);
    const tpl = s.templates.get('ct')!;
    assert.ok(tpl, 'installed');
    assert.equal(tpl.legacy, flavor === 'es7.5');
    assert.deepEqual(tpl.patterns, ['ct-*']);
    assert.equal(tpl.properties.source.properties.ip.type, 'ip');
  });
}

for (const flavor of ['es8', 'opensearch2'] as const) {
  test(`--setup --data-stream on ${flavor}: template with data_stream, stream created; a second run finds it`, async () => {
    const { s, t } = await cluster(flavor);
    const o = { name: 'logs-ctpipe-default', pattern: 'logs-ctpipe-default', dataStream: true, raw: false };
    const said = await setup(t, o);
    assert.match(said.join('\n'), /data stream logs-ctpipe-default created/);
    assert.ok(s.templates.get('logs-ctpipe-default')!.dataStream);
    assert.ok(s.dataStreams.has('logs-ctpipe-default'));
    assert.match((await setup(t, o)).join('\n'), /already exists/);
  });
}

test('a cluster that refuses the template is a SetupError naming the request and the answer', async () => {
  const s = await new EsServer({ users: { a: 'b' } }).start();
  const t = new Transport({ nodes: [s.url], timeoutMs: 5000, maxSockets: 2 });
  cleanup.push(() => s.close(), () => t.close());
  await assert.rejects(setup(t, { name: 'ct', pattern: 'ct-*', dataStream: false, raw: false }), /GET \/: HTTP 401 security_exception/);
});

test('with the template, 20,000 generated ECS documents and their raw form pass the type checks; a bad address is refused', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const lines: string[] = [...generate(20000, 5)];
  for (const raw of [false, true]) {
    const { s, t } = await cluster('es8');
    const pattern = compilePattern(raw ? 'raw-%Y.%m.%d' : 'ecs-%Y.%m.%d');
    await setup(t, { name: 'ct', pattern: pattern.wildcard, dataStream: false, raw });
    const dead: DeadLetter[] = [];
    const shipper = new Shipper({ transport: t, op: 'index', flushBytes: 1 << 20, flushIntervalMs: 100, concurrency: 2, backoffMaxMs: 100, deadLetter: (d) => dead.push(d) });
    const bad = { ts: '2026-11-23T01:00:00.000000Z', event: 'new', id: 1, family: 'ipv4', proto: 'tcp', src: '10.0.0.300', sport: 1, dst: '10.0.0.1', dport: 2, reply: { src: '10.0.0.1', dst: '10.0.0.300' } };
    for (const line of [...lines, JSON.stringify(bad)]) {
      const r = JSON.parse(line);
      const id = documentId(r, line);
      shipper.add(pattern.format(r.ts)!, id, raw ? line : toEcsJson(r, { id }, line), 0);
      if (shipper.full) await shipper.room();
    }
    await shipper.drain(30000);
    assert.equal(s.count(), lines.length, `${raw ? 'raw' : 'ECS'}: every generated document accepted (${dead.slice(0, 2).map((d) => d.error.reason).join('; ')})`);
    assert.equal(dead.length, 1);
    assert.match(dead[0].error.reason, new RegExp(`failed to parse field \\[${raw ? 'src' : 'source.ip'}\\] of type \\[ip\\]`));
    assert.ok(['mapper_parsing_exception', 'document_parsing_exception'].includes(dead[0].error.type));
  }
});

test('the endpoint filters responses as filter_path says', () => {
  const body = { took: 1, errors: true, items: [{ index: { _index: 'a', _id: '1', status: 201, result: 'created', _shards: {} } }, { create: { _index: 'a', _id: '2', status: 409, error: { type: 't', reason: 'r' } } }] };
  assert.deepEqual(filterPath(body, ['errors', 'items.*.status', 'items.*.error'].map((p) => p.split('.'))), {
    errors: true, items: [{ index: { status: 201 } }, { create: { status: 409, error: { type: 't', reason: 'r' } } }],
  });
  assert.equal(filterPath({ a: 1 }, [['b']]), undefined);
});
