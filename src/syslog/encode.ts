// Input lines to syslog messages: decides what a line is (an event or plain
// text), picks the header values from the event (timestamp from its `ts`,
// hostname from its `host`, MSGID from its kind, severity per kind), builds
// the body (compact JSON, `@cee:` JSON, or a template of ct-format's engine)
// and the optional structured data, and applies the size limit. It does no
// I/O and never touches `process`; the template engine is src/format's, not
// a copy.
import { parseObject } from '../ndjson.js';
import { EventReader } from '../event/reader.js';
import { FieldError, type Renderer } from '../format/template.js';
import {
  formatRfc3164, formatRfc5424, rfc5424Around, rfc5424Time, sdElement, truncateUtf8,
  type Header, type SyslogFormat,
} from './message.js';

export type InputKind = 'auto' | 'json' | 'text';

export interface EncodeOptions {
  format: SyslogFormat;
  /** RFC 3164 without HOSTNAME, as written to the local socket (see formatRfc3164). */
  local?: boolean;
  facility: number;
  /** Severity of a text line and of an event whose kind is not in severityByKind. */
  severity: number;
  severityByKind?: Record<string, number>;
  /** Overrides every event's `host`. */
  hostname?: string;
  /** Used when neither hostname nor the event's `host` is set. */
  defaultHostname: string;
  appName: string;
  /** PROCID (`-` for none). */
  procid: string;
  input: InputKind;
  /** The message body of an event: compact JSON (default), `@cee:`-prefixed JSON, or a template. */
  body?: 'json' | 'cee' | Renderer;
  /** Add structured data with the 5-tuple and the owner's pid under this SD-ID (RFC 5424 only). */
  sdId?: string;
  /**
   * Largest message in bytes (header included, framing not). A JSON body is
   * never cut: its long fields are shortened (and named in `truncated`), or
   * it is sent whole when that is not enough; text bodies are cut.
   */
  maxSize: number;
  now?: () => Date;
  /** Parse every event line whole (the tests that hold the fast path to the slow one). */
  slowPath?: boolean;
}

/** A line's bytes, when the caller has them: buf[start, end). */
export interface LineBytes {
  buf: Buffer;
  start: number;
  end: number;
}

/** A line with its text (which may be made only when asked for: LineSplitter's lazyText). */
export interface TextLine extends LineBytes {
  readonly text: string;
}

/**
 * Messages made from a line's bytes are written one after another into
 * chunks of this size: one allocation per few hundred messages, each
 * message a view of its chunk (held while any message in it is queued).
 */
const CHUNK_BYTES = 256 * 1024;
/** Event kinds whose header the encoder keeps at most (new, update, destroy, flow, overrun, ...). */
const AROUND_KINDS = 16;

/** The fields the header and the structured data take from an event. */
const HEADER_READS = ['event', 'ts', 'host'];
const SD_READS = [...HEADER_READS, 'proto', 'src', 'sport', 'dst', 'dport', 'process'];

/**
 * Is this JSON text already compact (no whitespace outside strings)? Then it
 * is its own compact form, and re-serializing it, the costliest step after
 * parsing, can be skipped: ctpipe's commands all write compact JSON.
 */
export function isCompactJson(text: string): boolean {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 32 || c === 9 || c === 10 || c === 13) return false;
  }
  return true;
}

/** A line that cannot be sent: reported as `stdin:N: <message>` and skipped. */
export class LineError extends Error {}

/** The RFC 5424 SD-ELEMENT for an event: its 5-tuple and the pid of its owner, when known. */
export function eventSd(ev: Record<string, any>, id: string): string {
  const p = ev.process !== null && typeof ev.process === 'object' ? ev.process : null;
  const s = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? v : undefined);
  const sd = sdElement(id, [
    ['proto', s(ev.proto)], ['src', s(ev.src)], ['sport', s(ev.sport)], ['dst', s(ev.dst)], ['dport', s(ev.dport)],
    ['pid', p ? s(p.pid) : undefined],
  ]);
  // An element with no parameter says nothing (special records carry no tuple).
  return sd.includes(' ') ? sd : '';
}

/**
 * Fields shortened, in this order, when an event's JSON does not fit: the
 * ones that can grow long. The JSON body is never cut in the middle.
 */
export const SHORTENED_FIELDS: readonly (readonly [string, string])[] = [
  ['process', 'cmdline'], ['peer', 'cmdline'], ['process', 'cgroup'], ['peer', 'cgroup'], ['process', 'exe'], ['peer', 'exe'],
];
const ELLIPSIS = '...';

const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

/** `s` cut (on a character) so that its JSON form takes at most `max` bytes, with `...` appended; '' when not even that fits. */
function shortenString(s: string, max: number): string {
  let keep = Math.max(0, max - 2 - ELLIPSIS.length);
  for (;;) {
    const t = truncateUtf8(s, keep) + ELLIPSIS;
    if (jsonBytes(t) <= max || keep === 0) return jsonBytes(t) <= max ? t : '';
    keep = Math.max(0, keep - Math.max(1, jsonBytes(t) - max));
  }
}

/** An argv array whose JSON takes at most `max` bytes: whole arguments first, the one that does not fit cut with `...`. */
function shortenArgs(args: unknown[], max: number): string[] {
  const out: string[] = [];
  let used = 2; // []
  for (const a of args) {
    const text = typeof a === 'string' ? a : JSON.stringify(a);
    const sep = out.length ? 1 : 0;
    const n = jsonBytes(text);
    if (used + sep + n <= max) {
      out.push(text);
      used += sep + n;
      continue;
    }
    const cut = shortenString(text, max - used - sep);
    if (cut) out.push(cut);
    break;
  }
  return out;
}

/**
 * Make an event's JSON fit in `budget` bytes by shortening SHORTENED_FIELDS
 * in turn and listing them in `truncated`. Returns the new JSON, or null when
 * it cannot be made to fit that way.
 */
export function fitEvent(ev: Record<string, any>, budget: number): string | null {
  const e: Record<string, any> = { ...ev };
  const truncated: string[] = Array.isArray(ev.truncated) ? [...ev.truncated] : [];
  let json = JSON.stringify(e);
  for (const [obj, key] of SHORTENED_FIELDS) {
    let over = Buffer.byteLength(json, 'utf8') - budget;
    if (over <= 0) break;
    const o = e[obj];
    if (o === null || typeof o !== 'object' || o[key] === undefined || o[key] === null) continue;
    const copy = { ...o };
    e[obj] = copy;
    const path = `${obj}.${key}`;
    if (!truncated.includes(path)) {
      truncated.push(path);
      e.truncated = truncated;
      // The list itself takes room.
      over = Buffer.byteLength(JSON.stringify(e), 'utf8') - budget;
    }
    const v = copy[key];
    const now = jsonBytes(v);
    const room = Math.max(2, now - over);
    copy[key] = Array.isArray(v) ? shortenArgs(v, room) : shortenString(String(v), room);
    json = JSON.stringify(e);
  }
  return Buffer.byteLength(json, 'utf8') <= budget ? json : null;
}

export class Encoder {
  /** Messages cut to maxSize so far (text bodies: plain lines, templates). */
  truncated = 0;
  /** Events whose long fields were shortened to fit maxSize (listed in their `truncated`). */
  shortened = 0;
  /** Events sent whole over maxSize: shortening their long fields was not enough. */
  oversize = 0;
  private readonly now: () => Date;
  private readonly body: 'json' | 'cee' | Renderer;

  /**
   * The fast path of a JSON body: an event line in compact form gives the
   * header's fields from its bytes (src/event/reader.ts, which checks the
   * whole line's syntax as it goes) and is its own body, with no parse and
   * no serialization. Other lines, and templates (which may read any
   * field), take parseObject.
   */
  private readonly reader: EventReader | null;
  private chunk: Buffer = Buffer.alloc(0);
  private used = 0;
  private readonly arounds = new Map<string | undefined, [Buffer, Buffer]>();
  private aroundHost: string | undefined = undefined;

  constructor(private o: EncodeOptions, private onTruncate?: (bytes: number) => void) {
    this.now = o.now ?? (() => new Date());
    this.body = o.body ?? 'json';
    this.reader = (this.body === 'json' || this.body === 'cee') && !o.slowPath
      ? new EventReader({ read: o.sdId && o.format === 'rfc5424' ? SD_READS : HEADER_READS })
      : null;
  }

  /**
   * One input line to one message: on the fast path (a compact event line,
   * a JSON body, the message within maxSize) its bytes, the header written
   * in front of the line's own bytes, with no string made of the line;
   * otherwise as encode(). Null when there is nothing to send. Throws LineError.
   */
  encodeLine(line: TextLine): Buffer | string | null {
    const o = this.o;
    const r = this.reader;
    if (r === null || o.input === 'text' || line.buf[line.start] !== 123 /* { */) return this.encode(line.text, line);
    const ev = r.read(line.buf, line.start, line.end);
    if (ev === undefined) return this.encode(line.text, line, true);
    const kind = typeof ev.event === 'string' ? ev.event : undefined;
    const sev = kind !== undefined && o.severityByKind && Object.prototype.hasOwnProperty.call(o.severityByKind, kind) ? o.severityByKind[kind] : o.severity;
    const host = o.hostname ?? (typeof ev.host === 'string' && ev.host !== '' ? ev.host : o.defaultHostname);
    const ts = typeof ev.ts === 'string' ? ev.ts : undefined;
    const len = line.end - line.start;
    let c: Buffer;
    let at: number;
    let off: number;
    if (o.format === 'rfc5424') {
      const around = this.aroundOf(host, kind, sev);
      const time = rfc5424Time(ts, this.now);
      // Structured data takes its values from the event: it may be any UTF-8.
      const sd = o.sdId ? eventSd(ev, o.sdId) : '';
      c = this.room(around[0].length + time.length + around[1].length + 3 * sd.length + 8 + len);
      at = off = this.used;
      c.set(around[0], off);
      off += around[0].length;
      off += c.write(time, off, 'latin1');
      c.set(around[1], off);
      off += around[1].length;
      if (sd) off += c.write(sd, off, 'utf8');
      else c[off++] = 45; // -
      c[off++] = 32;
    } else {
      // RFC 3164's header is printable ASCII (formatRfc3164 replaces anything else).
      const head = formatRfc3164({ facility: o.facility, severity: sev, ts, hostname: host, appName: o.appName, procid: o.procid, msgid: kind }, '', { local: o.local }, this.now);
      c = this.room(head.length + 8 + len);
      at = this.used;
      off = at + c.write(head, at, 'latin1');
    }
    if (this.body === 'cee') off += c.write('@cee: ', off, 'latin1');
    // Over the limit: encode() shortens the event's long fields (it needs the whole event).
    if (off - at + len > o.maxSize) return this.encode(line.text, line);
    line.buf.copy(c, off, line.start, line.end);
    this.used = off + len;
    return c.subarray(at, this.used);
  }

  /** The chunk to write the next message into, with at least `n` bytes free from `used`. */
  private room(n: number): Buffer {
    if (this.chunk.length - this.used < n) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, n));
      this.used = 0;
    }
    return this.chunk;
  }

  /**
   * RFC 5424's header on either side of the timestamp, as bytes, for
   * events of `host` and `kind` (the severity follows from the kind): made
   * once per kind, not per message; a few kinds are remembered (any string
   * may come as a kind), for the last host seen.
   */
  private aroundOf(host: string, kind: string | undefined, sev: number): [Buffer, Buffer] {
    if (host !== this.aroundHost) {
      this.arounds.clear();
      this.aroundHost = host;
    }
    let a = this.arounds.get(kind);
    if (a === undefined) {
      const o = this.o;
      const [pre, post] = rfc5424Around({ facility: o.facility, severity: sev, hostname: host, appName: o.appName, procid: o.procid, msgid: kind });
      a = [Buffer.from(pre, 'latin1'), Buffer.from(post, 'latin1')];
      if (this.arounds.size < AROUND_KINDS) this.arounds.set(kind, a);
    }
    return a;
  }
  /** One input line to one message; null when there is nothing to send (a template rendered ''). Throws LineError. */
  encode(text: string, bytes?: LineBytes, declined = false): string | null {
    const o = this.o;
    let ev: Record<string, any> | null = null;
    // Read from the bytes: the line is compact JSON, and so its own body.
    let compact = false;
    if (o.input === 'json' || (o.input === 'auto' && text.charCodeAt(0) === 123 /* { */)) {
      if (this.reader && bytes && !declined) {
        ev = this.reader.read(bytes.buf, bytes.start, bytes.end) ?? null;
        compact = ev !== null;
      }
      if (!ev) {
        try {
          ev = parseObject(text);
        } catch (e) {
          throw new LineError((e as Error).message);
        }
      }
    }
    let msg: string;
    let h: Header;
    if (ev) {
      const kind = typeof ev.event === 'string' ? ev.event : undefined;
      const sev = kind !== undefined && o.severityByKind && Object.prototype.hasOwnProperty.call(o.severityByKind, kind) ? o.severityByKind[kind] : o.severity;
      let body: string;
      const b = this.body;
      if (b === 'json') body = compact || isCompactJson(text) ? text : JSON.stringify(ev);
      else if (b === 'cee') body = '@cee: ' + (compact || isCompactJson(text) ? text : JSON.stringify(ev));
      else {
        try {
          body = b(ev);
        } catch (e) {
          if (e instanceof FieldError) throw new LineError(e.message);
          throw e;
        }
        if (body === '') return null;
      }
      h = {
        facility: o.facility,
        severity: sev,
        ts: typeof ev.ts === 'string' ? ev.ts : undefined,
        hostname: o.hostname ?? (typeof ev.host === 'string' && ev.host !== '' ? ev.host : o.defaultHostname),
        appName: o.appName,
        procid: o.procid,
        msgid: kind,
        sd: o.sdId && o.format === 'rfc5424' ? eventSd(ev, o.sdId) : undefined,
      };
      msg = body;
    } else {
      h = { facility: o.facility, severity: o.severity, hostname: o.hostname ?? o.defaultHostname, appName: o.appName, procid: o.procid };
      msg = text;
    }
    const render = (m: string) => (o.format === 'rfc5424' ? formatRfc5424(h, m, this.now) : formatRfc3164(h, m, { local: o.local }, this.now));
    const out = render(msg);
    if (ev && (this.body === 'json' || this.body === 'cee')) {
      // JSON is never cut in the middle: shorten the long fields, else send it whole.
      const size = Buffer.byteLength(out, 'utf8');
      if (size <= o.maxSize) return out;
      const prefix = this.body === 'cee' ? '@cee: ' : '';
      const overhead = size - Buffer.byteLength(msg, 'utf8') + prefix.length;
      // Shortening needs the whole event (the fast path read a few fields).
      const fitted = fitEvent(compact ? parseObject(text) : ev, o.maxSize - overhead);
      if (fitted !== null) {
        this.shortened++;
        return render(prefix + fitted);
      }
      this.oversize++;
      return out;
    }
    const cut = truncateUtf8(out, o.maxSize);
    if (cut !== out) {
      this.truncated++;
      this.onTruncate?.(Buffer.byteLength(out, 'utf8'));
    }
    return cut;
  }
}
