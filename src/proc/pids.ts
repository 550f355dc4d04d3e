// New processes as they appear, for the fd index (sockets.ts): a socket
// whose inode the index does not hold is most likely a new process's, and
// a process seen before it opened the socket (scanned right after its
// fork) must be looked at again. Two ways to learn them:
// - the process connector (PROC_EVENTS over NETLINK_CONNECTOR, see
//   src/netlink/cnproc.ts): every fork and exec as it happens, a reused pid
//   included; needs CAP_NET_ADMIN in the initial user namespace and the
//   initial network namespace;
// - otherwise a diff of the /proc listing against the last one, with each
//   pid's start time (field 22 of /proc/PID/stat), so a pid reused by
//   another process is a new process: start times of every pid are checked
//   again at most every `verifyMs`, new pids at once.
// Pure bookkeeping over a /proc directory and a clock; no `process`.
import { readdirSync, readFileSync } from 'node:fs';

/** Where new pids come from. */
export interface PidWatch {
  /** 'connector' or 'listing'. */
  readonly mode: string;
  /** The pids that appeared (new, or reused by another process) since the last call, in order seen. */
  take(): number[];
  /** Pids seen alive at the last take (listing) or not seen exiting (connector); undefined when not known. */
  alive?(pid: number): boolean;
  close?(): void;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or null. */
export function readStart(proc: string, pid: number): number | null {
  let s: string;
  try {
    s = readFileSync(`${proc}/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const r = s.lastIndexOf(')');
  if (r < 0) return null;
  const f = s.slice(r + 2).split(' ');
  const v = Number(f[19]);
  return Number.isFinite(v) ? v : null;
}

/** The numeric entries of a /proc directory. */
export function listPids(proc: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync(proc)) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57) out.push(Number(name));
  }
  return out;
}

export interface ListingWatchOptions {
  proc?: string;
  /** Least time between two checks of every known pid's start time (ms). */
  verifyMs?: number;
  /** Start times checked again at most per take() (a check of every pid is spread over several). */
  verifyBatch?: number;
  now?: () => number;
}

/** New pids from diffs of the /proc listing (see the module header). */
export class ListingWatch implements PidWatch {
  readonly mode = 'listing';
  private readonly proc: string;
  private readonly verifyMs: number;
  private readonly now: () => number;
  /** Pid -> start time (null: could not be read). */
  private starts = new Map<number, number | null>();
  private verifiedAt: number;
  private readonly verifyBatch: number;
  /** Pids still to check in the current pass over every pid (see take). */
  private toVerify: number[] = [];
  /** The first take() learns what runs already: none of it is new. */
  private first = true;
  readonly stats = { listings: 0, appeared: 0, reused: 0 };

  constructor(opts: ListingWatchOptions = {}) {
    this.proc = opts.proc ?? '/proc';
    this.verifyMs = opts.verifyMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.verifiedAt = this.now();
    this.verifyBatch = opts.verifyBatch ?? 32;
  }

  take(): number[] {
    this.stats.listings++;
    const pids = listPids(this.proc);
    const out: number[] = [];
    const seen = new Set<number>();
    for (const pid of pids) {
      seen.add(pid);
      if (this.starts.has(pid)) continue;
      this.starts.set(pid, readStart(this.proc, pid));
      if (!this.first) {
        out.push(pid);
        this.stats.appeared++;
      }
    }
    if (this.starts.size > seen.size) for (const pid of this.starts.keys()) if (!seen.has(pid)) this.starts.delete(pid);
    this.first = false;
    // Reused pids: every pid's start time checked again every verifyMs,
    // verifyBatch at a time, so that no one take() pays for them all.
    if (!this.toVerify.length && this.now() - this.verifiedAt >= this.verifyMs) {
      this.verifiedAt = this.now();
      this.toVerify = [...this.starts.keys()];
    }
    for (let n = 0; n < this.verifyBatch && this.toVerify.length; n++) {
      const pid = this.toVerify.pop()!;
      const had = this.starts.get(pid);
      if (had === undefined) continue;
      const start = readStart(this.proc, pid);
      if (start !== null && had !== null && start !== had) {
        this.starts.set(pid, start);
        if (!out.includes(pid)) out.push(pid);
        this.stats.reused++;
      }
    }
    return out;
  }

  alive(pid: number): boolean {
    return this.starts.has(pid);
  }
}

/**
 * New pids from the process connector's events, fed in by whoever reads
 * them (src/netlink/cnproc.ts): fork and exec of a process (not a thread)
 * make its pid new, even a pid seen before.
 */
export class EventWatch implements PidWatch {
  readonly mode = 'connector';
  private fresh = new Set<number>();
  private readonly max: number;
  readonly stats = { events: 0, appeared: 0, dropped: 0 };

  constructor(opts: { max?: number; onClose?: () => void } = {}) {
    this.max = opts.max ?? 4096;
    this.onClose = opts.onClose;
  }

  private readonly onClose?: () => void;

  /** A process began (fork) or became another program (exec). */
  born(pid: number): void {
    this.stats.events++;
    if (this.fresh.has(pid)) this.fresh.delete(pid);
    else this.stats.appeared++;
    this.fresh.add(pid);
    if (this.fresh.size > this.max) {
      // The oldest births are the least likely holders of a new socket.
      this.fresh.delete(this.fresh.values().next().value!);
      this.stats.dropped++;
    }
  }

  /** A process ended: nothing more to find in it. */
  ended(pid: number): void {
    this.fresh.delete(pid);
  }

  take(): number[] {
    if (!this.fresh.size) return [];
    const out = [...this.fresh];
    this.fresh.clear();
    return out;
  }

  close(): void {
    this.onClose?.();
  }
}

/**
 * The connector's events once they flow (prefer()), the listing diff
 * before that and again after the connector lost events (lost()): one diff
 * then catches up with what was missed.
 */
export class PreferredWatch implements PidWatch {
  private events: EventWatch | null = null;
  private catchUp = false;

  constructor(private readonly listing: ListingWatch) {}

  get mode(): string {
    return this.events ? this.events.mode : this.listing.mode;
  }

  prefer(events: EventWatch): void {
    this.events = events;
    // Start the diff afresh when it is next needed.
    this.listing.take();
  }

  lost(): void {
    this.catchUp = true;
  }

  take(): number[] {
    if (!this.events) return this.listing.take();
    const out = this.events.take();
    if (this.catchUp) {
      this.catchUp = false;
      for (const pid of this.listing.take()) if (!out.includes(pid)) out.push(pid);
    }
    return out;
  }
}
