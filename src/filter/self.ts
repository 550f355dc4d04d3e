// --no-self: tell whether an event's owning process belongs to the pipeline
// this filter runs in, so that a shipper downstream (ct-syslog, ct-es, or
// any other program in the same pipeline) does not log its own connections
// in a loop. A filter cannot see its siblings directly, but it can find them:
//
//  - a shell pipeline is one process group (POSIX job control, setpgid(2)),
//    so every process whose /proc/PID/stat pgrp is ours is in it;
//  - without a controlling terminal (a systemd service, cron, `ssh host cmd`)
//    the whole session is the pipeline's (systemd calls setsid() per
//    service), so the session counts too; in a terminal it does not, since a
//    login session holds all of that user's jobs;
//  - any process running one of this package's commands (comm or cmdline
//    names ct-syslog, ct-es...) wherever it runs, e.g. in a `tee >(...)`
//    process substitution or a second pipeline fed from a file.
//
// Answers are cached per pid and refreshed when older than `refreshMs`; the
// whole of /proc is scanned at most once per `refreshMs`, so pipeline
// members that exit before their last event arrives are still known. It
// reads only under `procRoot` and never touches `process`.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** This package's commands, as their bin names. */
export const CT_COMMANDS: readonly string[] = ['ct-events', 'ct-attribute', 'ct-filter', 'ct-format', 'ct-syslog', 'ct-es', 'ct-flows', 'ct-record', 'ct-doctor'];

const INTERPRETER = /^(node|nodejs|node\d+|bun|deno)$/;

/** Whether a process (comm, cmdline) runs one of this package's commands. */
export function isCtCommand(comm: unknown, cmdline: unknown): boolean {
  if (typeof comm === 'string' && CT_COMMANDS.includes(comm)) return true;
  if (!Array.isArray(cmdline) || cmdline.length === 0) return false;
  const base = (s: unknown) => (typeof s === 'string' ? path.basename(s) : '');
  const first = base(cmdline[0]);
  if (CT_COMMANDS.includes(first)) return true;
  if (!INTERPRETER.test(first)) return false;
  // `node [--flags] /path/bin/ct-x ...`: the script is the first non-option argument.
  for (let i = 1; i < cmdline.length && i < 8; i++) {
    const a = cmdline[i];
    if (typeof a !== 'string') return false;
    if (a.startsWith('-')) continue;
    return CT_COMMANDS.includes(base(a));
  }
  return false;
}

export interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  ttyNr: number;
}

/** Fields 4-7 of /proc/PID/stat (proc(5)); comm may hold spaces and ')', so parse after the last ')'. */
export function parseStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const pid = parseInt(text, 10);
  const f = text.slice(close + 2).split(' ');
  if (f.length < 5) return null;
  return { pid, ppid: +f[1], pgrp: +f[2], session: +f[3], ttyNr: +f[4] };
}

export interface SelfOptions {
  /** This process's pid (the command passes process.pid). */
  pid: number;
  procRoot?: string;
  /** Cache lifetime and the least time between full scans (default 5000 ms). */
  refreshMs?: number;
  now?: () => number;
}

export class SelfDetector {
  readonly pgrp: number;
  readonly session: number;
  /** Whether the session counts (no controlling terminal). */
  readonly useSession: boolean;
  private root: string;
  private refreshMs: number;
  private now: () => number;
  private cache = new Map<number, { self: boolean; at: number }>();
  private lastScan = -Infinity;

  constructor(opts: SelfOptions) {
    this.root = opts.procRoot ?? '/proc';
    this.refreshMs = opts.refreshMs ?? 5000;
    this.now = opts.now ?? Date.now;
    const me = this.stat(opts.pid);
    if (!me) throw new Error(`cannot read ${path.join(this.root, String(opts.pid), 'stat')}: --no-self needs /proc`);
    this.pgrp = me.pgrp;
    this.session = me.session;
    this.useSession = me.ttyNr === 0;
    this.scan();
  }

  private stat(pid: number): ProcStat | null {
    try {
      return parseStat(readFileSync(path.join(this.root, String(pid), 'stat'), 'latin1'));
    } catch {
      return null;
    }
  }

  private member(st: ProcStat): boolean {
    return st.pgrp === this.pgrp || (this.useSession && st.session === this.session);
  }

  private cmdlineOf(pid: number): string[] | null {
    try {
      const raw = readFileSync(path.join(this.root, String(pid), 'cmdline'), 'utf8');
      return raw.split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
    } catch {
      return null;
    }
  }

  /** Read every process once and remember the pipeline's members. */
  private scan(): void {
    const t = this.now();
    this.lastScan = t;
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    for (const n of names) {
      const c = n.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(n);
      const st = this.stat(pid);
      if (!st) continue;
      const self = this.member(st) || isCtCommand(null, this.cmdlineOf(pid));
      this.cache.set(pid, { self, at: t });
    }
  }

  /** Whether this pid is (or, if gone, was last seen as) part of the pipeline. */
  isSelfPid(pid: number): boolean {
    const t = this.now();
    if (t - this.lastScan >= this.refreshMs) this.scan();
    const c = this.cache.get(pid);
    if (c && t - c.at < this.refreshMs) return c.self;
    // Unknown or stale: look at this one process now.
    const st = this.stat(pid);
    if (!st) {
      // Gone (or never here): keep the last answer, and do not ask again until the next refresh.
      const self = c ? c.self : false;
      this.cache.set(pid, { self, at: t });
      return self;
    }
    const self = this.member(st) || isCtCommand(null, this.cmdlineOf(pid));
    this.cache.set(pid, { self, at: t });
    return self;
  }

  /** Whether an event's owner (its `process`) is part of the pipeline. Unattributed events are not. */
  isSelf(ev: Record<string, any>): boolean {
    const p = ev.process;
    if (p === null || typeof p !== 'object') return false;
    if (isCtCommand(p.comm, p.cmdline)) return true;
    return typeof p.pid === 'number' && this.isSelfPid(p.pid);
  }
}
