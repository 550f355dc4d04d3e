// The template engine and the preset table: events (ct-event(5)) to one line
// of text each. Used by ct-format and by ct-syslog's --template. Owns the
// template syntax, value rendering (arrays joined with spaces, a default for
// missing values, control characters escaped so one event stays one line),
// and the presets that reproduce other tools' line formats. It does no I/O
// and never touches `process`; a renderer is a plain function.
//
// Template syntax: `<path>` is replaced by the field at that dotted path
// (`<src>`, `<reply.src>`, `<process.pid>`, `<process.cmdline.0>`);
// `<path|text>` gives a default used instead of `missing` when that field is
// absent, `<path|other.path>` a field to fall back on (`<process.cmdline|
// process.comm>`); `<extra:path>` reads a field from outside the contract
// (another tool's). A path naming no field of ct-event(5), and a `<` with a
// letter after it that is not closed, are TemplateErrors. `\n \t \\ \< \>`
// are escapes; a `<` without a letter after it is literal.
import { createHash, randomUUID } from 'node:crypto';
import { compileTsFormat, TimestampError, type TimeZoneMode } from './time.js';
import { FIELD_PATHS, isContractPath } from '../event.js';
import { nearest } from '../suggest.js';
import { BoundedMap } from '../lru.js';

export { compileTsFormat, isTimeZone, isTsFormat, parseIso, TS_FORMATS, TimestampError, type TimeZoneMode } from './time.js';

/** One event in, one line out (without the trailing `\n`); '' means "nothing for this event". */
export type Renderer = (ev: Record<string, any>) => string;

export interface TemplateOptions {
  /** Text for an absent, null or empty field (default `-`). */
  missing?: string;
  /** Timestamp format for `ts`, `start`, `stop`, `process.start_time`: iso, epoch, epoch-ms, epoch-us or strftime (default iso). */
  tsFormat?: string;
  /** Time zone for tsFormat (default utc). */
  tz?: TimeZoneMode;
  /** ANSI colour (timestamp dim, event kind coloured); the caller decides when (a terminal, no NO_COLOR). */
  color?: boolean;
}

/** A template that cannot be compiled, or an unknown preset: the user's mistake. */
export class TemplateError extends Error {}

/** An event field whose value has the wrong type for what the template does with it. */
export class FieldError extends Error {}

/** Fields holding ISO 8601 timestamps; tsFormat applies to these. */
export const TIMESTAMP_FIELDS: readonly string[] = ['ts', 'start', 'stop', 'process.start_time'];

/** ct-format's default line, close to conntrack-logger's, with the event kind and names. */
export const DEFAULT_TEMPLATE =
  '<ts> <event> <family>/<proto> <src>/<sport> > <dst>/<dport> :: <process.pid|?> <process.user>:<process.group> <process.unit> :: <process.cmdline|process.comm>';

// ---------------------------------------------------------------- values

// C0 controls, DEL and C1 controls: a value may come from a process's
// cmdline, which anyone can set; it must not break the line or reach a
// terminal as an escape sequence.
const CTRL_TEST = /[\x00-\x1f\x7f-\x9f]/;
const CTRL_ALL = /[\x00-\x1f\x7f-\x9f]/g;
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Escape control characters (`\n`, `\t`, `\r`, `\xHH`) so the text stays on one line. */
export function escapeControls(s: string): string {
  if (!CTRL_TEST.test(s)) return s;
  return s.replace(CTRL_ALL, (c) => ESCAPES[c] ?? '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/**
 * A field value as text, before escaping: strings as they are, numbers and
 * booleans with String(), arrays joined with single spaces (as
 * conntrack-logger joins a cmdline), objects as JSON. undefined for absent,
 * null, '' and [] (shown as the `missing` text).
 */
export function rawText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  switch (typeof v) {
    case 'string': return v === '' ? undefined : v;
    case 'number': case 'boolean': case 'bigint': return String(v);
    case 'object':
      if (Array.isArray(v)) {
        if (v.length === 0) return undefined;
        let s = '';
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          if (i) s += ' ';
          s += x === null || x === undefined ? '' : typeof x === 'object' ? JSON.stringify(x) : String(x);
        }
        return s;
      }
      return JSON.stringify(v);
    default: return undefined;
  }
}

/** rawText, escaped for a line. */
export function valueText(v: unknown): string | undefined {
  const s = rawText(v);
  return s === undefined ? undefined : escapeControls(s);
}

/** A getter for a dotted path; intermediate values that are not objects read as absent. */
export function pathGetter(path: string): (ev: Record<string, any>) => unknown {
  const seg = path.split('.');
  if (seg.length === 1) {
    const [a] = seg;
    return (ev) => ev[a];
  }
  if (seg.length === 2) {
    const [a, b] = seg;
    return (ev) => {
      const o = ev[a];
      return o !== null && typeof o === 'object' ? o[b] : undefined;
    };
  }
  return (ev) => {
    let o: any = ev;
    for (const k of seg) {
      if (o === null || typeof o !== 'object') return undefined;
      o = o[k];
    }
    return o;
  };
}

/** A getter that returns the formatted timestamp at `path`, or undefined; FieldError for a non-timestamp. */
function timestampGetter(path: string, fmt: (ts: string) => string): (ev: Record<string, any>) => string | undefined {
  const get = pathGetter(path);
  return (ev) => {
    const v = get(ev);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new FieldError(`${path}: expected a timestamp string, got ${typeName(v)}`);
    try {
      return fmt(v);
    } catch (e) {
      if (e instanceof TimestampError) throw new FieldError(`${path}: ${e.message}`);
      throw e;
    }
  };
}

export function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

// ---------------------------------------------------------------- templates

const PATH = /^[A-Za-z_][\w-]*(?:\.[\w-]+)*$/;
/** `extra:` names a field from outside the contract (another tool's): any non-blank keys. */
const EXTRA_PREFIX = 'extra:';
const EXTRA_PATH = /^[^\s.|<>]+(?:\.[^\s.|<>]+)*$/;

/** A placeholder: the field at `path`, else each of `alts` in turn, else `dflt` (or the missing text). */
type Part = { lit: string } | { path: string; alts?: string[]; dflt?: string };

function unknownField(name: string, placeholder: string): TemplateError {
  const near = nearest(name, FIELD_PATHS);
  return new TemplateError(`'${placeholder}' names no field of ct-event(5)${near ? `: did you mean ${near}?` : ''} (a field from another tool: <${EXTRA_PREFIX}${name}>)`);
}

/**
 * One placeholder's text between < and >: alternatives separated by |. All
 * but the last must be fields; the last is a field when it names one with a
 * dot (`process.comm`) or `extra:`, else it is the text for when none is
 * there (`?`, `-`, `unknown`). A dotted name that is no field is a typo.
 */
function parsePlaceholder(body: string): Part {
  const placeholder = `<${body}>`;
  const alts = body.split('|');
  const paths: string[] = [];
  let dflt: string | undefined;
  for (let k = 0; k < alts.length; k++) {
    const alt = alts[k];
    const first = k === 0;
    const last = k === alts.length - 1;
    if (alt.startsWith(EXTRA_PREFIX)) {
      const name = alt.slice(EXTRA_PREFIX.length);
      if (!EXTRA_PATH.test(name)) throw new TemplateError(`'${placeholder}': '${alt}' is not a field path`);
      paths.push(name);
      continue;
    }
    if (PATH.test(alt)) {
      const known = isContractPath(alt);
      if (last && !first && !alt.includes('.')) {
        dflt = alt;
        continue;
      }
      if (!known) throw unknownField(alt, placeholder);
      paths.push(alt);
      continue;
    }
    if (first) throw new TemplateError(`'${placeholder}' is not a placeholder: <field>, <field|text> or <field|other.field>; write \\< for a literal <`);
    if (!last) throw new TemplateError(`'${placeholder}': '${alt}' is not a field; only the last alternative may be text`);
    dflt = alt;
  }
  const [path, ...rest] = paths;
  const part: { path: string; alts?: string[]; dflt?: string } = { path };
  if (rest.length) part.alts = rest;
  if (dflt !== undefined) part.dflt = dflt;
  return part;
}

/**
 * Split a template into literal text and placeholders. TemplateError for a
 * placeholder naming no field of the contract (with the nearest one), and
 * for one not closed: a < followed by a letter begins a placeholder.
 */
export function parseTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let lit = '';
  for (let i = 0; i < template.length; ) {
    const c = template[i];
    if (c === '\\' && i + 1 < template.length) {
      const n = template[i + 1];
      const esc = n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n === '\\' || n === '<' || n === '>' ? n : null;
      if (esc !== null) {
        lit += esc;
        i += 2;
        continue;
      }
    }
    if (c === '<' && /[A-Za-z_]/.test(template[i + 1] ?? '')) {
      let j = i + 1;
      while (j < template.length && template[j] !== '>' && template[j] !== '<') j++;
      if (template[j] !== '>') {
        const seen = template.slice(i, Math.min(j, i + 40));
        throw new TemplateError(`unclosed placeholder '${seen}' at character ${i + 1}: end it with >, or write \\< for a literal <`);
      }
      if (lit) parts.push({ lit });
      lit = '';
      parts.push(parsePlaceholder(template.slice(i + 1, j)));
      i = j + 1;
      continue;
    }
    lit += c;
    i++;
  }
  if (lit) parts.push({ lit });
  return parts;
}

/** The first of a placeholder's fields that is there, as text; undefined when none is. */
function chainGetter(paths: string[], tsf: (ts: string) => string): (ev: Record<string, any>) => string | undefined {
  const gets = paths.map((p) => {
    if (TIMESTAMP_FIELDS.includes(p)) return timestampGetter(p, tsf);
    const get = pathGetter(p);
    return (ev: Record<string, any>) => valueText(get(ev));
  });
  return (ev) => {
    for (const g of gets) {
      const v = g(ev);
      if (v !== undefined) return v;
    }
    return undefined;
  };
}

const RESET_DIM = '\x1b[22m';
const RESET_FG = '\x1b[39m';
const EVENT_COLOURS: Record<string, string> = { new: '\x1b[32m', update: '\x1b[33m', destroy: '\x1b[31m' };

/**
 * Compile a template into a renderer. The renderer throws FieldError when a
 * timestamp field is not a timestamp; every other value renders as text.
 */
export function compileTemplate(template: string, opts: TemplateOptions = {}): Renderer {
  if (typeof template !== 'string') throw new TemplateError('the template must be text');
  const missing = opts.missing ?? '-';
  const tsf = compileTsFormat(opts.tsFormat ?? 'iso', opts.tz ?? 'utc');
  const fns: ((ev: Record<string, any>) => string)[] = [];
  for (const p of parseTemplate(template)) {
    if ('lit' in p) {
      const s = p.lit;
      fns.push(() => s);
      continue;
    }
    const dflt = p.dflt ?? missing;
    let fn: (ev: Record<string, any>) => string;
    if (p.alts) {
      const get = chainGetter([p.path, ...p.alts], tsf);
      fn = (ev) => get(ev) ?? dflt;
    } else if (TIMESTAMP_FIELDS.includes(p.path)) {
      const get = timestampGetter(p.path, tsf);
      fn = (ev) => get(ev) ?? dflt;
      if (opts.color) {
        const plain = fn;
        fn = (ev) => '\x1b[2m' + plain(ev) + RESET_DIM;
      }
    } else {
      const get = pathGetter(p.path);
      fn = (ev) => {
        const v = get(ev);
        // The common cases first, without a call.
        if (typeof v === 'number') return String(v);
        if (typeof v === 'string' && v !== '' && !CTRL_TEST.test(v)) return v;
        return valueText(v) ?? dflt;
      };
      if (opts.color && p.path === 'event') {
        const plain = fn;
        fn = (ev) => {
          const s = plain(ev);
          const c = EVENT_COLOURS[s];
          return c ? c + s + RESET_FG : s;
        };
      }
    }
    fns.push(fn);
  }
  if (!opts.color) return generated(template, missing, tsf);
  const n = fns.length;
  return (ev) => {
    let s = '';
    for (let i = 0; i < n; i++) s += fns[i](ev);
    return s;
  };
}

/** A field value as text, the common cases first: what every placeholder does. */
function text(v: unknown, dflt: string): string {
  if (typeof v === 'string') return v !== '' && !CTRL_TEST.test(v) ? v : valueText(v) ?? dflt;
  if (typeof v === 'number') return '' + v;
  return valueText(v) ?? dflt;
}

/**
 * The renderer as one generated function: `ev["src"]`, `ev["process"]`
 * read once per event, the parts concatenated in one expression. It runs
 * once per event, a million times a second, and a chain of closures costs
 * several times as much. Only JSON-quoted keys and texts go into the code.
 */
function generated(template: string, missing: string, tsf: (ts: string) => string): Renderer {
  const parts = parseTemplate(template);
  const J = JSON.stringify;
  const heads = new Map<string, string>();
  const stamps: ((ev: Record<string, any>) => string | undefined)[] = [];
  const decl: string[] = [];
  const exprs: string[] = [];
  for (const p of parts) {
    if ('lit' in p) {
      exprs.push(J(p.lit));
      continue;
    }
    const dflt = J(p.dflt ?? missing);
    if (p.alts) {
      stamps.push(chainGetter([p.path, ...p.alts], tsf));
      exprs.push(`(S[${stamps.length - 1}](ev) ?? ${dflt})`);
      continue;
    }
    if (TIMESTAMP_FIELDS.includes(p.path)) {
      stamps.push(timestampGetter(p.path, tsf));
      exprs.push(`(S[${stamps.length - 1}](ev) ?? ${dflt})`);
      continue;
    }
    const seg = p.path.split('.');
    if (seg.length === 1) {
      exprs.push(`t(ev[${J(seg[0])}], ${dflt})`);
      continue;
    }
    let h = heads.get(seg[0]);
    if (!h) {
      h = `h${heads.size}`;
      heads.set(seg[0], h);
      decl.push(`let ${h} = ev[${J(seg[0])}]; if (${h} === null || typeof ${h} !== 'object') ${h} = undefined;`);
    }
    const rest = seg.slice(1);
    exprs.push(rest.length === 1 ? `t(${h} === undefined ? undefined : ${h}[${J(rest[0])}], ${dflt})` : `t(g(${h}, ${J(rest)}), ${dflt})`);
  }
  const deep = (o: any, keys: string[]) => {
    for (const k of keys) {
      if (o === null || typeof o !== 'object') return undefined;
      o = o[k];
    }
    return o;
  };
  const body = `return function render(ev) {\n${decl.join('\n')}\nreturn ${exprs.length ? exprs.join(' + ') : "''"};\n};`;
  return new Function('t', 'g', 'S', body)(text, deep, stamps) as Renderer;
}

/** The dotted paths a template reads (e.g. to tell whether it needs `process`). */
export function templateFields(template: string): string[] {
  return parseTemplate(template).flatMap((p) => ('path' in p ? [p.path, ...(p.alts ?? [])] : []));
}

// ---------------------------------------------------------------- presets

export interface PresetOptions extends TemplateOptions {
  /** csv/tsv columns, as template paths (default CSV_FIELDS). */
  fields?: string[];
  /** notrust: the agent UUID (default: derived from the event's `host`, stable across runs). */
  agent?: string;
  /** notrust: the source of open-record UUIDs (default crypto.randomUUID; tests pass their own). */
  uuid?: () => string;
}

export interface Formatter {
  render: Renderer;
  /** A first line to write before any event (csv and tsv column names). */
  header?: string;
}

export interface Preset {
  name: string;
  description: string;
  /** Set when the preset is a plain template. */
  template?: string;
  /** Defaults the preset brings; the user's options override them. */
  defaults: TemplateOptions;
  compile(opts: PresetOptions): Formatter;
}

/** csv/tsv default columns. */
export const CSV_FIELDS: readonly string[] = [
  'ts', 'event', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport',
  'reply.src', 'reply.sport', 'reply.dst', 'reply.dport', 'state', 'status', 'direction',
  'process.pid', 'process.ppid', 'process.uid', 'process.user', 'process.gid', 'process.group',
  'process.comm', 'process.exe', 'process.cmdline', 'process.unit', 'process.container.id', 'host', 'community_id',
  'dns.name', 'process.entity_id',
];

function templatePreset(name: string, description: string, template: string, defaults: TemplateOptions): Preset {
  return {
    name, description, template, defaults,
    compile: (o) => ({ render: compileTemplate(template, { ...defaults, ...o }) }),
  };
}

/** `addr:port`, with IPv6 in brackets (RFC 3986 section 3.2.2) so the port stays readable. */
function hostPort(addr: unknown, port: unknown): string {
  const a = valueText(addr) ?? '-';
  const p = typeof port === 'number' ? port : 0;
  return (a.includes(':') ? `[${a}]` : a) + ':' + p;
}

function hasStatus(ev: Record<string, any>, bit: string): boolean {
  return Array.isArray(ev.status) && ev.status.includes(bit);
}

/** Remove whitespace, as packetTrail does with ''.join(s.split()). */
function noSpace(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const t = s.replace(/\s+/g, '');
  return t === '' ? undefined : t;
}

// ctrecorder's list: type letter per event (its nftype_name table).
const CTRECORDER_TYPE: Record<string, string> = { new: 'S', update: 'U', destroy: 'E' };

function ctrecorder(o: PresetOptions): Formatter {
  const tsf = compileTsFormat(o.tsFormat ?? '%Y.%m.%d %H:%M:%S.%f', o.tz ?? 'local');
  const ts = timestampGetter('ts', tsf);
  return {
    render: (ev) => {
      const r = ev.reply !== null && typeof ev.reply === 'object' ? ev.reply : {};
      return `${ts(ev) ?? o.missing ?? '-'} ${CTRECORDER_TYPE[ev.event] ?? 'R'}${hasStatus(ev, 'SEEN_REPLY') ? '+' : ' '}` +
        ` src=${hostPort(ev.src, ev.sport)} dst=${hostPort(ev.dst, ev.dport)}` +
        ` src=${hostPort(r.src, r.sport)} dst=${hostPort(r.dst, r.dport)}`;
    },
  };
}

// ctrecorder's squeezed line (show_event_combined): no type letter, an empty
// time as this placeholder, the width of a time.
const CTRECORDER_NODATE = '-          -              ';

/**
 * ctrecorder's squeezed form, from ct-flows' records: start, end, both
 * tuples. A flow not finished has no end (`stop`); an incomplete one may
 * have no start.
 * A `destroy` event (no ct-flows upstream) gives its line with the kernel's
 * start time when it has one; `new` and `update` give nothing.
 */
function ctrecorderSqueeze(o: PresetOptions): Formatter {
  const tsf = compileTsFormat(o.tsFormat ?? '%Y.%m.%d %H:%M:%S.%f', o.tz ?? 'local');
  const start = timestampGetter('start', tsf);
  const stop = timestampGetter('stop', tsf);
  const ts = timestampGetter('ts', tsf);
  const none = o.missing ?? CTRECORDER_NODATE;
  return {
    render: (ev) => {
      const flow = ev.event === 'flow';
      if (!flow && ev.event !== 'destroy') return '';
      const end = flow ? stop(ev) : stop(ev) ?? ts(ev);
      const r = ev.reply !== null && typeof ev.reply === 'object' ? ev.reply : {};
      return `${start(ev) ?? none} ${end ?? none}` +
        ` src=${hostPort(ev.src, ev.sport)} dst=${hostPort(ev.dst, ev.dport)}` +
        ` src=${hostPort(r.src, r.sport)} dst=${hostPort(r.dst, r.dport)}`;
    },
  };
}

function packettrail(o: PresetOptions): Formatter {
  const missing = o.missing ?? '-';
  const t = (v: unknown) => noSpace(valueText(v)) ?? missing;
  return {
    render: (ev) => {
      const p = ev.process !== null && typeof ev.process === 'object' ? ev.process : {};
      // packetTrail logged the local end as sip/sport and the remote as rip/rport.
      const inbound = ev.direction === 'in';
      const [sip, sport, rip, rport] = inbound ? [ev.dst, ev.dport, ev.src, ev.sport] : [ev.src, ev.sport, ev.dst, ev.dport];
      return `username=${t(p.user)} process=${t(p.comm)} pid=${t(p.pid)} sip=${t(sip)} sport=${t(sport)} rip=${t(rip)} rport=${t(rport)}`;
    },
  };
}

// NoTrust-Track's `hash` ties a close record to its open one. It was Rust's
// DefaultHasher over (protocol, source, source_port, destination,
// destination_port), which Rust does not keep stable across releases; this
// is a 64-bit FNV-1a over the same five values, with the same use and type
// (a signed 64-bit integer, written in full).
function tupleHash(proto: string, src: string, sport: number, dst: string, dport: number): string {
  const s = `${proto}|${src}|${sport}|${dst}|${dport}`;
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, h).toString();
}

/** A stable UUID (RFC 9562 section 5.5, version 5 layout) naming the agent on `host`. */
function agentUuid(host: string): string {
  const b = createHash('sha1').update('ctpipe notrust agent\0' + host).digest();
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** chrono's to_rfc3339() form: `+00:00` instead of `Z`. */
function rfc3339(ts: unknown): string {
  if (typeof ts !== 'string') throw new FieldError(`ts: expected a timestamp string, got ${typeName(ts)}`);
  const iso = compileIsoUtc(ts);
  return iso.slice(0, -1) + '+00:00';
}
const isoUtc = compileTsFormat('iso', 'utc');
function compileIsoUtc(ts: string): string {
  try {
    return isoUtc(ts);
  } catch (e) {
    if (e instanceof TimestampError) throw new FieldError(`ts: ${e.message}`);
    throw e;
  }
}

const MAX_OPEN = 1 << 20;
/** Agent UUIDs remembered at most (one per `host`). */
const MAX_AGENTS = 1024;

function notrust(o: PresetOptions): Formatter {
  const uuid = o.uuid ?? randomUUID;
  // Bounded: a stream naming ever new hosts must not grow it (a UUID forgotten is made again, the same).
  const agents = new BoundedMap<string, string>(MAX_AGENTS);
  const open = new Map<string, string>(); // hash -> uuid of the open record
  const agentFor = (host: unknown) => {
    if (o.agent) return o.agent;
    const h = typeof host === 'string' ? host : '';
    let a = agents.get(h);
    if (!a) agents.set(h, (a = agentUuid(h)));
    return a;
  };
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
  return {
    render: (ev) => {
      // NoTrust had two record kinds, open (NEW) and close (DESTROY); it never wrote updates.
      if (ev.event !== 'new' && ev.event !== 'destroy') return '';
      const protocol = str(ev.proto).toUpperCase();
      const source = str(ev.src), destination = str(ev.dst);
      const sp = num(ev.sport), dp = num(ev.dport);
      const hash = tupleHash(protocol, source, sp, destination, dp);
      const agent = agentFor(ev.host);
      const timestamp = rfc3339(ev.ts);
      const J = JSON.stringify;
      if (ev.event === 'new') {
        const id = uuid();
        if (open.size >= MAX_OPEN) open.delete(open.keys().next().value as string);
        open.set(hash, id);
        const p = ev.process !== null && typeof ev.process === 'object' ? ev.process : null;
        const details = p
          ? { inode: num(p.inode), pid: num(p.pid), process_name: str(p.comm), command_line: Array.isArray(p.cmdline) ? p.cmdline.map(str) : [] }
          : null;
        return `{"hash":${hash},"uuid":${J(id)},"agent":${J(agent)},"timestamp":${J(timestamp)},"protocol":${J(protocol)},` +
          `"source":${J(source)},"destination":${J(destination)},"source_port":${sp},"destination_port":${dp},` +
          `"username":${J(p ? str(p.user) : '')},"uid":${p ? num(p.uid) : 0},"program_details":${J(details)}}`;
      }
      const id = open.get(hash) ?? null;
      open.delete(hash);
      return `{"hash":${hash},"agent":${J(agent)},"uuid":${J(id)},"timestamp":${J(timestamp)},"protocol":${J(protocol)},` +
        `"source":${J(source)},"destination":${J(destination)},"source_port":${sp},"destination_port":${dp}}`;
    },
  };
}

// logfmt-style quoting: bare when safe, else in double quotes with `\"` and `\\`.
const KV_UNSAFE = /[\s="\\]/;
function kvValue(s: string): string {
  if (s !== '' && !KV_UNSAFE.test(s)) return s;
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

function kv(o: PresetOptions): Formatter {
  const missing = o.missing ?? '-';
  const tsf = o.tsFormat || (o.tz && o.tz !== 'utc') ? compileTsFormat(o.tsFormat ?? 'iso', o.tz ?? 'utc') : null;
  const walk = (obj: Record<string, any>, prefix: string, out: string[]) => {
    for (const k in obj) {
      const v = obj[k];
      const key = prefix + k.replace(/[^\w.-]/g, '_');
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        walk(v, key + '.', out);
        continue;
      }
      let s: string | undefined;
      if (tsf && typeof v === 'string' && TIMESTAMP_FIELDS.includes(key)) {
        try {
          s = tsf(v);
        } catch (e) {
          if (e instanceof TimestampError) throw new FieldError(`${key}: ${e.message}`);
          throw e;
        }
      } else s = valueText(v);
      out.push(key + '=' + kvValue(s ?? missing));
    }
  };
  return {
    render: (ev) => {
      const out: string[] = [];
      walk(ev, '', out);
      return out.join(' ');
    },
  };
}

/** A value a spreadsheet would run as a formula (CSV injection): it starts with = + - @, a tab or a CR, and is not a number. */
const FORMULA = /^[=+\-@\t\r]/;
const NUMBER = /^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/**
 * RFC 4180 section 2: a field with a comma or a quote is quoted, quotes
 * doubled. A field a spreadsheet would take for a formula (a command line
 * `=cmd|...`, a user name `@x`) gets a leading `'` and quotes, as OWASP's
 * CSV injection advice has it, so that it is shown as text.
 */
export function csvField(s: string): string {
  if (FORMULA.test(s) && !NUMBER.test(s)) return '"\'' + s.replace(/"/g, '""') + '"';
  return /[",]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/**
 * Linear TSV: backslash, tab, CR and LF as `\\ \t \r \n`, so no field holds a
 * separator. Spreadsheets open TSV files as they open CSV ones, so a field
 * they would take for a formula gets a leading `'` there too (TSV has no
 * quoting).
 */
export function tsvField(s: string): string {
  const e = escapeControls(s.includes('\\') ? s.replace(/\\/g, '\\\\') : s);
  return FORMULA.test(e) && !NUMBER.test(e) ? "'" + e : e;
}

function table(sep: string, quote: (s: string) => string, o: PresetOptions): Formatter {
  const fields = o.fields && o.fields.length ? o.fields : CSV_FIELDS;
  const missing = o.missing ?? '';
  const tsf = compileTsFormat(o.tsFormat ?? 'iso', o.tz ?? 'utc');
  const getters = fields.map((f) => {
    if (TIMESTAMP_FIELDS.includes(f)) {
      const get = timestampGetter(f, tsf);
      return (ev: Record<string, any>) => get(ev);
    }
    return pathGetter(f);
  });
  const text = sep === '\t' ? (v: unknown) => { const s = rawText(v); return s === undefined ? missing : tsvField(s); }
    : (v: unknown) => { const s = valueText(v); return s === undefined ? missing : csvField(s); };
  return {
    header: fields.map(quote).join(sep),
    render: (ev) => {
      let line = '';
      for (let i = 0; i < getters.length; i++) {
        if (i) line += sep;
        line += text(getters[i](ev));
      }
      return line;
    },
  };
}

/** Presets by name: each reproduces a tool's line so existing greps and parsers keep working. */
export const PRESETS: Readonly<Record<string, Preset>> = {
  default: templatePreset('default', 'a readable one-line summary (the default)', DEFAULT_TEMPLATE, {}),
  'conntrack-logger': templatePreset(
    'conntrack-logger',
    "conntrack-logger's default line: epoch seconds, family/proto, pid uid:gid cgroup, cmdline",
    '<ts>: <family>/<proto> <src>/<sport> > <dst>/<dport> :: <process.pid|?> <process.uid>:<process.gid> <process.cgroup> :: <process.cmdline|process.comm>',
    { tsFormat: 'epoch' },
  ),
  ctrecorder: {
    name: 'ctrecorder',
    description: "ctrecorder's list line: local time with microseconds, S/U/E, + once replied, original then reply tuple",
    defaults: { tsFormat: '%Y.%m.%d %H:%M:%S.%f', tz: 'local' },
    compile: ctrecorder,
  },
  'ctrecorder-squeeze': {
    name: 'ctrecorder-squeeze',
    description: "ctrecorder's squeezed line, one per connection (from ct-flows): start, end, original then reply tuple",
    defaults: { tsFormat: '%Y.%m.%d %H:%M:%S.%f', tz: 'local' },
    compile: ctrecorderSqueeze,
  },
  packettrail: {
    name: 'packettrail',
    description: "packetTrail's syslog message body: username process pid sip sport rip rport",
    defaults: {},
    compile: packettrail,
  },
  notrust: {
    name: 'notrust',
    description: "NoTrust-Track's JSON open/close records (hash, uuid, agent, program_details...)",
    defaults: {},
    compile: notrust,
  },
  who: templatePreset(
    'who',
    'the remote\'s DNS name and who made the flow: process, its entity_id, parent, and the executable\'s digest (ct-attribute --hash)',
    '<ts> <event> <proto> <src>/<sport> > <dst>/<dport> <dns.name> :: <process.pid|?> <process.comm> <process.entity_id> parent <process.parent.pid|?> <process.parent.comm> :: <process.exe> <process.hash.sha256>',
    {},
  ),
  kv: { name: 'kv', description: 'key=value for every field, nested keys dotted, quoted where needed', defaults: {}, compile: kv },
  csv: { name: 'csv', description: 'comma-separated values with a header line (RFC 4180 quoting)', defaults: { missing: '' }, compile: (o) => table(',', csvField, o) },
  tsv: { name: 'tsv', description: 'tab-separated values with a header line (\\t \\n \\\\ escaped)', defaults: { missing: '' }, compile: (o) => table('\t', tsvField, o) },
};

export const PRESET_NAMES: readonly string[] = Object.keys(PRESETS);

/** Options without undefined members, so that spreading them keeps a preset's defaults. */
function defined<T extends object>(o: T): Partial<T> {
  const r: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) r[k] = o[k];
  return r;
}

/** A preset's renderer (and header line), the user's options over the preset's defaults. */
export function compilePreset(name: string, opts: PresetOptions = {}): Formatter {
  const p = Object.prototype.hasOwnProperty.call(PRESETS, name) ? PRESETS[name] : undefined;
  if (!p) throw new TemplateError(`unknown preset '${name}' (choose from ${PRESET_NAMES.join(', ')})`);
  return p.compile({ ...p.defaults, ...defined(opts) });
}
