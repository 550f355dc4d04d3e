// The lazy event reader: the few top-level fields a stage needs, read from
// one line's bytes without JSON.parse of the whole line. A stage that looks
// at some fields and then writes the line through untouched (the rule for
// ctpipe's stream stages) has no use for the rest of the object.
//
// It reads the compact form ct-events and every ctpipe stage write (no
// whitespace between tokens, keys without escapes) and checks the whole
// line's syntax as it goes: a line it reads is valid JSON, an object,
// nested at most MAX_DEPTH deep, and each field it returns is what
// JSON.parse of the line gives for that field (a repeated key: its last
// value, as JSON.parse). Any other line it declines (undefined): the caller
// then takes the slow path, parseObject (src/ndjson.ts), so what counts as
// a bad line and the message about it stay JSON.parse's. The caller has
// checked that the line is UTF-8 (every line reader does: src/ndjson.ts,
// src/lines/chunk.ts). The object returned holds only the fields asked
// for (those the line lacks are undefined); it is for reading, not for
// writing out again. No I/O.
//
//     const reader = new EventReader({ read: ['event', 'proto', 'dport'] });
//     const ev = reader.read(buf, start, end) ?? parseObject(buf.toString('utf8', start, end));

/** Nesting the fast path reads; a deeper line is declined (parseObject then applies ndjson.ts' limit). */
const MAX_DEPTH = 64;

export interface ReaderSpec {
  /** Top-level fields to return, their values decoded (objects and arrays too). */
  read: readonly string[];
  /**
   * A read field's value may be the very object returned for an earlier
   * line whose bytes there were the same (see Memo): for a caller that
   * never changes what it is given.
   */
  share?: boolean;
  /**
   * Top-level fields whose mere presence sends the line to the slow path
   * (a stage that must see the whole record when it has one: already
   * attributed events, for ct-attribute).
   */
  decline?: readonly string[];
}

const READ = 1, DECLINE = 2;

/**
 * The big values of the last lines, so that the next line holding the same
 * bytes there is not checked again: in a stream from one busy owner every
 * event carries the same `process` object (a kilobyte and more, with its
 * ancestors' command lines), the most of each line's bytes. A JSON object
 * or array is delimited by its own bytes, and checking it depends on
 * nothing outside them (a top-level member's value always starts at the
 * same depth), so bytes equal to a value once checked are that value,
 * valid, and end where it ended. The memory is direct-mapped by the
 * member's name; a member whose value keeps changing is left alone for a
 * while (MEMO_REST lines) after MEMO_MISSES misses in a row.
 */
const MEMO_MIN = 192;
const MEMO_SLOTS = 8;
const MEMO_MISSES = 4;
const MEMO_REST = 64;
/** No value decoded for a remembered value (it was only checked). */
const UNBUILT = Symbol('unbuilt');

class Memo {
  /** Per slot: the name's hash, the value's bytes (len of them), its decoded value or UNBUILT. */
  readonly hash = new Int32Array(MEMO_SLOTS);
  readonly len = new Int32Array(MEMO_SLOTS);
  readonly bytes: Buffer[] = Array.from({ length: MEMO_SLOTS }, () => Buffer.alloc(0));
  readonly value: unknown[] = new Array(MEMO_SLOTS).fill(UNBUILT);
  readonly misses = new Int32Array(MEMO_SLOTS);
  /** Lines still to go before a slot that kept missing remembers again. */
  readonly rest = new Int32Array(MEMO_SLOTS);

  /** The end of the value at b[i] when it is the slot's remembered one, else -1. */
  match(slot: number, h: number, b: Buffer, i: number, end: number): number {
    const n = this.len[slot];
    if (n === 0 || this.hash[slot] !== h) return -1;
    if (i + n <= end && b[i] === this.bytes[slot][0] && this.bytes[slot].compare(b, i, i + n, 0, n) === 0) {
      this.misses[slot] = 0;
      return i + n;
    }
    if (++this.misses[slot] >= MEMO_MISSES) {
      this.len[slot] = 0;
      this.rest[slot] = MEMO_REST;
      this.misses[slot] = 0;
    }
    return -1;
  }

  /** Remember the value b[s, e), just checked (and decoded into v, or UNBUILT). */
  keep(slot: number, h: number, b: Buffer, s: number, e: number, v: unknown): void {
    if (this.rest[slot] > 0) {
      this.rest[slot]--;
      return;
    }
    const n = e - s;
    if (this.bytes[slot].length < n) this.bytes[slot] = Buffer.allocUnsafeSlow(Math.max(n, 2 * this.bytes[slot].length));
    b.copy(this.bytes[slot], 0, s, e);
    this.hash[slot] = h;
    this.len[slot] = n;
    this.value[slot] = v;
  }
}

/** Reads one spec's fields from lines; make one per spec and use it for every line. */
export class EventReader {
  private readonly names: string[] = [];
  private readonly kinds: number[] = [];
  private readonly keys: Uint8Array[] = [];
  private readonly table: Int16Array;
  private readonly mask: number;
  /** Each read field's value in the line being read. */
  private readonly values: unknown[];
  /** The object of the fields, made with one shape whatever the line's key order. */
  private readonly make: (v: unknown[]) => Record<string, unknown>;
  private readonly memo = new Memo();
  private readonly share: boolean;
  /** Two names of one hash: every line takes the slow path. */
  private readonly slow: boolean;

  constructor(spec: ReaderSpec) {
    this.share = !!spec.share;
    for (const n of spec.read) this.add(n, READ);
    for (const n of spec.decline ?? []) this.add(n, DECLINE);
    // A table with one name a slot (the names' hashes differ in their low bits).
    const table = slotTable(this.keys, 32);
    this.slow = table === null;
    this.table = table ?? new Int16Array(1).fill(-1);
    this.mask = this.table.length - 1;
    this.values = new Array(spec.read.length).fill(undefined);
    // A literal of fixed keys: V8 gives every result one hidden class.
    // The names are checked above to need no escaping beyond JSON's.
    this.make = new Function('v', `return {${spec.read.map((n, k) => `${JSON.stringify(n)}: v[${k}]`).join(', ')}};`) as (v: unknown[]) => Record<string, unknown>;
  }

  private add(name: string, kind: number): void {
    if (this.names.includes(name)) throw new Error(`reader: ${name} named twice`);
    if (name === '__proto__' || name === '' || !/^[\x20-\x7e]+$/.test(name) || /["\\]/.test(name)) throw new Error(`reader: cannot read a field named ${JSON.stringify(name)}`);
    this.names.push(name);
    this.kinds.push(kind);
    this.keys.push(Buffer.from(name, 'latin1'));
  }

  /**
   * The fields asked for of the JSON object in buf[start, end), or
   * undefined when the line must take the slow path.
   */
  read(buf: Buffer, start: number, end: number): Record<string, unknown> | undefined {
    const b = buf;
    if (this.slow || start >= end || b[start] !== 123 /* { */ || b[end - 1] !== 125 /* } */) return undefined;
    const values = this.values;
    values.fill(undefined);
    depth = 0;
    let i = start + 1;
    if (i === end - 1) return this.make(values);
    for (;;) {
      if (i >= end || b[i] !== 34 /* " */) return undefined;
      const ks = ++i;
      let h = 0;
      let c = 0;
      while (i < end && PLAIN[(c = b[i])] !== 0) {
        h = (Math.imul(h, 31) + c) | 0;
        i++;
      }
      // An escape in a key could spell a name asked for: declined.
      if (i >= end || c !== 34) return undefined;
      let k = this.table[h & this.mask];
      if (k >= 0 && !sameName(b, ks, i, this.keys[k])) k = -1;
      if (k >= 0 && this.kinds[k] === DECLINE) return undefined;
      if (++i >= end || b[i] !== 58 /* : */) return undefined;
      const want = k >= 0;
      const vs = i + 1;
      // Objects and arrays go by the memory of big values; one to decode only when a remembered one may be shared.
      if ((b[vs] === 123 || b[vs] === 91) && (!want || this.share)) i = this.big(b, vs, end, h, k);
      else if (want) {
        i = value(b, vs, end, true);
        values[k] = built;
      } else i = skip(b, vs, end);
      if (i < 0) return undefined;
      if (i >= end) return undefined;
      c = b[i++];
      if (c === 44 /* , */) continue;
      return c === 125 && i === end ? this.make(values) : undefined;
    }
  }

  /** An object or array at b[vs], of the field k (or -1) named with hash h, by way of the memory of big values. */
  private big(b: Buffer, vs: number, end: number, h: number, k: number): number {
    const memo = this.memo;
    const slot = h & (MEMO_SLOTS - 1);
    let i = memo.match(slot, h, b, vs, end);
    if (i >= 0) {
      if (k < 0) return i;
      const v = memo.value[slot];
      if (v !== UNBUILT) {
        this.values[k] = v;
        return i;
      }
      // Remembered unread (the same bytes under a name not read): decoded now.
      i = value(b, vs, end, true);
      this.values[k] = memo.value[slot] = built;
      return i;
    }
    i = b[vs] === 123 ? obj(b, vs, end, k >= 0) : arr(b, vs, end, k >= 0);
    if (i < 0) return -1;
    if (k >= 0) this.values[k] = built;
    if (i - vs >= MEMO_MIN) memo.keep(slot, h, b, vs, i, k >= 0 ? built : UNBUILT);
    return i;
  }

  /** read() of a line as text (tests, and callers without the bytes). */
  readText(text: string): Record<string, unknown> | undefined {
    const b = Buffer.from(text);
    return this.read(b, 0, b.length);
  }
}

/**
 * The smallest table of a power of two slots, `min` or more, in which each
 * name's hash (its low bits) picks a slot of its own: the slot holds the
 * name's index, -1 no name.
 */
/**
 * A table of the names' slots by the low bits of their hashes, one name a
 * slot, or null when two names' whole hashes are the same ("Aa" and "BB"):
 * no size parts them, and the reader or locator then sends every line to
 * the slow path.
 */
export function slotTable(names: readonly Uint8Array[], min: number): Int16Array | null {
  for (let size = min; size <= SLOT_TABLE_MAX; size *= 2) {
    const t = new Int16Array(size).fill(-1);
    let ok = true;
    for (let k = 0; k < names.length && ok; k++) {
      const h = hashBytes(names[k]) & (size - 1);
      if (t[h] >= 0) ok = false;
      else t[h] = k;
    }
    if (ok) return t;
  }
  return null;
}
/** The largest slot table tried (names of one whole hash never part). */
const SLOT_TABLE_MAX = 1 << 14;

function sameName(b: Uint8Array, s: number, e: number, name: Uint8Array): boolean {
  if (e - s !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (b[s + k] !== name[k]) return false;
  return true;
}

/** For each byte, in a string: 0 ends the run (`"`, `\`, a control character); 1 ASCII; 2 a byte of a multi-byte UTF-8 character. */
const PLAIN = new Uint8Array(256);
for (let c = 32; c < 256; c++) PLAIN[c] = c === 34 || c === 92 ? 0 : c < 128 ? 1 : 2;

// The scanning functions return the offset past what they read, or -1 when
// the text is not what the fast path reads; with `build`, the value read is
// left in `built`.
let built: unknown;
let depth = 0;
/** Whether the last number scanned was a plain integer (see num()). */
let plainInt = false;

/** A string from b[i] (just past its opening quote). */
function str(b: Buffer, i: number, end: number, build: boolean): number {
  const s = i;
  let h = 0;
  let kind = 0; // bits: 1 ASCII, 2 not ASCII, 4 an escape
  let t = 0;
  for (;;) {
    if (build) {
      while (i < end && (t = PLAIN[b[i]]) !== 0) {
        h = (Math.imul(h, 31) + b[i]) | 0;
        kind |= t;
        i++;
      }
    } else {
      while (i < end && PLAIN[b[i]] !== 0) i++;
    }
    if (i >= end) return -1;
    const c = b[i];
    if (c === 34) break;
    if (c !== 92) return -1; // a control character
    kind |= 4;
    if (++i >= end) return -1;
    const e = b[i];
    if (e === 117 /* u */) {
      if (i + 4 >= end) return -1;
      for (let n = 1; n <= 4; n++) {
        const x = b[i + n];
        if (!((x >= 48 && x <= 57) || (x >= 97 && x <= 102) || (x >= 65 && x <= 70))) return -1;
      }
      i += 5;
    } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) i++;
    else return -1;
  }
  if (build) built = (kind & 6) === 0 ? ascii(b, s, i, h) : kind & 4 ? JSON.parse(b.toString('utf8', s - 1, i + 1)) : b.toString('utf8', s, i);
  return i + 1;
}

// Strings read again and again (addresses, protocols, host names) are made
// once: a direct-mapped table by the hash of their bytes. A string made
// here is its own, never a view into a line that would keep the line alive.
const SLOTS = 2048;
const cached: string[] = new Array<string>(SLOTS).fill('');
const cachedLen = new Int32Array(SLOTS).fill(-1);

/** The ASCII string b[s, e), hashed h. */
function ascii(b: Buffer, s: number, e: number, h: number): string {
  const n = e - s;
  if (n > 64) return b.toString('latin1', s, e);
  const slot = (h ^ (h >>> 11)) & (SLOTS - 1);
  if (cachedLen[slot] === n) {
    const c = cached[slot];
    let k = 0;
    while (k < n && c.charCodeAt(k) === b[s + k]) k++;
    if (k === n) return c;
  }
  const v = b.toString('latin1', s, e);
  cached[slot] = v;
  cachedLen[slot] = n;
  return v;
}

// The keys of objects built (reply, counters, process, ...) are few and
// come again and again: made once, as the property names V8 keeps
// (internalized), since setting a property by a name that is not one
// makes V8 look the name up in its table of names every time.
const KEY_SLOTS = 512;
const keys: string[] = new Array<string>(KEY_SLOTS).fill('');
const keyLen = new Int32Array(KEY_SLOTS).fill(-1);

/** A key from b[i] (just past its opening quote), left in `built`: as str(), names of ASCII characters without escapes from the table above. */
function keyOf(b: Buffer, i: number, end: number): number {
  const s = i;
  let h = 0;
  let c = 0;
  while (i < end && PLAIN[(c = b[i])] === 1) {
    h = (Math.imul(h, 31) + c) | 0;
    i++;
  }
  const n = i - s;
  if (i >= end || c !== 34 || n > 32) return str(b, s, end, true);
  const slot = (h ^ (h >>> 9)) & (KEY_SLOTS - 1);
  if (keyLen[slot] === n) {
    const k = keys[slot];
    let x = 0;
    while (x < n && k.charCodeAt(x) === b[s + x]) x++;
    if (x === n) {
      built = k;
      return i + 1;
    }
  }
  // A name made a property name once: the name Object.keys gives back is the one V8 keeps.
  const k = Object.keys({ [b.toString('latin1', s, i)]: 0 })[0];
  keys[slot] = k;
  keyLen[slot] = n;
  built = k;
  return i + 1;
}

/** A number at b[i] (RFC 8259 section 6). */
function num(b: Buffer, i: number, end: number, build: boolean): number {
  const s = i;
  let c = b[i];
  const neg = c === 45; /* - */
  if (neg) {
    if (++i >= end) return -1;
    c = b[i];
  }
  let v = 0;
  let plain = true;
  if (c === 48) i++;
  else if (c >= 49 && c <= 57) {
    do {
      v = v * 10 + (c - 48);
      i++;
    } while (i < end && (c = b[i]) >= 48 && c <= 57);
  } else return -1;
  if (i < end && b[i] === 46 /* . */) {
    plain = false;
    if (++i >= end || !(b[i] >= 48 && b[i] <= 57)) return -1;
    while (i < end && b[i] >= 48 && b[i] <= 57) i++;
  }
  if (i < end && (b[i] === 101 || b[i] === 69) /* e E */) {
    plain = false;
    if (++i < end && (b[i] === 43 || b[i] === 45)) i++;
    if (i >= end || !(b[i] >= 48 && b[i] <= 57)) return -1;
    while (i < end && b[i] >= 48 && b[i] <= 57) i++;
  }
  // Sixteen characters and more may round: Number() of the text rounds as JSON.parse does.
  if (build) built = plain && i - s < 16 ? (neg ? -v : v) : Number(b.toString('latin1', s, i));
  // An integer whose text is what String() of its value gives (not -0, no exponent, exact).
  plainInt = plain && i - s < 16 && !(neg && v === 0);
  return i;
}

/**
 * A value at b[i] checked and not built (value(..., false)), the common
 * kinds first, here rather than a call away: a string of characters that
 * need no escape, and an integer. Anything else goes to value().
 */
function skip(b: Buffer, i: number, end: number): number {
  const c = b[i];
  if (c === 34) {
    let j = i + 1;
    while (j < end && PLAIN[b[j]] !== 0) j++;
    return j < end && b[j] === 34 ? j + 1 : str(b, i + 1, end, false);
  }
  if (c >= 49 && c <= 57) {
    let j = i + 1;
    let d = 0;
    while (j < end && (d = b[j]) >= 48 && d <= 57) j++;
    // A fraction or an exponent: the whole number read by num().
    return d === 46 || d === 101 || d === 69 ? num(b, i, end, false) : j;
  }
  return value(b, i, end, false);
}

function value(b: Buffer, i: number, end: number, build: boolean): number {
  if (i >= end) return -1;
  const c = b[i];
  if (c === 34) return str(b, i + 1, end, build);
  if (c === 123) return obj(b, i, end, build);
  if (c === 91) return arr(b, i, end, build);
  if (c === 116 /* t */) {
    if (i + 4 > end || b[i + 1] !== 114 || b[i + 2] !== 117 || b[i + 3] !== 101) return -1;
    built = true;
    return i + 4;
  }
  if (c === 102 /* f */) {
    if (i + 5 > end || b[i + 1] !== 97 || b[i + 2] !== 108 || b[i + 3] !== 115 || b[i + 4] !== 101) return -1;
    built = false;
    return i + 5;
  }
  if (c === 110 /* n */) {
    if (i + 4 > end || b[i + 1] !== 117 || b[i + 2] !== 108 || b[i + 3] !== 108) return -1;
    built = null;
    return i + 4;
  }
  return num(b, i, end, build);
}

function obj(b: Buffer, i: number, end: number, build: boolean): number {
  if (++depth > MAX_DEPTH) return -1;
  const o: Record<string, unknown> | null = build ? {} : null;
  i++;
  if (i < end && b[i] === 125) {
    depth--;
    built = o;
    return i + 1;
  }
  for (;;) {
    if (i >= end || b[i] !== 34) return -1;
    const e = o ? keyOf(b, i + 1, end) : skip(b, i, end);
    if (e < 0 || e >= end || b[e] !== 58) return -1;
    let key = '';
    if (o) {
      key = built as string;
      // JSON.parse makes an own property of it; assigning it would set the prototype.
      if (key === '__proto__') return -1;
    }
    i = o ? value(b, e + 1, end, true) : skip(b, e + 1, end);
    if (i < 0 || i >= end) return -1;
    if (o) o[key] = built;
    const c = b[i++];
    if (c === 44) continue;
    if (c !== 125) return -1;
    depth--;
    built = o;
    return i;
  }
}

function arr(b: Buffer, i: number, end: number, build: boolean): number {
  if (++depth > MAX_DEPTH) return -1;
  const a: unknown[] | null = build ? [] : null;
  i++;
  if (i < end && b[i] === 93) {
    depth--;
    built = a;
    return i + 1;
  }
  for (;;) {
    i = a ? value(b, i, end, true) : skip(b, i, end);
    if (i < 0 || i >= end) return -1;
    if (a) a.push(built);
    const c = b[i++];
    if (c === 44) continue;
    if (c !== 93) return -1;
    depth--;
    built = a;
    return i;
  }
}

// ---------------------------------------------------------------- spans

/** What a located value is (FieldLocator.kind). */
export const ABSENT = 0;
/** A string of ASCII characters without escapes: its bytes are its text. */
export const STR = 1;
/** Any other string (escapes, or characters beyond ASCII). */
export const STR_OTHER = 2;
/** An integer whose text is String() of its value. */
export const INT = 3;
/** Any other number. */
export const NUM = 4;
export const TRUE = 5, FALSE = 6, NULL = 7, OBJECT = 8, ARRAY = 9;

/** One level of the paths a locator finds: a key's name, its slot (or -1), the level below it (or null). */
interface Level {
  names: Uint8Array[];
  slots: number[];
  below: (Level | null)[];
  table: Int16Array;
  mask: number;
  /** Every slot under this level, cleared when its object comes again (a repeated key: its last value counts). */
  under: number[];
}

/**
 * Where the values of some field paths (`src`, `process.pid`,
 * `process.parent.comm`) are in one line's bytes, and what kind of value
 * each is, without building any of them: for a stage that writes them out
 * as they are (ct-format's templates). It checks the whole line as
 * EventReader does and declines the same kinds of lines (escaped keys where
 * names are looked for, nesting deeper than MAX_DEPTH), and also a line
 * where a path goes through an array (`labels.0`); the caller then parses
 * it whole. value() gives a located field as JSON.parse of the line would.
 */
export class FieldLocator {
  /** Each path's slot, in the order given. */
  readonly slots: ReadonlyMap<string, number>;
  /** Per slot: ABSENT, STR, ... */
  readonly kind: Uint8Array;
  /** Per slot: the value's bytes in buf (a string's without its quotes). */
  readonly from: Int32Array;
  readonly to: Int32Array;
  /** The line's buffer (valid until the next locate()). */
  buf: Buffer = Buffer.alloc(0);
  private readonly top: Level;
  /** Two names of one hash at one level: every line takes the slow path. */
  private readonly slow: boolean;

  constructor(paths: readonly string[]) {
    const slots = new Map<string, number>();
    const mk = (): Level => ({ names: [], slots: [], below: [], table: new Int16Array(0), mask: 0, under: [] });
    const top = mk();
    for (const path of paths) {
      if (slots.has(path)) continue;
      const slot = slots.size;
      slots.set(path, slot);
      let level = top;
      const seg = path.split('.');
      for (let d = 0; d < seg.length; d++) {
        const name = seg[d];
        if (name === '__proto__' || name === '' || !/^[\x20-\x7e]+$/.test(name) || /["\\]/.test(name)) throw new Error(`locator: cannot find a field named ${JSON.stringify(name)}`);
        let k = level.names.findIndex((n) => Buffer.from(name, 'latin1').equals(n));
        if (k < 0) {
          k = level.names.length;
          level.names.push(Buffer.from(name, 'latin1'));
          level.slots.push(-1);
          level.below.push(null);
        }
        level.under.push(slot);
        if (d === seg.length - 1) level.slots[k] = slot;
        else level = level.below[k] ??= mk();
      }
    }
    let slow = false;
    const index = (l: Level) => {
      const table = slotTable(l.names, 8);
      if (table === null) slow = true;
      l.table = table ?? new Int16Array(1).fill(-1);
      l.mask = l.table.length - 1;
      for (const b of l.below) if (b) index(b);
    };
    index(top);
    this.slow = slow;
    this.top = top;
    this.slots = slots;
    this.kind = new Uint8Array(slots.size);
    this.from = new Int32Array(slots.size);
    this.to = new Int32Array(slots.size);
  }

  /** Find the paths in the JSON object buf[start, end); false when the line must take the slow path. */
  locate(buf: Buffer, start: number, end: number): boolean {
    if (this.slow || start >= end || buf[start] !== 123 || buf[end - 1] !== 125) return false;
    this.kind.fill(ABSENT);
    this.buf = buf;
    depth = 0;
    return this.object(buf, start, end, this.top) === end;
  }

  private object(b: Buffer, i: number, end: number, level: Level): number {
    if (++depth > MAX_DEPTH) return -1;
    i++;
    if (i < end && b[i] === 125) {
      depth--;
      return i + 1;
    }
    const kind = this.kind;
    for (;;) {
      if (i >= end || b[i] !== 34) return -1;
      const ks = ++i;
      let h = 0;
      let c = 0;
      while (i < end && PLAIN[(c = b[i])] !== 0) {
        h = (Math.imul(h, 31) + c) | 0;
        i++;
      }
      // An escape in a key could spell a name looked for: declined.
      if (i >= end || c !== 34) return -1;
      let k = level.table[h & level.mask];
      if (k >= 0 && !sameName(b, ks, i, level.names[k])) k = -1;
      if (++i >= end || b[i] !== 58) return -1;
      i++;
      if (k < 0) {
        i = skip(b, i, end);
        if (i < 0) return -1;
      } else {
        const below = level.below[k];
        const slot = level.slots[k];
        if (below) for (const s of below.under) kind[s] = ABSENT;
        if (i >= end) return -1;
        const vs = i;
        const c0 = b[i];
        let kd: number;
        if (c0 === 34) {
          // The common string first: ASCII, no escape.
          i++;
          while (i < end && PLAIN[b[i]] === 1) i++;
          if (i < end && b[i] === 34) {
            kd = STR;
            i++;
          } else {
            kd = STR_OTHER;
            i = str(b, vs + 1, end, false);
          }
        } else if (c0 === 123) {
          kd = OBJECT;
          i = below ? this.object(b, i, end, below) : obj(b, i, end, false);
        } else if (c0 === 91) {
          // A path through an array (an index): the slow path reads it.
          if (below) return -1;
          kd = ARRAY;
          i = arr(b, i, end, false);
        } else {
          i = value(b, i, end, false);
          kd = c0 === 116 ? TRUE : c0 === 102 ? FALSE : c0 === 110 ? NULL : plainInt ? INT : NUM;
        }
        if (i < 0) return -1;
        if (slot >= 0) {
          kind[slot] = kd;
          const q = kd === STR || kd === STR_OTHER ? 1 : 0;
          this.from[slot] = vs + q;
          this.to[slot] = i - q;
        }
      }
      if (i >= end) return -1;
      const c1 = b[i++];
      if (c1 === 44) continue;
      if (c1 !== 125) return -1;
      depth--;
      return i;
    }
  }

  /** The value at a slot, as JSON.parse of the line gives it (undefined when absent). */
  value(slot: number): unknown {
    const b = this.buf, f = this.from[slot], t = this.to[slot];
    switch (this.kind[slot]) {
      case STR: return b.toString('latin1', f, t);
      case STR_OTHER: return JSON.parse(b.toString('utf8', f - 1, t + 1));
      case INT: case NUM: return Number(b.toString('latin1', f, t));
      case TRUE: return true;
      case FALSE: return false;
      case NULL: return null;
      case OBJECT: case ARRAY: return JSON.parse(b.toString('utf8', f, t));
      default: return undefined;
    }
  }

  /** An INT slot's value, without making a string. */
  int(slot: number): number {
    const b = this.buf;
    let i = this.from[slot];
    const t = this.to[slot];
    const neg = b[i] === 45;
    if (neg) i++;
    let v = 0;
    for (; i < t; i++) v = v * 10 + (b[i] - 48);
    return neg ? -v : v;
  }

  /** Whether an ARRAY slot holds strings only. */
  allStrings(slot: number): boolean {
    const b = this.buf, t = this.to[slot];
    let i = this.from[slot] + 1;
    if (b[i] === 93) return true;
    for (;;) {
      if (b[i] !== 34) return false;
      i = str(b, i + 1, t, false);
      if (b[i++] !== 44) return true;
    }
  }
}

function hashBytes(name: Uint8Array): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name[i]) | 0;
  return h;
}
