// Pairing a flow's conntrack events into one `flow` record (ct-event(5)):
// NEW opens a flow, UPDATE refreshes its state and counters, DESTROY closes
// it. Flows are keyed by the kernel's conntrack id (and `host`, so streams
// of several hosts can be merged), guarded by the original tuple, because
// the kernel reuses an id once its flow is gone. Owns the open-flow table,
// its bound, interim reports and the stream clock; does no I/O, never reads
// `process`, and is handed checked events (see processor.ts).
//
// Values are kept and compared as their JSON text, the text JSON.stringify
// gives for them (FlowInput), in UTF-8: an open flow holds the bytes of the
// fields its record copies in one string, not a parsed object, and a record
// is written from those bytes straight into the output buffer, byte for
// byte what JSON.stringify of the record object would be. Texts are kept as
// strings whose characters are bytes (see bytesOf()): the garbage collector
// moves and compacts strings, where memory outside its heap (a Buffer per
// flow, or slabs shared by flows) would stay pinned by its longest-lived flow.
import { isoMicros, nowMicros, type FlowEndReason } from '../event.js';
import { TextBuffer } from '../lines/text-buffer.js';
import { tsMicros } from './time.js';

export { tsMicros };

export interface FlowTrackerOptions {
  /** Open flows kept at most; when a new one needs room, the oldest is written out early (reason `evicted`). */
  maxFlows: number;
  /** Write an interim record for a flow open this long, and again each time as long again (microseconds); 0: never. */
  reportEvery?: number;
  /** Where the records go, in order, each a line of JSON ending in `\n`, as UTF-8. */
  out?: TextBuffer;
  /** Or: every record, in order, as one line of JSON without its `\n` (tests). */
  onRecord?(line: string): void;
  /** Wall clock in microseconds, for advance() (default: performance's). */
  now?: () => number;
}

export interface FlowCounts {
  /** Flow events taken (new, update, destroy). */
  events: number;
  /** `counters` records folded into open flows. */
  polled: number;
  /** Records written, by kind (an incomplete record is also finished or not). */
  finished: number;
  incomplete: number;
  interim: number;
  evicted: number;
  idReused: number;
  flushed: number;
}

/**
 * What a flow record copies from the event that opens the flow, as the
 * bytes of its JSON text, in one string (see bytesOf()), `text`: `head` is
 * `,"id":…` up to `reply` (the fields of the record before `start`),
 * `tail` is `,"zone":…` to `attribution` and the fields the tracker does
 * not know, in their order, then the event's `ts`, then `lead`, for the
 * fields whose names are array indices ("0", "42"), which JSON.stringify
 * writes first. text = head [0, headEnd) + tail [headEnd, tailEnd) + ts
 * [tailEnd, tsEnd) + lead [tsEnd, end). The original tuple (see
 * tupleText()) is text[tupleAt, tupleEnd), a part of the head.
 */
export interface FlowOpening {
  text: string;
  headEnd: number;
  tailEnd: number;
  tsEnd: number;
  tupleAt: number;
  tupleEnd: number;
}

/**
 * The bytes of text `s` as UTF-8, one character a byte: `s` itself when it
 * is ASCII (as every text of the fast path is). Texts the tracker keeps are
 * in this form, so that a record is written by copying characters as bytes.
 */
export function bytesOf(s: string): string;
export function bytesOf(s: string | undefined): string | undefined;
export function bytesOf(s: string | undefined): string | undefined {
  // eslint-disable-next-line no-control-regex
  return s === undefined || !/[^\x00-\x7f]/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/**
 * The original tuple as one string: `"proto":…,"src":…,"sport":…,"dst":…,"dport":…`
 * with the JSON texts of the fields present, in that order (the text of
 * those fields in a line ct-events wrote). Equal strings, equal tuples.
 */
export function tupleText(proto?: string, src?: string, sport?: string, dst?: string, dport?: string): string {
  let t = '';
  if (proto !== undefined) t += ',"proto":' + proto;
  if (src !== undefined) t += ',"src":' + src;
  if (sport !== undefined) t += ',"sport":' + sport;
  if (dst !== undefined) t += ',"dst":' + dst;
  if (dport !== undefined) t += ',"dport":' + dport;
  return t.slice(1);
}

/**
 * Fields that change during a flow's life, as the bytes of their JSON
 * texts (see bytesOf()). An event's are kept while the flow is open: they
 * must not be views into a larger string (see detach()), or they would keep
 * it alive too.
 */
export class Changing {
  state: string | undefined = undefined;
  status: string | undefined = undefined;
  counters: string | undefined = undefined;
  mark: string | undefined = undefined;
  labels: string | undefined = undefined;
  helper: string | undefined = undefined;
  secmark: string | undefined = undefined;
  /** Kernel timestamps (nf_conntrack_timestamp). */
  start: string | undefined = undefined;
  stop: string | undefined = undefined;
}

/**
 * A flow event (`new`, `update` or `destroy`) as the tracker takes it: the
 * values it keys and compares by, and the JSON text of the values it
 * copies, its changing fields (see Changing) among them. The texts must be
 * JSON.stringify's (see scan.ts and flowInputOf). Nothing of it is used
 * once FlowTracker.event() has returned but the strings it gave.
 */
export interface FlowInput extends Changing {
  event: 'new' | 'update' | 'destroy';
  id: number;
  /** The value of `host`. */
  host: string | undefined;
  /** `dump` is true. */
  dump: boolean;
  /** undefined when there is no `icmp`; else what its `id` is compared by (see icmpIdOf). */
  icmp: unknown;
  /** `ts`, as the bytes of its JSON text: tsBuf[tsStart, tsEnd). */
  tsBuf: Uint8Array;
  tsStart: number;
  tsEnd: number;
  /** Its original tuple is the one whose text (see tupleText()) is text[at, end) (bytes, see bytesOf()). */
  sameTuple(text: string, at: number, end: number): boolean;
  /** What the record copies when this event opens the flow, into `o`. */
  opening(o: FlowOpening): void;
}

/** `icmp.id` of an `icmp` value, for comparing with ===: its JSON text; an object or array never equals another. */
export function icmpIdOf(icmp: unknown): unknown {
  const id = (icmp as { id?: unknown } | null)?.id;
  if (id === undefined) return NO_ICMP_ID;
  return id !== null && typeof id === 'object' ? {} : JSON.stringify(id);
}
/** `icmp` without an `id` (or not an object): equal to every other such. */
export const NO_ICMP_ID = Symbol('no icmp id');

/** Record fields from `id` to `reply`, copied from the event that opened the flow. */
export const HEAD_FIELDS = ['id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply'] as const;
/** Fields that change during a flow's life: the latest event's value wins. `timeout` and `use` are left out of records. */
export const CHANGING_FIELDS = ['state', 'status', 'counters', 'mark', 'labels', 'helper', 'secmark', 'start', 'stop'] as const;
/** Record fields after the changing ones, copied from the event that opened the flow. */
export const TAIL_FIELDS = ['zone', 'icmp', 'community_id', 'host', 'dump', 'secctx', 'unknown', 'direction', 'process', 'peer', 'attribution', 'dns', 'truncated'] as const;
/**
 * Every field name a record is built of by name; any other field of the
 * opening event is copied after them. Together they are every field the
 * schema table (src/event/schema.ts) puts on flow events (a test holds them
 * to it).
 */
export const KNOWN_FIELDS: readonly string[] = [
  'ts', 'event', ...HEAD_FIELDS, ...CHANGING_FIELDS, ...TAIL_FIELDS, 'timeout', 'use', 'finished', 'reason', 'incomplete', 'duration',
];
const KNOWN = new Set(KNOWN_FIELDS);
/** Hosts numbered for keys (see FlowTracker.keyOf()); more are keyed by name. */
const MAX_HOSTS = 65536;

/** An array index ("0" .. "4294967294"): JSON.stringify writes such keys before all others. */
function isArrayIndex(k: string): boolean {
  const n = Number(k) >>> 0;
  return String(n) === k && n !== 4294967295;
}

/** What a record copies from a parsed event that opens a flow (see FlowOpening), as JSON.stringify of the record object would write it. */
export function openingOf(ev: Record<string, any>, o: FlowOpening): void {
  let head = '';
  for (const k of HEAD_FIELDS) if (ev[k] !== undefined) head += `,"${k}":${JSON.stringify(ev[k])}`;
  let tail = '';
  for (const k of TAIL_FIELDS) if (ev[k] !== undefined) tail += `,"${k}":${JSON.stringify(ev[k])}`;
  // Assigned as the record object would have them (an own `__proto__` is not kept, index keys go first).
  const lead: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const k in ev) if (!KNOWN.has(k)) (isArrayIndex(k) ? lead : rest)[k] = ev[k];
  const l = JSON.stringify(lead);
  const r = JSON.stringify(rest);
  if (r !== '{}') tail += ',' + r.slice(1, -1);
  head = bytesOf(head);
  tail = bytesOf(tail);
  const ts = bytesOf(JSON.stringify(ev.ts));
  // The tuple's text is in the head (its fields are there, next to each other, in its order).
  const tuple = bytesOf(tupleOfEvent(ev));
  const at = tuple === '' ? 0 : head.indexOf(tuple);
  o.text = head + tail + ts + (l === '{}' ? '' : bytesOf(l.slice(1, -1) + ','));
  o.headEnd = head.length;
  o.tailEnd = head.length + tail.length;
  o.tsEnd = o.tailEnd + ts.length;
  o.tupleAt = at;
  o.tupleEnd = at + tuple.length;
}

const text = (v: unknown) => (v === undefined ? undefined : JSON.stringify(v));

function tupleOfEvent(ev: Record<string, any>): string {
  return tupleText(text(ev.proto), text(ev.src), text(ev.sport), text(ev.dst), text(ev.dport));
}

/** A parsed, checked flow event as the tracker takes it (the slow path, and tests). */
export function flowInputOf(ev: Record<string, any>): FlowInput {
  const tuple = bytesOf(tupleOfEvent(ev));
  const ts = Buffer.from(JSON.stringify(ev.ts) ?? '');
  const t = (v: unknown) => bytesOf(text(v));
  return {
    event: ev.event, id: ev.id, host: ev.host, dump: ev.dump === true,
    icmp: ev.icmp === undefined ? undefined : icmpIdOf(ev.icmp),
    state: t(ev.state), status: t(ev.status), counters: t(ev.counters), mark: t(ev.mark), labels: t(ev.labels),
    helper: t(ev.helper), secmark: t(ev.secmark), start: t(ev.start), stop: t(ev.stop),
    tsBuf: ts, tsStart: 0, tsEnd: ts.length,
    sameTuple: (s, at, end) => end - at === tuple.length && s.startsWith(tuple, at),
    opening: (o) => openingOf(ev, o),
  };
}

/**
 * A copy of a string that does not keep a larger one alive: a slice of a
 * line (V8 keeps slices of 13 characters or more as views into their
 * parent) would otherwise hold the whole line, or the whole input chunk,
 * for as long as the flow is open.
 */
function detach(s: string | undefined): string | undefined {
  return s === undefined || s.length < 13 ? s : (' ' + s).slice(1);
}

/** The value of a JSON string literal. */
function stringValue(text: string): string {
  return text.indexOf('\\') < 0 ? text.slice(1, -1) : JSON.parse(text);
}

// Bits of OpenFlow.later: a changing field that a later event has set.
const L_STATE = 1, L_STATUS = 2, L_COUNTERS = 4, L_MARK = 8, L_LABELS = 16, L_HELPER = 32, L_SECMARK = 64, L_START = 128;

/**
 * An open flow: what it copies from the event that opened it (the NEW or,
 * for an incomplete flow, the first UPDATE or `--dump` entry), and its
 * changing fields (Changing's own): the latest event's where it has them,
 * else the opening event's. `stop` only ever comes from a later event.
 */
class OpenFlow extends Changing implements FlowOpening {
  /** Stream clock at which the next interim record is due (Infinity: never). */
  due = Infinity;
  /** Neighbours in the tracker's order (see FlowTracker.first). */
  prev: OpenFlow | null = null;
  next: OpenFlow | null = null;
  /** The changing fields later events have set (L_* bits): a new opening event (rebase()) leaves them. */
  later = 0;
  /** The opening event's ts in microseconds. */
  baseUs = 0;
  text = '';
  headEnd = 0;
  tailEnd = 0;
  tsEnd = 0;
  tupleAt = 0;
  tupleEnd = 0;
  icmp: unknown = undefined;

  constructor(readonly key: string | number, ev: FlowInput, tsUs: number, public incomplete: boolean) {
    super();
    this.rebase(ev, tsUs);
  }

  /** Take `ev` as the event that opened the flow (also: its own NEW came after an UPDATE or `--dump` entry, and is the better start). */
  rebase(ev: FlowInput, tsUs: number): void {
    ev.opening(this);
    this.baseUs = tsUs;
    this.icmp = ev.icmp;
    const l = this.later;
    if (!(l & L_STATE)) this.state = ev.state;
    if (!(l & L_STATUS)) this.status = ev.status;
    if (!(l & L_COUNTERS)) this.counters = ev.counters;
    if (!(l & L_MARK)) this.mark = ev.mark;
    if (!(l & L_LABELS)) this.labels = ev.labels;
    if (!(l & L_HELPER)) this.helper = ev.helper;
    if (!(l & L_SECMARK)) this.secmark = ev.secmark;
    if (!(l & L_START)) this.start = ev.start;
  }
}

function defaultNow(): number {
  return nowMicros();
}

/** Same original tuple (and ICMP id): the same flow, not a reused id. */
function sameTuple(a: OpenFlow, b: FlowInput): boolean {
  return b.sameTuple(a.text, a.tupleAt, a.tupleEnd) && (a.icmp === undefined || b.icmp === undefined || a.icmp === b.icmp);
}


// ---------------------------------------------------------------- the table

export class FlowTracker {
  readonly counts: FlowCounts = { events: 0, polled: 0, finished: 0, incomplete: 0, interim: 0, evicted: 0, idReused: 0, flushed: 0 };
  /** Open flows by key. */
  private open = new Map<string | number, OpenFlow>();
  /**
   * And in the order of their next interim record, which is also the order
   * in which they were opened (or last reported): the first is the one
   * evicted when the table is full. A list of their own: taking the first
   * of a Map skips every entry deleted before it, and with the table full
   * that made each eviction cost as much as the table.
   */
  private first: OpenFlow | null = null;
  private last: OpenFlow | null = null;
  private readonly max: number;
  private readonly every: number;
  private readonly out: TextBuffer;
  /** For onRecord: each record's line, taken from `out` as it is written. */
  private readonly onRecord: ((line: string) => void) | undefined;
  private readonly now: () => number;
  /** The stream clock (µs): the latest time seen in the input, moved on by advance() while the input is quiet. */
  private clockUs = 0;
  /** The clock and the wall clock when the last timestamp was read, for advance(). */
  private anchorClock = 0;
  private anchorWall = 0;
  /** No interim record is due before this clock (a lower bound). */
  private nextCheck = Infinity;
  /** The first `host` seen: its flows are keyed by id alone (a number), others by host and id. */
  private host0: string | undefined = undefined;
  /** Other hosts, by number (1, 2, ...): a flow's key is a number made of the host's and the id (see keyOf()). */
  private hosts = new Map<string, number>();

  constructor(o: FlowTrackerOptions) {
    if (!(Number.isInteger(o.maxFlows) && o.maxFlows >= 1)) throw new RangeError('maxFlows must be a whole number >= 1');
    const every = o.reportEvery ?? 0;
    if (!(every >= 0)) throw new RangeError('reportEvery must be >= 0');
    this.max = o.maxFlows;
    this.every = every > 0 ? every : Infinity;
    this.out = o.out ?? new TextBuffer(1 << 12);
    this.onRecord = o.onRecord;
    this.now = o.now ?? defaultNow;
  }

  /** Flows open now. */
  get size(): number {
    return this.open.size;
  }

  /** The stream clock, in microseconds since the epoch (0 before any timestamp). */
  get clock(): number {
    return this.clockUs;
  }

  /**
   * Take one flow event whose `ts` is `tsUs` microseconds. Records it
   * completes, and interim records that have come due, go to onRecord
   * before it returns. Nothing of `ev` is used after it returns but the
   * strings it gave.
   */
  event(ev: FlowInput, tsUs: number): void {
    this.counts.events++;
    this.setClock(tsUs);
    const key = this.keyOf(ev);
    let f = this.open.get(key);
    if (f !== undefined && !sameTuple(f, ev)) {
      // The id came back with another flow: the old one's DESTROY was lost.
      this.remove(f);
      this.counts.idReused++;
      this.write(f, null, 0, 'id-reused');
      f = undefined;
    }
    switch (ev.event) {
      case 'new':
        if (f === undefined) this.add(key, ev, tsUs, ev.dump);
        else if (f.incomplete && !ev.dump) {
          // A `--dump` entry (or an UPDATE) came before the flow's own NEW: the NEW is the better start.
          f.rebase(ev, tsUs);
          f.incomplete = false;
        } else absorb(f, ev);
        break;
      case 'update':
        if (f === undefined) this.add(key, ev, tsUs, true);
        else absorb(f, ev);
        break;
      case 'destroy':
        if (f === undefined) {
          this.counts.incomplete++;
          this.write(new OpenFlow(key, ev, tsUs, true), ev, tsUs, undefined);
        } else {
          this.remove(f);
          absorb(f, ev);
          if (f.incomplete) this.counts.incomplete++;
          this.write(f, ev, tsUs, undefined);
        }
        break;
    }
    if (this.clockUs >= this.nextCheck) this.interims();
  }

  /**
   * A `counters` record (ct-events' poll of open flows, ct-event(5)): the
   * counters, state and status so far of the open flow with its id and
   * tuple, for its interim and final records. Nothing for a flow not open
   * (its NEW was not seen: a record would be all guesses). True when folded.
   */
  counters(ev: FlowInput, tsUs: number): boolean {
    this.setClock(tsUs);
    const f = this.open.get(this.keyOf(ev));
    const folded = f !== undefined && sameTuple(f, ev);
    if (folded) {
      absorb(f, ev);
      this.counts.polled++;
    }
    if (this.clockUs >= this.nextCheck) this.interims();
    return folded;
  }

  /** A timestamp seen in the input (any record's `ts`): moves the stream clock, writes interim records that are due. */
  at(tsUs: number): void {
    this.setClock(tsUs);
    if (this.clockUs >= this.nextCheck) this.interims();
  }

  private setClock(tsUs: number): void {
    if (tsUs > this.clockUs) this.clockUs = tsUs;
    // Only interim records need the wall clock (see advance()).
    if (this.every !== Infinity) {
      this.anchorClock = this.clockUs;
      this.anchorWall = this.now();
    }
  }

  /**
   * The input is quiet: move the stream clock on by the wall-clock time since
   * the last timestamp was read, so interim records still come when nothing
   * arrives. (Input replayed faster than real time keeps its own clock.)
   * Without reportEvery there is nothing to be due, and it does nothing.
   */
  advance(): void {
    if (this.anchorWall === 0) return;
    const c = this.anchorClock + (this.now() - this.anchorWall);
    if (c > this.clockUs) this.clockUs = c;
    if (this.clockUs >= this.nextCheck) this.interims();
  }

  /**
   * Write open flows as not finished (end of input, or a signal) and forget
   * them, oldest first: at most `limit` of them, so that a caller can write
   * a large table out in parts. Returns true while some are left.
   */
  flush(reason: 'end-of-input' | 'signal', limit = Infinity): boolean {
    for (let n = 0; this.first !== null; n++) {
      if (n >= limit) return true;
      const f = this.first;
      this.remove(f);
      this.counts.flushed++;
      this.write(f, null, 0, reason);
    }
    this.nextCheck = Infinity;
    return false;
  }

  /**
   * A flow's key: host number * 2^32 + id, a number, without a string made
   * per event. The first host is number 0 (as is no host); an id above 32
   * bits, or a host past the table's bound, is keyed by a string, which
   * begins with a digit when it is by number, with `h` when by name.
   */
  private keyOf(ev: FlowInput): string | number {
    const h = ev.host;
    let n = 0;
    if (h !== undefined && h !== this.host0) {
      if (this.host0 === undefined) this.host0 = detach(h);
      else {
        const k = this.hosts.get(h);
        if (k !== undefined) n = k;
        else if (this.hosts.size < MAX_HOSTS) this.hosts.set(detach(h)!, (n = this.hosts.size + 1));
        else return 'h' + h + '\n' + ev.id;
      }
    }
    return ev.id <= 0xffffffff ? n * 4294967296 + ev.id : n + '\n' + ev.id;
  }

  private add(key: string | number, ev: FlowInput, tsUs: number, incomplete: boolean): void {
    if (this.open.size >= this.max) {
      const oldest = this.first!;
      this.remove(oldest);
      this.counts.evicted++;
      this.write(oldest, null, 0, 'evicted');
    }
    const f = new OpenFlow(typeof key === 'string' ? detach(key)! : key, ev, tsUs, incomplete);
    f.due = this.clockUs + this.every;
    this.open.set(f.key, f);
    this.append(f);
    if (this.open.size === 1) this.nextCheck = f.due;
  }

  /** Interim records for the flows that are due, first to last; each goes to the end of the order. */
  private interims(): void {
    for (;;) {
      const f = this.first;
      if (f === null) {
        this.nextCheck = Infinity;
        return;
      }
      if (f.due > this.clockUs) {
        this.nextCheck = f.due;
        return;
      }
      this.unlink(f);
      f.due = this.clockUs + this.every;
      this.append(f);
      this.counts.interim++;
      this.write(f, null, 0, 'interim');
    }
  }

  /** Forget an open flow. */
  private remove(f: OpenFlow): void {
    this.open.delete(f.key);
    this.unlink(f);
  }

  private append(f: OpenFlow): void {
    f.prev = this.last;
    f.next = null;
    if (this.last !== null) this.last.next = f;
    else this.first = f;
    this.last = f;
  }

  private unlink(f: OpenFlow): void {
    if (f.prev !== null) f.prev.next = f.next;
    else this.first = f.next;
    if (f.next !== null) f.next.prev = f.prev;
    else this.last = f.prev;
    f.prev = f.next = null;
  }

  /**
   * Build and emit the record of flow `f`, finished by `fin` (a DESTROY,
   * received at `finUs`), or written early for `reason`. The fields and
   * their order are those of FlowRecord (src/event.ts); absent ones are
   * left out, as JSON.stringify leaves out undefined.
   */
  private write(f: OpenFlow, fin: FlowInput | null, finUs: number, reason: FlowEndReason | undefined): void {
    const o = this.out;
    const at = o.length;
    const finished = fin !== null;
    if (finished) this.counts.finished++;
    // Kernel timestamps (nf_conntrack_timestamp) when the events carry them,
    // else the times ct-events received the NEW and the DESTROY.
    let start = f.start;
    let startUs: number | undefined;
    /** The start written is the opening event's ts. */
    let startTs = false;
    if (start !== undefined && start.charCodeAt(0) === 34 /* a string */) startUs = tsMicros(stringValue(start));
    else {
      start = undefined;
      if (!f.incomplete) {
        startTs = true;
        startUs = f.baseUs;
      }
    }
    let stop: string | undefined;
    let stopUs: number | undefined;
    if (finished) {
      stop = f.stop !== undefined ? f.stop : fin.stop;
      if (stop !== undefined && stop.charCodeAt(0) === 34) stopUs = tsMicros(stringValue(stop));
      else {
        stop = undefined;
        stopUs = finUs;
      }
    } else stopUs = this.clockUs;
    o.addByte(123); // {
    if (f.text.length > f.tsEnd) o.addLatin1(f.text, f.tsEnd, f.text.length);
    o.addLatin1('"ts":');
    if (finished) o.addRange(fin.tsBuf, fin.tsStart, fin.tsEnd);
    else o.addLatin1('"' + isoMicros(this.clockUs) + '"');
    o.addLatin1(',"event":"flow"');
    o.addLatin1(f.text, 0, f.headEnd);
    if (start !== undefined) field(o, ',"start":', start);
    else if (startTs) {
      o.addLatin1(',"start":');
      o.addLatin1(f.text, f.tailEnd, f.tsEnd);
    }
    if (finished) {
      o.addLatin1(',"stop":');
      if (stop !== undefined) o.addLatin1(stop);
      else o.addRange(fin.tsBuf, fin.tsStart, fin.tsEnd);
    }
    if (startUs !== undefined && stopUs !== undefined) {
      o.addLatin1(',"duration":');
      o.addLatin1(String(Math.max(0, stopUs - startUs) / 1e6));
    }
    o.addLatin1(finished ? ',"finished":true' : ',"finished":false');
    if (reason !== undefined) {
      o.addLatin1(',"reason":"');
      o.addLatin1(reason);
      o.addByte(34);
    }
    if (f.incomplete) o.addLatin1(',"incomplete":true');
    let v = f.state;
    if (v !== undefined) field(o, ',"state":', v);
    v = f.status;
    if (v !== undefined) field(o, ',"status":', v);
    v = f.counters;
    if (v !== undefined) field(o, ',"counters":', v);
    v = f.mark;
    if (v !== undefined) field(o, ',"mark":', v);
    v = f.labels;
    if (v !== undefined) field(o, ',"labels":', v);
    v = f.helper;
    if (v !== undefined) field(o, ',"helper":', v);
    v = f.secmark;
    if (v !== undefined) field(o, ',"secmark":', v);
    o.addLatin1(f.text, f.headEnd, f.tailEnd);
    o.addByte(125); // }
    o.addByte(10);
    if (this.onRecord) {
      const v = o.view();
      this.onRecord(v.toString('utf8', at, v.length - 1));
    }
  }
}

/** `name` and a value's text (bytes, see bytesOf()). */
function field(o: TextBuffer, name: string, v: string): void {
  o.addLatin1(name);
  o.addLatin1(v);
}

/** Keep the fields of a later event of the flow that change during its life. */
function absorb(f: OpenFlow, ev: FlowInput): void {
  let l = f.later;
  if (ev.state !== undefined) { f.state = ev.state; l |= L_STATE; }
  if (ev.status !== undefined) { f.status = ev.status; l |= L_STATUS; }
  if (ev.counters !== undefined) { f.counters = ev.counters; l |= L_COUNTERS; }
  if (ev.mark !== undefined) { f.mark = ev.mark; l |= L_MARK; }
  if (ev.labels !== undefined) { f.labels = ev.labels; l |= L_LABELS; }
  if (ev.helper !== undefined) { f.helper = ev.helper; l |= L_HELPER; }
  if (ev.secmark !== undefined) { f.secmark = ev.secmark; l |= L_SECMARK; }
  if (ev.start !== undefined) { f.start = ev.start; l |= L_START; }
  if (ev.stop !== undefined) f.stop = ev.stop;
  f.later = l;
}
