// Type checks for a parsed record against the event contract (ct-event(5),
// src/event.ts), so that a stage can report "a field of the wrong type" on
// the line that has it instead of misbehaving later. Only fields that are
// present are checked: the contract lets most of them be absent, and fields
// it does not name pass unchecked. Never changes the record.

import { parseObject } from '../ndjson.js';

type Check = (v: unknown) => boolean;

const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const port: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
const bool: Check = (v) => typeof v === 'boolean';
const strOrNull: Check = (v) => v === null || typeof v === 'string';
const strArray: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const numArray: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === 'number');
const obj: Check = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const objArray: Check = (v) => Array.isArray(v) && v.every(obj);

const what = (c: Check): string =>
  c === str ? 'a string' : c === num ? 'a number' : c === port ? 'a port number (0-65535)' : c === bool ? 'true or false'
    : c === strOrNull ? 'a string or null' : c === strArray ? 'an array of strings' : c === numArray ? 'an array of numbers' : c === objArray ? 'an array of objects' : 'an object';

/** Field -> check, for the top level of a flow event. Nested objects have their own tables. */
const FLOW: [string, Check][] = [
  ['ts', str], ['id', num], ['family', str], ['proto', str], ['src', str], ['sport', port], ['dst', str], ['dport', port],
  ['reply', obj], ['state', str], ['status', strArray], ['timeout', num], ['mark', num], ['zone', num],
  ['community_id', str], ['host', str], ['dump', bool], ['labels', numArray], ['start', str], ['stop', str],
  ['direction', str], ['process', obj], ['peer', obj], ['attribution', obj], ['counters', obj], ['dns', obj],
];
const TUPLE: [string, Check][] = [['src', str], ['sport', port], ['dst', str], ['dport', port]];
const PROCESS: [string, Check][] = [
  ['pid', num], ['ppid', num], ['uid', num], ['user', str], ['gid', num], ['group', str], ['comm', str],
  ['exe', strOrNull], ['cmdline', strArray], ['cgroup', strOrNull], ['unit', strOrNull], ['inode', num], ['start_time', str],
  ['entity_id', str], ['parent', obj], ['ancestors', objArray], ['hash', obj],
];
const ATTRIBUTION: [string, Check][] = [['method', str], ['ok', bool], ['reason', str]];

function checkTable(o: Record<string, unknown>, table: [string, Check][], prefix: string): string | null {
  for (let i = 0; i < table.length; i++) {
    const [k, c] = table[i];
    const v = o[k];
    if (v !== undefined && !c(v)) return `${prefix}${k}: expected ${what(c)}, got ${describe(v)}`;
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
 * A check for the first thing wrong with a record, or null when it is fine.
 * A record must have an `event` string; a flow event's fields named in
 * `fields` (top-level names; default all the contract's) must have their
 * contract types. A stage checks what it reads: fields it only passes on are
 * not its business.
 */
export function compileCheck(fields?: Iterable<string>): RecordCheck {
  // `process` checks the whole object; `process.uid` (without a bare
  // `process`) only that member, and that `process` is an object.
  const paths = fields ? [...fields] : null;
  const firsts = paths ? new Set(paths.map((f) => f.split('.')[0])) : null;
  const top = firsts ? FLOW.filter(([k]) => firsts.has(k)) : FLOW;
  const reply = top.some(([k]) => k === 'reply');
  const procs = top.filter(([k]) => k === 'process' || k === 'peer').map(([k]) => {
    const whole = !paths || paths.includes(k);
    const subs = whole ? PROCESS : PROCESS.filter(([f]) => paths!.some((p) => p.startsWith(k + '.' + f) && (p.length === k.length + 1 + f.length || p[k.length + 1 + f.length] === '.')));
    const container = whole || paths!.some((p) => p.startsWith(k + '.container'));
    return { key: k, table: subs, container };
  });
  const attribution = top.some(([k]) => k === 'attribution');
  return (r) => {
    const ev = r.event;
    if (typeof ev !== 'string') return ev === undefined ? 'no "event" field' : `event: expected a string, got ${describe(ev)}`;
    if (ev !== 'new' && ev !== 'update' && ev !== 'destroy') return null; // special records: passed on as they are
    const bad = checkTable(r, top, '');
    if (bad) return bad;
    if (reply && r.reply !== undefined) {
      const b = checkTable(r.reply, TUPLE, 'reply.');
      if (b) return b;
    }
    for (let i = 0; i < procs.length; i++) {
      const { key, table, container } = procs[i];
      const p = r[key];
      if (p === undefined) continue;
      const b = checkTable(p, table, key + '.');
      if (b) return b;
      if (container && p.container !== undefined && p.container !== null && !obj(p.container)) return `${key}.container: expected an object or null, got ${describe(p.container)}`;
    }
    if (attribution && r.attribution !== undefined) return checkTable(r.attribution, ATTRIBUTION, 'attribution.');
    return null;
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
