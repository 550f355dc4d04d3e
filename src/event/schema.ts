// The event contract as data: every field of every record ctpipe's commands
// write, its type, and which records carry it. ct-event(5) describes these
// fields in prose and a test holds the two together; the lists that stages
// need (the paths templates may name, the type checks of the readers, the
// field order of ct-events' serializer, the JSON Schema shipped in schema/)
// are derived from this table. Adding a field is one row here, then its
// paragraph in man/ct-event.5.md.

/** The kinds of record: `flow-event` is new/update/destroy; the others are their `event` value. */
export const RECORD_KINDS = ['flow-event', 'flow', 'overrun', 'stats', 'attribution-stats', 'dns', 'counters'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/**
 * A field's JSON type:
 * - `string`, `integer`, `number` (any finite), `boolean`, `true` (only ever `true`), `object`;
 * - `port`: an integer 0-65535;
 * - `string?`, `object?`: also `null`;
 * - `string[]`, `integer[]`, `object[]`: arrays of that.
 */
export type FieldType = 'string' | 'string?' | 'integer' | 'number' | 'port' | 'boolean' | 'true' | 'object' | 'object?' | 'string[]' | 'integer[]' | 'object[]';

export interface FieldSpec {
  /** Dotted path from the record's top. */
  path: string;
  type: FieldType;
  /** The records that carry it (a nested field: those of its parent, unless given). */
  on: readonly RecordKind[];
  /** The command that writes it first. */
  by: 'ct-events' | 'ct-attribute' | 'ct-flows' | 'ct-syslog';
  /** The values it may take, when they are a closed set. */
  values?: readonly string[];
  /** Keys below it are open: array indexes, undecoded attributes, counts by name. */
  open?: true;
}

const FLOWS: readonly RecordKind[] = ['flow-event', 'flow'];
const ALL: readonly RecordKind[] = RECORD_KINDS;
/** Flow fields that ct-events' `counters` records (the poll of open flows) carry too. */
const POLLED: readonly RecordKind[] = ['flow-event', 'flow', 'counters'];

type Row = [path: string, type: FieldType, extra?: Partial<Omit<FieldSpec, 'path' | 'type'>>];

/** The fields of a process object (`process`, `peer`). */
const PROCESS: Row[] = [
  ['pid', 'integer'], ['ppid', 'integer'], ['uid', 'integer'], ['user', 'string'], ['gid', 'integer'], ['group', 'string'],
  ['comm', 'string'], ['exe', 'string?'], ['cmdline', 'string[]', { open: true }], ['cgroup', 'string?'], ['unit', 'string?'],
  ['container', 'object?'], ['container.id', 'string'], ['container.runtime', 'string'], ['container.pod', 'string'],
  ['container.name', 'string'], ['container.image', 'string'], ['container.pod_name', 'string'], ['container.pod_namespace', 'string'],
  ['inode', 'integer'], ['netns', 'integer'], ['start_time', 'string'], ['auid', 'integer'],
  ['entity_id', 'string'],
  ['parent', 'object'], ['parent.pid', 'integer'], ['parent.comm', 'string'], ['parent.exe', 'string?'],
  ['parent.cmdline', 'string[]', { open: true }], ['parent.start_time', 'string'], ['parent.entity_id', 'string'],
  ['ancestors', 'object[]', { open: true }],
  ['hash', 'object'], ['hash.sha256', 'string'], ['hash.pending', 'true'], ['hash.error', 'string'],
  ['exe_deleted', 'true'], ['exe_memfd', 'true'],
];

const TUPLE: Row[] = [['src', 'string'], ['sport', 'port'], ['dst', 'string'], ['dport', 'port']];
const COUNTER: Row[] = [['packets', 'integer'], ['bytes', 'integer']];

const under = (prefix: string, rows: Row[], extra: Row[2] = {}): Row[] => rows.map(([p, t, x]) => [`${prefix}.${p}`, t, { ...extra, ...x }]);

// In the order ct-events writes a flow event's fields (its serializer keeps
// this order's names ready as bytes), then what later stages add, then the
// special records' own fields.
const ROWS: Row[] = [
  ['ts', 'string', { on: ALL }],
  ['event', 'string', { on: ALL }],
  ['id', 'integer', { on: POLLED }],
  ['family', 'string', { on: POLLED, values: ['ipv4', 'ipv6'] }],
  ['proto', 'string', { on: ['flow-event', 'flow', 'dns', 'counters'] }],
  ['src', 'string', { on: POLLED }], ['sport', 'port', { on: ['flow-event', 'flow', 'dns', 'counters'] }], ['dst', 'string', { on: POLLED }], ['dport', 'port', { on: POLLED }],
  ['reply', 'object'], ...under('reply', TUPLE),
  ['state', 'string', { on: POLLED }],
  ['status', 'string[]', { on: POLLED, open: true }],
  ['timeout', 'integer', { on: ['flow-event'] }],
  ['mark', 'integer'],
  ['zone', 'integer'],
  ['icmp', 'object', { on: POLLED }], ['icmp.type', 'integer'], ['icmp.code', 'integer'], ['icmp.id', 'integer'],
  ['community_id', 'string'],
  ['host', 'string', { on: ALL }],
  ['counters', 'object', { on: POLLED }], ['counters.orig', 'object'], ...under('counters.orig', COUNTER), ['counters.reply', 'object'], ...under('counters.reply', COUNTER),
  ['start', 'string', { on: POLLED }],
  ['stop', 'string'],
  ['labels', 'integer[]', { open: true }],
  ['helper', 'string'],
  ['secmark', 'integer'],
  ['secctx', 'string'],
  ['use', 'integer', { on: ['flow-event'] }],
  ['unknown', 'object', { open: true }],
  ['dump', 'true'],
  ['direction', 'string', { by: 'ct-attribute', values: ['out', 'in', 'local', 'fwd'] }],
  ['process', 'object', { by: 'ct-attribute' }], ...under('process', PROCESS, { by: 'ct-attribute' }),
  ['peer', 'object', { by: 'ct-attribute' }], ...under('peer', PROCESS, { by: 'ct-attribute' }),
  ['attribution', 'object', { by: 'ct-attribute' }],
  ...under('attribution', [
    ['method', 'string'], ['ok', 'boolean'], ['reason', 'string'], ['uid', 'integer'], ['holders', 'integer'],
    ['side', 'string', { values: ['src', 'dst'] }], ['netns', 'integer'],
  ], { by: 'ct-attribute' }),
  ['dns', 'object', { by: 'ct-attribute' }],
  ...under('dns', [['name', 'string'], ['cnames', 'string[]', { open: true }], ['age', 'number'], ['server', 'string']], { by: 'ct-attribute' }),
  ['duration', 'number', { on: ['flow'], by: 'ct-flows' }],
  ['finished', 'boolean', { on: ['flow'], by: 'ct-flows' }],
  ['reason', 'string', { on: ['flow', 'overrun'] }],
  ['incomplete', 'true', { on: ['flow'], by: 'ct-flows' }],
  ['truncated', 'string[]', { by: 'ct-syslog', open: true }],
  ['lost', 'integer', { on: ['overrun', 'stats'] }],
  ['received', 'integer', { on: ['stats'] }],
  ['written', 'integer', { on: ['stats'] }],
  ['queued', 'integer', { on: ['stats'] }],
  ['rcvbuf', 'integer', { on: ['stats'] }],
  ['events', 'integer', { on: ['attribution-stats'], by: 'ct-attribute' }],
  ['cached', 'integer', { on: ['attribution-stats'], by: 'ct-attribute' }],
  ['answers', 'object', { on: ['attribution-stats'], by: 'ct-attribute', open: true }],
  ['methods', 'object[]', { on: ['attribution-stats'], by: 'ct-attribute', open: true }],
  ...([
    ['client', 'string'], ['cport', 'port'], ['server', 'string'], ['name', 'string'], ['cnames', 'string[]', { open: true }],
    ['answers', 'object[]', { open: true }], ['netns', 'integer'],
  ] as Row[]).map(([p, t, x]): Row => [p, t, { on: ['dns'], ...x }]),
];

function build(rows: Row[]): FieldSpec[] {
  const byPath = new Map<string, FieldSpec>();
  const out: FieldSpec[] = [];
  for (const [path, type, x = {}] of rows) {
    const dot = path.lastIndexOf('.');
    const parent = dot < 0 ? undefined : byPath.get(path.slice(0, dot));
    if (dot >= 0 && !parent) throw new Error(`schema: ${path} before its parent`);
    const spec: FieldSpec = {
      path, type,
      on: x.on ?? parent?.on ?? FLOWS,
      by: x.by ?? parent?.by ?? 'ct-events',
      ...(x.values ? { values: x.values } : {}),
      ...(x.open ? { open: true as const } : {}),
    };
    // A name may mean another thing in another kind of record (`answers`),
    // never two things in one.
    const same = byPath.get(path);
    if (same && out.some((f) => f.path === path && f.on.some((k) => spec.on.includes(k)))) throw new Error(`schema: ${path} twice in one kind of record`);
    if (!same) byPath.set(path, spec);
    out.push(spec);
  }
  return out;
}

/**
 * Every field of the contract, parents before their members. A top-level
 * name has two rows when two kinds of record give it different types.
 */
export const FIELDS: readonly FieldSpec[] = build(ROWS);

const BY_PATH = new Map(FIELDS.map((f) => [f.path, f]));

/** The field at a dotted path, if the contract has one (its first row). */
export function fieldAt(path: string): FieldSpec | undefined {
  return BY_PATH.get(path);
}

/** The direct members of an object field ('' for the top level), in table order. */
export function membersOf(path: string, on?: RecordKind): FieldSpec[] {
  const depth = path === '' ? 0 : path.split('.').length;
  const prefix = path === '' ? '' : path + '.';
  return FIELDS.filter((f) => f.path.startsWith(prefix) && f.path.split('.').length === depth + 1 && (!on || f.on.includes(on)));
}
