// A strict scanner for one NDJSON line's bytes, ct-flows' fast path. It
// accepts only JSON in the exact form JSON.stringify writes: ASCII, no
// whitespace, no escapes JSON.stringify would not write (`\/`, `\u0041`),
// numbers in their shortest form, no duplicate keys and no keys that are
// array indices (both reorder or drop fields when parsed and written again).
// That is the form ct-events and every ctpipe stage write. A line it
// accepts is valid JSON, and the text of each of its values is what
// JSON.stringify(JSON.parse(...)) of that value gives, so values can be
// copied into records as text. It never calls a line bad: anything else
// it declines (scanLine returns false) and the caller parses the line with
// JSON.parse, so what is valid and what error a bad line gets stay
// JSON.parse's. Reads bytes, allocates nothing on the lines it accepts
// (bar the rare number not in plain integer form); no I/O.
import { slotTable } from '../event/reader.js';

/** Kinds of value, by their first byte. */
export const T_STR = 1, T_NUM = 2, T_OBJ = 3, T_ARR = 4, T_TRUE = 5, T_FALSE = 6, T_NULL = 7;

/** Top-level fields a line may have at most for the fast path. */
const MAX_FIELDS = 128;
/** Nesting the fast path takes; deeper lines go to JSON.parse. */
const MAX_DEPTH = 32;

/**
 * The top-level fields of the line last accepted, in input order. `slot`
 * is the field's index in the `names` given to the scanner, -1 for others.
 * Offsets are into the buffer scanned.
 */
export class Fields {
  count = 0;
  readonly slot = new Int16Array(MAX_FIELDS);
  /** Offset of the key's opening quote. */
  readonly keyStart = new Int32Array(MAX_FIELDS);
  /** Value: first byte, and one past its last. */
  readonly start = new Int32Array(MAX_FIELDS);
  readonly end = new Int32Array(MAX_FIELDS);
  readonly type = new Uint8Array(MAX_FIELDS);
  /** A string with an escape in it; an array of strings only; unused for others. */
  readonly flag = new Uint8Array(MAX_FIELDS);
  /** A number written as a plain whole number 0 .. 10^15-1: its value; else -1. */
  readonly int = new Float64Array(MAX_FIELDS);
  /** Field index of each named slot in this line, valid where slotGen is gen. */
  readonly at: Int16Array;
  readonly slotGen: Int32Array;
  gen = 0;
  /** The tuple slot's object has src, sport, dst, dport of the wrong types (ct-event(5): strings and ports). */
  tupleBad = false;
  /** The icmp slot's object's `id` value (offsets), start -1 when it has none. */
  icmpIdStart = -1;
  icmpIdEnd = -1;

  /**
   * `slots` names; `tupleSlot` and `icmpSlot` are the slots of `reply` and
   * `icmp`, whose members are looked at as they are scanned.
   */
  constructor(slots: number, readonly tupleSlot = -1, readonly icmpSlot = -1) {
    this.at = new Int16Array(slots);
    this.slotGen = new Int32Array(slots);
  }

  /** Field index of slot `s` in the line last accepted, or -1 when the line has no such field. */
  index(s: number): number {
    return this.slotGen[s] === this.gen ? this.at[s] : -1;
  }
}

// What the scanning functions hand back besides an offset, and their scratch space.
let depth = 0;
/** Hash of the last key scanned (its bytes between the quotes). */
let keyHash = 0;
/** Set by the last string scanned when it had an escape; by the last array when all its items are strings. */
let sawFlag = 0;
/** Key hashes of the objects being scanned, innermost last (duplicate check). */
const keyStack = new Int32Array(4096);
const keyStackPos = new Int32Array(4096);
/** Where each key's value starts. */
const keyStackValue = new Int32Array(4096);
/** Members of the object obj() returned from last: after a top-level value, its own members are keyStack[0, members). */
let members = 0;

/** 1 for the bytes a string holds as they are: ASCII from space up, but `"` and `\\`. */
const PLAIN = new Uint8Array(256);
for (let c = 32; c < 128; c++) PLAIN[c] = c === 34 || c === 92 ? 0 : 1;

/** Value string from b[i] (just past the opening quote): offset past the closing quote, or -1. */
function str(b: Uint8Array, i: number, lim: number): number {
  sawFlag = 0;
  for (;;) {
    while (i < lim && PLAIN[b[i]] === 1) i++;
    if (i >= lim) return -1;
    const c = b[i++];
    if (c === 34) return i;
    if (c !== 92) return -1; // a control character, or not ASCII
    i = escape(b, i, lim);
    if (i < 0) return -1;
    sawFlag = 1;
  }
}

/** A key from b[i] (just past the opening quote), hashed into keyHash. */
function key(b: Uint8Array, i: number, lim: number): number {
  let h = 0;
  sawFlag = 0;
  for (;;) {
    let c = 0;
    while (i < lim && PLAIN[(c = b[i])] === 1) {
      h = (Math.imul(h, 31) + c) | 0;
      i++;
    }
    if (i >= lim) return -1;
    i++;
    if (c === 34) {
      keyHash = h;
      return i;
    }
    if (c !== 92) return -1;
    const j = escape(b, i, lim);
    if (j < 0) return -1;
    h = (Math.imul(h, 31) + 92) | 0;
    while (i < j) h = (Math.imul(h, 31) + b[i++]) | 0;
    sawFlag = 1;
  }
}

const HEX = (c: number) => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1);

/**
 * The escape after a backslash at b[i]: offset past it when it is one
 * JSON.stringify writes (`\" \\ \b \f \n \r \t`, and `\u00xx` in lower case
 * for the other control characters), else -1.
 */
function escape(b: Uint8Array, i: number, lim: number): number {
  if (i >= lim) return -1;
  const e = b[i];
  if (e === 34 || e === 92 || e === 110 || e === 116 || e === 114 || e === 98 || e === 102) return i + 1;
  if (e !== 117 || i + 5 > lim || b[i + 1] !== 48 || b[i + 2] !== 48) return -1;
  const hi = HEX(b[i + 3]), lo = HEX(b[i + 4]);
  if (hi < 0 || hi > 1 || lo < 0) return -1;
  const v = hi * 16 + lo;
  return v === 8 || v === 9 || v === 10 || v === 12 || v === 13 ? -1 : i + 5;
}

/** Value of the last plain whole number scanned (-1 when it was not one). */
let intValue = -1;

const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** A number at b[i]: offset past it, or -1 when it is not a number in JSON.stringify's form. */
function num(b: Uint8Array, i: number, lim: number): number {
  const s = i;
  let c = b[i];
  let neg = false;
  if (c === 45) {
    neg = true;
    c = ++i < lim ? b[i] : 0;
  }
  let v = 0;
  if (c === 48) i++;
  else if (c >= 49 && c <= 57) {
    while (i < lim && (c = b[i]) >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      i++;
    }
  } else return -1;
  c = i < lim ? b[i] : 0;
  const digits = i - s - (neg ? 1 : 0);
  if (c === 46 || c === 101 || c === 69 || (c >= 48 && c <= 57) || digits > 15) return general(b, s, lim);
  if (neg) {
    if (v === 0) return -1; // -0: JSON.stringify writes 0
    intValue = -1;
  } else intValue = v;
  return i;
}

/** A number with a fraction, an exponent or many digits: canonical when String(Number(text)) gives it back. */
function general(b: Uint8Array, s: number, lim: number): number {
  let i = s;
  while (i < lim) {
    const c = b[i];
    if ((c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69) i++;
    else break;
  }
  let t = '';
  for (let j = s; j < i; j++) t += String.fromCharCode(b[j]);
  if (!NUMBER.test(t) || String(Number(t)) !== t) return -1;
  intValue = -1;
  return i;
}

/** Any value at b[i]: offset past it, or -1. */
function value(b: Uint8Array, i: number, lim: number, top: number): number {
  const c = b[i];
  if (c === 34) return str(b, i + 1, lim);
  if (c === 123) return obj(b, i, lim, top);
  if (c === 91) return arr(b, i, lim, top);
  if (c === 116) return i + 4 <= lim && b[i + 1] === 114 && b[i + 2] === 117 && b[i + 3] === 101 ? i + 4 : -1;
  if (c === 102) return i + 5 <= lim && b[i + 1] === 97 && b[i + 2] === 108 && b[i + 3] === 115 && b[i + 4] === 101 ? i + 5 : -1;
  if (c === 110) return i + 4 <= lim && b[i + 1] === 117 && b[i + 2] === 108 && b[i + 3] === 108 ? i + 4 : -1;
  return num(b, i, lim);
}

/** An array at b[i]; sawFlag after it: all its items are strings. */
function arr(b: Uint8Array, i: number, lim: number, top: number): number {
  if (++depth > MAX_DEPTH) return -1;
  i++;
  let strings = 1;
  if (i < lim && b[i] === 93) {
    depth--;
    sawFlag = 1;
    return i + 1;
  }
  for (;;) {
    if (i >= lim) return -1;
    if (b[i] !== 34) strings = 0;
    i = value(b, i, lim, top);
    if (i < 0 || i >= lim) return -1;
    const c = b[i++];
    if (c === 44) continue;
    if (c !== 93) return -1;
    depth--;
    sawFlag = strings;
    return i;
  }
}

/**
 * A key at b[i] (its opening quote) of an object whose keys so far are
 * keyStack[from..top): offset past it, or -1 when it is a duplicate, looks
 * like an array index, or is not in canonical form.
 */
function objKey(b: Uint8Array, i: number, lim: number, from: number, top: number, seen: number): number {
  if (i >= lim || b[i] !== 34) return -1;
  const c0 = i + 1 < lim ? b[i + 1] : 0;
  if (c0 >= 48 && c0 <= 57) return -1; // "0", "42": JSON.parse puts such keys first
  const e = key(b, i + 1, lim);
  if (e < 0) return -1;
  const h = keyHash;
  // `seen` has a bit for each key so far (by hash): the keys are compared only when the bit is set.
  if (seen & (1 << (h & 31))) {
    for (let j = from; j < top; j++) {
      if (keyStack[j] === h && sameBytes(b, keyStackPos[j], i, e - i)) return -1; // a duplicate: JSON.parse keeps the last
    }
  }
  return e;
}

function sameBytes(b: Uint8Array, a: number, c: number, n: number): boolean {
  if (b[a + n - 1] !== 34) return false; // the other key is longer or shorter
  for (let k = 0; k < n; k++) if (b[a + k] !== b[c + k]) return false;
  return true;
}

function obj(b: Uint8Array, i: number, lim: number, from: number): number {
  if (++depth > MAX_DEPTH) return -1;
  i++;
  if (i < lim && b[i] === 125) {
    depth--;
    members = 0;
    return i + 1;
  }
  let top = from;
  let seen = 0;
  for (;;) {
    const ks = i;
    i = objKey(b, i, lim, from, top, seen);
    if (i < 0 || top >= keyStack.length) return -1;
    seen |= 1 << (keyHash & 31);
    keyStack[top] = keyHash;
    keyStackPos[top] = ks;
    if (i >= lim || b[i++] !== 58) return -1;
    keyStackValue[top++] = i;
    i = value(b, i, lim, top);
    if (i < 0 || i >= lim) return -1;
    const c = b[i++];
    if (c === 44) continue;
    if (c !== 125) return -1;
    depth--;
    members = top - from;
    return i;
  }
}

/** Top-level key names -> slot, found by hash then checked byte by byte. */
export class KeyTable {
  private readonly mask: number;
  private readonly table: Int16Array;
  private readonly bytes: Uint8Array[];

  constructor(readonly names: readonly string[]) {
    this.bytes = names.map((n) => Buffer.from(`"${n}"`, 'latin1'));
    // The reader's slot table, over the names without their quotes (as find() is given their hash).
    const table = slotTable(names.map((n) => Buffer.from(n, 'latin1')), 64);
    if (table === null) throw new Error(`flows: two known field names of one hash (${names.join(', ')})`);
    this.table = table;
    this.mask = table.length - 1;
  }

  /** Slot of the key b[ks..ke) (quotes included), hashed h; -1 when it is none of the names. */
  find(buf: Uint8Array, ks: number, ke: number, h: number): number {
    const s = this.table[h & this.mask];
    if (s < 0) return -1;
    const n = this.bytes[s];
    if (n.length !== ke - ks) return -1;
    for (let k = 1; k < n.length - 1; k++) if (buf[ks + k] !== n[k]) return -1;
    return s;
  }
}

/**
 * The object value just scanned, ending at `end`, has its src and dst
 * strings and its sport and dport ports (validate.ts' TUPLE), where present.
 */
function tupleOk(b: Uint8Array, end: number): boolean {
  for (let j = 0; j < members; j++) {
    const ks = keyStackPos[j], vs = keyStackValue[j];
    const ve = j + 1 < members ? keyStackPos[j + 1] - 1 : end - 1;
    const n = vs - 1 - ks;
    if (n === 5 && ((b[ks + 1] === 115 && b[ks + 2] === 114 && b[ks + 3] === 99) || (b[ks + 1] === 100 && b[ks + 2] === 115 && b[ks + 3] === 116))) {
      if (b[vs] !== 34) return false; // "src", "dst"
    } else if (n === 7 && (b[ks + 1] === 115 || b[ks + 1] === 100) && b[ks + 2] === 112 && b[ks + 3] === 111 && b[ks + 4] === 114 && b[ks + 5] === 116) {
      const v = plainInt(b, vs, ve); // "sport", "dport"
      if (v < 0 || v > 65535) return false;
    }
  }
  return true;
}

/** The `id` member of the object value just scanned, ending at `end`, into f. */
function icmpId(b: Uint8Array, end: number, f: Fields): void {
  for (let j = 0; j < members; j++) {
    const ks = keyStackPos[j], vs = keyStackValue[j];
    if (vs - 1 - ks === 4 && b[ks + 1] === 105 && b[ks + 2] === 100) {
      f.icmpIdStart = vs;
      f.icmpIdEnd = j + 1 < members ? keyStackPos[j + 1] - 1 : end - 1;
    }
  }
}

const PROTO = Buffer.from('"__proto__"', 'latin1');

/**
 * Scan buf[start, end) as one JSON object in JSON.stringify's form, and
 * fill `f` with its top-level fields; false when the line is not in that
 * form (then nothing about it is known: parse it).
 */
export function scanLine(buf: Uint8Array, start: number, end: number, keys: KeyTable, f: Fields): boolean {
  depth = 0;
  const gen = ++f.gen;
  f.tupleBad = false;
  f.icmpIdStart = f.icmpIdEnd = -1;
  let i = start;
  if (i >= end || buf[i] !== 123) return false;
  i++;
  let n = 0;
  if (i < end && buf[i] === 125) {
    f.count = 0;
    return i + 1 === end;
  }
  for (;;) {
    if (n >= MAX_FIELDS || i >= end || buf[i] !== 34) return false;
    const ks = i;
    const c0 = i + 1 < end ? buf[i + 1] : 0;
    if (c0 >= 48 && c0 <= 57) return false;
    i = key(buf, i + 1, end);
    if (i < 0) return false;
    const slot = keys.find(buf, ks, i, keyHash);
    if (slot >= 0) {
      if (f.slotGen[slot] === gen) return false; // a duplicate
      f.slotGen[slot] = gen;
      f.at[slot] = n;
    } else {
      // Not a name the caller knows: rare, so compared with the others one by one.
      if (i - ks === PROTO.length && sameAs(buf, ks, PROTO)) return false; // JSON.parse makes an own __proto__, assigning it does not
      for (let j = 0; j < n; j++) {
        if (f.slot[j] < 0 && f.start[j] - 1 - f.keyStart[j] === i - ks && sameKey(buf, f.keyStart[j], ks, i - ks)) return false;
      }
    }
    if (i >= end || buf[i] !== 58) return false;
    i++;
    f.keyStart[n] = ks;
    f.slot[n] = slot;
    f.start[n] = i;
    const c = i < end ? buf[i] : 0;
    intValue = -1;
    i = value(buf, i, end, 0);
    if (i < 0) return false;
    if (c === 123 && slot >= 0) {
      if (slot === f.tupleSlot) f.tupleBad = !tupleOk(buf, i);
      else if (slot === f.icmpSlot) icmpId(buf, i, f);
    }
    f.end[n] = i;
    f.type[n] = c === 34 ? T_STR : c === 123 ? T_OBJ : c === 91 ? T_ARR : c === 116 ? T_TRUE : c === 102 ? T_FALSE : c === 110 ? T_NULL : T_NUM;
    f.flag[n] = sawFlag;
    f.int[n] = c === 34 || c === 123 || c === 91 ? -1 : intValue;
    n++;
    if (i >= end) return false;
    const d = buf[i++];
    if (d === 44) continue;
    if (d !== 125 || i !== end) return false;
    f.count = n;
    return true;
  }
}

function sameAs(buf: Uint8Array, at: number, x: Uint8Array): boolean {
  for (let k = 0; k < x.length; k++) if (buf[at + k] !== x[k]) return false;
  return true;
}

function sameKey(buf: Uint8Array, a: number, c: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (buf[a + k] !== buf[c + k]) return false;
  return true;
}

/** A plain whole number 0 .. 10^15-1 at buf[start, end), or -1. */
export function plainInt(buf: Uint8Array, start: number, end: number): number {
  if (end - start > 15 || end <= start) return -1;
  if (buf[start] === 48) return end - start === 1 ? 0 : -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i] - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}
