// _bulk bodies and responses (src/es/bulk.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batch, bulkBody, itemSource, readBulkResponse, errorSummary, BadResponse, actionLine } from '../../src/es/bulk.js';

test('a batch is an NDJSON body: action line, source line, each ending in \\n', () => {
  const b = new Batch('index', Buffer.alloc(4096));
  assert.equal(b.add('ct-2026.11.24', 'id-1', '{"a":1}', 1), true);
  assert.equal(b.add('ct-2026.11.24', 'id-2', '{"b":"é😀"}', 2), true);
  const body = b.body().toString('utf8');
  assert.equal(body, '{"index":{"_index":"ct-2026.11.24","_id":"id-1"}}\n{"a":1}\n{"index":{"_index":"ct-2026.11.24","_id":"id-2"}}\n{"b":"é😀"}\n');
  assert.equal(b.bytes, Buffer.byteLength(body));
  assert.equal(b.length, 2);
  assert.equal(itemSource(b.items[1]), '{"b":"é😀"}');
  assert.equal(b.items[1].line, 2);
  assert.equal(bulkBody([b.items[1]]).toString(), '{"index":{"_index":"ct-2026.11.24","_id":"id-2"}}\n{"b":"é😀"}\n');
  assert.equal(actionLine('create', 'a"b', 'x'), '{"create":{"_index":"a\\"b","_id":"x"}}');
});

test('a full batch refuses the next document; an empty one grows for a document larger than its buffer', () => {
  const b = new Batch('create', Buffer.alloc(200));
  const doc = JSON.stringify({ x: 'y'.repeat(60) });
  assert.equal(b.add('i', '1', doc, 1), true);
  assert.equal(b.add('i', '2', doc, 2), false, 'does not fit');
  assert.equal(b.length, 1);
  const big = JSON.stringify({ x: 'z'.repeat(1000) });
  const c = new Batch('create', Buffer.alloc(200));
  assert.equal(c.add('i', '3', big, 3), true);
  assert.equal(itemSource(c.items[0]), big);
  assert.ok(c.body().toString().startsWith('{"create":{"_index":"i","_id":"3"}}\n'));
  // Multi-byte text near the end of the buffer: measured exactly, never cut.
  const d = new Batch('index', Buffer.alloc(120));
  const wide = JSON.stringify({ t: 'ü'.repeat(20) });
  assert.equal(d.add('i', '4', wide, 4), true);
  assert.equal(d.add('i', '5', wide, 5), false);
  assert.equal(itemSource(d.items[0]), wide);
});

const item = (op: string, o: object) => ({ [op]: { _index: 'ct', _id: 'x', ...o } });

test('per-item results: created, updated, conflict on create, retry on 429/503, rejected otherwise', () => {
  const res = {
    took: 3, errors: true, items: [
      item('index', { status: 201, result: 'created' }),
      item('index', { status: 200, result: 'updated' }),
      item('index', { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'busy' } }),
      item('index', { status: 503, error: { type: 'unavailable_shards_exception', reason: 'primary shard is not active' } }),
      item('index', { status: 400, error: { type: 'mapper_parsing_exception', reason: 'failed to parse field [source.ip]' } }),
      item('index', { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'conflict' } }),
    ],
  };
  const r = readBulkResponse(JSON.stringify(res), 6, 'index');
  assert.deepEqual(r.map((x) => x.outcome), ['created', 'updated', 'retry', 'retry', 'rejected', 'rejected']);
  assert.equal(r[4].error!.type, 'mapper_parsing_exception');
  assert.equal(r[4].status, 400);
  const c = readBulkResponse(JSON.stringify({ errors: true, items: [item('create', { status: 409, error: { type: 'version_conflict_engine_exception', reason: '[x]: version conflict, document already exists (current version [1])' } })] }), 1, 'create');
  assert.equal(c[0].outcome, 'exists', 'op_type create: a conflict means it is already indexed');
});

test('a filtered response (filter_path) is read the same way', () => {
  const text = '{"errors":false,"items":[{"index":{"status":201,"result":"created"}},{"index":{"status":200,"result":"updated"}}]}';
  assert.deepEqual(readBulkResponse(text, 2, 'index').map((x) => x.outcome), ['created', 'updated']);
});

test('what is not a bulk response is a BadResponse (the request is retried whole)', () => {
  assert.throws(() => readBulkResponse('<html>502</html>', 1, 'index'), BadResponse);
  assert.throws(() => readBulkResponse('{"took":1,"errors":false,"items":[', 1, 'index'), BadResponse);
  assert.throws(() => readBulkResponse('{"took":1}', 1, 'index'), BadResponse);
  assert.throws(() => readBulkResponse('{"errors":false,"items":[{"index":{"status":201}}]}', 2, 'index'), /1 items for 2 sent/);
  assert.throws(() => readBulkResponse('{"errors":false,"items":[{"index":{}}]}', 1, 'index'), /no status/);
});

test('errorSummary: the error of a failure body, or the start of a non-JSON one', () => {
  assert.equal(errorSummary('{"error":{"type":"security_exception","reason":"missing authentication credentials"},"status":401}'), 'security_exception: missing authentication credentials');
  assert.equal(errorSummary('{"error":"Incorrect HTTP method","status":405}'), 'Incorrect HTTP method');
  assert.equal(errorSummary('<html>\r\n<body>502 Bad Gateway</body></html>'), '<html> <body>502 Bad Gateway</body></html>');
  assert.ok(errorSummary('x'.repeat(500)).length < 130);
});
