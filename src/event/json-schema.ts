// The schema table (schema.ts) as other tools read it: a JSON Schema
// (draft 2020-12) of one record of the stream, shipped as
// schema/ct-event.schema.json, and the field table of ct-event(5). Both are
// written by `npm run schema`; a test fails when either is stale.

import { FIELDS, RECORD_KINDS, membersOf, type FieldSpec, type FieldType, type RecordKind } from './schema.js';
import { SCHEMA_VERSION } from '../event.js';

/** The fields each kind of record always has. */
export const REQUIRED: Record<RecordKind, readonly string[]> = {
  'flow-event': ['ts', 'event', 'id', 'family', 'proto', 'src', 'dst', 'reply', 'status'],
  flow: ['ts', 'event', 'id', 'family', 'proto', 'src', 'dst', 'reply', 'finished'],
  overrun: ['ts', 'event', 'lost', 'reason'],
  stats: ['ts', 'event', 'received', 'written', 'lost', 'queued'],
  'attribution-stats': ['ts', 'event', 'events', 'cached', 'answers', 'methods'],
  dns: ['ts', 'event', 'proto', 'client', 'cport', 'server', 'sport', 'name', 'answers'],
  counters: ['ts', 'event', 'id', 'family', 'proto', 'src', 'dst', 'status', 'counters'],
};

/** The `event` values of each kind. */
const EVENT_VALUES: Record<RecordKind, readonly string[]> = {
  'flow-event': ['new', 'update', 'destroy'],
  flow: ['flow'],
  overrun: ['overrun'],
  stats: ['stats'],
  'attribution-stats': ['attribution-stats'],
  dns: ['dns'],
  counters: ['counters'],
};

type Json = Record<string, unknown>;

function typeOf(t: FieldType): Json {
  switch (t) {
    case 'string': return { type: 'string' };
    case 'string?': return { type: ['string', 'null'] };
    case 'integer': return { type: 'integer' };
    case 'number': return { type: 'number' };
    case 'port': return { type: 'integer', minimum: 0, maximum: 65535 };
    case 'boolean': return { type: 'boolean' };
    case 'true': return { const: true };
    case 'object': return { type: 'object' };
    case 'object?': return { type: ['object', 'null'] };
    case 'string[]': return { type: 'array', items: { type: 'string' } };
    case 'integer[]': return { type: 'array', items: { type: 'integer' } };
    case 'object[]': return { type: 'array', items: { type: 'object' } };
  }
}

function property(f: FieldSpec): Json {
  const p: Json = typeOf(f.type);
  if (f.values) p.enum = [...f.values];
  const members = membersOf(f.path);
  if (members.length > 0) p.properties = Object.fromEntries(members.map((m) => [leaf(m.path), property(m)]));
  if (f.path === 'unknown') p.additionalProperties = { type: 'string' };
  return p;
}

const leaf = (path: string) => path.slice(path.lastIndexOf('.') + 1);

/** A JSON Schema for one line of the stream. Fields it does not name are allowed: stages pass them on. */
export function jsonSchema(): Json {
  const top = membersOf('');
  const twice = new Set(top.filter((f, i) => top.findIndex((g) => g.path === f.path) !== i).map((f) => f.path));
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:ctpipe:ct-event:${SCHEMA_VERSION}`,
    title: `ctpipe record, contract ${SCHEMA_VERSION} (ct-event(5))`,
    description: 'One line of the NDJSON stream between ctpipe commands. Generated from src/event/schema.ts by `npm run schema`.',
    type: 'object',
    required: ['event'],
    // A name that two kinds of record give different types is described in
    // each kind's own part.
    properties: Object.fromEntries(top.filter((f) => !twice.has(f.path)).map((f) => [f.path, property(f)])),
    allOf: RECORD_KINDS.map((kind) => {
      const own = top.filter((f) => twice.has(f.path) && f.on.includes(kind));
      return {
        if: { properties: { event: { enum: [...EVENT_VALUES[kind]] } }, required: ['event'] },
        then: { required: [...REQUIRED[kind]], ...(own.length ? { properties: Object.fromEntries(own.map((f) => [f.path, property(f)])) } : {}) },
      };
    }),
  };
}

const KIND_NAMES: Record<RecordKind, string> = {
  'flow-event': 'events', flow: 'flow', overrun: 'overrun', stats: 'stats', 'attribution-stats': 'attribution-stats', dns: 'dns', counters: 'counters',
};

/**
 * The field table of ct-event(5): one line per path, as an indented
 * (preformatted) Markdown block. RECORDS `events` are flow events (new,
 * update, destroy); `all` is every kind.
 */
export function fieldTable(): string {
  const rows = FIELDS.map((f) => [
    f.path,
    f.type,
    f.on.length === RECORD_KINDS.length ? 'all' : f.on.map((k) => KIND_NAMES[k]).join(', '),
    f.by,
  ]);
  const head = ['FIELD', 'TYPE', 'RECORDS', 'BY'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => '    ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i] + 2))).join('');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The man page's text with its field table replaced: the preformatted block
 * that follows the first paragraph under "## FIELD TABLE".
 */
export function withFieldTable(man: string, table: string): string {
  const lines = man.split('\n');
  const head = lines.indexOf('## FIELD TABLE');
  if (head < 0) throw new Error('ct-event.5.md: no "## FIELD TABLE" section');
  let i = head + 1;
  while (i < lines.length && !lines[i].startsWith('    ')) {
    if (lines[i].startsWith('## ')) throw new Error('ct-event.5.md: FIELD TABLE has no table');
    i++;
  }
  let end = i;
  while (end < lines.length && (lines[end].startsWith('    ') || (lines[end] === '' && lines[end + 1]?.startsWith('    ')))) end++;
  return [...lines.slice(0, i), ...table.replace(/\n$/, '').split('\n'), ...lines.slice(end)].join('\n');
}
