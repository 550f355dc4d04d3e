// ct-format's fast renderers: an event's line written as bytes into one
// output buffer, from where its fields are in the input line
// (FieldLocator, src/event/reader.ts), without building the event, its
// values or the line as JavaScript strings. The literal parts of a template
// are encoded once; a string of plain ASCII and an integer are copied from
// the input as they are; anything else (escapes, other characters, arrays
// of odd members, objects, timestamps in other forms) is turned into its
// value and rendered by the same functions as the slow path
// (src/format/template.ts), so both write the same bytes. Covers templates
// (and the presets that are templates), csv, tsv and ctrecorder; for the
// other presets compileByteFormat() answers null. No I/O.
import { ABSENT, ARRAY, FALSE, INT, NULL, NUM, OBJECT, STR, STR_OTHER, TRUE, type FieldLocator } from '../event/reader.js';
import { checkedFields } from '../filter/validate.js';
import type { FieldType } from '../event/schema.js';
import { compileInstantFormat, isoBytes, TimestampError } from './time.js';
import {
  compileTsFormat, CSV_FIELDS, escapeControls, FieldError, parseTemplate, PRESETS, rawText, TIMESTAMP_FIELDS, typeName, valueText,
  csvField, tsvField, type PresetOptions,
} from './template.js';

/** Bytes gathered for a run of lines; the renderers write at `pos` after ensure(). */
export class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /** Room for n more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    const o = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) o[p++] = b[i];
    this.pos = p;
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** Text as UTF-8. */
  text(s: string): void {
    const n = s.length;
    this.ensure(n * 3);
    const o = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.pos = p + o.write(s.slice(i), p, 'utf8');
        return;
      }
      o[p++] = c;
    }
    this.pos = p;
  }

  /**
   * src[from, to) as it is, when no byte is DEL (0x7f, which a line must
   * show escaped); false (nothing written) when one is. The bytes are
   * ASCII without control characters (a STR value).
   */
  plain(src: Uint8Array, from: number, to: number): boolean {
    const n = to - from;
    this.ensure(n);
    const o = this.buf;
    let p = this.pos;
    for (let i = from; i < to; i++) {
      const c = src[i];
      if (c === 127) return false;
      o[p++] = c;
    }
    this.pos = p;
    return true;
  }

  /** What was written since the last take(); valid until the next write. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.pos = 0;
    return out;
  }
}

/** A fast renderer: the paths it reads, and the line of the event located (without its `\n`). */
export interface ByteFormat {
  /** The locator's first paths must be these, in this order: their slots are their indexes here. */
  paths: string[];
  /** Writes the line; throws FieldError as the slow path's renderer does (the caller takes back what was written). */
  render(loc: FieldLocator, w: ByteWriter): void;
}

const enc = (s: string) => Buffer.from(s, 'utf8');

/**
 * A field's text as the slow path's valueText() gives it, written; false
 * when it has none (absent, null, '' or []), with nothing written. A string
 * of plain ASCII, an integer and an array of such strings are copied from
 * the line; anything else is made into its value first.
 */
function writeValue(loc: FieldLocator, slot: number, w: ByteWriter): boolean {
  const k = loc.kind[slot];
  const b = loc.buf;
  if (k === STR) {
    const f = loc.from[slot], t = loc.to[slot];
    if (f === t) return false;
    if (w.plain(b, f, t)) return true;
  } else if (k === INT) {
    return w.plain(b, loc.from[slot], loc.to[slot]);
  } else if (k === ABSENT || k === NULL) {
    return false;
  } else if (k === ARRAY) {
    // Members joined with spaces, as rawText(): plain strings copied.
    const t = loc.to[slot];
    let i = loc.from[slot] + 1;
    if (b[i] === 93) return false;
    const mark = w.pos;
    for (;;) {
      if (b[i] !== 34) break;
      const s = i + 1;
      let e = s;
      while (e < t && b[e] >= 32 && b[e] < 127 && b[e] !== 34 && b[e] !== 92) e++;
      if (b[e] !== 34) break;
      if (!w.plain(b, s, e)) break;
      i = e + 1;
      if (b[i] === 93) return true;
      i++; // the comma
      w.byte(32);
    }
    w.pos = mark;
  }
  const s = valueText(loc.value(slot));
  if (s === undefined) return false;
  w.text(s);
  return true;
}

/**
 * A timestamp field's text, as the slow path's timestampGetter() gives it,
 * written; false when absent (absent, null or ''); FieldError when it is
 * not a timestamp.
 */
function stampWriter(path: string, fmt: string, tz: string): (loc: FieldLocator, slot: number, w: ByteWriter) => boolean {
  const utcIso = fmt === 'iso' && tz === 'utc';
  const fromInstant = compileInstantFormat(fmt, tz);
  const fromText = compileTsFormat(fmt, tz);
  return (loc, slot, w) => {
    const k = loc.kind[slot];
    if (k === ABSENT || k === NULL) return false;
    if (k === STR) {
      const f = loc.from[slot], t = loc.to[slot];
      if (f === t) return false;
      const inst = isoBytes(loc.buf, f, t);
      if (inst) {
        if (utcIso) w.plain(loc.buf, f, t);
        else w.text(fromInstant(inst));
        return true;
      }
    }
    const v = loc.value(slot);
    if (v === '') return false;
    if (typeof v !== 'string') throw new FieldError(`${path}: expected a timestamp string, got ${typeName(v)}`);
    try {
      w.text(fromText(v));
    } catch (e) {
      if (e instanceof TimestampError) throw new FieldError(`${path}: ${e.message}`);
      throw e;
    }
    return true;
  };
}

type FieldWriter = (loc: FieldLocator, w: ByteWriter) => boolean;

/** A writer for one path's text (valueText, or the timestamp's), given its slot. */
function fieldWriter(path: string, slot: number, fmt: string, tz: string): FieldWriter {
  if (TIMESTAMP_FIELDS.includes(path)) {
    const stamp = stampWriter(path, fmt, tz);
    return (loc, w) => stamp(loc, slot, w);
  }
  return (loc, w) => writeValue(loc, slot, w);
}

/** Slots for paths, in the order first named. */
class Slots {
  readonly paths: string[] = [];
  of(path: string): number {
    let k = this.paths.indexOf(path);
    if (k < 0) k = this.paths.push(path) - 1;
    return k;
  }
}

function byteTemplate(template: string, o: PresetOptions): ByteFormat {
  const missing = o.missing ?? '-';
  const fmt = o.tsFormat ?? 'iso', tz = o.tz ?? 'utc';
  const slots = new Slots();
  const steps: ((loc: FieldLocator, w: ByteWriter) => void)[] = [];
  for (const p of parseTemplate(template)) {
    if ('lit' in p) {
      const b = enc(p.lit);
      steps.push((_l, w) => w.bytes(b));
      continue;
    }
    const dflt = enc(p.dflt ?? missing);
    const chain = [p.path, ...(p.alts ?? [])].map((path) => fieldWriter(path, slots.of(path), fmt, tz));
    if (chain.length === 1) {
      const [one] = chain;
      steps.push((l, w) => { if (!one(l, w)) w.bytes(dflt); });
    } else {
      steps.push((l, w) => {
        for (let i = 0; i < chain.length; i++) if (chain[i](l, w)) return;
        w.bytes(dflt);
      });
    }
  }
  const n = steps.length;
  return {
    paths: slots.paths,
    render: (loc, w) => {
      for (let i = 0; i < n; i++) steps[i](loc, w);
    },
  };
}

function byteTable(sep: ',' | '\t', o: PresetOptions): ByteFormat {
  const fields = o.fields && o.fields.length ? o.fields : CSV_FIELDS;
  const missing = enc(o.missing ?? '');
  const fmt = o.tsFormat ?? 'iso', tz = o.tz ?? 'utc';
  const slots = new Slots();
  const csv = sep === ',';
  const writers = fields.map((f) => {
    const slot = slots.of(f);
    if (TIMESTAMP_FIELDS.includes(f)) {
      const stamp = stampWriter(f, fmt, tz);
      // The formatted timestamp is text for csvField/tsvField, as any other.
      return (loc: FieldLocator, w: ByteWriter) => {
        const mark = w.pos;
        if (!stamp(loc, slot, w)) return w.bytes(missing);
        const s = w.buf.toString('utf8', mark, w.pos);
        w.pos = mark;
        // As the slow path: the text through valueText (csv) or rawText (tsv), then quoted or escaped.
        if (s === '') w.bytes(missing);
        else w.text(csv ? csvField(escapeControls(s)) : tsvField(s));
      };
    }
    return (loc: FieldLocator, w: ByteWriter) => {
      const k = loc.kind[slot];
      if (k === ABSENT || k === NULL) return w.bytes(missing);
      const mark = w.pos;
      // Copied, then looked at: text that quoting or escaping would change is done again the slow way.
      if (k === STR || k === INT || k === ARRAY) {
        if (!writeValue(loc, slot, w)) return w.bytes(missing);
        const b = w.buf;
        const c0 = b[mark];
        let ok = k === INT || !(c0 === 61 || c0 === 43 || c0 === 45 || c0 === 64);
        for (let i = mark; ok && i < w.pos; i++) {
          const c = b[i];
          if (c >= 128 || c < 32 || c === 127 || (csv && (c === 44 || c === 34)) || (!csv && c === 92)) ok = false;
        }
        if (ok) return;
        w.pos = mark;
      }
      const v = loc.value(slot);
      if (csv) {
        const s = valueText(v);
        w.text(s === undefined ? '' : csvField(s));
        if (s === undefined) w.bytes(missing);
      } else {
        const s = rawText(v);
        if (s === undefined) w.bytes(missing);
        else w.text(tsvField(s));
      }
    };
  });
  const n = writers.length;
  const sepByte = sep.charCodeAt(0);
  return {
    paths: slots.paths,
    render: (loc, w) => {
      for (let i = 0; i < n; i++) {
        if (i) w.byte(sepByte);
        writers[i](loc, w);
      }
    },
  };
}

// ctrecorder's type letter per event (its nftype_name table), as template.ts' ctrecorder().
const CTRECORDER_TYPE: Record<string, number> = { new: 83, update: 85, destroy: 69 };
const SEEN_REPLY = enc('"SEEN_REPLY"');
const BACKSLASH = enc('\\');

/** Whether `needle` is in b[f, t) (Buffer.indexOf would look on to the end of the chunk). */
function within(b: Uint8Array, f: number, t: number, needle: Uint8Array): boolean {
  const n = needle.length, first = needle[0];
  for (let i = f; i + n <= t; i++) {
    if (b[i] !== first) continue;
    let k = 1;
    while (k < n && b[i + k] === needle[k]) k++;
    if (k === n) return true;
  }
  return false;
}

function byteCtrecorder(o: PresetOptions): ByteFormat {
  const slots = new Slots();
  const fmt = o.tsFormat ?? '%Y.%m.%d %H:%M:%S.%f', tz = o.tz ?? 'local';
  const ts = slots.of('ts'), event = slots.of('event'), status = slots.of('status');
  const stamp = stampWriter('ts', fmt, tz);
  const missing = enc(o.missing ?? '-');
  const tuples = [['src', 'sport'], ['dst', 'dport'], ['reply.src', 'reply.sport'], ['reply.dst', 'reply.dport']].map(([a, p]) => [slots.of(a), slots.of(p)]);
  const names = [enc(' src='), enc(' dst='), enc(' src='), enc(' dst=')];
  /** hostPort(): the address (valueText, or '-'), in brackets when it has a colon, then ':' and the port when it is a number, else 0. */
  const hostPort = (loc: FieldLocator, a: number, p: number, w: ByteWriter) => {
    const mark = w.pos;
    if (!writeValue(loc, a, w)) w.byte(45);
    else {
      let colon = false;
      for (let i = mark; i < w.pos && !colon; i++) colon = w.buf[i] === 58;
      if (colon) {
        const s = w.buf.toString('utf8', mark, w.pos);
        w.pos = mark;
        w.text(`[${s}]`);
      }
    }
    w.byte(58);
    const pk = loc.kind[p];
    if (pk === INT) w.plain(loc.buf, loc.from[p], loc.to[p]);
    else {
      const v = loc.value(p);
      w.text(typeof v === 'number' ? String(v) : '0');
    }
  };
  return {
    paths: slots.paths,
    render: (loc, w) => {
      if (!stamp(loc, ts, w)) w.bytes(missing);
      w.byte(32);
      const ev = loc.kind[event] === STR ? loc.buf.toString('latin1', loc.from[event], loc.to[event]) : loc.value(event);
      w.byte(typeof ev === 'string' && Object.prototype.hasOwnProperty.call(CTRECORDER_TYPE, ev) ? CTRECORDER_TYPE[ev] : 82 /* R */);
      let seen = false;
      if (loc.kind[status] === ARRAY) {
        // hasStatus(). Among strings without escapes every quote is a member's, so "SEEN_REPLY" in the text is a member.
        const b = loc.buf, f = loc.from[status], t = loc.to[status];
        if (!within(b, f, t, BACKSLASH) && loc.allStrings(status)) seen = within(b, f, t, SEEN_REPLY);
        else seen = (loc.value(status) as unknown[]).includes('SEEN_REPLY');
      }
      w.byte(seen ? 43 : 32);
      for (let i = 0; i < 4; i++) {
        w.bytes(names[i]);
        hostPort(loc, tuples[i][0], tuples[i][1], w);
      }
    },
  };
}

/** The fast renderer of a format, or null for one the slow path renders alone (colour, kv, and the other presets). */
export function compileByteFormat(o: { template?: string; preset?: string; options: PresetOptions }): ByteFormat | null {
  if (o.options.color) return null;
  const defined = Object.fromEntries(Object.entries(o.options).filter(([, v]) => v !== undefined)) as PresetOptions;
  if (o.template !== undefined) return byteTemplate(o.template, defined);
  const name = o.preset ?? 'default';
  const p = Object.prototype.hasOwnProperty.call(PRESETS, name) ? PRESETS[name] : undefined;
  if (!p) return null;
  const opts: PresetOptions = { ...p.defaults, ...defined };
  if (p.template) return byteTemplate(p.template, opts);
  if (name === 'csv') return byteTable(',', opts);
  if (name === 'tsv') return byteTable('\t', opts);
  if (name === 'ctrecorder') return byteCtrecorder(opts);
  return null;
}

/**
 * compileCheck(fields) (src/filter/validate.ts) where the values are: true
 * when every field it checks that the line has is of its type. The locator
 * must have been made with `paths` among its own.
 */
export function locatedCheck(fields: Iterable<string>): { paths: string[]; check(loc: FieldLocator): boolean } {
  const list = checkedFields(fields);
  const paths = list.map((f) => f.path);
  const types = list.map((f) => f.type);
  let slots: Int32Array | null = null;
  return {
    paths,
    check(loc) {
      slots ??= Int32Array.from(paths, (p) => loc.slots.get(p)!);
      for (let i = 0; i < slots.length; i++) {
        const slot = slots[i];
        if (loc.kind[slot] !== ABSENT && !isType(loc, slot, types[i])) return false;
      }
      return true;
    },
  };
}

const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);

function isType(loc: FieldLocator, slot: number, type: FieldType): boolean {
  const k = loc.kind[slot];
  switch (type) {
    case 'string': return k === STR || k === STR_OTHER;
    case 'string?': return k === STR || k === STR_OTHER || k === NULL;
    case 'integer': return k === INT || (k === NUM && Number.isInteger(loc.value(slot)));
    case 'number': return k === INT || (k === NUM && Number.isFinite(loc.value(slot)));
    case 'port': {
      const v = k === INT ? loc.int(slot) : k === NUM ? (loc.value(slot) as number) : -1;
      return Number.isInteger(v) && v >= 0 && v <= 65535;
    }
    case 'boolean': case 'true': return k === TRUE || k === FALSE;
    case 'object': return k === OBJECT;
    case 'object?': return k === OBJECT || k === NULL;
    case 'string[]': return k === ARRAY && loc.allStrings(slot);
    case 'integer[]': return k === ARRAY && (loc.value(slot) as unknown[]).every((x) => Number.isInteger(x));
    case 'object[]': return k === ARRAY && (loc.value(slot) as unknown[]).every(isObj);
    default: return false;
  }
}
