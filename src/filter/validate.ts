// Type checks for a parsed record against the event contract (ct-event(5),
// src/event.ts), so that a stage can report "a field of the wrong type" on
// the line that has it instead of misbehaving later. Only fields that are
// present are checked: the contract lets most of them be absent, and fields
// it does not name pass unchecked. Never changes the record.

import { parseObject } from '../ndjson.js';
import { FIELDS, type FieldType } from '../event/schema.js';

type Check = (v: unknown) => boolean;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Each type of the schema table: its check, and how a message names it. */
const TYPES: Record<FieldType, [Check, string]> = {
  string: [(v) => typeof v === 'string', 'a string'],
  'string?': [(v) => v === null || typeof v === 'string', 'a string or null'],
  integer: [(v) => Number.isInteger(v), 'a whole number'],
  number: [(v) => typeof v === 'number' && Number.isFinite(v), 'a number'],
  port: [(v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535, 'a port number (0-65535)'],
  boolean: [(v) => typeof v === 'boolean', 'true or false'],
  true: [(v) => typeof v === 'boolean', 'true'],
  object: [isObj, 'an object'],
  'object?': [(v) => v === null || isObj(v), 'an object or null'],
  'string[]': [(v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), 'an array of strings'],
  'integer[]': [(v) => Array.isArray(v) && v.every((x) => Number.isInteger(x)), 'an array of whole numbers'],
  'object[]': [(v) => Array.isArray(v) && v.every(isObj), 'an array of objects'],
};

/** One field to check, and the members to check when its value is an object. */
interface Node {
  key: string;
  path: string;
  type: FieldType;
  check: Check;
  expected: string;
  members: Node[];
}

/** The check tree of flow events' fields, limited to `keep` (table paths). */
function tree(keep: (path: string) => boolean): Node[] {
  const top: Node[] = [];
  const byPath = new Map<string, Node>();
  for (const f of FIELDS) {
    if (!f.on.includes('flow-event') || f.path === 'event' || !keep(f.path)) continue;
    const dot = f.path.lastIndexOf('.');
    const [check, expected] = TYPES[f.type];
    const node: Node = { key: f.path.slice(dot + 1), path: f.path, type: f.type, check, expected, members: [] };
    byPath.set(f.path, node);
    if (dot < 0) top.push(node);
    else byPath.get(f.path.slice(0, dot))?.members.push(node);
  }
  return top;
}

function checkNodes(o: Record<string, unknown>, nodes: Node[]): string | null {
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    const v = o[n.key];
    if (v === undefined) continue;
    if (!n.check(v)) return `${n.path}: expected ${n.expected}, got ${describe(v)}`;
    if (n.members.length > 0 && isObj(v)) {
      const bad = checkNodes(v, n.members);
      if (bad) return bad;
    }
  }
  return null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return `${typeof v} ${s.length > 40 ? s.slice(0, 40) + '…' : s}`;
}

export type RecordCheck = (r: Record<string, any>) => string | null;

/**
 * The fields compileCheck(fields) checks, parents before their members, with
 * their types (for a reader that checks types where the values are, without
 * building them). A member is checked only when its parent is an object.
 */
export function checkedFields(fields: Iterable<string>): { path: string; type: FieldType }[] {
  const paths = [...fields];
  const out: { path: string; type: FieldType }[] = [];
  const walk = (nodes: Node[]) => {
    for (const n of nodes) {
      out.push({ path: n.path, type: n.type });
      walk(n.members);
    }
  };
  walk(tree((p) => paths.some((r) => r === p || r.startsWith(p + '.') || p.startsWith(r + '.'))));
  return out;
}

/**
 * A check for the first thing wrong with a record, or null when it is fine.
 * A record must have an `event` string; a flow event's fields named in
 * `fields` (top-level names; default all the contract's) must have their
 * contract types. A stage checks what it reads: fields it only passes on are
 * not its business.
 */
export function compileCheck(fields?: Iterable<string>): RecordCheck {
  // A field of the table is checked when a path asks for it, for one of its
  // members (`process.uid`: then `process` must be an object), or for an
  // object it is in (`process`: every member).
  const paths = fields ? [...fields] : null;
  const nodes = tree((p) => !paths || paths.some((r) => r === p || r.startsWith(p + '.') || p.startsWith(r + '.')));
  return (r) => {
    const ev = r.event;
    if (typeof ev !== 'string') return ev === undefined ? 'no "event" field' : `event: expected a string, got ${describe(ev)}`;
    if (ev !== 'new' && ev !== 'update' && ev !== 'destroy') return null; // special records: passed on as they are
    return checkNodes(r, nodes);
  };
}

/**
 * compileCheck(fields), and a flow event must also have each of `required`
 * (top-level names): for a stage that cannot work without them.
 */
export function compileRequired(required: string[], fields: Iterable<string> = required): RecordCheck {
  const check = compileCheck(fields);
  return (r) => {
    const bad = check(r);
    if (bad || (r.event !== 'new' && r.event !== 'update' && r.event !== 'destroy')) return bad;
    for (let i = 0; i < required.length; i++) if (r[required[i]] === undefined) return `no "${required[i]}" field`;
    return null;
  };
}

/** Every contract field checked. */
export const checkRecord: RecordCheck = compileCheck();

/**
 * Parse one line and check the fields a stage reads: the record, or null
 * after reporting why the line is bad. Shared by ct-filter and ct-format.
 */
export function parseChecked(text: string, check: RecordCheck, report: (d: { kind: 'bad'; message: string }) => void): Record<string, any> | null {
  let ev: Record<string, any>;
  try {
    ev = parseObject(text);
  } catch (e) {
    report({ kind: 'bad', message: (e as Error).message });
    return null;
  }
  const bad = check(ev);
  if (bad) {
    report({ kind: 'bad', message: bad });
    return null;
  }
  return ev;
}
