// What audit changes in an attribution: the engine announces each NEW
// event (expect) before its sock_diag lookup and hands over its answer
// (settle); this turns the correlator's verdict into the record it keeps.
// Only outgoing and local flows: inbound ones were not made by a syscall
// of ours to see. sock_diag's answer stays when audit agrees or knows
// nothing; audit names the process when sock_diag found none; a conflict
// or an ambiguity removes the pid and says why.
import type { FlowEvent, ProcessInfo, Attribution } from '../../../event.js';
import { userName, groupName, type Users } from '../../../proc/users.js';
import type { AuditEvent } from './records.js';
import type { Correlator, Ticket } from './correlator.js';

export interface AttributedRecord {
  direction: FlowEvent['direction'];
  process?: ProcessInfo;
  attribution: Attribution;
}

/** The socket index's answer for an inode (src/proc/sockets.ts). */
export interface HolderIndex {
  lookup(inode: number): { holders: { pid: number }[] };
}

export interface AuditHookOptions {
  /** Include the command line (as the other methods do). */
  cmdline?: boolean;
  /** User and group names. */
  users?: Users;
  /** Who holds a socket (the fd index), to tell audit's caller among several holders. */
  index?: HolderIndex;
}

export class AuditHook {
  private readonly users: Users | undefined;

  constructor(private correlator: Correlator, private opts: AuditHookOptions = {}) {
    this.users = opts.users;
  }

  /** Call for every event, in stream order, before its lookup starts. */
  expect(ev: FlowEvent): Ticket | null {
    return this.correlator.expect(ev);
  }

  /**
   * A NEW event answered at once from what sock_diag said before (a UDP
   * socket still held): its owner's record is spoken for.
   */
  note(ev: FlowEvent, rec: AttributedRecord): void {
    if ((rec.direction === 'out' || rec.direction === 'local') && rec.attribution.ok && rec.process) this.correlator.noteOwner(ev, rec.process.pid);
  }

  async settle<R extends AttributedRecord>(t: Ticket, rec: R, index = this.opts.index): Promise<R> {
    if (rec.direction !== 'out' && rec.direction !== 'local') {
      this.correlator.cancel(t);
      return rec;
    }
    const extra = rec.attribution as Attribution & { uid?: number; holders?: number };
    const pid = rec.attribution.ok && rec.process ? rec.process.pid : null;
    let holders: number[] | undefined;
    if (pid !== null && (extra.holders ?? 0) > 1 && rec.process!.inode && index) {
      holders = index.lookup(rec.process!.inode).holders.map((h) => h.pid);
    }
    // Read as it exited: a zombie has neither an exe link nor a command
    // line (another user's live process, unreadable without privilege,
    // still has its command line).
    const partial = pid !== null && (rec.process!.exe === null || rec.process!.exe === undefined) && Array.isArray(rec.process!.cmdline) && rec.process!.cmdline.length === 0;
    const o = await this.correlator.settle(t, { pid, holders, uid: pid === null ? extra.uid : undefined, partial });
    switch (o.kind) {
      case 'none':
        return rec;
      case 'agree': {
        // A process read from /proc as it exited has no exe link and an
        // empty command line any more; its record still has them.
        const p = rec.process!;
        const r = o.record;
        const noExe = (p.exe === null || p.exe === undefined) && r.exe !== null && r.pid === p.pid;
        const noCmd = this.opts.cmdline !== false && (!p.cmdline || !p.cmdline.length) && r.cmdline && r.pid === p.pid;
        if (!noExe && !noCmd) return rec;
        return { ...rec, process: { ...p, ...(noExe ? { exe: r.exe } : {}), ...(noCmd ? { cmdline: r.cmdline! } : {}) } };
      }
      case 'match':
        return { ...rec, process: this.processOf(o.record), attribution: { method: 'audit', ok: true } };
      case 'ambiguous':
      case 'disagree': {
        const out = { ...rec, attribution: { method: 'audit', ok: false, reason: o.kind } };
        delete out.process;
        return out;
      }
    }
  }

  /** The process as its records describe it (or /proc, when it was alive and verified). */
  processOf(e: AuditEvent): ProcessInfo {
    if (e.proc) return { ...e.proc, ...(e.auid !== null ? { auid: e.auid } : {}) };
    const users = this.users;
    const p: ProcessInfo = { pid: e.pid };
    if (e.ppid >= 0) p.ppid = e.ppid;
    if (e.uid >= 0) {
      p.uid = e.uid;
      p.user = userName(users, e.uid);
    }
    if (e.gid >= 0) {
      p.gid = e.gid;
      p.group = groupName(users, e.gid);
    }
    if (e.comm !== null) p.comm = e.comm;
    p.exe = e.exe;
    if (this.opts.cmdline !== false && e.cmdline) p.cmdline = e.cmdline;
    if (e.auid !== null) p.auid = e.auid;
    return p;
  }
}
