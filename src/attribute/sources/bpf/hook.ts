// What the syscall-time sightings (src/attribute/sources/bpf) change in an attribution: a NEW
// event of an outgoing or local flow whose socket sock_diag could not tie
// to a process (gone, or held by nobody) is given the process seen with
// its local port when the flow began; so is a forwarded flow opened from
// another network namespace of this host (a container) whose socket could
// not be found there, with the port as seen in that namespace. A sighting may come a little after
// the event (the ring buffer is read between events): the event then
// waits for it, at most `windowMs`. When two processes had the port then,
// no pid is given (reason "ambiguous"). sock_diag's answer, when it named
// a process, stands.
import type { FlowEvent, ProcessInfo, Attribution } from '../../../event.js';
import type { ProcessReader } from '../../../proc/process.js';
import { userName, groupName } from '../../../proc/users.js';
import { PortTable, type Sighting } from './ports.js';
import type { CgroupIds } from './cgroups.js';
import { unitOf, containerOf } from '../../../proc/cgroup.js';

export interface AttributedRecord {
  direction: FlowEvent['direction'];
  process?: ProcessInfo;
  attribution: Attribution;
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17, udplite: 136 };

export interface PortHookOptions {
  /** The process reader (details read at first sight, so they outlive the process). */
  procs?: ProcessReader;
  /** cgroup v2 ids to paths, for the processes gone before /proc was read. */
  cgroups?: CgroupIds;
  /** The network namespace (inode) ct-attribute runs in: that of outgoing and local flows. */
  netns?: number | null;
  /** How long an event waits for a sighting still on its way (ms). */
  windowMs?: number;
  cmdline?: boolean;
  /** Hand over the sightings already waiting in the ring buffer, at once (before an event waits, and at its deadline). */
  drain?: () => void;
  now?: () => number;
}

/** The attribution of an owner named here (shared by the events it names: never changed; frozen, so its JSON is made once). */
const NAMED: Attribution = Object.freeze({ method: 'bpf', ok: true }) as Attribution;

export class PortHook {
  private readonly procs: ProcessReader | null;
  private waiting = new Map<string, Set<() => void>>();
  private readonly windowMs: number;
  private readonly now: () => number;
  readonly stats = { asked: 0, match: 0, ambiguous: 0, none: 0, waited: 0 };
  /** Sightings whose process is read from /proc on the next turn of the event loop. */
  private toRead: Sighting[] = [];
  /** False while the probes are not attached yet: nothing is waited for, and nothing asked. */
  active = true;

  constructor(readonly table: PortTable, private opts: PortHookOptions = {}) {
    this.windowMs = opts.windowMs ?? 30;
    this.now = opts.now ?? Date.now;
    this.procs = opts.procs ?? null;
  }

  /** A sighting came in (BpfSource's onSighting): read its process while it may still run; wake events waiting for its port. */
  sighted(key: string, s: Sighting): void {
    if (this.procs) {
      if (!this.toRead.length) setImmediate(() => this.readProcesses());
      this.toRead.push(s);
    }
    // Each waiting event looks again; those it answers leave the set.
    const w = this.waiting.get(key);
    if (w) for (const f of [...w]) f();
  }

  private readProcesses(): void {
    const list = this.toRead;
    this.toRead = [];
    for (const s of list) this.procs?.getStarted(s.pid, s.start);
  }

  /**
   * The network namespace whose port `ev`'s answer may come from, or null:
   * a NEW with no process named, of an outgoing or local flow (this
   * namespace), or of a forwarded flow opened in one other namespace of
   * the host whose socket was not found there.
   */
  private netnsOf(ev: FlowEvent, rec: AttributedRecord): number | null {
    if (ev.event !== 'new' || rec.process || PROTO[ev.proto] === undefined || typeof ev.sport !== 'number') return null;
    if (rec.direction === 'out' || rec.direction === 'local') return this.opts.netns ?? null;
    const a = rec.attribution;
    if (rec.direction === 'fwd' && a.side === 'src' && typeof a.netns === 'number' && (a.reason === 'socket-gone' || a.reason === 'no-process')) return a.netns;
    return null;
  }

  /** Whether `ev`'s answer may change here (see netnsOf). */
  wants(ev: FlowEvent, rec: AttributedRecord): boolean {
    return this.active && this.netnsOf(ev, rec) !== null;
  }

  /** The answer for `ev` now, or null when it should wait for a sighting (or there is nothing to say: see wants()). */
  private answer<R extends AttributedRecord>(ev: FlowEvent, rec: R, netns: number, t: number, final: boolean): R | null {
    const a = this.table.resolve(netns, PROTO[ev.proto], ev.sport!, ev.dport ?? 0, t);
    const fwd = rec.direction === 'fwd';
    if (a.kind === 'none') {
      if (!final) return null;
      this.stats.none++;
      return rec;
    }
    if (a.kind === 'ambiguous') {
      this.stats.ambiguous++;
      const out = { ...rec, attribution: { method: 'bpf', ok: false, reason: 'ambiguous', ...(fwd ? { side: 'src' as const, netns } : {}) } };
      delete out.process;
      return out;
    }
    this.stats.match++;
    const p = this.processOf(a.sighting);
    return { ...rec, process: fwd ? { ...p, netns } : p, attribution: fwd ? { method: 'bpf', ok: true, side: 'src' } : NAMED };
  }

  /**
   * The event's time (ms; now when it has none or one in the future), or
   * null for an event from long ago (a saved file): nothing seen now is
   * about it.
   */
  private eventTime(ev: FlowEvent): number | null {
    const now = this.now();
    let t = this.tsMs(ev.ts);
    if (!Number.isFinite(t) || t > now + 1000) t = now;
    return t < now - this.table.maxAgeMs ? null : t;
  }

  /** Date.parse(ts), the last one kept: the events of one batch of ct-events share their ts. */
  private tsMs(ts: string): number {
    if (ts !== this.lastTs) {
      this.lastTsMs = Date.parse(ts);
      this.lastTs = ts;
    }
    return this.lastTsMs;
  }
  private lastTs: unknown = undefined;
  private lastTsMs = NaN;

  /** resolve() when it needs no wait: the answer from the sightings already taken (or those in the ring buffer), else null. */
  resolveNow<R extends AttributedRecord>(ev: FlowEvent, rec: R): R | null {
    const netns = this.netnsOf(ev, rec);
    if (netns === null) return rec;
    const t = this.eventTime(ev);
    if (t === null) return rec;
    const first = this.answer(ev, rec, netns, t, false);
    if (first) {
      this.stats.asked++;
      return first;
    }
    return null;
  }

  /** Settle `ev`'s record (see wants()): maybe waiting, at most windowMs, for its sighting. */
  async resolve<R extends AttributedRecord>(ev: FlowEvent, rec: R): Promise<R> {
    const netns = this.netnsOf(ev, rec);
    if (netns === null) return rec;
    const t = this.eventTime(ev);
    if (t === null) return rec;
    const now = this.now();
    this.stats.asked++;
    let first = this.answer(ev, rec, netns, t, false);
    if (first) return first;
    // A sighting may wait in the ring buffer while its wake-up waits for a
    // busy event loop: taken now, not after a wait.
    if (this.opts.drain) {
      this.opts.drain();
      first = this.answer(ev, rec, netns, t, false);
      if (first) return first;
    }
    const deadline = Math.max(now, t) + this.windowMs;
    if (deadline <= now) return this.answer(ev, rec, netns, t, true)!;
    this.stats.waited++;
    const key = PortTable.key(netns, PROTO[ev.proto], ev.sport!);
    return new Promise<R>((resolve) => {
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      const waiting = set;
      // Woken by each sighting of this port (it may be a later socket's), and at the deadline.
      let settled = false;
      const look = (final: boolean) => {
        if (settled) return;
        const r = this.answer(ev, rec, netns, t, final);
        if (!r) return;
        settled = true;
        clearTimeout(timer);
        waiting.delete(wake);
        if (!waiting.size && this.waiting.get(key) === waiting) this.waiting.delete(key);
        resolve(r);
      };
      const wake = () => look(false);
      waiting.add(wake);
      const timer = setTimeout(() => {
        this.opts.drain?.();
        look(true);
      }, deadline - now);
    });
  }

  /** The process a sighting names: /proc's details when it was read in time, else what the sighting says. */
  processOf(s: Sighting): ProcessInfo {
    const known = this.procs?.getStarted(s.pid, s.start);
    // A process reaped while /proc was being read keeps what was read
    // before (its exe) but has no cgroup file by then: the cgroup id the
    // kernel gave at the syscall says where it was.
    if (known && known.cgroup == null) {
      const cg = this.cgroupOf(s);
      if (cg) return { ...known, ...cg };
    }
    if (known) return known;
    const users = this.procs?.users;
    const p: ProcessInfo = { pid: s.pid, ppid: s.ppid, uid: s.uid, user: userName(users, s.uid), gid: s.gid, group: groupName(users, s.gid), comm: s.comm, ...this.cgroupOf(s) };
    const start = this.procs?.startTime(s.start);
    if (start) p.start_time = start;
    return p;
  }

  /** The cgroup (and so unit and container) of the sighting's cgroup id, or null when unknown. */
  private cgroupOf(s: Sighting): Pick<ProcessInfo, 'cgroup' | 'unit' | 'container'> | null {
    // The v2 path; "/" says nothing on a machine that also mounts the v1
    // hierarchies (there /proc names the systemd one instead).
    const cg = this.opts.cgroups?.path(s.cgroup) ?? null;
    if (cg === null || cg === '/') return null;
    return { cgroup: cg, unit: unitOf(cg), container: containerOf(cg) };
  }
}
