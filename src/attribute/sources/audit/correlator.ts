// Which syscall made a flow: a conntrack NEW event is matched to the audit
// records of connect/sendto/sendmsg/sendmmsg calls by destination address
// and port, call kind, and time. Records hold no local port and no
// protocol, so a match is a judgement, made conservatively:
// - a record can only be a flow's if its stamp (syscall entry) is not
//   after the event was received; each flow takes one record, so a connect
//   makes one flow; later sends of the same socket to the same place are
//   explained by the flow they already made; records left behind by flows
//   already settled made no flow of their own and are dropped;
// - when sock_diag named the owner, a record of that process (or of another
//   holder of the socket) confirms it; when the only record in the window is
//   another process's, the two disagree and no pid is given;
// - when sock_diag found no owner, the flow waits its turn behind earlier
//   flows to the same place (and behind the claims of those read with it),
//   and for records still on their way (serials skipped or not ended), then
//   takes the earliest record; if records of other processes began in the
//   same tick of the stamps' clock (for UDP: at all in the window), their
//   order is not known: the flow is ambiguous and gets no pid (and so is
//   the next one among them);
// - a record may arrive after the event (it is sent at syscall exit, from
//   another socket, through the kernel's audit thread): an event waits for
//   it at most `windowMs` after it was read.
// No sockets and no /proc here: records come in through add().
import type { FlowEvent } from '../../../event.js';
import type { AuditEvent } from './records.js';
import { BoundedMap } from '../../../lru.js';

export interface CorrelatorOptions {
  /** Records made at most this long before the event (ms), and how long an event waits for a late one. */
  windowMs?: number;
  /** A record may be stamped this much after the event's ts (clock steps, coarse ticks). */
  skewMs?: number;
  /** Records of two processes at least this far apart in time are in a known order (at least one tick of the stamps' clock). */
  orderMarginMs?: number;
  /** Records held at most (oldest dropped first). */
  maxRecords?: number;
  /**
   * How long before its window a record left over may still be a late
   * flow's own (ms): a flow with such a record waiting is not given a
   * record from its window.
   */
  lateMs?: number;
  /**
   * A flow without an owner is decided no sooner than this long after its
   * event was received (ms): the records of calls begun before it have
   * had time to come through the audit thread (and the relay).
   */
  settleMs?: number;
  now?: () => number;
  /**
   * Whether an audit event with a serial at most `serial` is still on its
   * way (seen in part, or skipped over by later serials). Records of
   * syscalls on different CPUs can arrive out of order; a flow without an
   * owner is not decided while one that could be its own is missing.
   */
  incomplete?: (serial: number) => boolean;
}

export interface SockAnswer {
  /** The owner sock_diag named, or null when it found none. */
  pid: number | null;
  /** Every process holding the socket (inherited or passed descriptors). */
  holders?: number[];
  /** The socket's uid, when the socket was found without an owner. */
  uid?: number;
  /**
   * The owner was read from /proc as it exited (no exe link, no command
   * line left): its own record, which has them, is waited for (at most the
   * window) instead of letting sock_diag's bare answer stand at once.
   */
  partial?: boolean;
}

export type Outcome =
  | { kind: 'none' }
  | { kind: 'agree'; record: AuditEvent }
  | { kind: 'match'; record: AuditEvent }
  | { kind: 'ambiguous'; pids: number[] }
  | { kind: 'disagree'; pid: number; record: AuditEvent };

interface Candidate {
  ev: AuditEvent;
  consumed: boolean;
  explained: boolean;
  /** Processes this record could not be told apart from (an earlier flow was ambiguous between them). */
  ambiguous?: number[];
}

export interface Ticket {
  key: string;
  proto: string;
  /** The event's time (ms). */
  time: number;
  deadline: number;
  claimed: boolean;
  resolved: boolean;
  expired: boolean;
  answer: SockAnswer | null;
  resolve: ((o: Outcome) => void) | null;
  timer: NodeJS.Timeout | null;
}

export interface CorrelatorStats {
  records: number;
  expected: number;
  agree: number;
  match: number;
  ambiguous: number;
  disagree: number;
  none: number;
  /** Events that waited for a late record. */
  waited: number;
  /** Records dropped to stay within maxRecords. */
  evicted: number;
  /** Records dropped because the flows after them were settled (they made no flow of their own). */
  orphaned: number;
}

const MSG_FASTOPEN = 0x20000000;

/** Could this call have made a flow of this protocol? */
export function callFits(proto: string, e: AuditEvent): boolean {
  if (e.call === 'connect') return true;
  if (proto === 'tcp') {
    // TCP Fast Open: the SYN leaves with sendto/sendmsg(MSG_FASTOPEN).
    const flags = e.call === 'sendto' ? e.a3 : e.call === 'sendmsg' ? e.a2 : 0;
    return ((flags ?? 0) & MSG_FASTOPEN) !== 0;
  }
  return e.call === 'sendto' || e.call === 'sendmsg' || e.call === 'sendmmsg';
}

/** Records in the order of their stamps, then of their serials. */
const byStamp = (x: Candidate, y: Candidate) => x.ev.time - y.ev.time || x.ev.serial - y.ev.serial;

export function keyOf(addr: string, port: number): string {
  return `${addr}|${port}`;
}

export class Correlator {
  readonly windowMs: number;
  private readonly skewMs: number;
  private readonly margin: number;
  private readonly maxRecords: number;
  private readonly now: () => number;
  private byKey = new Map<string, Candidate[]>();
  private count = 0;
  /** The coarse clock's tick (ms): assumed 10 (CONFIG_HZ=100) until 16 gaps between stamps have shown the smallest. */
  private tick = 10;
  private minGap = Infinity;
  private gaps = 0;
  private lastStamp = 0;
  /** Every record held, oldest first (records come in about the order of their stamps). */
  private queue: { key: string; c: Candidate }[] = [];
  private qHead = 0;
  private tickets = new Map<string, Ticket[]>();
  /** Late records already spoken for by flows sock_diag attributed: key -> pid -> event time. */
  private claims = new Map<string, Map<number, number>>();
  /** pid|fd|key of sockets whose flow is known: their later sends make no new flow. */
  private explained = new Map<string, number>();
  readonly stats: CorrelatorStats = { records: 0, expected: 0, agree: 0, match: 0, ambiguous: 0, disagree: 0, none: 0, waited: 0, evicted: 0, orphaned: 0 };

  constructor(opts: CorrelatorOptions = {}) {
    this.windowMs = opts.windowMs ?? 30;
    this.skewMs = opts.skewMs ?? 2;
    this.margin = opts.orderMarginMs ?? 1;
    this.maxRecords = opts.maxRecords ?? 20000;
    this.now = opts.now ?? Date.now;
    this.incomplete = opts.incomplete ?? null;
    this.settleMs = opts.settleMs ?? 10;
    this.lateMs = opts.lateMs ?? 2000;
  }

  private readonly lateMs: number;

  private readonly incomplete: ((serial: number) => boolean) | null;
  private readonly settleMs: number;
  private kickTimer: NodeJS.Timeout | null = null;

  /**
   * Re-examine every waiting flow (records completed, or gaps given up on),
   * once the records read together have all been added.
   */
  kick(): void {
    if (this.kickTimer) { clearTimeout(this.kickTimer); this.kickTimer = null; }
    for (const key of this.tickets.keys()) this.dirty.add(key);
    this.later();
  }

  private dirty = new Set<string>();
  private flushing: NodeJS.Immediate | null = null;

  /**
   * Records come in bursts (one socket read, one pipe chunk): decisions wait
   * until the burst has been taken in, so that they never see half of it.
   */
  private later(): void {
    if (this.flushing) return;
    this.flushing = setImmediate(() => {
      this.flushing = null;
      const keys = [...this.dirty];
      this.dirty.clear();
      for (const k of keys) this.pump(k);
    });
  }

  /** A decoded audit event: kept when it is a network call with an IP address. */
  add(e: AuditEvent): boolean {
    if (!e.call || !e.addr || e.pid < 0) return false;
    if (!e.success && e.exit !== -115) return false;
    this.stats.records++;
    const gap = Math.abs(e.time - this.lastStamp);
    this.lastStamp = e.time;
    if (gap > 0 && gap < 1000) {
      this.minGap = Math.min(this.minGap, gap);
      if (++this.gaps >= 16) this.tick = this.minGap;
    }
    const key = keyOf(e.addr.addr, e.addr.port);
    const c: Candidate = { ev: e, consumed: false, explained: false };
    const claim = this.claims.get(key)?.get(e.pid);
    if (claim !== undefined && e.time <= claim + this.skewMs && e.time >= claim - this.windowMs) {
      // Its flow was already attributed by sock_diag, before it came.
      c.consumed = true;
      if (e.call === 'connect') this.claims.get(key)!.delete(e.pid);
      else if (e.fd !== null) this.explain(e, key);
    }
    if (e.call !== 'connect' && e.fd !== null && this.explained.has(`${e.pid}|${e.fd}|${key}`)) c.explained = true;
    if (!c.consumed && !c.explained && this.fillHole(key, e.time)) c.ambiguous = [e.pid, -1];
    let list = this.byKey.get(key);
    if (!list) this.byKey.set(key, (list = []));
    list.push(c);
    this.trimFront(list);
    this.queue.push({ key, c });
    this.count++;
    if (this.count > this.maxRecords) this.prune();
    if (this.tickets.has(key)) {
      this.dirty.add(key);
      this.later();
    }
    return true;
  }

  /**
   * Keep a place's list short, so that a burst of calls to one place (a
   * connect loop) costs each flow a short scan, not one of every record
   * held: records at its front that nothing can take or confirm any more
   * leave it (they stay counted in the queue until prune() drops them).
   * Taken or explained ones are needed only within a flow's window of the
   * present; others as long as a late flow may take them (lateMs).
   */
  private trimFront(list: Candidate[]): void {
    const now = this.now();
    const settled = now - this.windowMs - 200, stale = now - this.windowMs - this.lateMs - 200;
    let n = 0;
    while (n < list.length - 1) {
      const c = list[n];
      if (!(c.ev.time < stale || ((c.consumed || c.explained) && c.ev.time < settled))) break;
      n++;
    }
    if (n) list.splice(0, n);
  }

  private explain(e: AuditEvent, key: string): void {
    if (e.fd === null) return;
    const k = `${e.pid}|${e.fd}|${key}`;
    this.explained.delete(k);
    this.explained.set(k, e.time);
    if (this.explained.size > 8192) this.explained.delete(this.explained.keys().next().value!);
  }

  /** Drop records too old to match anything, and the oldest beyond maxRecords. */
  prune(): void {
    const horizon = this.now() - this.windowMs - 10000;
    while (this.qHead < this.queue.length) {
      const { key, c } = this.queue[this.qHead];
      const old = c.ev.time < horizon;
      if (!old && this.count <= this.maxRecords) break;
      if (!old && !c.consumed) this.stats.evicted++;
      this.queue[this.qHead++] = undefined as any;
      this.count--;
      const list = this.byKey.get(key);
      if (list) {
        const i = list.indexOf(c);
        if (i >= 0) list.splice(i, 1);
        if (!list.length) this.byKey.delete(key);
      }
    }
    if (this.qHead > 4096 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    for (const [key, m] of this.claims) {
      for (const [pid, t] of m) if (t < horizon) m.delete(pid);
      if (!m.size) this.claims.delete(key);
    }
  }

  /**
   * Announce a NEW event, in stream order, before its sock_diag lookup
   * starts; null when audit cannot say anything about it.
   */
  expect(ev: FlowEvent): Ticket | null {
    if (ev.event !== 'new' || ev.dport === undefined || (ev.proto !== 'tcp' && ev.proto !== 'udp' && ev.proto !== 'udplite')) return null;
    const now = this.now();
    let time = Date.parse(ev.ts);
    if (!Number.isFinite(time) || time > now + 1000) time = now;
    // An event from long ago (a saved file): its records are gone.
    if (time < now - this.windowMs - 10000) return null;
    const key = keyOf(ev.dst, ev.dport);
    const t: Ticket = { key, proto: ev.proto, time, deadline: now + this.windowMs, claimed: false, resolved: false, expired: false, answer: null, resolve: null, timer: null };
    let list = this.tickets.get(key);
    if (!list) this.tickets.set(key, (list = []));
    list.push(t);
    this.stats.expected++;
    return t;
  }

  /**
   * A NEW event whose owner was known without a lookup: its record (here or
   * still to come) is used up, so that no ownerless flow takes it.
   */
  noteOwner(ev: FlowEvent, pid: number): void {
    const t = this.expect(ev);
    if (!t) return;
    this.stats.expected--;
    t.claimed = true;
    t.answer = { pid };
    const mine = this.window(t, false).filter((c) => c.ev.pid === pid).sort((x, y) => x.ev.time - y.ev.time);
    if (mine.length) this.consume(mine[0], t.key);
    else this.claim(t, pid);
    this.done(t, { kind: 'none' }, false);
    this.pump(t.key);
  }

  /** The flow is not one audit can speak for (inbound, forwarded): forget it. */
  cancel(t: Ticket): void {
    if (t.resolved) return;
    t.claimed = true;
    this.done(t, { kind: 'none' }, false);
  }

  /** Give sock_diag's answer and get audit's verdict (maybe after waiting for a late record). */
  settle(t: Ticket, answer: SockAnswer): Promise<Outcome> {
    if (t.resolved) return Promise.resolve({ kind: 'none' });
    t.claimed = true;
    t.answer = answer;
    const p = new Promise<Outcome>((resolve) => { t.resolve = resolve; });
    this.pump(t.key);
    if (!t.resolved) {
      this.stats.waited++;
      t.timer = setTimeout(() => {
        t.timer = null;
        // Records already waiting in a socket or pipe are read first (the
        // event loop polls for I/O between timers and immediates).
        setImmediate(() => {
          t.expired = true;
          this.pump(t.key);
        });
      }, Math.max(0, t.deadline - this.now()));
    }
    return p;
  }

  private window(t: Ticket, withConsumed: boolean): Candidate[] {
    const list = this.byKey.get(t.key);
    if (!list) return [];
    const lo = t.time - this.windowMs, hi = t.time + this.skewMs;
    return list.filter((c) => (withConsumed || !c.consumed) && c.ev.time >= lo && c.ev.time <= hi && callFits(t.proto, c.ev));
  }

  private done(t: Ticket, o: Outcome, count = true): void {
    if (t.resolved) return;
    t.resolved = true;
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
    const list = this.tickets.get(t.key);
    if (list) {
      const i = list.indexOf(t);
      if (i >= 0) list.splice(i, 1);
      if (!list.length) this.tickets.delete(t.key);
    }
    if (count) this.stats[o.kind]++;
    const r = t.resolve;
    t.resolve = null;
    if (r) r(o);
  }

  private consume(c: Candidate, key: string): void {
    c.consumed = true;
    if (c.ev.call !== 'connect') {
      this.explain(c.ev, key);
      // Other sends of the same socket to the same place, already here.
      for (const o of this.byKey.get(key) ?? []) {
        if (o !== c && o.ev.pid === c.ev.pid && o.ev.fd === c.ev.fd && o.ev.call !== 'connect' && o.ev.time >= c.ev.time) o.explained = true;
      }
    }
  }

  private claim(t: Ticket, pid: number): void {
    let m = this.claims.get(t.key);
    if (!m) this.claims.set(t.key, (m = new Map()));
    m.set(pid, t.time);
  }

  /** Re-examine the flows waiting on `key`. */
  private pump(key: string): void {
    const list = this.tickets.get(key);
    if (!list) return;
    // Flows sock_diag attributed look for their own process's record and
    // do not wait for each other.
    for (const t of [...list]) {
      if (t.resolved || !t.claimed || !t.answer || t.answer.pid === null) continue;
      this.confirm(t);
    }
    // Flows without an owner, in stream order.
    const pending = this.tickets.get(key);
    if (!pending) return;
    for (let i = 0; i < pending.length; i++) {
      const t = pending[i];
      if (t.resolved) continue;
      if (!t.claimed) return; // its answer may claim a record an earlier flow would take
      if (t.answer && t.answer.pid !== null) continue;
      // Flows read with this one (after it) make their claims first.
      if (pending.slice(i + 1).some((o) => !o.claimed && !o.resolved)) return;
      if (!this.decide(t)) return; // still waiting: later flows to the same place wait too
      i = -1; // the list changed; start over
    }
  }

  /** sock_diag named a process: confirm it from the records, or find them at odds. */
  private confirm(t: Ticket): void {
    const a = t.answer!;
    const owners = new Set<number>([a.pid!, ...(a.holders ?? [])]);
    const all = this.window(t, true);
    const mine = all.filter((c) => owners.has(c.ev.pid)).sort((x, y) => Number(x.consumed) - Number(y.consumed) || x.ev.time - y.ev.time);
    if (mine.length) {
      const head = this.isHead(t);
      if (!mine[0].consumed) this.consume(mine[0], t.key);
      this.done(t, { kind: 'agree', record: mine[0].ev });
      if (head) this.orphan(t, mine[0]);
      return;
    }
    const spoken = this.spokenPids(t);
    const others = all.filter((c) => !c.consumed && !c.explained && !spoken.has(c.ev.pid));
    if (!others.length) {
      if (a.partial && !t.expired) return; // its own record completes it
      // Nothing to confirm or contradict: sock_diag's answer stands, and a
      // record of its process arriving later belongs to this flow.
      this.claim(t, a.pid!);
      return this.done(t, { kind: 'none' });
    }
    if (!t.expired) return; // wait for this process's own record
    this.claim(t, a.pid!);
    const pids = [...new Set(others.map((c) => c.ev.pid))];
    if (pids.length === 1) return this.done(t, { kind: 'disagree', pid: pids[0], record: others[0].ev });
    this.done(t, { kind: 'none' });
  }

  /** Processes other flows to this place have already been given by sock_diag and are still waiting to confirm. */
  private spokenPids(except: Ticket): Set<number> {
    const s = new Set<number>();
    for (const o of this.tickets.get(except.key) ?? []) {
      if (o !== except && !o.resolved && o.answer && o.answer.pid !== null) {
        s.add(o.answer.pid);
        for (const h of o.answer.holders ?? []) s.add(h);
      }
    }
    return s;
  }

  /**
   * A flow without an owner: decide from the records, or return false to
   * wait. Every flow takes one record, the earliest (connects to one place
   * leave in the order they began): so the next flow starts from the right
   * one even when this one could not be told. Records begun within the
   * order margin of each other are in no known order: if they are of
   * different processes the flow is ambiguous, and so is the next one that
   * takes one of them.
   */
  private decide(t: Ticket): boolean {
    const spoken = this.spokenPids(t);
    const c = this.window(t, false).filter((x) => this.mayOwn(t, x, spoken));
    const fresh = c.filter((x) => !x.explained);
    const s = (fresh.length ? fresh : c).sort(byStamp);
    // A record older than the window, to the same place, that no flow took:
    // either its flow never came, or this flow was read late (a busy
    // ct-events stamps events when it reads them) and it is this flow's
    // own, and the records in the window are of flows still to come.
    // Taking a record from the window could then name the next flow's
    // process, and taking the old one could name a process whose flow never
    // came: take the old one (each flow takes one record), and name nobody,
    // unless every record there, old or in the window, is of one process.
    const older = this.older(t, spoken);
    if (older.length) {
      const pids = [...new Set([...older, ...s].map((x) => x.ev.pid))];
      const head = this.isHead(t);
      this.consume(older[0], t.key);
      for (const x of [...older.slice(1), ...s]) x.ambiguous = [...new Set([...(x.ambiguous ?? []), ...pids])];
      // One process made them all: whichever is this flow's, it is that process's.
      if (pids.length === 1 && s.length) this.done(t, { kind: 'match', record: older[0].ev });
      else this.done(t, s.length ? { kind: 'ambiguous', pids } : { kind: 'none' });
      if (head) this.orphan(t, older[0]);
      return true;
    }
    if (!s.length) {
      if (!t.expired) return false;
      this.done(t, { kind: 'none' });
      // Its record may still come, later than the wait: whoever takes it
      // must not be sure of it (see add()).
      this.addHole(t.key, t.time);
      return true;
    }
    const first = s[0];
    // Most calls begin a few ms before their event is received (two ticks
    // covers nearly all here). An older record may be one whose flow never
    // came: give the records of calls begun before the event time to come
    // through the audit thread (and the relay) before taking it.
    const early = t.time + this.settleMs - this.now();
    if (early > 0 && !t.expired && t.time - first.ev.time > 2 * this.tick) {
      if (!this.kickTimer) this.kickTimer = setTimeout(() => { this.kickTimer = null; this.kick(); }, Math.ceil(early));
      return false;
    }
    const margin = this.orderMargin();
    // Order is trusted for TCP only: every connect makes a NEW event. A UDP
    // datagram whose port and destination repeat an entry still in the
    // conntrack table makes none, and its record, left over, would pass
    // for the next flow's: so a UDP flow needs its records to be of one
    // process.
    const near = t.proto === 'tcp' ? s.filter((x) => x.ev.time < first.ev.time + margin) : s;
    if (this.incomplete && !t.expired) {
      // One of the records of this moment may still be on its way.
      const top = near.reduce((m, x) => Math.max(m, x.ev.serial), 0);
      if (this.incomplete(top)) {
        if (!this.kickTimer) this.kickTimer = setTimeout(() => { this.kickTimer = null; this.kick(); }, 10);
        return false;
      }
    }
    const pids = new Set(near.map((x) => x.ev.pid));
    for (const p of first.ambiguous ?? []) pids.add(p);
    this.consume(first, t.key);
    const head = this.isHead(t);
    if (pids.size === 1) {
      this.done(t, { kind: 'match', record: first.ev });
    } else {
      const all = [...pids];
      for (const x of near) if (x !== first) x.ambiguous = [...new Set([...(x.ambiguous ?? []), ...all])];
      this.done(t, { kind: 'ambiguous', pids: all });
    }
    if (head) this.orphan(t, first);
    return true;
  }

  /**
   * Records to t's place begun before its window (at most `lateMs` before
   * it) that no flow took and that could be its own, oldest first.
   */
  private older(t: Ticket, spoken: Set<number>): Candidate[] {
    const lo = t.time - this.windowMs, from = t.time - this.lateMs;
    return (this.byKey.get(t.key) ?? [])
      .filter((x) => !x.consumed && !x.explained && x.ev.time < lo && x.ev.time >= from && callFits(t.proto, x.ev) && this.mayOwn(t, x, spoken))
      .sort(byStamp);
  }

  /**
   * Whether a record's process may own t's flow: not one sock_diag gave to
   * another waiting flow, and, when the socket still exists with no process
   * holding it, of the socket's uid (the creator's fsuid).
   */
  private mayOwn(t: Ticket, x: Candidate, spoken: Set<number>): boolean {
    if (spoken.has(x.ev.pid)) return false;
    return !t.answer || t.answer.uid === undefined || x.ev.fsuid === t.answer.uid;
  }

  /** Flows settled without a record (key -> their event times): a record coming later may be theirs. */
  private holes = new BoundedMap<string, number[]>(4096);

  private addHole(key: string, time: number): void {
    let h = this.holes.get(key);
    if (!h) this.holes.set(key, (h = []));
    h.push(time);
    if (h.length > 64) h.shift();
  }

  /** Whether a record begun at `time` may be the own of a flow settled without one (that hole is then filled). */
  private fillHole(key: string, time: number): boolean {
    const h = this.holes.get(key);
    if (!h) return false;
    const i = h.findIndex((t) => time <= t + this.skewMs && time >= t - this.lateMs);
    if (i < 0) return false;
    h.splice(i, 1);
    if (!h.length) this.holes.delete(key);
    return true;
  }

  /** No flow to this place is waiting ahead of t. */
  private isHead(t: Ticket): boolean {
    const list = this.tickets.get(t.key);
    return !!list && list[0] === t;
  }

  /**
   * Flows are settled in stream order, so once the first waiting flow has
   * taken a record, records begun clearly before it that nobody took made
   * no flow of their own that is still to come (a datagram that joined an
   * existing conntrack entry, a flow filtered out upstream): drop them, so
   * the next flow does not take one for its own.
   */
  private orphan(t: Ticket, taken: Candidate): void {
    const margin = this.orderMargin();
    for (const c of this.byKey.get(t.key) ?? []) {
      if (!c.consumed && c.ev.time + margin <= taken.ev.time && callFits(t.proto, c.ev)) {
        c.consumed = true;
        this.stats.orphaned++;
      }
    }
  }

  /**
   * Stamps come from a coarse clock (one tick of CONFIG_HZ), so records of
   * one tick are in no known order. Measured here (bench/audit-part.js
   * bursts, a few thousand pairs of TCP and UDP clients to one place):
   * records a tick or more apart were always in the order of their flows;
   * within a tick the exit order (serial) was wrong for 3 pairs in 700.
   * The tick is learned from the smallest gap between stamps seen.
   */
  private orderMargin(): number {
    return Math.max(this.margin, this.tick);
  }

  /** Flows still waiting (for tests and stats). */
  get waiting(): number {
    let n = 0;
    for (const l of this.tickets.values()) n += l.length;
    return n;
  }

  get held(): number {
    return this.count;
  }

  /** Resolve everything still waiting (at exit). */
  close(): void {
    if (this.kickTimer) clearTimeout(this.kickTimer);
    if (this.flushing) clearImmediate(this.flushing);
    for (const l of [...this.tickets.values()]) for (const t of [...l]) this.done(t, { kind: 'none' }, false);
  }
}
