// Event lines as bytes: what `JSON.stringify(record) + '\n'` gives, encoded
// as UTF-8, written straight into a reusable Buffer. JSON.stringify and then
// the conversion of its string to bytes were the largest cost of ct-events
// at a flood's rate; this writer does both in one pass and is fastest for the
// fields ct-events' records have (their names are encoded once, below).
//
// It owns only the text: it never changes a record or decides which fields
// it has. Output is JSON.stringify's, byte for byte, for every input: keys
// are written in the record's own order and values by the rules of ECMA-262
// section 25.5.2 (SerializeJSONProperty, QuoteJSONString,
// SerializeJSONObject, SerializeJSONArray); anything that is not plain data
// (toJSON, Dates, Buffers, Maps, boxed primitives, class instances, BigInt,
// cycles) sends the whole record to JSON.stringify itself.

import { FIELDS } from './event/schema.js';

/** Thrown inside the writer when only JSON.stringify knows the answer. */
const FALLBACK = Symbol('fallback');
/** Deeper than any ctpipe record; beyond it (e.g. a cycle) JSON.stringify decides. */
const MAX_DEPTH = 64;
/**
 * Room a Buffer chunk has: lines are written into it until it is nearly full.
 * Larger chunks measured slower (an allocation that large is mapped afresh
 * from the kernel, and each page faults in on first use).
 */
const CHUNK = 64 * 1024;

interface Field {
  /** `"name":` and `,"name":` as bytes. */
  first: Uint8Array;
  next: Uint8Array;
  /** The fields of the object this field usually holds. */
  sub: Schema | null;
}
interface Schema {
  names: string[];
  fields: Field[];
}

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function schema(spec: Array<string | [string, Schema]>): Schema {
  const pairs = spec.map((x): [string, Schema | null] => (typeof x === 'string' ? [x, null] : x));
  return {
    names: pairs.map(([n]) => n),
    fields: pairs.map(([n, sub]) => ({ first: latin1(`"${n}":`), next: latin1(`,"${n}":`), sub })),
  };
}

// The fields ct-events writes, in the order decodeConntrack() creates them
// (`dump` is added last by ConntrackSource), then those of the overrun and
// stats records: the schema table's order (src/event/schema.ts). Their names
// are written from these bytes; a key found elsewhere or not listed is still
// written correctly, only slower.
function schemaOf(path: string): Schema | null {
  const members = FIELDS.filter((f) => f.by === 'ct-events' && f.path.startsWith(path === '' ? '' : path + '.')
    && f.path.split('.').length === (path === '' ? 1 : path.split('.').length + 1));
  if (members.length === 0) return null;
  return schema(members.map((f) => {
    const sub = f.type === 'object' ? schemaOf(f.path) : null;
    return sub ? [f.path.slice(f.path.lastIndexOf('.') + 1), sub] as [string, Schema] : f.path.slice(f.path.lastIndexOf('.') + 1);
  }));
}
const EVENT = schemaOf('')!;

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && typeof (v as any).toJSON !== 'function';
}
function isPlainArray(v: object): v is unknown[] {
  return Object.getPrototypeOf(v) === Array.prototype && typeof (v as any).toJSON !== 'function';
}

/** Whether plain objects inherit an enumerable property (a for-in would list it; JSON would not). */
function inherited(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

// The writing functions take the chunk and a position and return the new
// position, so that both stay in registers; one that would write past the
// end of the chunk throws GROW instead, and line() starts the line again in
// a larger chunk (lines are far smaller than a chunk, so that is rare).
const GROW = Symbol('grow');

function bytes(b: Buffer, p: number, f: Uint8Array): number {
  const n = f.length;
  if (p + n > b.length) throw GROW;
  for (let i = 0; i < n; i++) b[p + i] = f[i]!;
  return p + n;
}

function byte(b: Buffer, p: number, c: number): number {
  if (p >= b.length) throw GROW;
  b[p] = c;
  return p + 1;
}

/** Text known to be ASCII without escapes (number text, literals). */
function ascii(b: Buffer, p: number, s: string): number {
  const n = s.length;
  if (p + n > b.length) throw GROW;
  for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
  return p + n;
}

function str(b: Buffer, p: number, s: string): number {
  // Printable ASCII other than '"' and '\' is its own JSON text; anything
  // else (escapes, non-ASCII, surrogates) is quoted by JSON.stringify and
  // encoded as UTF-8, which is what a JSON.stringify line would contain.
  const n = s.length;
  if (p + n + 2 > b.length) throw GROW;
  b[p] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7f || c === 0x22 || c === 0x5c) return utf8(b, p, JSON.stringify(s));
    b[p + 1 + i] = c;
  }
  b[p + 1 + n] = 0x22;
  return p + n + 2;
}

function utf8(b: Buffer, p: number, text: string): number {
  if (p + 3 * text.length > b.length) throw GROW; // UTF-8 takes at most 3 bytes a UTF-16 unit
  return p + b.write(text, p, 'utf8');
}

function num(b: Buffer, p: number, v: number): number {
  let d: number;
  if ((v | 0) === v && v >= 0) {
    // 0 .. 2^31-1 (and -0, which JSON writes as 0): int32 arithmetic.
    d = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5
      : v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
    if (p + d > b.length) throw GROW;
    let q = p + d - 1, x = v | 0;
    do {
      const y = (x / 10) | 0;
      b[q--] = 0x30 + x - y * 10;
      x = y;
    } while (x !== 0);
    return p + d;
  }
  if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.floor(v) === v)) {
    // Number::toString, as JSON uses it; NaN and the infinities are null.
    return ascii(b, p, Number.isFinite(v) ? '' + v : 'null');
  }
  // Larger whole numbers (ids past 2^31, counters): digits from the end,
  // without making text of a new number (which would evict entries of V8's
  // number-to-string cache, see event.ts).
  d = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) d++;
  if (p + d > b.length) throw GROW;
  let q = p + d - 1, x = v;
  do {
    const y = Math.floor(x / 10);
    b[q--] = 0x30 + x - y * 10;
    x = y;
  } while (x > 0);
  return p + d;
}

/** Write a value that JSON does not leave out (the caller skips undefined, functions, symbols). */
function value(b: Buffer, p: number, v: unknown, depth: number, hint: Schema | null): number {
  switch (typeof v) {
    case 'string': return str(b, p, v);
    case 'number': return num(b, p, v);
    case 'boolean': return ascii(b, p, v ? 'true' : 'false');
    case 'object':
      if (v === null) return ascii(b, p, 'null');
      return Array.isArray(v) ? array(b, p, v, depth) : object(b, p, v, depth, hint);
    default: throw FALLBACK; // bigint: JSON.stringify throws its TypeError
  }
}

function omitted(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

function array(b: Buffer, p: number, a: unknown[], depth: number): number {
  if (depth > MAX_DEPTH || !isPlainArray(a)) throw FALLBACK;
  p = byte(b, p, 0x5b);
  for (let i = 0; i < a.length; i++) {
    if (i > 0) p = byte(b, p, 0x2c);
    const e = a[i];
    if (typeof e === 'string') p = str(b, p, e);
    else p = omitted(e) ? ascii(b, p, 'null') : value(b, p, e, depth + 1, null);
  }
  return byte(b, p, 0x5d);
}

function object(b: Buffer, p: number, o: object, depth: number, s: Schema | null): number {
  if (depth > MAX_DEPTH || !isPlainObject(o)) throw FALLBACK;
  let written = false;
  let at = 0; // the schema's fields come in order: look from the last match on
  p = byte(b, p, 0x7b);
  // for-in rather than Object.keys: V8 reads o[k] inside it from the
  // object's enum cache, several times faster. For a plain object it visits
  // the own enumerable keys in Object.keys order, provided nothing
  // enumerable is inherited, which line() checks.
  for (const k in o) {
    const v = (o as Record<string, unknown>)[k];
    const t = typeof v;
    if (t !== 'string' && t !== 'number' && omitted(v)) continue;
    let f: Field | null = null;
    if (s) {
      const names = s.names;
      let j = at;
      while (j < names.length && names[j] !== k) j++;
      if (j === names.length) j = names.indexOf(k); // out of order
      if (j >= 0) { f = s.fields[j]!; at = j + 1; }
    }
    if (f) {
      p = bytes(b, p, written ? f.next : f.first);
      if (t === 'string') p = str(b, p, v as string);
      else if (t === 'number') p = num(b, p, v as number);
      else p = value(b, p, v, depth + 1, f.sub);
    } else {
      if (written) p = byte(b, p, 0x2c);
      p = str(b, p, k);
      p = byte(b, p, 0x3a);
      p = value(b, p, v, depth + 1, null);
    }
    written = true;
  }
  return byte(b, p, 0x7d);
}

/**
 * Writes records as JSON lines into Buffer chunks and hands out what has
 * been written as views (take()). A view is never written over: a chunk is
 * only ever appended to, and a full one is replaced by a new one.
 */
export class LineWriter {
  private buf: Buffer;
  /** Where the next byte goes. */
  private pos = 0;
  /** Start of the bytes not yet taken. */
  private start = 0;
  private readonly chunk: number;

  constructor(chunkSize = CHUNK) {
    this.chunk = chunkSize;
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  /** Bytes written and not yet taken. */
  get pending(): number {
    return this.pos - this.start;
  }

  /** Append `JSON.stringify(rec) + '\n'` as UTF-8; throws what JSON.stringify throws. */
  line(rec: unknown): void {
    let need = 0;
    for (;;) {
      try {
        this.pos = this.write(rec, this.buf, this.pos);
        return;
      } catch (e) {
        if (e !== GROW) throw e;
        // Twice what the line had reached, then more if it is still short.
        need = Math.max(2 * need, 2 * (this.buf.length - this.pos), 4096);
        this.fresh(need);
      }
    }
  }

  private write(rec: unknown, b: Buffer, p: number): number {
    try {
      if (inherited()) throw FALLBACK;
      if (omitted(rec)) throw new TypeError(`not a JSON value: ${typeof rec}`);
      p = value(b, p, rec, 0, EVENT);
    } catch (e) {
      if (e !== FALLBACK) throw e;
      const text = JSON.stringify(rec);
      p = utf8(b, this.pos, text);
    }
    return byte(b, p, 0x0a);
  }

  /**
   * The bytes written since the last take(), as a view. With less than a
   * quarter of the chunk left, the next lines go to a new one, so that a run
   * of lines rarely has to move from one chunk to the next.
   */
  take(): Buffer {
    const out = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    if (this.buf.length - this.pos < this.chunk / 4) this.fresh(0);
    return out;
  }

  /** A new chunk with room for n more bytes; the bytes not yet taken move to it. */
  private fresh(n: number): void {
    const keep = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(this.chunk, keep + n));
    // The taken bytes stay in the old chunk, which their views keep alive.
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = keep;
  }
}

const shared = new LineWriter(4096);

/** JSON.stringify(rec) as the writer produces it (for tests and one-off use). */
export function eventJson(rec: unknown): string {
  shared.take();
  shared.line(rec);
  const b = shared.take();
  return b.toString('utf8', 0, b.length - 1);
}
