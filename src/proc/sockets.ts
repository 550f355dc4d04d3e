// Socket inode -> owning processes, from the `socket:[INODE]` links in
// /proc/PID/fd. Kept warm and refreshed incrementally: a miss first looks at
// the processes that appeared lately (a short-lived client is new, and one
// scanned right after its fork may have opened the socket since: each is
// looked at again for `youngMs`; new pids come from a PidWatch, pids.ts),
// then at processes that recently owned sockets (a busy client opens more),
// and then rescans everything, unless everything was rescanned after the
// socket's flow began (`since`) and within `fullScanInterval`: so "nobody
// holds it" means nobody held it when it was looked up. Each answer is
// re-checked with one readlink, so a stale entry is never reported. No
// `process` access.
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ListingWatch, listPids, type PidWatch } from './pids.js';

export interface Holder {
  pid: number;
  fd: number;
}

export interface LookupResult {
  holders: Holder[];
  /** Processes whose fd table we could not read (EACCES: no CAP_SYS_PTRACE). */
  denied: number;
}

export interface SocketIndexOptions {
  /** /proc, or another mount of it. */
  proc?: string;
  /** Least time between two full rescans, ms. */
  fullScanInterval?: number;
  /** Most inodes remembered. */
  maxEntries?: number;
  /** Where new pids come from (default: a diff of the /proc listing). */
  pids?: PidWatch;
  /** How long a new pid is looked at again on a miss (ms). */
  youngMs?: number;
  /** New pids looked at again at most (the newest). */
  maxYoung?: number;
  /** How long the rescan of everything for find() runs before it yields (ms). */
  sliceMs?: number;
  now?: () => number;
}

/** A rescan of every process for find(), and the misses waiting on it. */
interface Rescan {
  started: number;
  waiters: Map<number, ((r: LookupResult) => void)[]>;
  done: Promise<void>;
}

export class SocketIndex {
  private byInode = new Map<number, Holder[]>();
  /** Pids that appeared lately -> when; oldest first. */
  private young = new Map<number, number>();
  private recent: number[] = [];
  private denied = new Set<number>();
  private lastFull = 0;
  /** Answers confirmed since the last newEpoch(), by inode. */
  private confirmed = new Map<number, Holder[]>();
  /** Set by the first newEpoch(): without epochs every answer is checked anew. */
  private epochs = false;
  private readonly proc: string;
  private readonly fullEvery: number;
  private readonly max: number;
  private readonly youngMs: number;
  private readonly maxYoung: number;
  private readonly now: () => number;
  private readonly sliceMs: number;
  readonly pids: PidWatch;
  scans = { full: 0, fresh: 0, young: 0, recent: 0, pidsRead: 0, foundYoung: 0, foundRecent: 0, foundFull: 0, learnMs: 0, fullMs: 0 };

  constructor(opts: SocketIndexOptions = {}) {
    this.proc = opts.proc ?? '/proc';
    this.fullEvery = opts.fullScanInterval ?? 200;
    this.max = opts.maxEntries ?? 500000;
    this.youngMs = opts.youngMs ?? 2000;
    this.maxYoung = opts.maxYoung ?? 128;
    this.now = opts.now ?? Date.now;
    this.sliceMs = opts.sliceMs ?? 2;
    this.pids = opts.pids ?? new ListingWatch({ proc: this.proc, now: this.now });
  }

  /** Read one process's fd table into the index. Returns false if it could not be read. */
  private scanPid(pid: number): boolean {
    this.scans.pidsRead++;
    let fds: string[];
    const dir = `${this.proc}/${pid}/fd`;
    try {
      fds = readdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') this.denied.add(pid);
      else this.denied.delete(pid);
      return false;
    }
    this.denied.delete(pid);
    let sockets = 0;
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`${dir}/${fd}`);
      } catch (e) {
        // With CAP_DAC_READ_SEARCH but not CAP_SYS_PTRACE the directory
        // lists and its links do not read: that is no permission too.
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') {
          this.denied.add(pid);
          return false;
        }
        continue;
      }
      // "socket:[12345]"
      if (link.charCodeAt(0) !== 115 || !link.startsWith('socket:[')) continue;
      const inode = Number(link.slice(8, -1));
      sockets++;
      const h = this.byInode.get(inode);
      const holder = { pid, fd: Number(fd) };
      if (!h) this.byInode.set(inode, [holder]);
      else if (!h.some((x) => x.pid === pid)) h.push(holder);
    }
    if (sockets) this.touchRecent(pid);
    return true;
  }

  private touchRecent(pid: number): void {
    const i = this.recent.indexOf(pid);
    if (i >= 0) this.recent.splice(i, 1);
    this.recent.push(pid);
    if (this.recent.length > 32) this.recent.shift();
  }

  /** Is the holder still holding this inode? One readlink. */
  private valid(h: Holder, inode: number): boolean {
    try {
      return readlinkSync(`${this.proc}/${h.pid}/fd/${h.fd}`) === `socket:[${inode}]`;
    } catch {
      return false;
    }
  }

  private checked(inode: number): Holder[] {
    const memo = this.confirmed.get(inode);
    if (memo) return memo;
    const h = this.byInode.get(inode);
    if (!h) return [];
    const ok = h.filter((x) => this.valid(x, inode));
    if (ok.length) {
      if (ok.length !== h.length) this.byInode.set(inode, ok);
      if (this.epochs) this.confirmed.set(inode, ok);
    } else {
      this.byInode.delete(inode);
    }
    return ok;
  }

  private trim(): void {
    if (this.byInode.size <= this.max) return;
    // Oldest first: Map keeps insertion order.
    let n = this.byInode.size - this.max;
    for (const k of this.byInode.keys()) {
      this.byInode.delete(k);
      if (--n <= 0) break;
    }
  }

  /**
   * Start a new epoch: holders confirmed (by readlink) in the previous one
   * are confirmed again when next asked. Within one epoch a holder is
   * confirmed once. A caller that starts an epoch after reading a batch of
   * events checks every event of it after the event happened, as a check
   * per event would: it is only done once per socket instead of per event.
   */
  newEpoch(): void {
    this.epochs = true;
    if (this.confirmed.size) this.confirmed.clear();
    if (this.scannedNow.size) this.scannedNow.clear();
    this.learned = false;
  }

  /**
   * Pids whose fd table a miss read in this epoch, and whether new pids
   * were learned in it: every socket of the epoch's events existed when it
   * began, so what was read since then has them all; a burst of misses
   * does not read the same young processes again for each.
   */
  private scannedNow = new Set<number>();
  private learned = false;

  /** Read `pid`'s fd table for a miss, unless this epoch did already. */
  private scanOnce(pid: number): boolean {
    if (this.epochs) {
      if (this.scannedNow.has(pid)) return true;
      this.scannedNow.add(pid);
    }
    return this.scanPid(pid);
  }

  /** Is socket `inode` held by a process we know, right now? (No scanning.) */
  holds(inode: number): boolean {
    return this.checked(inode).length > 0;
  }

  /** Learn the pids that appeared since the last look; forget those no longer young. */
  private learn(now: number): void {
    for (const pid of this.pids.take()) {
      this.young.delete(pid);
      this.young.set(pid, now);
    }
    for (const [pid, t] of this.young) {
      if (now - t <= this.youngMs && this.young.size <= this.maxYoung) break;
      this.young.delete(pid);
    }
  }

  /**
   * Steps 1 and 2 of a lookup (new processes, then recent socket owners):
   * the holders found, or null when only a rescan of everything is left.
   */
  private quick(inode: number): Holder[] | null {
    let found = this.checked(inode);
    if (found.length) return found;
    // 1. Processes that appeared lately, newest first.
    if (!this.learned) {
      const t0 = performance.now();
      this.learn(this.now());
      this.scans.learnMs += performance.now() - t0;
      this.learned = this.epochs;
    }
    if (this.young.size) {
      this.scans.young++;
      const list = [...this.young.keys()];
      for (let i = list.length - 1; i >= 0; i--) {
        if (!this.scanOnce(list[i]) && !this.denied.has(list[i])) this.young.delete(list[i]);
        found = this.checked(inode);
        if (found.length) {
          this.scans.foundYoung++;
          return found;
        }
      }
    }
    // 2. Processes that recently owned sockets.
    this.scans.recent++;
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const pid = this.recent[i];
      if (!this.scanOnce(pid) && !this.denied.has(pid)) { this.recent.splice(i, 1); continue; }
      found = this.checked(inode);
      if (found.length) {
        this.scans.foundRecent++;
        return found;
      }
    }
    return null;
  }

  /** Whether a rescan of everything is due for a flow that began at `since` (ms). */
  private rescanDue(now: number, since?: number): boolean {
    return now - this.lastFull >= this.fullEvery || (since !== undefined && this.lastFull < since);
  }

  /**
   * Who holds socket `inode` now. `since`: when its flow began (ms); a
   * full rescan made before then may not have seen it.
   */
  lookup(inode: number, since?: number): LookupResult {
    const quick = this.quick(inode);
    if (quick) return this.done(quick);
    // 3. Everything, unless that was done after the flow began, a moment ago.
    const now = this.now();
    if (this.rescanDue(now, since)) {
      this.lastFull = now;
      this.scans.full++;
      this.denied.clear();
      const t1 = performance.now();
      for (const pid of listPids(this.proc)) this.scanPid(pid);
      this.scans.fullMs += performance.now() - t1;
      const found = this.checked(inode);
      if (found.length) {
        this.scans.foundFull++;
        return this.done(found);
      }
    }
    return { holders: [], denied: this.denied.size };
  }

  /**
   * lookup() for a socket just seen alive, without holding up the caller's
   * other work: steps 1 and 2 at once, then the rescan of everything done
   * `sliceMs` at a time, yielding to the event loop between slices, newest
   * pids first, and shared by every miss that waits on it (one that began
   * after the flow did). A waiter is answered as soon as a slice finds its
   * holder, so a later batch's lookups go out, and are answered, while an
   * earlier miss is still searched for.
   */
  find(inode: number, since?: number): LookupResult | Promise<LookupResult> {
    const quick = this.quick(inode);
    if (quick) return this.done(quick);
    // A flow stamped ahead of this clock (a saved file) began no later than now.
    return this.afterRescan(inode, since === undefined ? undefined : Math.min(since, this.now()));
  }

  private rescan: Rescan | null = null;

  private afterRescan(inode: number, since?: number): LookupResult | Promise<LookupResult> {
    const r = this.rescan;
    if (r && (since === undefined || r.started >= since)) {
      return new Promise((resolve) => {
        const w = r.waiters.get(inode);
        if (w) w.push(resolve);
        else r.waiters.set(inode, [resolve]);
      });
    }
    // One running that began before the flow did: the next one is.
    if (r) return r.done.then(() => this.find(inode, since));
    if (!this.rescanDue(this.now(), since)) return { holders: [], denied: this.denied.size };
    this.startRescan();
    return this.afterRescan(inode, since);
  }

  private startRescan(): void {
    const started = this.now();
    this.lastFull = started;
    this.scans.full++;
    this.denied.clear();
    let finish!: () => void;
    const r: Rescan = { started, waiters: new Map(), done: new Promise<void>((res) => (finish = res)) };
    this.rescan = r;
    // New processes have the highest pids (until pid numbers wrap).
    const pids = listPids(this.proc).sort((a, b) => b - a);
    let i = 0;
    const slice = () => {
      const t0 = performance.now();
      while (i < pids.length) {
        // Read again even if read in this epoch: the denied count is rebuilt.
        const pid = pids[i++];
        if (this.epochs) this.scannedNow.add(pid);
        this.scanPid(pid);
        if ((i & 7) === 0 && performance.now() - t0 >= this.sliceMs) break;
      }
      this.scans.fullMs += performance.now() - t0;
      for (const [inode, list] of r.waiters) {
        const found = this.checked(inode);
        if (!found.length && i < pids.length) continue;
        r.waiters.delete(inode);
        if (found.length) this.scans.foundFull++;
        const res = found.length ? this.done(found) : { holders: [], denied: this.denied.size };
        for (const w of list) w(res);
      }
      if (i < pids.length) {
        setImmediate(slice);
        return;
      }
      this.rescan = null;
      finish();
    };
    // The first slice after the caller has joined as a waiter.
    queueMicrotask(slice);
  }
  private done(found: Holder[]): LookupResult {
    this.trim();
    return { holders: found, denied: 0 };
  }

  get size(): number {
    return this.byInode.size;
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or null. */
export function procStartTime(pid: number, proc = '/proc'): number | null {
  try {
    const s = readFileSync(`${proc}/${pid}/stat`, 'latin1');
    const r = s.lastIndexOf(')');
    const f = s.slice(r + 2).split(' ');
    return Number(f[19]);
  } catch {
    return null;
  }
}
