// Process ancestry: a flow's process's parent and the parent's ancestors,
// read from /proc/PID/stat (ppid, start time), exe and cmdline, and
// remembered by pid AND start time, so that a chain read while its
// processes ran is still given after they exit, and a reused pid is never
// taken for an old process. Reads /proc only; bounded (maxEntries).
import { readFileSync, readlinkSync } from 'node:fs';
import type { ProcessInfo, ProcessRef } from '../event.js';
import { BoundedMap } from '../lru.js';
import { bootId, entityId } from './entity.js';
import { bootTimeMs } from './process.js';

const CLK_TCK = 100; // USER_HZ on every Linux architecture ctpipe runs on

export interface AncestryOptions {
  proc?: string;
  /** Processes named: the parent and depth-1 of its ancestors (default 4). */
  depth?: number;
  cmdline?: boolean;
  /** Processes remembered at most (default 20000). */
  maxEntries?: number;
}

export interface Lineage {
  parent?: ProcessRef;
  ancestors?: ProcessRef[];
}

interface Node {
  ref: ProcessRef;
  ppid: number;
  /** Start in clock ticks since boot. */
  start: number;
}

/** /proc/PID/stat: comm may hold spaces and parentheses, so split after the last ')'. */
function parseStat(s: string): { comm: string; ppid: number; start: number; state: string } | null {
  const l = s.indexOf('(');
  const r = s.lastIndexOf(')');
  if (l < 0 || r < l) return null;
  const f = s.slice(r + 2).split(' ');
  const ppid = Number(f[1]);
  const start = Number(f[19]);
  if (!Number.isInteger(ppid) || !Number.isInteger(start)) return null;
  return { comm: s.slice(l + 1, r), ppid, start, state: f[0] ?? '' };
}

export class Ancestry {
  private readonly proc: string;
  readonly depth: number;
  private readonly withCmdline: boolean;
  /** Processes by "pid:start". */
  private nodes: BoundedMap<string, Node>;
  /** The latest process seen with each pid (a pid's cached entry may be an older process). */
  private latest: BoundedMap<number, Node>;
  /** Chains by the child's entity_id. */
  private chains: BoundedMap<string, Lineage>;
  private bootMs: number | null = null;
  private boot: string | null = null;

  constructor(opts: AncestryOptions = {}) {
    this.proc = opts.proc ?? '/proc';
    this.depth = Math.max(0, opts.depth ?? 4);
    this.withCmdline = opts.cmdline !== false;
    const max = Math.max(4, opts.maxEntries ?? 20000);
    this.nodes = new BoundedMap(max);
    this.latest = new BoundedMap(max);
    this.chains = new BoundedMap(max);
  }

  private bootTime(): number {
    return (this.bootMs ??= bootTimeMs(this.proc));
  }

  /**
   * The process `pid` if it started no later than `notAfter` (ticks; a
   * parent starts before its child): read from /proc while it runs, else
   * as remembered.
   */
  private node(pid: number, notAfter: number): Node | null {
    let stat: ReturnType<typeof parseStat> = null;
    try {
      stat = parseStat(readFileSync(`${this.proc}/${pid}/stat`, 'latin1'));
    } catch { /* exited */ }
    if (stat && stat.start <= notAfter && stat.state !== 'Z' && stat.state !== 'X') {
      const key = `${pid}:${stat.start}`;
      let n = this.nodes.get(key);
      if (!n) {
        n = { ref: this.read(pid, stat), ppid: stat.ppid, start: stat.start };
        this.nodes.set(key, n);
      }
      this.latest.set(pid, n);
      return n;
    }
    const old = this.latest.get(pid);
    return old && old.start <= notAfter ? old : null;
  }

  private read(pid: number, st: { comm: string; start: number }): ProcessRef {
    const base = `${this.proc}/${pid}`;
    const ref: ProcessRef = { pid, comm: st.comm };
    try {
      ref.exe = readlinkSync(`${base}/exe`);
    } catch {
      ref.exe = null;
    }
    if (this.withCmdline) {
      try {
        const parts = readFileSync(`${base}/cmdline`, 'utf8').split('\0');
        if (parts.length && parts[parts.length - 1] === '') parts.pop();
        ref.cmdline = parts;
      } catch {
        ref.cmdline = [];
      }
    }
    const b = this.bootTime();
    if (b) ref.start_time = new Date(b + (st.start * 1000) / CLK_TCK).toISOString();
    if ((this.boot ??= bootId(this.proc))) ref.entity_id = entityId(this.boot, pid, st.start);
    return ref;
  }

  /** The start of `p` in ticks since boot, from its start_time; Infinity when unknown. */
  private startOf(p: ProcessInfo): number {
    const b = this.bootTime();
    if (typeof p.start_time !== 'string' || !b) return Infinity;
    const ms = Date.parse(p.start_time);
    // start_time is rounded to the millisecond; a tick is 10 ms.
    return Number.isFinite(ms) ? Math.ceil(((ms - b) * CLK_TCK) / 1000) : Infinity;
  }

  /**
   * Parent and ancestors of `p` (a process from ProcessReader: pid, ppid,
   * start_time, entity_id). The first answer for a process is remembered.
   */
  of(p: ProcessInfo): Lineage {
    if (this.depth === 0 || !Number.isInteger(p.ppid) || p.ppid! <= 0) return {};
    const key = p.entity_id;
    if (key) {
      const c = this.chains.get(key);
      if (c) return c;
    }
    const out: Lineage = {};
    let notAfter = this.startOf(p);
    let ppid = p.ppid!;
    const ancestors: ProcessRef[] = [];
    for (let level = 0; level < this.depth && ppid > 0; level++) {
      const n = this.node(ppid, notAfter);
      if (!n) break;
      if (level === 0) out.parent = n.ref;
      else ancestors.push(n.ref);
      if (n.ref.pid === 1) break;
      notAfter = n.start;
      ppid = n.ppid;
    }
    if (ancestors.length) out.ancestors = ancestors;
    if (key) this.chains.set(key, out);
    return out;
  }
}
