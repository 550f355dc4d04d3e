// ct-top's counts: connections and bytes by process, user, destination,
// port and container, over a sliding window of the stream's time (or the
// whole input). Takes parsed records of any kind the pipeline writes: flow
// events, ct-flows' `flow` records, ct-events' `counters` records (bytes of
// flows still open) and `overrun` records (counted as lost). A connection
// counts once, at its first record; its bytes count as they grow (each
// record's counters less what was already counted for the flow), so a flow
// seen by `counters` records and then its `destroy` is not counted twice.
// Bounded: flows remembered (for their owner and bytes so far) at most
// `maxFlows`, the oldest forgotten first. No I/O, no `process`.

export const DIMENSIONS = ['process', 'user', 'destination', 'port', 'container'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
export type SortBy = 'connections' | 'bytes';

export interface Row {
  /** The group's label: `comm[pid]`, a user, an address, `tcp/443`, a container. */
  name: string;
  connections: number;
  bytes: number;
  /** Destinations: the DNS name the address was resolved from (the `dns.name` field), when a record had one. */
  dns?: string;
}

export interface Snapshot {
  /** The stream clock (µs since the epoch; 0 before any record). */
  clock: number;
  /** Window in seconds (null: the whole input). */
  window: number | null;
  connections: number;
  bytes: number;
  /** Events lost upstream (sum of `overrun` records' `lost`) in the window. */
  lost: number;
  tables: Record<Dimension, Row[]>;
}

type Keys = [string, string, string, string, string];

interface Flow {
  keys: Keys;
  /** Bytes already counted for it. */
  bytes: number;
  /** Its end was seen (a `destroy`, a finished `flow`): a later record of it (a poll's `counters` written after) adds nothing. */
  done: boolean;
}

/** [connections, bytes, lost] per key, per dimension. */
class Counts {
  readonly by: Map<string, [number, number]>[] = DIMENSIONS.map(() => new Map());
  conns = 0;
  bytes = 0;
  lost = 0;

  add(keys: Keys, c: number, b: number): void {
    this.conns += c;
    this.bytes += b;
    for (let i = 0; i < keys.length; i++) {
      const m = this.by[i];
      const v = m.get(keys[i]);
      if (v) {
        v[0] += c;
        v[1] += b;
      } else m.set(keys[i], [c, b]);
    }
  }

  /** Take another's counts off (a bucket leaving the window). */
  sub(o: Counts): void {
    this.conns -= o.conns;
    this.bytes -= o.bytes;
    this.lost -= o.lost;
    for (let i = 0; i < o.by.length; i++) {
      const m = this.by[i];
      for (const [k, [c, b]] of o.by[i]) {
        const v = m.get(k);
        if (!v) continue;
        v[0] -= c;
        v[1] -= b;
        if (v[0] <= 0 && v[1] <= 0) m.delete(k);
      }
    }
  }
}

const obj = (v: unknown): Record<string, any> | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, any> : null);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Bytes both ways of a `counters` value; undefined when it has none. */
function bytesOf(c: unknown): number | undefined {
  const o = obj(c);
  if (!o) return undefined;
  const a = num(obj(o.orig)?.bytes), b = num(obj(o.reply)?.bytes);
  if (a === undefined && b === undefined) return undefined;
  return Math.max(0, a ?? 0) + Math.max(0, b ?? 0);
}

/** Where a record stands in each dimension. */
export function keysOf(r: Record<string, any>): Keys {
  const p = obj(r.process);
  const proto = str(r.proto) ?? '?';
  const port = `${proto}/${num(r.dport) ?? '-'}`;
  const dst = str(r.dst) ?? '?';
  if (!p) return ['(unattributed)', '(unattributed)', dst, port, '(unattributed)'];
  const comm = str(p.comm) ?? '?';
  const pid = num(p.pid);
  const user = str(p.user) ?? (num(p.uid) !== undefined ? String(p.uid) : '?');
  const c = obj(p.container);
  const container = c ? (str(c.name) ?? (str(c.id) ?? '?').slice(0, 12)) : '(host)';
  return [pid === undefined ? comm : `${comm}[${pid}]`, user, dst, port, container];
}

export interface TopOptions {
  /** Sliding window in seconds; null or 0: the whole input. */
  window?: number | null;
  /** Flows remembered at most (default 200000). */
  maxFlows?: number;
}

export class TopModel {
  private readonly window: number | null;
  private readonly maxFlows: number;
  private flows = new Map<string, Flow>();
  private total = new Counts();
  /** Per second of stream time, while in the window: what that second added. */
  private buckets = new Map<number, Counts>();
  /** Destination address -> the last DNS name seen for it. */
  private names = new Map<string, string>();
  private clockUs = 0;
  /** The clock and the wall clock when the last timestamp was read, for advance(). */
  private anchorClock = 0;
  private anchorWall = 0;

  constructor(o: TopOptions = {}) {
    this.window = o.window ? o.window : null;
    this.maxFlows = o.maxFlows ?? 200000;
  }

  get clock(): number {
    return this.clockUs;
  }

  /**
   * One record of the stream (already parsed and checked); `foldOnly`: only
   * for a flow already counted (a `counters` record under a filter).
   */
  add(r: Record<string, any>, tsUs: number | undefined, nowWall = 0, foldOnly = false): void {
    if (tsUs !== undefined && tsUs > this.clockUs) {
      this.clockUs = tsUs;
      this.anchorClock = tsUs;
      this.anchorWall = nowWall;
      this.expire();
    }
    const ev = r.event;
    if (ev === 'overrun') {
      const n = num(r.lost);
      if (n !== undefined && n > 0) {
        this.total.lost += n;
        this.bucket().lost += n;
      }
      return;
    }
    if (ev !== 'new' && ev !== 'update' && ev !== 'destroy' && ev !== 'flow' && ev !== 'counters') return;
    if (typeof r.id !== 'number') return;
    const key = `${str(r.host) ?? ''}\n${r.id}\n${str(r.proto)}\n${str(r.src)}\n${num(r.sport)}\n${str(r.dst)}\n${num(r.dport)}`;
    let f = this.flows.get(key);
    let conns = 0;
    if (f !== undefined && f.done && ev === 'new') f = undefined; // the id and tuple again: another connection
    if (f === undefined) {
      if (foldOnly) return;
      conns = 1;
      f = { keys: keysOf(r), bytes: 0, done: false };
      if (this.flows.size >= this.maxFlows) {
        const oldest = this.flows.keys().next().value as string;
        this.flows.delete(oldest);
      }
    } else this.flows.delete(key);
    // Most recently seen last: the one forgotten for room is the one quiet longest.
    this.flows.set(key, f);
    if (conns === 0 && f.keys[0] === '(unattributed)' && obj(r.process)) {
      // A `counters` record came first; the owner is known now.
      f.keys = keysOf(r);
    }
    const dns = str(obj(r.dns)?.name);
    if (dns !== undefined && typeof r.dst === 'string') {
      if (this.names.size >= this.maxFlows) this.names.clear();
      this.names.set(r.dst, dns);
    }
    const b = bytesOf(r.counters);
    let bytes = 0;
    if (b !== undefined && b > f.bytes) {
      bytes = b - f.bytes;
      f.bytes = b;
    }
    if (ev === 'destroy' || (ev === 'flow' && r.finished === true)) f.done = true;
    if (conns || bytes) {
      this.total.add(f.keys, conns, bytes);
      this.bucket().add(f.keys, conns, bytes);
    }
  }

  /** The input is quiet: the stream clock follows the wall clock since the last timestamp. */
  advance(nowWall: number): void {
    if (this.anchorWall === 0) return;
    const c = this.anchorClock + (nowWall - this.anchorWall);
    if (c > this.clockUs) {
      this.clockUs = c;
      this.expire();
    }
  }

  private bucket(): Counts {
    const sec = Math.floor(this.clockUs / 1e6);
    let b = this.buckets.get(sec);
    if (!b) {
      b = new Counts();
      if (this.window !== null) this.buckets.set(sec, b);
    }
    return b;
  }

  private expire(): void {
    if (this.window === null) return;
    const oldest = Math.floor(this.clockUs / 1e6) - this.window;
    for (const [sec, b] of this.buckets) {
      if (sec > oldest) break; // in insertion order, which is time order
      this.total.sub(b);
      this.buckets.delete(sec);
    }
  }

  snapshot(sort: SortBy, limit: number): Snapshot {
    const tables = {} as Record<Dimension, Row[]>;
    DIMENSIONS.forEach((d, i) => {
      const rows: Row[] = [];
      for (const [name, [c, b]] of this.total.by[i]) {
        const row: Row = { name, connections: c, bytes: b };
        if (d === 'destination') {
          const n = this.names.get(name);
          if (n !== undefined) row.dns = n;
        }
        rows.push(row);
      }
      rows.sort(sort === 'bytes'
        ? (x, y) => y.bytes - x.bytes || y.connections - x.connections || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)
        : (x, y) => y.connections - x.connections || y.bytes - x.bytes || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
      tables[d] = rows.slice(0, limit);
    });
    return { clock: this.clockUs, window: this.window, connections: this.total.conns, bytes: this.total.bytes, lost: this.total.lost, tables };
  }
}
