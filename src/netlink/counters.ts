// The counters of open flows, polled: conntrack sends packet and byte
// counters only with a flow's DESTROY (ctnetlink_conntrack_event dumps
// CTA_COUNTERS_* for IPCT_DESTROY alone), so a flow open for hours says
// nothing of its bytes until it ends. This lists the table every period
// (IPCTNL_MSG_CT_GET with NLM_F_DUMP, include/uapi/linux/netfilter/
// nfnetlink_conntrack.h, on a socket of its own, so that ct-events' event
// socket is never held up) and turns what changed into `counters` records
// (ct-event(5)). Bounded: one poll at a time, none while the last one's
// records wait for the reader, at most `max` records a poll; a failed poll
// or a lost part is counted in an `overrun` record, never thrown. No I/O
// beyond its socket and the acct sysctl; never reads `process`.
import { readFileSync } from 'node:fs';
import { NetlinkSocket, forEachDatagram } from '../native/netlink.js';
import {
  splitMessages, decodeConntrack, nlError, buildRequest,
  NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET, NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR, AF_INET, AF_INET6,
} from './conntrack.js';
import { nowTs, type CountersRecord, type FlowEvent, type OverrunRecord } from '../event.js';

const NETLINK_NETFILTER = 12;
/** A dump part is at most 32 KiB (netlink_recvmsg's max_recvmsg_len). */
const DUMP_SLOT = 32768;
/** Flows remembered between polls at most (the kernel's nf_conntrack_max is 262144 on most hosts). */
const MAX_TRACKED = 1 << 20;
/** TCP states whose counters no longer move: their DESTROY brings the final ones. */
const CLOSED = new Set(['TIME_WAIT', 'CLOSE']);

export interface CounterPollerOptions {
  /** Milliseconds between the end of one poll and the start of the next. */
  every: number;
  /** Keep only these protocol names (null: all). */
  protos?: Set<string> | null;
  family?: 'ipv4' | 'ipv6';
  host?: string;
  /** Records of one poll at most; more are counted as lost (`counters-limit`). */
  max?: number;
  /** Records are waiting (take() them); called once per poll that made any. */
  onReady: () => void;
  onWarning?: (message: string) => void;
  /** Whether accounting is on (default: net.netfilter.nf_conntrack_acct of this namespace). */
  acct?: () => boolean;
}

interface Seen {
  /** The original tuple, against id reuse. */
  tuple: string;
  /** The counters last written for the flow ('' when none yet). */
  sig: string;
}

export function acctSysctl(): boolean {
  try {
    return readFileSync('/proc/sys/net/netfilter/nf_conntrack_acct', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

const tupleOf = (ev: FlowEvent) => `${ev.proto} ${ev.src} ${ev.sport ?? ''} ${ev.dst} ${ev.dport ?? ''} ${ev.icmp?.id ?? ''}`;

/**
 * The record for a flow listed by a poll, or null when none is due: a flow
 * gets one when it was listed by the poll before too (so short flows, the
 * most, never do), it is not closing, and its counters moved since the last
 * record written for it.
 */
export function pollEntry(ev: FlowEvent, before: Map<number, Seen>, after: Map<number, Seen>): CountersRecord | null {
  if (!ev.counters) return null;
  const tuple = tupleOf(ev);
  const was = before.get(ev.id);
  const known = was !== undefined && was.tuple === tuple;
  const c = ev.counters;
  const sig = `${c.orig.packets},${c.orig.bytes},${c.reply.packets},${c.reply.bytes}`;
  const due = known && was.sig !== sig && !(ev.state !== undefined && CLOSED.has(ev.state));
  if (after.size < MAX_TRACKED) after.set(ev.id, { tuple, sig: due ? sig : known ? was.sig : '' });
  if (!due) return null;
  const r: CountersRecord = { ts: ev.ts, event: 'counters', id: ev.id, family: ev.family, proto: ev.proto, src: ev.src } as CountersRecord;
  if (ev.sport !== undefined) r.sport = ev.sport;
  r.dst = ev.dst;
  if (ev.dport !== undefined) r.dport = ev.dport;
  if (ev.icmp) r.icmp = ev.icmp;
  if (ev.state !== undefined) r.state = ev.state;
  r.status = ev.status;
  r.counters = ev.counters;
  if (ev.start !== undefined) r.start = ev.start;
  if (ev.host !== undefined) r.host = ev.host;
  return r;
}

export class CounterPoller {
  private sock: NetlinkSocket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private seen = new Map<number, Seen>();
  private next: Map<number, Seen> | null = null;
  private out: (CountersRecord | OverrunRecord)[] = [];
  private made = 0;
  private over = 0;
  private seq = (Date.now() & 0x7fffff) * 256;
  private closed = false;
  private warned = new Set<string>();
  private readonly max: number;
  /** Polls done, failed; records written, lost. */
  readonly counts = { polls: 0, failed: 0, records: 0, lost: 0 };

  constructor(private readonly o: CounterPollerOptions) {
    this.max = o.max ?? 10000;
  }

  /** Start polling (the first poll after one period). Throws the addon's errors when no socket can be had. */
  start(): void {
    this.sock = new NetlinkSocket(NETLINK_NETFILTER, { slot: DUMP_SLOT, onBatch: (b) => {
      forEachDatagram(b.buf, (s, e) => this.onDatagram(b.buf.subarray(s, e)));
      if (this.next && (b.drops || b.truncated)) this.fail(`${b.drops + b.truncated} part(s) of the table lost`);
      if (this.next && b.error) this.fail(b.error.message);
    } });
    // Only a poll in progress keeps the process alive.
    this.sock.start();
    this.sock.unref();
    this.schedule();
  }

  /** Records (and overrun records) waiting since the last call, in order. */
  take(): (CountersRecord | OverrunRecord)[] {
    const r = this.out;
    this.out = [];
    return r;
  }

  get pending(): number {
    return this.out.length;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sock?.close();
    this.sock = null;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.poll(), this.o.every);
    this.timer.unref();
  }

  /** One poll, unless the last one's records still wait for the reader (then one period later). */
  poll(): void {
    this.timer = null;
    if (this.closed || !this.sock) return;
    if (this.out.length || !(this.o.acct ?? acctSysctl)()) return this.schedule();
    this.next = new Map();
    this.made = 0;
    this.over = 0;
    this.seq = (this.seq + 1) >>> 0;
    const fam = this.o.family === 'ipv4' ? AF_INET : this.o.family === 'ipv6' ? AF_INET6 : 0;
    this.sock.ref();
    try {
      this.sock.send(buildRequest((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, this.seq, fam));
    } catch (e) {
      this.fail(`request: ${(e as Error).message}`);
    }
  }

  private onDatagram(buf: Buffer): void {
    if (!this.next) return;
    const ts = nowTs();
    let msgs;
    try {
      msgs = splitMessages(buf);
    } catch (e) {
      return this.fail((e as Error).message);
    }
    for (const m of msgs) {
      if (!this.next) return;
      if (m.seq !== this.seq) continue;
      if (m.type === NLMSG_DONE) return this.done();
      if (m.type === NLMSG_ERROR) {
        const code = nlError(buf, m);
        if (code !== 0) return this.fail(`the kernel answered errno ${-code}`);
        continue;
      }
      let ev: FlowEvent | null;
      try {
        ev = decodeConntrack(buf, m, { ts, host: this.o.host, communityId: false });
      } catch {
        continue; // A malformed entry: its flow gets no record this time.
      }
      if (!ev) continue;
      if (this.o.protos && !this.o.protos.has(ev.proto)) continue;
      if (this.o.family && ev.family !== this.o.family) continue;
      const r = pollEntry(ev, this.seen, this.next);
      if (!r) continue;
      if (this.made < this.max) {
        this.out.push(r);
        this.made++;
      } else this.over++;
    }
  }

  private done(): void {
    this.seen = this.next!;
    this.next = null;
    this.counts.polls++;
    this.counts.records += this.made;
    if (this.over) this.lose(this.over, 'counters-limit');
    this.sock?.unref();
    if (this.out.length) this.o.onReady();
    this.schedule();
  }

  /** A poll that failed: what it found so far still goes out, the flows it did not reach get none this time. */
  private fail(why: string): void {
    if (!this.next) return;
    // The flows the failed poll did not list are kept for the next one.
    for (const [id, s] of this.seen) if (!this.next.has(id) && this.next.size < MAX_TRACKED) this.next.set(id, s);
    this.seen = this.next;
    this.next = null;
    this.counts.failed++;
    this.counts.records += this.made;
    if (!this.warned.has(why)) {
      this.warned.add(why);
      this.o.onWarning?.(`counters of open flows: a poll of the table failed (${why}); polling goes on`);
    }
    this.lose(1, 'counters-poll');
    if (this.over) this.lose(this.over, 'counters-limit');
    this.sock?.unref();
    this.o.onReady();
    this.schedule();
  }

  private lose(n: number, reason: string): void {
    this.counts.lost += n;
    this.out.push({ ts: nowTs(), event: 'overrun', lost: n, reason, ...(this.o.host !== undefined ? { host: this.o.host } : {}) });
  }
}
