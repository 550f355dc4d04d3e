// Pairing a flow's conntrack events into one `flow` record (ct-event(5)):
// NEW opens a flow, UPDATE refreshes its state and counters, DESTROY closes
// it. Flows are keyed by the kernel's conntrack id (and `host`, so streams
// of several hosts can be merged), guarded by the original tuple, because
// the kernel reuses an id once its flow is gone. Owns the open-flow table,
// its bound, interim reports and the stream clock; does no I/O, never reads
// `process`, and is handed parsed, checked events (see processor.ts).
import { isoMicros, type FlowRecord, type FlowEndReason } from '../event.js';
import { tsMicros } from './time.js';

export { tsMicros };

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

/** Fields that change during a flow's life: the latest event's value wins. `timeout` and `use` are left out of records. */
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
/** The fields a record is built of, by name (see write()); any other field of the first event is copied after them. */
const KNOWN = new Set<string>([
  'ts', 'event', 'timeout', 'use', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply',
  'finished', 'reason', 'incomplete', 'duration', ...Object.keys(new Latest()),
  'zone', 'icmp', 'community_id', 'host', 'dump', 'direction', 'process', 'peer', 'attribution',
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
    // Kernel timestamps (nf_conntrack_timestamp) when the events carry them,
    // else the times ct-events received the NEW and the DESTROY.
    let start: unknown = l !== null && l.start !== undefined ? l.start : b.start;
    let startUs: number | undefined;
    if (typeof start === 'string') startUs = tsMicros(start);
    else if (!f.incomplete) {
      start = b.ts;
      startUs = f.baseUs;
    } else start = undefined;
    let stop: unknown;
    let stopUs: number | undefined;
    if (finished) {
      stop = l !== null && l.stop !== undefined ? l.stop : fin.stop;
      if (typeof stop === 'string') stopUs = tsMicros(stop);
      else {
        stop = fin.ts;
        stopUs = finUs;
      }
    } else stopUs = this.clockUs;
    // One object literal, always the same shape (absent fields are
    // undefined, which JSON.stringify leaves out): adding the keys one by
    // one cost more than the pairing itself.
    const rec: Record<string, any> = {
      ts: finished ? fin.ts : isoMicros(this.clockUs),
      event: 'flow',
      id: b.id, family: b.family, proto: b.proto, src: b.src, sport: b.sport, dst: b.dst, dport: b.dport, reply: b.reply,
      start,
      stop,
      duration: startUs !== undefined && stopUs !== undefined ? Math.max(0, stopUs - startUs) / 1e6 : undefined,
      finished,
      reason,
      incomplete: f.incomplete ? true : undefined,
      state: l !== null && l.state !== undefined ? l.state : b.state,
      status: l !== null && l.status !== undefined ? l.status : b.status,
      counters: l !== null && l.counters !== undefined ? l.counters : b.counters,
      mark: l !== null && l.mark !== undefined ? l.mark : b.mark,
      labels: l !== null && l.labels !== undefined ? l.labels : b.labels,
      helper: l !== null && l.helper !== undefined ? l.helper : b.helper,
      secmark: l !== null && l.secmark !== undefined ? l.secmark : b.secmark,
      zone: b.zone, icmp: b.icmp, community_id: b.community_id, host: b.host, dump: b.dump,
      direction: b.direction, process: b.process, peer: b.peer, attribution: b.attribution,
    };
    // Fields a later stage added to the NEW, in their order.
    for (const k in b) if (!KNOWN.has(k)) rec[k] = b[k];
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
