// Pairing a flow's conntrack events into one `flow` record (ct-event(5)):
// NEW opens a flow, UPDATE refreshes its state and counters, DESTROY closes
// it. Flows are keyed by the kernel's conntrack id (and `host`, so streams
// of several hosts can be merged), guarded by the original tuple, because
// the kernel reuses an id once its flow is gone. Owns the open-flow table,
// its bound, interim reports and the stream clock; does no I/O, never reads
// `process`, and is handed parsed, checked events (see processor.ts).
import { isoMicros, type FlowRecord, type FlowEndReason } from '../event.js';
import { parseIso, TimestampError } from '../format/time.js';

export interface FlowTrackerOptions {
  /** Open flows kept at most; when a new one needs room, the oldest is written out early (reason `evicted`). */
  maxFlows: number;
  /** Write an interim record for a flow open this long, and again each time as long again (microseconds); 0: never. */
  reportEvery?: number;
  /** Every record, in order. */
  onRecord(rec: FlowRecord): void;
  /** Wall clock in microseconds, for advance() (default: performance's). */
  now?: () => number;
}

export interface FlowCounts {
  /** Flow events taken (new, update, destroy). */
  events: number;
  /** Records written, by kind (an incomplete record is also finished or not). */
  finished: number;
  incomplete: number;
  interim: number;
  evicted: number;
  idReused: number;
  flushed: number;
}

/** Fields that change during a flow's life: the latest event's value wins. */
class Latest {
  state: unknown = undefined;
  status: unknown = undefined;
  counters: unknown = undefined;
  mark: unknown = undefined;
  labels: unknown = undefined;
  helper: unknown = undefined;
  secmark: unknown = undefined;
  /** Kernel timestamps (nf_conntrack_timestamp). */
  start: unknown = undefined;
  stop: unknown = undefined;
}
/** The head of a record, in this order; then the times and the outcome, then Latest's fields, then everything else of the first event. */
const HEAD = ['id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply'] as const;
/** Fields of an event that describe the event, not the flow, or that a record sets itself. */
const SKIP = new Set<string>([
  'ts', 'event', 'timeout', 'use', ...HEAD, ...Object.keys(new Latest()), 'finished', 'reason', 'incomplete', 'duration',
]);

interface OpenFlow {
  key: string | number;
  /** The event that opened it: the NEW (or, for an incomplete flow, the first UPDATE or `--dump` entry). */
  base: Record<string, any>;
  /** base.ts in microseconds. */
  baseUs: number;
  /** Fields of later events. */
  latest: Latest | null;
  incomplete: boolean;
  /** Stream clock at which the next interim record is due (Infinity: never). */
  due: number;
}

// ---------------------------------------------------------------- times

// Events from ct-events all have the form 2026-11-23T07:41:33.965873Z: the
// seconds part is read once per second of stream and kept, the microseconds
// read digit by digit. Other ISO 8601 forms take the general parser.
let cachedPrefix = '';
let cachedSec = 0;

/** Microseconds since the epoch of an ISO 8601 timestamp, or undefined when it is not one. */
export function tsMicros(s: string): number | undefined {
  if (s.length === 27 && s.charCodeAt(26) === 90 /* Z */ && s.charCodeAt(19) === 46 /* . */) {
    let sec: number;
    if (s.startsWith(cachedPrefix) && cachedPrefix !== '') sec = cachedSec;
    else {
      const p = s.slice(0, 19);
      try {
        sec = parseIso(p + 'Z').sec;
      } catch (e) {
        if (e instanceof TimestampError) return undefined;
        throw e;
      }
      cachedPrefix = p;
      cachedSec = sec;
    }
    let us = 0;
    for (let i = 20; i < 26; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return undefined;
      us = us * 10 + d;
    }
    return sec * 1e6 + us;
  }
  try {
    const t = parseIso(s);
    return t.sec * 1e6 + t.us;
  } catch (e) {
    if (e instanceof TimestampError) return undefined;
    throw e;
  }
}

function defaultNow(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** Same original tuple (and ICMP id): the same flow, not a reused id. */
function sameTuple(a: Record<string, any>, b: Record<string, any>): boolean {
  return a.proto === b.proto && a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport &&
    (a.icmp === undefined || b.icmp === undefined || a.icmp?.id === b.icmp?.id);
}


// ---------------------------------------------------------------- the table

export class FlowTracker {
  readonly counts: FlowCounts = { events: 0, finished: 0, incomplete: 0, interim: 0, evicted: 0, idReused: 0, flushed: 0 };
  /**
   * Open flows in the order of their next interim record, which is also the
   * order in which they were opened (or last reported): the first is the
   * one evicted when the table is full.
   */
  private open = new Map<string | number, OpenFlow>();
  private readonly max: number;
  private readonly every: number;
  private readonly emit: (rec: FlowRecord) => void;
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
   * Take one flow event (`new`, `update` or `destroy`) whose `ts` is `tsUs`
   * microseconds. Records it completes, and interim records that have come
   * due, go to onRecord before it returns.
   */
  event(ev: Record<string, any>, tsUs: number): void {
    this.counts.events++;
    this.setClock(tsUs);
    const key = this.keyOf(ev);
    let f = this.open.get(key);
    if (f !== undefined && !sameTuple(f.base, ev)) {
      // The id came back with another flow: the old one's DESTROY was lost.
      this.open.delete(key);
      this.counts.idReused++;
      this.write(f, null, 0, 'id-reused');
      f = undefined;
    }
    switch (ev.event) {
      case 'new':
        if (f === undefined) this.add(key, ev, tsUs, ev.dump === true);
        else if (f.incomplete && ev.dump !== true) {
          // A `--dump` entry (or an UPDATE) came before the flow's own NEW: the NEW is the better start.
          f.base = ev;
          f.baseUs = tsUs;
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
          this.write({ key, base: ev, baseUs: tsUs, latest: null, incomplete: true, due: Infinity }, ev, tsUs, undefined);
        } else {
          this.open.delete(key);
          absorb(f, ev);
          if (f.incomplete) this.counts.incomplete++;
          this.write(f, ev, tsUs, undefined);
        }
        break;
    }
    if (this.clockUs >= this.nextCheck) this.interims();
  }

  /** A timestamp seen in the input (any record's `ts`): moves the stream clock, writes interim records that are due. */
  at(tsUs: number): void {
    this.setClock(tsUs);
    if (this.clockUs >= this.nextCheck) this.interims();
  }

  private setClock(tsUs: number): void {
    if (tsUs > this.clockUs) this.clockUs = tsUs;
    this.anchorClock = this.clockUs;
    this.anchorWall = this.now();
  }

  /**
   * The input is quiet: move the stream clock on by the wall-clock time since
   * the last timestamp was read, so interim records still come when nothing
   * arrives. (Input replayed faster than real time keeps its own clock.)
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
    let n = 0;
    for (const f of this.open.values()) {
      if (n++ >= limit) return true;
      this.open.delete(f.key);
      this.counts.flushed++;
      this.write(f, null, 0, reason);
    }
    this.nextCheck = Infinity;
    return false;
  }

  private keyOf(ev: Record<string, any>): string | number {
    const h = ev.host;
    if (h === undefined || h === this.host0) return ev.id;
    if (this.host0 === undefined && typeof h === 'string') {
      this.host0 = h;
      return ev.id;
    }
    return h + '\n' + ev.id;
  }

  private add(key: string | number, ev: Record<string, any>, tsUs: number, incomplete: boolean): void {
    if (this.open.size >= this.max) {
      const oldest = this.open.values().next().value as OpenFlow;
      this.open.delete(oldest.key);
      this.counts.evicted++;
      this.write(oldest, null, 0, 'evicted');
    }
    const f: OpenFlow = { key, base: ev, baseUs: tsUs, latest: null, incomplete, due: this.clockUs + this.every };
    this.open.set(key, f);
    if (this.open.size === 1) this.nextCheck = f.due;
  }

  /** Interim records for the flows that are due, first to last; each goes to the end of the order. */
  private interims(): void {
    for (;;) {
      const it = this.open.values().next();
      if (it.done) {
        this.nextCheck = Infinity;
        return;
      }
      const f = it.value;
      if (f.due > this.clockUs) {
        this.nextCheck = f.due;
        return;
      }
      this.open.delete(f.key);
      f.due = this.clockUs + this.every;
      this.open.set(f.key, f);
      this.counts.interim++;
      this.write(f, null, 0, 'interim');
    }
  }

  /**
   * Build and emit the record of flow `f`, finished by `fin` (a DESTROY,
   * received at `finUs`), or written early for `reason`.
   */
  private write(f: OpenFlow, fin: Record<string, any> | null, finUs: number, reason: FlowEndReason | undefined): void {
    const b = f.base;
    const l = f.latest;
    const finished = fin !== null;
    if (finished) this.counts.finished++;
    const rec: Record<string, any> = { ts: finished ? fin.ts : isoMicros(this.clockUs), event: 'flow' };
    for (let i = 0; i < HEAD.length; i++) {
      const v = b[HEAD[i]];
      if (v !== undefined) rec[HEAD[i]] = v;
    }
    // Kernel timestamps (nf_conntrack_timestamp) when the events carry them,
    // else the times ct-events received the NEW and the DESTROY.
    let start: unknown = l !== null && l.start !== undefined ? l.start : b.start;
    let startUs: number | undefined;
    if (typeof start === 'string') startUs = tsMicros(start);
    else if (!f.incomplete) {
      start = b.ts;
      startUs = f.baseUs;
    }
    let stopUs: number | undefined;
    if (start !== undefined) rec.start = start;
    if (finished) {
      const stop = l !== null && l.stop !== undefined ? l.stop : fin.stop;
      if (typeof stop === 'string') {
        rec.stop = stop;
        stopUs = tsMicros(stop);
      } else {
        rec.stop = fin.ts;
        stopUs = finUs;
      }
    } else stopUs = this.clockUs;
    if (startUs !== undefined && stopUs !== undefined) rec.duration = Math.max(0, stopUs - startUs) / 1e6;
    rec.finished = finished;
    if (reason !== undefined) rec.reason = reason;
    if (f.incomplete) rec.incomplete = true;
    if (l === null) {
      if (b.state !== undefined) rec.state = b.state;
      if (b.status !== undefined) rec.status = b.status;
      if (b.counters !== undefined) rec.counters = b.counters;
      if (b.mark !== undefined) rec.mark = b.mark;
      if (b.labels !== undefined) rec.labels = b.labels;
      if (b.helper !== undefined) rec.helper = b.helper;
      if (b.secmark !== undefined) rec.secmark = b.secmark;
    } else {
      const state = l.state ?? b.state, status = l.status ?? b.status, counters = l.counters ?? b.counters;
      const mark = l.mark ?? b.mark, labels = l.labels ?? b.labels, helper = l.helper ?? b.helper, secmark = l.secmark ?? b.secmark;
      if (state !== undefined) rec.state = state;
      if (status !== undefined) rec.status = status;
      if (counters !== undefined) rec.counters = counters;
      if (mark !== undefined) rec.mark = mark;
      if (labels !== undefined) rec.labels = labels;
      if (helper !== undefined) rec.helper = helper;
      if (secmark !== undefined) rec.secmark = secmark;
    }
    for (const k in b) if (!SKIP.has(k)) rec[k] = b[k];
    this.emit(rec as FlowRecord);
  }
}

/** Keep the fields of a later event of the flow that change during its life. */
function absorb(f: OpenFlow, ev: Record<string, any>): void {
  const l = (f.latest ??= new Latest());
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
