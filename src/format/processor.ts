// ct-format's line processor (see src/lines/): parse, check the fields the
// template or preset reads, render flow events, and turn special records
// into a readable note for standard error instead of output. Built from
// plain options so that worker threads can build their own.
import { isFlowEvent, isFlowRecord } from '../event.js';
import { compileCheck, parseChecked } from '../filter/validate.js';
import type { LineProcessor, Report } from '../lines/chunk.js';
import { EventReader, FieldLocator, STR } from '../event/reader.js';
import { ByteWriter, compileByteFormat, locatedCheck } from './bytes.js';
import { compilePreset, compileTemplate, FieldError, templateFields, PRESETS, CSV_FIELDS, type PresetOptions, type Renderer } from './template.js';

export interface FormatProcessorOptions {
  /** A template; when absent, `preset` (default `default`). */
  template?: string;
  preset?: string;
  options: PresetOptions;
}

/** Top-level fields each preset reads, for type checks; null: all of them. */
const PRESET_FIELDS: Record<string, string[] | null> = {
  ctrecorder: ['ts', 'event', 'status', 'src', 'sport', 'dst', 'dport', 'reply'],
  'ctrecorder-squeeze': ['ts', 'event', 'start', 'stop', 'src', 'sport', 'dst', 'dport', 'reply'],
  packettrail: ['process.user', 'process.comm', 'process.pid', 'direction', 'src', 'sport', 'dst', 'dport'],
  notrust: ['ts', 'proto', 'src', 'sport', 'dst', 'dport', 'process.inode', 'process.pid', 'process.comm', 'process.cmdline', 'process.user', 'process.uid', 'host'],
  kv: null,
};

/** The field paths a format reads, or null for every field. */
export function formatFields(o: FormatProcessorOptions): string[] | null {
  if (o.template !== undefined) return templateFields(o.template);
  const name = o.preset ?? 'default';
  const p = PRESETS[name];
  if (p?.template) return templateFields(p.template);
  if (name === 'csv' || name === 'tsv') return [...(o.options.fields?.length ? o.options.fields : CSV_FIELDS)];
  return PRESET_FIELDS[name] ?? null;
}

/** A special record as one readable line (without the program name). */
export function describeSpecial(ev: Record<string, any>): string {
  const at = typeof ev.ts === 'string' ? ` at ${ev.ts}` : '';
  const host = typeof ev.host === 'string' ? ` on ${ev.host}` : '';
  if (ev.event === 'overrun') {
    return `overrun${at}${host}: ${ev.lost ?? '?'} event${ev.lost === 1 ? '' : 's'} lost${ev.reason ? ` (${ev.reason})` : ''}`;
  }
  if (ev.event === 'stats') {
    const parts = ['received', 'written', 'lost', 'queued'].filter((k) => ev[k] !== undefined).map((k) => `${k} ${ev[k]}`);
    return `stats${at}${host}: ${parts.join(', ')}`;
  }
  // No prototype: an own `__proto__` key of the input is then kept as a key, not taken as one.
  const rest: Record<string, unknown> = Object.create(null);
  for (const k in ev) if (k !== 'ts' && k !== 'event' && k !== 'host') rest[k] = ev[k];
  const extra = Object.keys(rest).length ? ': ' + JSON.stringify(rest) : '';
  return `${String(ev.event).replace(/[\x00-\x1f\x7f-\x9f]/g, '?')}${at}${host}${extra}`;
}

export function compileFormat(o: FormatProcessorOptions): { render: Renderer; header?: string } {
  if (o.template !== undefined) return { render: compileTemplate(o.template, o.options) };
  return compilePreset(o.preset ?? 'default', o.options);
}

const [NEW, UPDATE, DESTROY, FLOW] = ['new', 'update', 'destroy', 'flow'].map((k) => Buffer.from(k));
/** Whether b[f, t) is `name`. */
function is(b: Buffer, f: number, t: number, name: Buffer): boolean {
  if (t - f !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (b[f + i] !== name[i]) return false;
  return true;
}

export function createProcessor(o: FormatProcessorOptions): LineProcessor {
  const { render } = compileFormat(o);
  const fields = formatFields(o);
  const check = compileCheck(fields ?? undefined);
  // Every line's output, whichever path made it, gathered here in order as bytes (flush() hands them over).
  const out = new ByteWriter();
  const draw = (ev: Record<string, any>, report: Report): void => {
    let s: string;
    try {
      s = render(ev);
    } catch (e) {
      if (e instanceof FieldError) {
        report({ kind: 'bad', message: e.message });
        return;
      }
      throw e;
    }
    if (s === '') return;
    out.text(s);
    out.byte(10);
  };
  const p: LineProcessor = {
    line(text, report) {
      const ev = parseChecked(text, check, report);
      if (!ev) return null;
      // ct-flows' records are formatted like events; other special records
      // are notes, but for `dns` records: ct-events writes one per DNS
      // answer by default, as data for ct-attribute, not news for a reader.
      if (!isFlowEvent(ev) && !isFlowRecord(ev)) {
        // ct-events' DNS answers and polled counters are data for later stages, not news about the stream.
        if (ev.event === 'dns' || ev.event === 'counters') return null;
        report({ kind: 'note', message: describeSpecial(ev) });
        return null;
      }
      draw(ev, report);
      return null;
    },
    flush: () => out.take(),
  };
  if (!fields) return p; // kv reads every field: lines parsed whole
  const bytes = compileByteFormat(o);
  if (bytes) {
    // The fast path: the line written from where its fields are (src/format/bytes.ts).
    const checked = locatedCheck(fields);
    let loc: FieldLocator;
    try {
      loc = new FieldLocator([...bytes.paths, 'event', ...checked.paths]);
    } catch {
      return p; // a path the locator cannot find (a field name with quotes): lines parsed whole
    }
    const event = loc.slots.get('event')!;
    p.lineBytes = (buf, start, end, report) => {
      if (!loc.locate(buf, start, end) || loc.kind[event] !== STR) return undefined;
      // new, update, destroy: their fields' types checked; ct-flows' flow records are not (as check()); anything else is a special record.
      const f = loc.from[event], t = loc.to[event];
      const kind = is(buf, f, t, NEW) || is(buf, f, t, UPDATE) || is(buf, f, t, DESTROY) ? 1 : is(buf, f, t, FLOW) ? 2 : 0;
      if (kind === 0 || (kind === 1 && !checked.check(loc))) return undefined;
      const mark = out.pos;
      try {
        bytes.render(loc, out);
      } catch (e) {
        out.pos = mark;
        if (e instanceof FieldError) {
          report({ kind: 'bad', message: e.message });
          return null;
        }
        throw e;
      }
      if (out.pos > mark) out.byte(10);
      return null;
    };
    return p;
  }
  // The other formats render from the fields they name alone, read lazily (src/event/reader.ts).
  const reader = new EventReader({ read: [...new Set(['event', ...fields.map((f) => f.split('.')[0])])] });
  p.lineBytes = (buf, start, end, report) => {
    const ev = reader.read(buf, start, end);
    // Declined lines, special records (their note shows every field) and wrong types (the slow path says which) go to line().
    if (ev === undefined || !(isFlowEvent(ev) || isFlowRecord(ev)) || check(ev) !== null) return undefined;
    draw(ev, report);
    return null;
  };
  return p;
}
