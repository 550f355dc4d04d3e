// Process details from /proc/PID (stat, status, exe, cmdline, cgroup),
// cached by pid AND start time: a pid reused by a new process is a new cache
// entry, never the old process's details. Details are captured at first
// sight, so a flow keeps its owner after the process exits.
import { readFileSync, readlinkSync } from 'node:fs';
import type { ProcessInfo } from '../event.js';
import { cgroupPath, unitOf, containerOf } from './cgroup.js';
import { Users, userName, groupName } from './users.js';
import { BoundedMap } from '../lru.js';
import { bootId, entityId } from './entity.js';

const CLK_TCK = 100; // USER_HZ on every Linux architecture ctpipe runs on

export interface ProcessReaderOptions {
  proc?: string;
  cmdline?: boolean;
  maxEntries?: number;
  users?: Users;
  /** Trust a cache entry confirmed this many ms ago without reading /proc again (default 0). */
  freshMs?: number;
}

interface Cached {
  start: number;
  info: ProcessInfo;
  /** When /proc last confirmed this pid is this process (ms). */
  checked: number;
}

/** When the system booted (ms since the epoch, from `btime` in <proc>/stat), or 0 when it cannot be read. */
export function bootTimeMs(proc = '/proc'): number {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync(`${proc}/stat`, 'utf8'));
    return m ? Number(m[1]) * 1000 : 0;
  } catch {
    return 0;
  }
}

export class ProcessReader {
  private cache: BoundedMap<number, Cached>;
  private readonly proc: string;
  private readonly max: number;
  private readonly withCmdline: boolean;
  private readonly freshMs: number;
  private bootMs: number | null = null;
  private bootIdText: string | undefined;
  readonly users: Users;

  constructor(opts: ProcessReaderOptions = {}) {
    this.proc = opts.proc ?? '/proc';
    this.max = opts.maxEntries ?? 20000;
    this.cache = new BoundedMap(Math.max(2, this.max));
    this.withCmdline = opts.cmdline !== false;
    this.freshMs = opts.freshMs ?? 0;
    this.users = opts.users ?? new Users();
  }

  private boot(): number {
    return (this.bootMs ??= bootTimeMs(this.proc));
  }

  /** Parse /proc/PID/stat: comm may hold spaces and parentheses, so split after the last ')'. */
  static parseStat(s: string): { comm: string; ppid: number; start: number; state: string } {
    const l = s.indexOf('(');
    const r = s.lastIndexOf(')');
    const f = s.slice(r + 2).split(' ');
    return { comm: s.slice(l + 1, r), ppid: Number(f[1]), start: Number(f[19]), state: f[0] };
  }

  /** Details of `pid`, or null when it is gone. `expectStart` guards against pid reuse. */
  get(pid: number): ProcessInfo | null {
    // Checked a moment ago: a pid cannot be freed and handed to a new
    // process that fast (allocation cycles through pid_max), so skip /proc.
    const recent = this.cache.get(pid);
    const now = Date.now();
    if (recent && now - recent.checked < this.freshMs) return recent.info;
    let stat: string;
    try {
      stat = readFileSync(`${this.proc}/${pid}/stat`, 'latin1');
    } catch {
      const c = this.cache.get(pid);
      return c ? c.info : null; // gone: what we saw of it is still true
    }
    const st = ProcessReader.parseStat(stat);
    const c = this.cache.get(pid);
    if (c && c.start === st.start) {
      c.checked = now;
      return c.info;
    }
    const info = this.read(pid, st);
    this.cache.set(pid, { start: st.start, info, checked: now });
    return info;
  }

  private read(pid: number, st: { comm: string; ppid: number; start: number }): ProcessInfo {
    const base = `${this.proc}/${pid}`;
    const info: ProcessInfo = { pid, ppid: st.ppid };
    try {
      const status = readFileSync(`${base}/status`, 'utf8');
      const uid = /^Uid:\s+(\d+)/m.exec(status);
      const gid = /^Gid:\s+(\d+)/m.exec(status);
      if (uid) {
        info.uid = Number(uid[1]);
        info.user = userName(this.users, info.uid);
      }
      if (gid) {
        info.gid = Number(gid[1]);
        info.group = groupName(this.users, info.gid);
      }
    } catch { /* exited between reads */ }
    info.comm = st.comm;
    try {
      info.exe = readlinkSync(`${base}/exe`);
    } catch {
      info.exe = null; // kernel thread, exited, or no permission
    }
    if (this.withCmdline) {
      try {
        const raw = readFileSync(`${base}/cmdline`, 'utf8');
        const parts = raw.split('\0');
        if (parts.length && parts[parts.length - 1] === '') parts.pop();
        info.cmdline = parts;
      } catch {
        info.cmdline = [];
      }
    }
    let path: string | null = null;
    try {
      path = cgroupPath(readFileSync(`${base}/cgroup`, 'utf8'));
    } catch { /* no cgroup file */ }
    info.cgroup = path;
    info.unit = unitOf(path);
    info.container = containerOf(path);
    const boot = this.boot();
    if (boot) info.start_time = new Date(boot + (st.start * 1000) / CLK_TCK).toISOString();
    // Without a boot id, ids of two boots could meet: none rather than a wrong one.
    if ((this.bootIdText ??= bootId(this.proc))) info.entity_id = entityId(this.bootIdText, pid, st.start);
    return info;
  }

  /**
   * The process `pid` that started at `start` (clock ticks since boot, as
   * in /proc/PID/stat): read now while it runs, else as cached; null when
   * it is gone and was never read, or the pid is another process's now.
   */
  getStarted(pid: number, start: number): ProcessInfo | null {
    const c = this.cache.get(pid);
    if (c && c.start === start) return c.info;
    let stat: string;
    try {
      stat = readFileSync(`${this.proc}/${pid}/stat`, 'latin1');
    } catch {
      return null;
    }
    const st = ProcessReader.parseStat(stat);
    // A zombie has let go of its exe, command line and cgroup already:
    // what it would show now is not what it was.
    if (st.start !== start || st.state === 'Z' || st.state === 'X') return null;
    const info = this.read(pid, st);
    // Read as it was exiting (its memory, so its command line, and its exe
    // were gone): not kept, so as not to stand for it.
    if (info.exe === null && st.ppid !== 2 && st.ppid !== 0) return null;
    this.cache.set(pid, { start, info, checked: Date.now() });
    return info;
  }

  /** A start in clock ticks since boot as an ISO time, when the boot time is known. */
  startTime(start: number): string | undefined {
    const boot = this.boot();
    return boot ? new Date(boot + (start * 1000) / CLK_TCK).toISOString() : undefined;
  }

  /** Snapshot a process now (e.g. as soon as it is learned of), so its details outlive it. */
  remember(pid: number): void {
    this.get(pid);
  }
}
