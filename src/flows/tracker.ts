// Pairing a flow's conntrack events into one `flow` record (ct-event(5)):
// NEW opens a flow, UPDATE refreshes its state and counters, DESTROY closes
// it. Flows are keyed by the kernel's conntrack id (and `host`, so streams
// of several hosts can be merged), guarded by the original tuple, because
// the kernel reuses an id once its flow is gone. Owns the open-flow table,
// its bound, interim reports and the stream clock; does no I/O, never reads
// `process`, and is handed checked events (see processor.ts).
//
// Values are kept and compared as their JSON text, the text JSON.stringify
// gives for them (FlowInput): an open flow holds the text of the fields
// its record copies, not a parsed object (about half the memory), and a
// record is put together from those texts, byte for byte what
// JSON.stringify of the record object would be.
import { isoMicros, nowMicros, type FlowEndReason } from '../event.js';
import { tsMicros } from './time.js';

export { tsMicros };

export interface FlowTrackerOptions {
  /** Open flows kept at most; when a new one needs room, the oldest is written out early (reason `evicted`). */
  maxFlows: number;
  /** Write an interim record for a flow open this long, and again each time as long again (microseconds); 0: never. */
  reportEvery?: number;
  /** Every record, in order, as one line of JSON without its `\n`. */
  onRecord(line: string): void;
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
 * What a flow record copies from the event that opens the flow, as JSON
 * text: `head` is `,"id":…` up to `reply` (the fields of the record before
 * `start`), `tail` is `,"zone":…` to `attribution` and the fields the
 * tracker does not know, in their order; `lead` is for those of them whose
 * names are array indices ("0", "42"), which JSON.stringify writes first.
 * And the event's `ts` and original tuple.
 */
export interface FlowOpening {
  ts: string;
  lead: string;
  head: string;
  tail: string;
  /** See tupleText(). */
  tuple: string;
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
 * A flow event (`new`, `update` or `destroy`) as the tracker takes it: the
 * values it keys and compares by, and the JSON text of the values it
 * copies. The texts must be JSON.stringify's (see scan.ts and flowInputOf).
 * Nothing of it is used once FlowTracker.event() has returned but the
 * strings it gave.
 */
/**
 * Fields that change during a flow's life, as JSON texts. An event's are
 * kept while the flow is open: they must not be views into a larger string
 * (see detach()), or they would keep it alive too.
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

/** One event as the tracker takes it: its changing fields (see Changing) and the rest. */
export interface FlowInput extends Changing {
  event: 'new' | 'update' | 'destroy';
  id: number;
  /** The value of `host`. */
  host: string | undefined;
  /** `dump` is true. */
  dump: boolean;
  /** undefined when there is no `icmp`; else what its `id` is compared by (see icmpIdOf). */
  icmp: unknown;
  /** `ts`, as JSON text. */
  ts(): string;
  /** Its original tuple is this one (see tupleText()). */
  sameTuple(tuple: string): boolean;
  /** What the record copies when this event opens the flow. */
  opening(): FlowOpening;
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

/** An array index ("0" .. "4294967294"): JSON.stringify writes such keys before all others. */
function isArrayIndex(k: string): boolean {
  const n = Number(k) >>> 0;
  return String(n) === k && n !== 4294967295;
}

/** What a record copies from a parsed event that opens a flow (see FlowOpening), as JSON.stringify of the record object would write it. */
export function openingOf(ev: Record<string, any>): FlowOpening {
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
  return { ts: JSON.stringify(ev.ts), lead: l === '{}' ? '' : l.slice(1, -1) + ',', head, tail, tuple: tupleOfEvent(ev) };
}

const text = (v: unknown) => (v === undefined ? undefined : JSON.stringify(v));

function tupleOfEvent(ev: Record<string, any>): string {
  return tupleText(text(ev.proto), text(ev.src), text(ev.sport), text(ev.dst), text(ev.dport));
}

/** A parsed, checked flow event as the tracker takes it (the slow path, and tests). */
export function flowInputOf(ev: Record<string, any>): FlowInput {
  const tuple = tupleOfEvent(ev);
  return {
    event: ev.event, id: ev.id, host: ev.host, dump: ev.dump === true,
    icmp: ev.icmp === undefined ? undefined : icmpIdOf(ev.icmp),
    state: text(ev.state), status: text(ev.status), counters: text(ev.counters), mark: text(ev.mark), labels: text(ev.labels),
    helper: text(ev.helper), secmark: text(ev.secmark), start: text(ev.start), stop: text(ev.stop),
    ts: () => JSON.stringify(ev.ts),
    sameTuple: (t) => t === tuple,
    opening: () => openingOf(ev),
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

/** The opening event's values. */
function baseOf(ev: FlowInput): Changing {
  const c = new Changing();
  c.state = ev.state;
  c.status = ev.status;
  c.counters = ev.counters;
  c.mark = ev.mark;
  c.labels = ev.labels;
  c.helper = ev.helper;
  c.secmark = ev.secmark;
  c.start = ev.start;
  return c;
}

class OpenFlow {
  /** Stream clock at which the next interim record is due (Infinity: never). */
  due = Infinity;
  /** Neighbours in the tracker's order (see FlowTracker.first). */
  prev: OpenFlow | null = null;
  next: OpenFlow | null = null;
  /** Fields of later events. */
  latest: Changing | null = null;
  // From the event that opened it: the NEW (or, for an incomplete flow, the first UPDATE or `--dump` entry).
  ts = '';
  /** ts in microseconds. */
  baseUs = 0;
  lead = '';
  head = '';
  tail = '';
  /** See tupleText(). */
  tuple = '';
  icmp: unknown = undefined;
  base: Changing;

  constructor(readonly key: string | number, ev: FlowInput, tsUs: number, public incomplete: boolean) {
    this.base = this.rebase(ev, tsUs);
  }

  /** Take `ev` as the event that opened the flow (also: its own NEW came after an UPDATE or `--dump` entry, and is the better start). */
  rebase(ev: FlowInput, tsUs: number): Changing {
    const o = ev.opening();
    this.ts = o.ts;
    this.baseUs = tsUs;
    this.lead = o.lead;
    this.head = o.head;
    this.tail = o.tail;
    this.tuple = o.tuple;
    this.icmp = ev.icmp;
    return (this.base = baseOf(ev));
  }
}

function defaultNow(): number {
  return nowMicros();
}

/** Same original tuple (and ICMP id): the same flow, not a reused id. */
function sameTuple(a: OpenFlow, b: FlowInput): boolean {
  return b.sameTuple(a.tuple) && (a.icmp === undefined || b.icmp === undefined || a.icmp === b.icmp);
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
  private readonly emit: (line: string) => void;
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

  constructor(o: FlowTrackerOptions) {
    if (!(Number.isInteger(o.maxFlows) && o.maxFlows >= 1)) throw new RangeError('maxFlows must be a whole number >= 1');
    const every = o.reportEvery ?? 0;
    if (!(every >= 0)) throw new RangeError('reportEvery must be >= 0');
    this.max = o.maxFlows;
    this.every = every > 0 ? every : Infinity;
    this.emit = o.onRecord;
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

  private keyOf(ev: FlowInput): string | number {
    const h = ev.host;
    if (h === undefined || h === this.host0) return ev.id;
    if (this.host0 === undefined && typeof h === 'string') {
      this.host0 = detach(h);
      return ev.id;
    }
    return h + '\n' + ev.id;
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
    const b = f.base;
    const l = f.latest;
    const finished = fin !== null;
    const finTs = finished ? fin.ts() : '';
    if (finished) this.counts.finished++;
    // Kernel timestamps (nf_conntrack_timestamp) when the events carry them,
    // else the times ct-events received the NEW and the DESTROY.
    let start = l !== null && l.start !== undefined ? l.start : b.start;
    let startUs: number | undefined;
    if (start !== undefined && start.charCodeAt(0) === 34 /* a string */) startUs = tsMicros(stringValue(start));
    else if (!f.incomplete) {
      start = f.ts;
      startUs = f.baseUs;
    } else start = undefined;
    let stop: string | undefined;
    let stopUs: number | undefined;
    if (finished) {
      stop = l !== null && l.stop !== undefined ? l.stop : fin.stop;
      if (stop !== undefined && stop.charCodeAt(0) === 34) stopUs = tsMicros(stringValue(stop));
      else {
        stop = finTs;
        stopUs = finUs;
      }
    } else stopUs = this.clockUs;
    let r = '{' + f.lead + '"ts":' + (finished ? finTs : '"' + isoMicros(this.clockUs) + '"') + ',"event":"flow"' + f.head;
    if (start !== undefined) r += ',"start":' + start;
    if (stop !== undefined) r += ',"stop":' + stop;
    if (startUs !== undefined && stopUs !== undefined) r += ',"duration":' + String(Math.max(0, stopUs - startUs) / 1e6);
    r += finished ? ',"finished":true' : ',"finished":false';
    if (reason !== undefined) r += ',"reason":"' + reason + '"';
    if (f.incomplete) r += ',"incomplete":true';
    let v = l !== null && l.state !== undefined ? l.state : b.state;
    if (v !== undefined) r += ',"state":' + v;
    v = l !== null && l.status !== undefined ? l.status : b.status;
    if (v !== undefined) r += ',"status":' + v;
    v = l !== null && l.counters !== undefined ? l.counters : b.counters;
    if (v !== undefined) r += ',"counters":' + v;
    v = l !== null && l.mark !== undefined ? l.mark : b.mark;
    if (v !== undefined) r += ',"mark":' + v;
    v = l !== null && l.labels !== undefined ? l.labels : b.labels;
    if (v !== undefined) r += ',"labels":' + v;
    v = l !== null && l.helper !== undefined ? l.helper : b.helper;
    if (v !== undefined) r += ',"helper":' + v;
    v = l !== null && l.secmark !== undefined ? l.secmark : b.secmark;
    if (v !== undefined) r += ',"secmark":' + v;
    this.emit(r + f.tail + '}');
  }
}

/** Keep the fields of a later event of the flow that change during its life. */
function absorb(f: OpenFlow, ev: FlowInput): void {
  const l = (f.latest ??= new Changing());
  if (ev.state !== undefined) l.state = ev.state;
  if (ev.status !== undefined) l.status = ev.status;
  if (ev.counters !== undefined) l.counters = ev.counters;
  if (ev.mark !== undefined) l.mark = ev.mark;
  if (ev.labels !== undefined) l.labels = ev.labels;
  if (ev.helper !== undefined) l.helper = ev.helper;
  if (ev.secmark !== undefined) l.secmark = ev.secmark;
  if (ev.start !== undefined) l.start = ev.start;
  if (ev.stop !== undefined) l.stop = ev.stop;
}
