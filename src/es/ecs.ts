// The Elastic Common Schema view of a ctpipe record, as data: one row per ECS
// field, saying where its value comes from and how Elasticsearch/OpenSearch
// should type it. toEcs() walks the table; the index template (setup.ts) and
// the man page's mapping table are made from the same rows, so the three
// cannot drift apart (a test checks the man page).
//
// Field names and allowed values follow ECS 8.x (https://www.elastic.co/guide/en/ecs/current/):
// ecs-event.html (event.kind/category/type/action), ecs-network.html
// (network.transport is the IANA keyword, "ipv6-icmp" for ICMPv6;
// network.direction from a host's point of view is ingress/egress),
// ecs-source.html and ecs-destination.html (*.nat.* is the translated side),
// ecs-process.html, ecs-user.html, ecs-group.html, ecs-container.html.
//
// This module does no I/O and never throws on odd input: a field whose source
// is missing or of the wrong kind is simply left out. The original record is
// kept whole under `ctpipe`, so a document can always be turned back into the
// event it came from (dead letters are replayed that way).

import { isFlowEvent, isFlowRecord } from '../event.js';

export const ECS_VERSION = '8.11.0';
/** Where the original record goes in an ECS document. */
export const NAMESPACE = 'ctpipe';

/** The Elasticsearch field types this module uses; all exist in ES 7+ and OpenSearch 1+. */
export type EsType = 'date' | 'ip' | 'keyword' | 'long' | 'integer' | 'double' | 'boolean' | 'object-disabled';

type Rec = Record<string, any>;

export interface EcsRow {
  /** Dotted ECS field name. */
  ecs: string;
  type: EsType;
  /** Where the value comes from, for the man page. */
  from: string;
  get(r: Rec, ctx: MapContext): unknown;
}

export interface MapContext {
  /** The document's `_id`, given to `event.id`. */
  id: string;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Rec | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : undefined);
const idText = (v: unknown): string | undefined => (typeof v === 'number' && Number.isInteger(v) ? String(v) : str(v));
const proc = (r: Rec): Rec | undefined => obj(r.process);
const counter = (r: Rec, dir: 'orig' | 'reply', what: 'bytes' | 'packets'): number | undefined => num(obj(obj(r.counters)?.[dir])?.[what]);
const sum = (a: number | undefined, b: number | undefined) => (a === undefined && b === undefined ? undefined : (a ?? 0) + (b ?? 0));

/** IANA protocol keywords (https://www.iana.org/assignments/protocol-numbers), as ECS network.transport wants them. */
const TRANSPORT: Record<string, [string, string]> = {
  tcp: ['tcp', '6'], udp: ['udp', '17'], icmp: ['icmp', '1'], icmpv6: ['ipv6-icmp', '58'],
  sctp: ['sctp', '132'], dccp: ['dccp', '33'], udplite: ['udplite', '136'], gre: ['gre', '47'],
};

/** ct-attribute's direction, seen from this host (ECS: host-based events use ingress/egress). */
const DIRECTION: Record<string, string> = { out: 'egress', in: 'ingress', local: 'internal', fwd: 'unknown' };

const EVENT_TYPE: Record<string, string[]> = {
  new: ['connection', 'start'],
  update: ['connection', 'change'],
  destroy: ['connection', 'end'],
};

/** event.kind of special records; anything else about the stream is "event". */
const SPECIAL_KIND: Record<string, string> = { stats: 'metric', overrun: 'pipeline_error' };

/**
 * Microseconds since the epoch from an ISO 8601 time, keeping the digits
 * beyond milliseconds that Date.parse drops. undefined when it does not parse.
 */
export function isoToMicros(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return undefined;
  const m = /\.(\d+)/.exec(s);
  const extra = m && m[1].length > 3 ? Number(m[1].slice(3, 6).padEnd(3, '0')) : 0;
  return ms * 1000 + extra;
}

/** Source NAT: the reply comes back to a different address/port than the original sender used. */
function snat(r: Rec, what: 'ip' | 'port'): unknown {
  const rep = obj(r.reply);
  if (!rep) return undefined;
  if (what === 'ip') return str(rep.dst) !== undefined && rep.dst !== r.src ? rep.dst : undefined;
  return num(rep.dport) !== undefined && num(r.sport) !== undefined && rep.dport !== r.sport ? rep.dport : undefined;
}

/** Destination NAT: the reply comes from a different address/port than the original was sent to. */
function dnat(r: Rec, what: 'ip' | 'port'): unknown {
  const rep = obj(r.reply);
  if (!rep) return undefined;
  if (what === 'ip') return str(rep.src) !== undefined && rep.src !== r.dst ? rep.src : undefined;
  return num(rep.sport) !== undefined && num(r.dport) !== undefined && rep.sport !== r.dport ? rep.sport : undefined;
}

function relatedIps(r: Rec): string[] | undefined {
  const out: string[] = [];
  const add = (v: unknown) => { if (typeof v === 'string' && v && !out.includes(v)) out.push(v); };
  add(r.src); add(r.dst);
  const rep = obj(r.reply);
  if (rep) { add(rep.src); add(rep.dst); }
  return out.length ? out : undefined;
}

function durationNs(r: Rec): number | undefined {
  const a = isoToMicros(r.start), b = isoToMicros(r.stop);
  return a !== undefined && b !== undefined && b >= a ? (b - a) * 1000 : undefined;
}

function stringArray(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

/** Flow events and ct-flows' flow records (one per connection): network events. */
const flow = (r: Rec) => isFlowEvent(r) || isFlowRecord(r);

/** event.type: by event; a flow record ends its connection when it is finished, else it is a report on it. */
function eventType(r: Rec): string[] | undefined {
  if (isFlowRecord(r)) return r.finished === true ? ['connection', 'end'] : ['connection', 'info'];
  return EVENT_TYPE[r.event as string];
}

/**
 * The mapping. Order is the order of the man page table and of fields in a
 * document. `from` names ct-event(5) fields.
 */
export const ECS_FIELDS: readonly EcsRow[] = [
  { ecs: '@timestamp', type: 'date', from: 'ts', get: (r) => str(r.ts) },
  { ecs: 'ecs.version', type: 'keyword', from: `"${ECS_VERSION}"`, get: () => ECS_VERSION },
  { ecs: 'event.kind', type: 'keyword', from: '"event"; "metric" for stats, "pipeline_error" for overrun records', get: (r) => (flow(r) ? 'event' : SPECIAL_KIND[r.event] ?? 'event') },
  { ecs: 'event.category', type: 'keyword', from: '["network"] (flow events and flow records)', get: (r) => (flow(r) ? ['network'] : undefined) },
  { ecs: 'event.type', type: 'keyword', from: 'event: new ["connection","start"], update ["connection","change"], destroy ["connection","end"]; flow ["connection","end"] when finished, else ["connection","info"]', get: eventType },
  { ecs: 'event.action', type: 'keyword', from: 'event (new, update, destroy, overrun, stats, ...)', get: (r) => str(r.event) },
  { ecs: 'event.module', type: 'keyword', from: '"ctpipe"', get: () => 'ctpipe' },
  { ecs: 'event.dataset', type: 'keyword', from: '"ctpipe.conntrack"; "ctpipe.flow" for ct-flows\' records; "ctpipe.stream" for special records', get: (r) => (isFlowRecord(r) ? 'ctpipe.flow' : flow(r) ? 'ctpipe.conntrack' : 'ctpipe.stream') },
  { ecs: 'event.id', type: 'keyword', from: 'the document _id (see DOCUMENT IDS)', get: (_r, c) => c.id },
  { ecs: 'event.start', type: 'date', from: 'start', get: (r) => str(r.start) },
  { ecs: 'event.end', type: 'date', from: 'stop', get: (r) => str(r.stop) },
  { ecs: 'event.duration', type: 'long', from: 'stop - start, in nanoseconds', get: durationNs },
  { ecs: 'source.ip', type: 'ip', from: 'src', get: (r) => str(r.src) },
  { ecs: 'source.port', type: 'long', from: 'sport', get: (r) => num(r.sport) },
  { ecs: 'source.bytes', type: 'long', from: 'counters.orig.bytes', get: (r) => counter(r, 'orig', 'bytes') },
  { ecs: 'source.packets', type: 'long', from: 'counters.orig.packets', get: (r) => counter(r, 'orig', 'packets') },
  { ecs: 'source.nat.ip', type: 'ip', from: 'reply.dst, when it differs from src (source NAT)', get: (r) => snat(r, 'ip') },
  { ecs: 'source.nat.port', type: 'long', from: 'reply.dport, when it differs from sport', get: (r) => snat(r, 'port') },
  { ecs: 'destination.ip', type: 'ip', from: 'dst', get: (r) => str(r.dst) },
  { ecs: 'destination.port', type: 'long', from: 'dport', get: (r) => num(r.dport) },
  { ecs: 'destination.bytes', type: 'long', from: 'counters.reply.bytes', get: (r) => counter(r, 'reply', 'bytes') },
  { ecs: 'destination.packets', type: 'long', from: 'counters.reply.packets', get: (r) => counter(r, 'reply', 'packets') },
  { ecs: 'destination.nat.ip', type: 'ip', from: 'reply.src, when it differs from dst (destination NAT)', get: (r) => dnat(r, 'ip') },
  { ecs: 'destination.nat.port', type: 'long', from: 'reply.sport, when it differs from dport', get: (r) => dnat(r, 'port') },
  { ecs: 'network.transport', type: 'keyword', from: 'proto (icmpv6 becomes "ipv6-icmp")', get: (r) => (typeof r.proto === 'string' ? TRANSPORT[r.proto]?.[0] ?? r.proto : undefined) },
  { ecs: 'network.iana_number', type: 'keyword', from: 'proto, as its IANA number', get: (r) => (typeof r.proto === 'string' ? TRANSPORT[r.proto]?.[1] ?? (/^\d+$/.test(r.proto) ? r.proto : undefined) : undefined) },
  { ecs: 'network.type', type: 'keyword', from: 'family (ipv4, ipv6)', get: (r) => str(r.family) },
  { ecs: 'network.community_id', type: 'keyword', from: 'community_id', get: (r) => str(r.community_id) },
  { ecs: 'network.direction', type: 'keyword', from: 'direction: out "egress", in "ingress", local "internal", fwd "unknown"', get: (r) => (typeof r.direction === 'string' ? DIRECTION[r.direction] : undefined) },
  { ecs: 'network.bytes', type: 'long', from: 'counters.orig.bytes + counters.reply.bytes', get: (r) => sum(counter(r, 'orig', 'bytes'), counter(r, 'reply', 'bytes')) },
  { ecs: 'network.packets', type: 'long', from: 'counters.orig.packets + counters.reply.packets', get: (r) => sum(counter(r, 'orig', 'packets'), counter(r, 'reply', 'packets')) },
  { ecs: 'process.pid', type: 'long', from: 'process.pid', get: (r) => num(proc(r)?.pid) },
  { ecs: 'process.parent.pid', type: 'long', from: 'process.ppid', get: (r) => num(proc(r)?.ppid) },
  { ecs: 'process.name', type: 'keyword', from: 'process.comm', get: (r) => str(proc(r)?.comm) },
  { ecs: 'process.executable', type: 'keyword', from: 'process.exe', get: (r) => str(proc(r)?.exe) },
  { ecs: 'process.args', type: 'keyword', from: 'process.cmdline', get: (r) => stringArray(proc(r)?.cmdline) },
  { ecs: 'process.args_count', type: 'long', from: 'the length of process.cmdline', get: (r) => stringArray(proc(r)?.cmdline)?.length },
  { ecs: 'process.command_line', type: 'keyword', from: 'process.cmdline joined by spaces', get: (r) => stringArray(proc(r)?.cmdline)?.join(' ') },
  { ecs: 'process.start', type: 'date', from: 'process.start_time', get: (r) => str(proc(r)?.start_time) },
  { ecs: 'process.entity_id', type: 'keyword', from: 'process.entity_id', get: (r) => str(proc(r)?.entity_id) },
  { ecs: 'process.hash.sha256', type: 'keyword', from: 'process.hash.sha256', get: (r) => str(obj(proc(r)?.hash)?.sha256) },
  { ecs: 'process.parent.entity_id', type: 'keyword', from: 'process.parent.entity_id', get: (r) => str(obj(proc(r)?.parent)?.entity_id) },
  { ecs: 'process.parent.name', type: 'keyword', from: 'process.parent.comm', get: (r) => str(obj(proc(r)?.parent)?.comm) },
  { ecs: 'process.parent.executable', type: 'keyword', from: 'process.parent.exe', get: (r) => str(obj(proc(r)?.parent)?.exe) },
  { ecs: 'process.parent.args', type: 'keyword', from: 'process.parent.cmdline', get: (r) => stringArray(obj(proc(r)?.parent)?.cmdline) },
  { ecs: 'process.parent.start', type: 'date', from: 'process.parent.start_time', get: (r) => str(obj(proc(r)?.parent)?.start_time) },
  { ecs: 'destination.domain', type: 'keyword', from: 'dns.name', get: (r) => str(obj(r.dns)?.name) },
  { ecs: 'user.id', type: 'keyword', from: 'process.uid, as text', get: (r) => idText(proc(r)?.uid) },
  { ecs: 'user.name', type: 'keyword', from: 'process.user', get: (r) => str(proc(r)?.user) },
  { ecs: 'group.id', type: 'keyword', from: 'process.gid, as text', get: (r) => idText(proc(r)?.gid) },
  { ecs: 'group.name', type: 'keyword', from: 'process.group', get: (r) => str(proc(r)?.group) },
  { ecs: 'container.id', type: 'keyword', from: 'process.container.id', get: (r) => str(obj(proc(r)?.container)?.id) },
  { ecs: 'container.runtime', type: 'keyword', from: 'process.container.runtime', get: (r) => str(obj(proc(r)?.container)?.runtime) },
  { ecs: 'container.name', type: 'keyword', from: 'process.container.name', get: (r) => str(obj(proc(r)?.container)?.name) },
  { ecs: 'container.image.name', type: 'keyword', from: 'process.container.image', get: (r) => str(obj(proc(r)?.container)?.image) },
  { ecs: 'host.name', type: 'keyword', from: 'host', get: (r) => str(r.host) },
  { ecs: 'related.ip', type: 'ip', from: 'src, dst, reply.src, reply.dst (each once)', get: relatedIps },
  { ecs: 'related.hosts', type: 'keyword', from: 'dns.name and dns.cnames', get: (r) => { const d = obj(r.dns); const n = str(d?.name); return n ? [n, ...(stringArray(d?.cnames) ?? [])] : undefined; } },
  { ecs: 'related.user', type: 'keyword', from: 'process.user', get: (r) => { const u = str(proc(r)?.user); return u ? [u] : undefined; } },
];

/**
 * Types of ctpipe's own fields (ct-event(5)), for the `ctpipe` namespace of an
 * ECS document and for the top level of a `--raw` one. Fields not listed are
 * left to dynamic mapping. `unknown` holds kernel attributes keyed by
 * number paths: stored, not indexed, so they can never clash with a mapping.
 */
const REF_TYPES: Record<string, EsType> = { pid: 'long', comm: 'keyword', exe: 'keyword', cmdline: 'keyword', start_time: 'date', entity_id: 'keyword' };
const PROCESS_TYPES: Record<string, EsType> = {
  pid: 'long', ppid: 'long', uid: 'long', user: 'keyword', gid: 'long', group: 'keyword', comm: 'keyword',
  exe: 'keyword', cmdline: 'keyword', cgroup: 'keyword', unit: 'keyword', inode: 'long', start_time: 'date',
  'container.id': 'keyword', 'container.runtime': 'keyword', 'container.name': 'keyword', 'container.image': 'keyword',
  entity_id: 'keyword', 'hash.sha256': 'keyword', 'hash.pending': 'boolean', 'hash.error': 'keyword',
  exe_deleted: 'boolean', exe_memfd: 'boolean',
  ...Object.fromEntries(['parent', 'ancestors'].flatMap((a) => Object.entries(REF_TYPES).map(([k, v]) => [`${a}.${k}`, v]))),
};
export const CTPIPE_TYPES: Readonly<Record<string, EsType>> = {
  ts: 'date', event: 'keyword', dump: 'boolean', id: 'long', family: 'keyword', proto: 'keyword',
  src: 'ip', sport: 'long', dst: 'ip', dport: 'long',
  'reply.src': 'ip', 'reply.sport': 'long', 'reply.dst': 'ip', 'reply.dport': 'long',
  state: 'keyword', status: 'keyword', timeout: 'long', mark: 'long', zone: 'long', community_id: 'keyword', host: 'keyword',
  'counters.orig.packets': 'long', 'counters.orig.bytes': 'long', 'counters.reply.packets': 'long', 'counters.reply.bytes': 'long',
  start: 'date', stop: 'date', labels: 'long', 'icmp.type': 'long', 'icmp.code': 'long', 'icmp.id': 'long',
  helper: 'keyword', secmark: 'long', use: 'long', unknown: 'object-disabled',
  direction: 'keyword',
  ...Object.fromEntries(Object.entries(PROCESS_TYPES).map(([k, v]) => [`process.${k}`, v])),
  ...Object.fromEntries(Object.entries(PROCESS_TYPES).map(([k, v]) => [`peer.${k}`, v])),
  'dns.name': 'keyword', 'dns.cnames': 'keyword', 'dns.age': 'double', 'dns.server': 'ip',
  'attribution.method': 'keyword', 'attribution.ok': 'boolean', 'attribution.reason': 'keyword',
  // Special records (overrun, stats).
  lost: 'long', reason: 'keyword', received: 'long', written: 'long', queued: 'long', rcvbuf: 'long',
};

/** Set a dotted path in a nested object. */
function put(doc: Rec, path: readonly string[], value: unknown): void {
  let o = doc;
  for (let i = 0; i < path.length - 1; i++) o = o[path[i]] ??= {};
  o[path[path.length - 1]] = value;
}

const PATHS = ECS_FIELDS.map((f) => f.ecs.split('.'));

/** An ECS document for one ctpipe record; the record itself goes under `ctpipe` unchanged. */
export function toEcs(r: Rec, ctx: MapContext): Rec {
  const doc: Rec = {};
  for (let i = 0; i < ECS_FIELDS.length; i++) {
    const v = ECS_FIELDS[i].get(r, ctx);
    if (v !== undefined) put(doc, PATHS[i], v);
  }
  doc[NAMESPACE] = r;
  return doc;
}

// The same document written straight to JSON text, without building the
// nested object first: ct-es makes tens of thousands a second, and the
// objects were much of its garbage. The rows become a tree of objects (keys
// in order of first appearance); an object with no value present is left out.
interface JsonNode {
  /** `"key":` */
  key: string;
  row?: EcsRow;
  kids?: JsonNode[];
}

const TREE: JsonNode[] = (() => {
  const root: JsonNode = { key: '', kids: [] };
  ECS_FIELDS.forEach((row, i) => {
    let node = root;
    const path = PATHS[i];
    for (let d = 0; d < path.length; d++) {
      const key = JSON.stringify(path[d]) + ':';
      if (d === path.length - 1) {
        node.kids!.push({ key, row });
      } else {
        let next = node.kids!.find((k) => k.key === key && k.kids);
        if (!next) node.kids!.push((next = { key, kids: [] }));
        node = next;
      }
    }
  });
  return root.kids!;
})();

/** Characters JSON.stringify would escape (and surrogates, which it may). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON.stringify, with the common cases (plain strings, numbers) done without it. */
function jsonValue(v: unknown): string {
  if (typeof v === 'string') return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : '"' + v + '"';
  if (typeof v === 'number') return Number.isFinite(v) ? '' + v : 'null';
  return JSON.stringify(v);
}

/**
 * The writer, compiled once from TREE into straight-line code: one
 * variable per object being built, one call site per row. A generic loop
 * over the rows was most of ct-es's CPU time (one call site for fifty
 * different getters cannot be optimized); this is what fast-json-stringify
 * does for JSON schemas. Only constants made here from the table go into
 * the code: keys are JSON-quoted, rows are reached by index.
 */
const emitCompiled: (r: Rec, ctx: MapContext, rows: readonly EcsRow[], J: (v: unknown) => string) => string = (() => {
  const code: string[] = ['let v;'];
  let vars = 0;
  const walk = (kids: JsonNode[], out: string) => {
    for (const k of kids) {
      const key = JSON.stringify(k.key);
      if (k.row) {
        const i = ECS_FIELDS.indexOf(k.row);
        code.push(`v = rows[${i}].get(r, ctx); if (v !== undefined) ${out} = (${out} === '' ? ${key} : ${out} + ',' + ${key}) + J(v);`);
      } else {
        const o = `o${++vars}`;
        code.push(`let ${o} = '';`);
        walk(k.kids!, o);
        code.push(`if (${o} !== '') ${out} = (${out} === '' ? ${key} : ${out} + ',' + ${key}) + '{' + ${o} + '}';`);
      }
    }
  };
  code.push(`let s = '';`);
  walk(TREE, 's');
  code.push('return s;');
  return new Function('r', 'ctx', 'rows', 'J', code.join('\n')) as any;
})();

/**
 * The ECS document as JSON text. `recordJson` is the record's own JSON (its
 * input line), put under `ctpipe` as it is instead of serializing it again.
 * Same content as JSON.stringify(toEcs(r, ctx)); keys grouped by object.
 */
export function toEcsJson(r: Rec, ctx: MapContext, recordJson: string): string {
  const inner = emitCompiled(r, ctx, ECS_FIELDS, jsonValue);
  return '{' + inner + (inner === '' ? '' : ',') + JSON.stringify(NAMESPACE) + ':' + recordJson.trim() + '}';
}

/** Elasticsearch mapping `properties` for a set of dotted field → type entries. */
export function mappingProperties(fields: Iterable<[string, EsType]>): Rec {
  const props: Rec = {};
  for (const [name, type] of fields) {
    const path = name.split('.');
    let o = props;
    for (let i = 0; i < path.length - 1; i++) {
      const node = (o[path[i]] ??= { properties: {} });
      node.properties ??= {};
      o = node.properties;
    }
    o[path[path.length - 1]] = type === 'object-disabled' ? { type: 'object', enabled: false } : { type };
  }
  return props;
}

/** The mapping of an ECS document (ECS fields, plus ctpipe's under the namespace) or of a raw one. */
export function documentMapping(raw: boolean): Rec {
  const entries: [string, EsType][] = raw
    ? [['@timestamp', 'date'], ...Object.entries(CTPIPE_TYPES)]
    : [...ECS_FIELDS.map((f): [string, EsType] => [f.ecs, f.type]), ...Object.entries(CTPIPE_TYPES).map(([k, v]): [string, EsType] => [`${NAMESPACE}.${k}`, v])];
  return { dynamic: true, properties: mappingProperties(entries) };
}
