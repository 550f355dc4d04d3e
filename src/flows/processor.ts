// ct-flows' line processor (see src/lines/): check each line, hand flow
// events to a FlowTracker, and pass every other record (overrun, stats,
// records of later stages) through byte for byte, in order. The records the
// tracker makes go out as they come, in input order with the lines around
// them. It keeps state across lines: it runs in one thread (`parallel:
// false`), and its options hold the live stage object, not plain data.
//
// Two paths, one result. JSON.parse of every line was nearly all of
// ct-flows' time, so a line is first offered as bytes to scan.ts, which
// takes lines in JSON.stringify's own form (what ctpipe writes) and gives
// the text of their fields; the fields the contract types are checked on
// those texts. Any line it declines, or whose fields are not all as they
// should be, goes the slow way, JSON.parse and the shared parseChecked, and
// that way alone decides whether a line is bad and says why.
import { isCountersRecord, isFlowEvent } from '../event.js';
import { compileCheck, parseChecked } from '../filter/validate.js';
import type { LineProcessor, Report } from '../lines/chunk.js';
import { FlowTracker, Changing, flowInputOf, icmpIdOf, tsMicros, KNOWN_FIELDS, HEAD_FIELDS, TAIL_FIELDS, NO_ICMP_ID, type FlowInput, type FlowOpening, type FlowTrackerOptions, tupleText } from './tracker.js';
import { Fields, KeyTable, scanLine, T_ARR, T_FALSE, T_NUM, T_OBJ, T_STR, T_TRUE } from './scan.js';
import { tsMicrosAt } from './time.js';
import { TextBuffer } from '../lines/text-buffer.js';

/** The contract's fields ct-flows reads or copies into its records' heads, type-checked on flow events. */
const FIELDS = ['ts', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply', 'state', 'status', 'counters', 'start', 'stop', 'host', 'dump'];

// Slots of the scanner's key table: the tracker's known fields, in its order.
const KEYS = new KeyTable(KNOWN_FIELDS);
const slot = (name: string) => KNOWN_FIELDS.indexOf(name);
const S = {
  ts: slot('ts'), event: slot('event'), id: slot('id'), family: slot('family'), proto: slot('proto'), src: slot('src'),
  sport: slot('sport'), dst: slot('dst'), dport: slot('dport'), reply: slot('reply'), state: slot('state'), status: slot('status'),
  counters: slot('counters'), mark: slot('mark'), labels: slot('labels'), helper: slot('helper'), secmark: slot('secmark'),
  start: slot('start'), stop: slot('stop'), icmp: slot('icmp'), host: slot('host'), dump: slot('dump'),
};
const HEAD_SLOTS = Int16Array.from(HEAD_FIELDS.map(slot));
const TAIL_SLOTS = Int16Array.from(TAIL_FIELDS.map(slot));
/** Fields that must be strings when present (the others of FIELDS are checked one by one). */
const STRING_SLOTS = Int16Array.from(['family', 'proto', 'src', 'dst', 'state', 'start', 'stop', 'host'].map(slot));

const EV_COUNTERS = Buffer.from('"counters"');
const EV_NEW = Buffer.from('"new"'), EV_UPDATE = Buffer.from('"update"'), EV_DESTROY = Buffer.from('"destroy"');

function equalAt(buf: Uint8Array, s: number, e: number, x: Uint8Array): boolean {
  if (e - s !== x.length) return false;
  for (let i = 0; i < x.length; i++) if (buf[s + i] !== x[i]) return false;
  return true;
}

/** A port: a plain whole number 0-65535 (anything else is left to the slow path's check and message). */
function isPort(f: Fields, i: number): boolean {
  return f.type[i] === T_NUM && f.int[i] >= 0 && f.int[i] <= 65535;
}

/**
 * Recent distinct texts of one field (`"ESTABLISHED"`, a status list, a
 * host), found by their bytes: an UPDATE's state and status are nearly
 * always one of a few, so they cost no new string, and open flows share them.
 */
class Recent {
  private texts: string[] = [];
  private next = 0;

  constructor(private readonly size: number) {}

  get(buf: Uint8Array, s: number, e: number): string {
    const n = e - s;
    const texts = this.texts;
    for (let k = 0; k < texts.length; k++) {
      const t = texts[k];
      if (t.length !== n) continue;
      let i = 0;
      while (i < n && t.charCodeAt(i) === buf[s + i]) i++;
      if (i === n) return t;
    }
    const t = latin1(buf, s, e);
    if (texts.length < this.size) texts.push(t);
    else {
      texts[this.next] = t;
      this.next = (this.next + 1) % this.size;
    }
    return t;
  }
}

/** A fresh string of ASCII bytes (never a view into a larger string). */
function latin1(buf: Uint8Array, s: number, e: number): string {
  return latin1Slice.call(buf as Buffer, s, e);
}
// Buffer's own method under toString('latin1', s, e), without toString's
// argument handling, which cost as much as the copy for these short strings.
const latin1Slice: (this: Buffer, s: number, e: number) => string =
  (Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, s: number, e: number) => string }).latin1Slice ??
  function (this: Buffer, s: number, e: number) { return this.toString('latin1', s, e); };

/** One line the scanner took, as the tracker's FlowInput: read from the line's bytes while the tracker takes it. */
class ScannedEvent extends Changing implements FlowInput {
  event: 'new' | 'update' | 'destroy' = 'new';
  id = 0;
  host: string | undefined = undefined;
  dump = false;
  icmp: unknown = undefined;
  buf: Uint8Array = EMPTY;
  tsBuf: Uint8Array = EMPTY;
  tsStart = 0;
  tsEnd = 0;
  /** The line: buf[at, end). */
  at = 0;
  end = 0;
  /** Field indexes (see Fields) of ts and the tuple, -1 when absent. */
  ti = -1;
  proto = -1;
  src = -1;
  sport = -1;
  dst = -1;
  dport = -1;

  constructor(private readonly f: Fields) {
    super();
  }

  sameTuple(t: string, a: number, e: number): boolean {
    // The fields' text in the line, `"proto":"tcp"`, each after a comma but the first (see tupleText()).
    const f = this.f, b = this.buf;
    // Next to each other, as ctpipe writes them: compared as one run of bytes.
    const run = this.tupleRun();
    if (run >= 0) {
      const n = f.end[this.dport] - run;
      if (n !== e - a) return false;
      for (let k = 0; k < n; k++) if (t.charCodeAt(a + k) !== b[run + k]) return false;
      return true;
    }
    let at = a;
    for (let k = 0; k < 5; k++) {
      const i = k === 0 ? this.proto : k === 1 ? this.src : k === 2 ? this.sport : k === 3 ? this.dst : this.dport;
      if (i < 0) continue;
      if (at > a && t.charCodeAt(at++) !== 44) return false;
      const end = f.end[i];
      for (let j = f.keyStart[i]; j < end; j++) if (t.charCodeAt(at++) !== b[j]) return false;
    }
    return at === e;
  }

  opening(o: FlowOpening): void {
    // Copies of the parts the flow keeps, not the line: it also holds
    // fields the flow does not need (event, timeout, its state and status).
    // Gathered as bytes, then made one string.
    const f = this.f, order = this.order;
    const need = 2 * (this.end - this.at) + 16;
    if (this.scratch.length < need) this.scratch = Buffer.allocUnsafeSlow(Math.max(need, this.scratch.length * 2));
    let n = 0;
    for (let k = 0; k < HEAD_SLOTS.length; k++) if (f.index(HEAD_SLOTS[k]) >= 0) order[n++] = f.index(HEAD_SLOTS[k]);
    this.tupleAt = this.tupleEnd = -1;
    let p = this.pieces(n, 0);
    o.headEnd = p;
    o.tupleAt = this.tupleAt < 0 ? 0 : this.tupleAt;
    o.tupleEnd = this.tupleAt < 0 ? 0 : this.tupleEnd;
    n = 0;
    for (let k = 0; k < TAIL_SLOTS.length; k++) if (f.index(TAIL_SLOTS[k]) >= 0) order[n++] = f.index(TAIL_SLOTS[k]);
    // Then the fields the tracker does not know, in their order (none is an array index or __proto__: the scanner declines those).
    for (let i = 0; i < f.count; i++) if (f.slot[i] < 0) order[n++] = i;
    p = this.pieces(n, p);
    o.tailEnd = p;
    p = this.copy(f.start[this.ti], f.end[this.ti], p);
    o.tsEnd = p;
    o.text = latin1(this.scratch, 0, p);
  }

  /**
   * Where the tuple's fields start when all five are there one after the
   * other, in tupleText()'s order (how ctpipe writes them): their text in
   * the line is the tuple's text, up to dport's end. Else -1.
   */
  private tupleRun(): number {
    const f = this.f;
    if (this.proto < 0 || this.src < 0 || this.sport < 0 || this.dst < 0 || this.dport < 0) return -1;
    return f.keyStart[this.src] - 1 === f.end[this.proto] && f.keyStart[this.sport] - 1 === f.end[this.src] &&
      f.keyStart[this.dst] - 1 === f.end[this.sport] && f.keyStart[this.dport] - 1 === f.end[this.dst] ? f.keyStart[this.proto] : -1;
  }

  /** Field indexes, for opening(). */
  private readonly order = new Int16Array(128);
  /** Where opening() gathers a flow's bytes. */
  private scratch = Buffer.allocUnsafeSlow(1 << 14);
  /** The tuple's fields in the scratch head, from pieces(): where the first starts and the last ends (-1: none). */
  private tupleAt = -1;
  private tupleEnd = -1;

  /** buf[s, e) into the scratch at p; returns where it ends. */
  private copy(s: number, e: number, p: number): number {
    const b = this.buf, t = this.scratch;
    if (e - s < 32) {
      for (let i = s; i < e; i++) t[p++] = b[i];
      return p;
    }
    t.set(b.subarray(s, e), p);
    return p + e - s;
  }

  /**
   * `,"name":value` of the fields order[0, n), in that order, copied from
   * the line into the scratch at p: one copy for each run of them next to
   * each other in it. Returns where they end. Notes where the tuple's fields are.
   */
  private pieces(n: number, p: number): number {
    const f = this.f, b = this.buf;
    let runStart = -1, runEnd = -1, runDst = p;
    for (let k = 0; k < n; k++) {
      const i = this.order[k];
      const ks = f.keyStart[i];
      // The comma before the key is the line's, unless the field comes first (after the `{`).
      const comma = b[ks - 1] === 44;
      if (!(comma && ks - 1 === runEnd)) {
        if (runStart >= 0) p = this.copy(runStart, runEnd, p);
        if (comma) {
          runStart = ks - 1;
          runDst = p;
        } else {
          this.scratch[p++] = 44;
          runStart = ks;
          runDst = p;
        }
      }
      runEnd = f.end[i];
      const sl = f.slot[i];
      if (sl >= S.proto && sl <= S.dport) {
        if (this.tupleAt < 0) this.tupleAt = runDst + ks - runStart;
        this.tupleEnd = runDst + runEnd - runStart;
      }
    }
    if (runStart >= 0) p = this.copy(runStart, runEnd, p);
    return p;
  }
}

const EMPTY = Buffer.alloc(0);

const isCount = (c: unknown) => c !== null && typeof c === 'object' && Number.isFinite((c as any).packets) && Number.isFinite((c as any).bytes);
const isPortValue = (v: unknown) => v === undefined || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535);

/** What is wrong with a `counters` record, for ct-flows to fold it (null: nothing). */
function countersProblem(ev: Record<string, any>): string | null {
  if (typeof ev.ts !== 'string' || tsMicros(ev.ts) === undefined) return 'counters record: ts: not an ISO 8601 timestamp';
  if (!Number.isInteger(ev.id) || ev.id < 0) return 'counters record: id: expected a whole number';
  const c = ev.counters;
  if (c === null || typeof c !== 'object' || !isCount(c.orig) || !isCount(c.reply)) return 'counters record: counters: expected {"orig":{"packets","bytes"},"reply":{...}}';
  for (const k of ['proto', 'src', 'dst', 'state', 'host']) if (ev[k] !== undefined && typeof ev[k] !== 'string') return `counters record: ${k}: expected a string`;
  if (!isPortValue(ev.sport) || !isPortValue(ev.dport)) return 'counters record: sport, dport: expected port numbers (0-65535)';
  if (ev.status !== undefined && !(Array.isArray(ev.status) && ev.status.every((x: unknown) => typeof x === 'string'))) return 'counters record: status: expected an array of strings';
  return null;
}

export class FlowsStage implements LineProcessor {
  readonly tracker: FlowTracker;
  /** The records the tracker writes, as bytes. */
  private readonly out = new TextBuffer(1 << 16);
  private readonly check = compileCheck(FIELDS);
  private readonly fields = new Fields(KNOWN_FIELDS.length, S.reply, S.icmp);
  private readonly scanned = new ScannedEvent(this.fields);
  /** Lines taken by the fast path and by the slow one (for tests and the bench). */
  readonly paths = { fast: 0, slow: 0 };

  constructor(o: Omit<FlowTrackerOptions, 'onRecord'>) {
    this.tracker = new FlowTracker({ ...o, out: this.out });
  }

  /** The records made since the last call, as NDJSON (UTF-8, empty when none); the Buffer is the caller's. */
  take(): Buffer {
    return this.out.take();
  }

  /** Records the last line completed (processChunk copies them at once), or null. */
  private made(): Uint8Array | null {
    return this.out.length ? this.out.view() : null;
  }

  /** Records first, then the line itself. */
  private after(buf: Uint8Array, start: number, end: number): true | Uint8Array {
    if (!this.out.length) return true;
    this.out.addRange(buf, start, end);
    this.out.addByte(10);
    return this.out.view();
  }

  /** The fast path: undefined when the line must take the slow one, line(). */
  lineBytes(buf: Buffer, start: number, end: number): true | Uint8Array | null | undefined {
    const f = this.fields;
    if (!scanLine(buf, start, end, KEYS, f)) return undefined;
    const ei = f.index(S.event);
    if (ei < 0 || f.type[ei] !== T_STR) return undefined;
    const es = f.start[ei], ee = f.end[ei];
    const kind = equalAt(buf, es, ee, EV_NEW) ? 'new' : equalAt(buf, es, ee, EV_UPDATE) ? 'update' : equalAt(buf, es, ee, EV_DESTROY) ? 'destroy' : null;
    const ti = f.index(S.ts);
    // ct-events' counters of open flows: few, taken the slow way.
    if (kind === null && equalAt(buf, es, ee, EV_COUNTERS)) return undefined;
    if (kind === null) {
      // Anything else passes as it is (it only has to be a JSON object with an `event` string). Its time still moves the stream clock.
      if (ti >= 0 && f.type[ti] === T_STR) {
        const us = f.flag[ti] ? tsMicros(JSON.parse(latin1(buf, f.start[ti], f.end[ti]))) : tsMicrosAt(buf, f.start[ti] + 1, f.end[ti] - 1);
        if (us !== undefined) this.tracker.at(us);
      }
      this.paths.fast++;
      return this.after(buf, start, end);
    }
    // A flow event: the fields ct-flows reads must be of their types, else the slow path says which is not.
    if (ti < 0 || f.type[ti] !== T_STR || f.flag[ti]) return undefined;
    const us = tsMicrosAt(buf, f.start[ti] + 1, f.end[ti] - 1);
    if (us === undefined) return undefined;
    const ii = f.index(S.id);
    if (ii < 0 || f.int[ii] < 0) return undefined;
    for (let k = 0; k < STRING_SLOTS.length; k++) {
      const i = f.index(STRING_SLOTS[k]);
      if (i >= 0 && f.type[i] !== T_STR) return undefined;
    }
    const spi = f.index(S.sport), dpi = f.index(S.dport);
    if ((spi >= 0 && !isPort(f, spi)) || (dpi >= 0 && !isPort(f, dpi))) return undefined;
    const sti = f.index(S.status);
    if (sti >= 0 && (f.type[sti] !== T_ARR || !f.flag[sti])) return undefined;
    const ci = f.index(S.counters);
    if (ci >= 0 && f.type[ci] !== T_OBJ) return undefined;
    const di = f.index(S.dump);
    if (di >= 0 && f.type[di] !== T_TRUE && f.type[di] !== T_FALSE) return undefined;
    const ri = f.index(S.reply);
    if (ri >= 0 && (f.type[ri] !== T_OBJ || f.tupleBad)) return undefined;
    const hi = f.index(S.host);
    if (hi >= 0 && f.flag[hi]) return undefined;
    const ci2 = f.index(S.icmp);
    // What icmp.id is compared by (see icmpIdOf).
    const icmp = ci2 < 0 ? undefined : f.icmpIdStart < 0 ? NO_ICMP_ID : buf[f.icmpIdStart] === 123 || buf[f.icmpIdStart] === 91 ? icmpIdOf({ id: {} }) : latin1(buf, f.icmpIdStart, f.icmpIdEnd);

    this.paths.fast++;
    const e = this.scanned;
    e.buf = e.tsBuf = buf;
    e.tsStart = f.start[ti];
    e.tsEnd = f.end[ti];
    e.at = start;
    e.end = end;
    e.event = kind;
    e.ti = ti;
    e.id = f.int[ii];
    e.host = hi < 0 ? undefined : this.hosts.get(buf, f.start[hi] + 1, f.end[hi] - 1);
    e.dump = di >= 0 && f.type[di] === T_TRUE;
    e.proto = f.index(S.proto);
    e.src = f.index(S.src);
    e.sport = spi;
    e.dst = f.index(S.dst);
    e.dport = dpi;
    e.icmp = icmp;
    const r = this.recent;
    e.state = this.text(buf, f.index(S.state), r.state);
    e.status = this.text(buf, sti, r.status);
    e.counters = this.text(buf, ci, null);
    e.mark = this.text(buf, f.index(S.mark), r.mark);
    e.labels = this.text(buf, f.index(S.labels), r.labels);
    e.helper = this.text(buf, f.index(S.helper), r.helper);
    e.secmark = this.text(buf, f.index(S.secmark), r.secmark);
    e.start = this.text(buf, f.index(S.start), null);
    e.stop = this.text(buf, f.index(S.stop), null);
    this.tracker.event(e, us);
    e.buf = e.tsBuf = EMPTY;
    return this.made();
  }

  private readonly hosts = new Recent(4);
  private readonly recent = { state: new Recent(8), status: new Recent(8), mark: new Recent(4), labels: new Recent(4), helper: new Recent(4), secmark: new Recent(4) };

  /** The text of field i (undefined for -1): one of the recent ones, or a fresh string. */
  private text(buf: Uint8Array, i: number, recent: Recent | null): string | undefined {
    if (i < 0) return undefined;
    const f = this.fields;
    return recent ? recent.get(buf, f.start[i], f.end[i]) : latin1(buf, f.start[i], f.end[i]);
  }

  /** The slow path: any line, parsed. */
  line(text: string, report: Report): true | Uint8Array | null {
    this.paths.slow++;
    const ev = parseChecked(text, this.check, report);
    if (!ev) return null;
    if (isFlowEvent(ev)) {
      if (ev.ts === undefined) return this.bad(report, 'no "ts" field');
      const us = tsMicros(ev.ts);
      if (us === undefined) return this.bad(report, `ts: not an ISO 8601 timestamp: ${JSON.stringify(ev.ts).slice(0, 60)}`);
      if (ev.id === undefined) return this.bad(report, 'no "id" field: a flow event without its conntrack id cannot be paired');
      if (!Number.isInteger(ev.id) || ev.id < 0) return this.bad(report, `id: expected a whole number, got ${ev.id}`);
      this.tracker.event(flowInputOf(ev), us);
      return this.made();
    }
    if (isCountersRecord(ev)) {
      const why = countersProblem(ev);
      if (why) return this.bad(report, why);
      this.tracker.counters(flowInputOf(ev), tsMicros(ev.ts)!);
      return this.made();
    }
    // Anything else passes as it is. Its time (a stats heartbeat, say) still moves the stream clock.
    if (typeof ev.ts === 'string') {
      const us = tsMicros(ev.ts);
      if (us !== undefined) this.tracker.at(us);
    }
    if (!this.out.length) return true;
    this.out.add(text);
    this.out.addByte(10);
    return this.out.view();
  }

  private bad(report: Report, message: string): null {
    report({ kind: 'bad', message });
    return null;
  }
}

/** For runLines: the stage itself (options: `{ stage }`). */
export function createProcessor(o: { stage: FlowsStage }): LineProcessor {
  return o.stage;
}
