// The schema table (src/event/schema.ts) against what is derived from it and
// what describes it: ct-event(5), schema/ct-event.schema.json, the readers'
// type checks and the paths templates may name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIELDS, membersOf, fieldAt, type FieldSpec } from '../../src/event/schema.js';
import { jsonSchema, fieldTable, withFieldTable, REQUIRED } from '../../src/event/json-schema.js';
import { FIELD_PATHS, isContractPath } from '../../src/event.js';
import { checkRecord } from '../../src/filter/validate.js';
import { LineWriter } from '../../src/event-json.js';
import { ROOT as root } from '../helpers.js';

const man = readFileSync(path.join(root, 'man', 'ct-event.5.md'), 'utf8');

test('schema/ct-event.schema.json is what the table gives (run `npm run schema` after changing the table)', () => {
  const file = JSON.parse(readFileSync(path.join(root, 'schema', 'ct-event.schema.json'), 'utf8'));
  assert.deepEqual(file, jsonSchema());
});

test("ct-event(5)'s FIELD TABLE is what the table gives (run `npm run schema` after changing the table)", () => {
  assert.equal(withFieldTable(man, fieldTable()), man);
});

/** ct-event(5) without its field table: the prose. */
function prose(): string {
  const at = man.indexOf('## FIELD TABLE');
  const next = man.indexOf('\n## ', at + 1);
  return man.slice(0, at) + man.slice(next);
}

test('ct-event(5) describes every field of the table in its prose', () => {
  const text = prose();
  const missing = FIELDS.filter((f) => {
    const name = f.path.slice(f.path.lastIndexOf('.') + 1);
    if (!f.path.includes('.')) return !text.includes('`' + name + '`') && !text.includes(`"${name}"`);
    // A member is named in its parent's description: `{pid, ppid, ...}`, "`uid` is ...", or as a dotted path.
    return !new RegExp(`[{\`", .]${name}[}\`", :]`).test(text) && !text.includes('`' + f.path + '`');
  }).map((f) => f.path);
  assert.deepEqual(missing, [], 'fields of src/event/schema.ts that man/ct-event.5.md does not describe');
});

test('every field ct-event(5) lists in its bullets is in the table', () => {
  const named: string[] = [];
  for (const line of prose().split('\n')) {
    const m = /^ {2}\* ((?:`[a-z_.]+`(?:, | and | or )?)+):/.exec(line);
    if (m) for (const t of m[1].matchAll(/`([a-z_.]+)`/g)) named.push(t[1]);
  }
  assert.ok(named.length >= 40, `found only ${named.length} field bullets: did the page's layout change?`);
  assert.deepEqual(named.filter((n) => !fieldAt(n)), [], 'fields man/ct-event.5.md describes that src/event/schema.ts lacks: add a row there, then `npm run schema`');
});

test('FIELD_PATHS and isContractPath come from the table', () => {
  assert.deepEqual([...FIELD_PATHS], [...new Set(FIELDS.map((f) => f.path))]);
  assert.ok(isContractPath('process.cmdline.0'), 'an element of an open array');
  assert.ok(isContractPath('unknown.orig.7'), 'a key of unknown');
  assert.ok(!isContractPath('process.pdi'));
  assert.ok(!isContractPath('process.pid.x'));
});

/** A value of another JSON type than `f` takes. */
function wrong(f: FieldSpec): unknown {
  switch (f.type) {
    case 'string': case 'string?': return 7;
    case 'integer': case 'port': case 'number': return '7';
    case 'boolean': case 'true': return 'yes';
    case 'object': case 'object?': return 'x';
    case 'string[]': return [1];
    case 'integer[]': return ['a'];
    case 'object[]': return [1];
  }
}

function setAt(o: Record<string, any>, p: string, v: unknown): void {
  const parts = p.split('.');
  let at = o;
  for (const k of parts.slice(0, -1)) at = at[k] ??= {};
  at[parts.at(-1)!] = v;
}

test("the readers' type checks cover every field of flow events, each reported at its path", () => {
  let n = 0;
  for (const f of FIELDS) {
    if (!f.on.includes('flow-event') || f.path === 'event') continue;
    const ev: Record<string, any> = { ts: '2026-01-01T00:00:00.000000Z', event: 'new', id: 1, family: 'ipv4', proto: 'tcp', src: '10.0.0.1', dst: '10.0.0.2', reply: {}, status: [] };
    setAt(ev, f.path, wrong(f));
    const bad = checkRecord(ev);
    assert.ok(bad?.startsWith(f.path + ': expected '), `${f.path}: ${bad}`);
    n++;
  }
  assert.ok(n > 60);
  // A port out of range, a fraction where a whole number goes, null where only an object or null goes.
  assert.match(checkRecord({ event: 'new', sport: 70000 })!, /^sport: expected a port number/);
  assert.match(checkRecord({ event: 'new', id: 1.5 })!, /^id: expected a whole number/);
  assert.equal(checkRecord({ event: 'new', process: { pid: 1, container: null, exe: null } }), null);
});

// A validator for the part of JSON Schema the generated file uses, to check
// it against real records: type, enum, const, minimum, maximum, properties,
// items, required, allOf with if/then.
function validate(schema: any, v: unknown, at = ''): string[] {
  const errs: string[] = [];
  const kind = (x: unknown) => (x === null ? 'null' : Array.isArray(x) ? 'array' : Number.isInteger(x) ? 'integer' : typeof x);
  if (schema.type) {
    const types: string[] = [].concat(schema.type);
    const k = kind(v);
    if (!types.includes(k) && !(k === 'integer' && types.includes('number'))) return [`${at || '/'}: ${k} is not ${types.join('|')}`];
  }
  if (schema.const !== undefined && v !== schema.const) errs.push(`${at}: not ${schema.const}`);
  if (schema.enum && !schema.enum.includes(v)) errs.push(`${at}: ${String(v)} not in enum`);
  if (schema.minimum !== undefined && (v as number) < schema.minimum) errs.push(`${at}: below minimum`);
  if (schema.maximum !== undefined && (v as number) > schema.maximum) errs.push(`${at}: above maximum`);
  if (schema.required) for (const r of schema.required) if ((v as any)?.[r] === undefined) errs.push(`${at}: no ${r}`);
  if (schema.properties && kind(v) === 'object') {
    for (const [k, s] of Object.entries(schema.properties)) if ((v as any)[k] !== undefined) errs.push(...validate(s, (v as any)[k], `${at}/${k}`));
  }
  if (schema.additionalProperties && kind(v) === 'object') {
    for (const [k, x] of Object.entries(v as object)) if (!schema.properties?.[k]) errs.push(...validate(schema.additionalProperties, x, `${at}/${k}`));
  }
  if (schema.items && Array.isArray(v)) v.forEach((x, i) => errs.push(...validate(schema.items, x, `${at}/${i}`)));
  for (const part of schema.allOf ?? []) if (validate(part.if, v).length === 0) errs.push(...validate(part.then, v, at));
  return errs;
}

test('the JSON Schema accepts the records of the test fixtures and rejects wrong ones', () => {
  const schema = jsonSchema();
  let lines = 0;
  for (const f of ['filter/events.ndjson', 'filter/extra.ndjson', 'format/events.ndjson', 'es/events.ndjson']) {
    for (const line of readFileSync(path.join(root, 'test', 'fixtures', f), 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line);
      assert.deepEqual(validate(schema, r), [], `${f}: ${line}`);
      lines++;
    }
  }
  assert.ok(lines > 20);
  assert.notDeepEqual(validate(schema, { event: 'new', ts: 'x' }), [], 'a flow event without its required fields');
  assert.notDeepEqual(validate(schema, { event: 'overrun', ts: 'x', lost: '3', reason: 'enobufs' }), []);
  assert.notDeepEqual(validate(schema, { event: 'stats', ts: 'x', received: 1, written: 1, lost: 0, queued: 0, host: 5 }), []);
  assert.deepEqual(validate(schema, { event: 'overrun', ts: 'x', lost: 3, reason: 'enobufs', extra: { any: 'thing' } }), [], 'fields it does not name are allowed');
});

test('every kind of record has its required fields in the table', () => {
  for (const [kind, names] of Object.entries(REQUIRED)) {
    for (const n of names) assert.ok(FIELDS.some((f) => f.path === n && f.on.includes(kind as any)), `${kind}: ${n}`);
  }
  assert.ok(membersOf('process').some((f) => f.path === 'process.pid'));
});

test("ct-events' serializer writes every field it may meet as JSON.stringify does", () => {
  const ev: Record<string, any> = {};
  for (const f of FIELDS) if (f.by === 'ct-events' && !f.path.includes('.')) ev[f.path] = f.type === 'object' ? {} : 1;
  setAt(ev, 'reply.src', '10.0.0.1');
  setAt(ev, 'counters.orig.bytes', 5);
  const w = new LineWriter();
  w.line(ev);
  const out = w.take().toString();
  assert.equal(out, JSON.stringify(ev) + '\n');
});

test("ct-flows builds its records of every flow-event field of the table, by name", async () => {
  const { KNOWN_FIELDS } = await import('../../src/flows/tracker.js');
  const top = [...new Set(FIELDS.filter((f) => f.on.includes('flow-event') && !f.path.includes('.')).map((f) => f.path))];
  assert.deepEqual(top.filter((f) => !KNOWN_FIELDS.includes(f)), [], 'add the field to HEAD_FIELDS, CHANGING_FIELDS or TAIL_FIELDS in src/flows/tracker.ts');
  assert.deepEqual(KNOWN_FIELDS.filter((f) => !fieldAt(f)), []);
});

test("ct-format's csv columns and ct-es's ECS sources are fields of the table", async () => {
  const { CSV_FIELDS } = await import('../../src/format/template.js');
  assert.deepEqual(CSV_FIELDS.filter((f) => !isContractPath(f)), []);
  const { ECS_FIELDS } = await import('../../src/es/ecs.js');
  const named: string[] = [];
  for (const row of ECS_FIELDS) {
    // `from` is prose: "process.gid, as text", "stop - start, in nanoseconds", "the length of process.cmdline".
    const from = row.from.replace(/"[^"]*"/g, '""'); // quoted values are values, not fields
    const first = /^([a-z_]+(?:\.[a-z_0-9]+)*)\b/.exec(from)?.[1];
    if (first && first !== 'the') named.push(first);
    for (const m of from.matchAll(/\b[a-z_]+(?:\.[a-z_0-9]+)+\b/g)) named.push(m[0]);
  }
  assert.ok(named.length > 40);
  assert.deepEqual(named.filter((f) => !isContractPath(f)), []);
});
