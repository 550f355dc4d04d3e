// Who had a local port when: the sightings that the BPF programs of
// native/bpf/sightings.bpf.c report at syscall time (a TCP connect, the
// first UDP send of a socket by a process in 10 s), and the one question
// asked of them: which process had local port P of protocol X when a flow
// received at time T
// began. Pure bookkeeping: no processes, no clocks but the one passed in.
//
// The answer is the latest sighting at or before T. It is refused
// (ambiguous) when another process was also seen with that port within
// `guardMs` before T: an event may be read late (a busy ct-events), so a
// flow received at T may have begun before the later sighting. A sighting
// counts for `maxAgeMs`: the programs see a socket again at its first send
// 10 s after they last reported it, so a socket still sending is seen again
// well within that.
import { BoundedMap } from '../../../lru.js';
import type { SightingRecord } from '../../../native/bpf.js';

/** A process seen with a local port (one record of the BPF programs). */
export type Sighting = SightingRecord;

export type PortAnswer =
  | { kind: 'none' }
  | { kind: 'match'; sighting: Sighting }
  | { kind: 'ambiguous'; pids: number[] };

export interface PortTableOptions {
  /** Ports remembered at most (least recently seen are forgotten; always at least the half seen last). */
  maxPorts?: number;
  /** Sightings kept per port. */
  perPort?: number;
  /** A sighting older than this (ms) before the flow says nothing about it. */
  maxAgeMs?: number;
  /** Another process seen with the port this long (ms) before the flow makes it ambiguous. */
  guardMs?: number;
  /** A sighting may be stamped this much after the flow's event was received (ms). */
  skewMs?: number;
}

/** The answer when no sighting fits (shared: never changed). */
const NONE: PortAnswer = Object.freeze({ kind: 'none' }) as PortAnswer;

/**
 * Whether sighting `s` may be a flow's to remote port `dport` received
 * between lo and hi (ms): a connected socket names its remote port, and
 * one with another is not this flow's.
 */
function fits(s: Sighting, lo: number, hi: number, dport: number): boolean {
  return s.t <= hi && s.t >= lo && (s.dport === 0 || s.dport === dport);
}

export class PortTable {
  /** Sightings by port, the ports seen least recently forgotten first. */
  private ports: BoundedMap<string, Sighting[]>;
  private readonly perPort: number;
  readonly maxAgeMs: number;
  private readonly guardMs: number;
  readonly skewMs: number;
  readonly stats = { sightings: 0 };

  constructor(opts: PortTableOptions = {}) {
    this.ports = new BoundedMap(Math.max(2, opts.maxPorts ?? 65536));
    this.perPort = opts.perPort ?? 8;
    this.maxAgeMs = opts.maxAgeMs ?? 30000;
    this.guardMs = opts.guardMs ?? 2000;
    this.skewMs = opts.skewMs ?? 5;
  }

  /** Ports are per network namespace (inode) and protocol. */
  static key(netns: number, proto: number, sport: number): string {
    return `${netns}|${proto}|${sport}`;
  }

  /** Take a sighting in; returns its key. */
  add(s: Sighting): string {
    this.stats.sightings++;
    const key = PortTable.key(s.netns, s.proto, s.sport);
    let list = this.ports.get(key);
    if (!list) this.ports.set(key, (list = []));
    // Kept in time order: lines come in about that order, but CPUs race.
    let i = list.length;
    while (i > 0 && list[i - 1].t > s.t) i--;
    list.splice(i, 0, s);
    if (list.length > this.perPort) list.shift();
    return key;
  }

  /**
   * The process that had local port `sport` of `proto` in network
   * namespace `netns` when a flow to remote port `dport`, received at `t`
   * (ms), began.
   */
  resolve(netns: number, proto: number, sport: number, dport: number, t: number): PortAnswer {
    const list = this.ports.peek(this.keyOf(netns, proto, sport));
    if (!list) return NONE;
    const hi = t + this.skewMs, lo = t - this.maxAgeMs;
    let best: Sighting | null = null;
    for (let i = list.length - 1; i >= 0; i--) if (fits(list[i], lo, hi, dport)) { best = list[i]; break; }
    if (!best) return NONE;
    // A process is a pid and its start: a reused pid is another process.
    let others: Map<string, number> | null = null;
    for (const s of list) {
      if (s !== best && fits(s, lo, hi, dport) && s.t >= t - this.guardMs && (s.pid !== best.pid || s.start !== best.start)) (others ??= new Map()).set(`${s.pid}/${s.start}`, s.pid);
    }
    if (others) return { kind: 'ambiguous', pids: [best.pid, ...others.values()] };
    return { kind: 'match', sighting: best };
  }

  /** key(), the last one made kept: a flood's events ask for one port, not a new string each. */
  private keyOf(netns: number, proto: number, sport: number): string {
    const k = this.lastKey;
    if (k.netns !== netns || k.proto !== proto || k.sport !== sport) {
      k.netns = netns;
      k.proto = proto;
      k.sport = sport;
      k.key = PortTable.key(netns, proto, sport);
    }
    return k.key;
  }
  private lastKey = { netns: NaN, proto: NaN, sport: NaN, key: '' };

  get size(): number {
    return this.ports.size;
  }

  /** Ports forgotten to stay within maxPorts. */
  get forgotten(): number {
    return this.ports.evicted;
  }
}
