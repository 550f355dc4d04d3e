// The conntrack event source: a NETLINK_NETFILTER socket subscribed to the
// ctnetlink groups, drained continuously into a bounded queue and exposed as
// an object-mode Readable of events. The kernel cannot wait for a slow
// reader, so the socket is read whatever the consumer does; when the queue or
// the socket overflows, the loss is counted and reported in the stream as an
// `overrun` record. With the dump option the current table is listed first.
// The sockets are ctpipe's own addon's (src/native/netlink.ts), not the
// 'netlink' package's: its native code aborts the process when the kernel
// reports an overrun (ENOBUFS), and it makes one callback per datagram
// where the addon hands over every datagram waiting at once. Losses are
// exact: the kernel's drop counter for the socket, read after each batch.
// With the `lines` option (ct-events), the addon also decodes the events and
// writes their NDJSON lines in C (native/src/ctlines.c), byte for byte what
// decodeConntrack() and the LineWriter make, and the stream carries them as
// EventLines chunks: no object per event. The datagrams C leaves out (an
// unknown attribute, labels, a helper, anything malformed) and the table
// dump are decoded here as before.
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { NetlinkSocket, forEachDatagram, forEachEntry, ENTRY_TS, ENTRY_LINES, ENTRY_RAW, type NetlinkBatch } from '../native/netlink.js';
import { AddonError } from '../native/addon.js';
import {
  splitMessages, decodeConntrack, nlError, buildRequest, DecodeError, CommunityIdCache,
  NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET, NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR,
  NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY, AF_INET, AF_INET6, PROTO_NUMBERS,
} from './conntrack.js';
import { nowTs, type FlowEvent, type FlowEventKind, type OverrunRecord } from '../event.js';

export const NETLINK_NETFILTER = 12;
/**
 * Default receive buffer: a backlog of about 200,000 events fits (each takes
 * ~1.3 KB of buffer). The kernel only takes the memory while events wait.
 */
export const DEFAULT_RCVBUF = 256 << 20;
/** Largest event datagram expected (one event is a few hundred bytes). */
const EVENT_SLOT = 8192;
/** Largest dump datagram: the kernel caps a dump part at 32 KiB (netlink_recvmsg, max_recvmsg_len). */
const DUMP_SLOT = 32768;

export interface ConntrackOptions {
  /** Which event kinds to subscribe to (kernel multicast groups). */
  events: FlowEventKind[];
  /** Keep only these protocol names (empty: all). */
  protos?: string[];
  /** Keep only this family. */
  family?: 'ipv4' | 'ipv6';
  /** List the current table first (events marked `dump: true`). */
  dump?: boolean;
  /** SO_RCVBUF in bytes; default: the largest the system allows (net.core.rmem_max). */
  rcvbuf?: number;
  /** Most events held for a slow reader before they are counted as lost. */
  queue?: number;
  host?: string;
  /** Called for things worth a line on stderr. */
  onWarning?: (message: string) => void;
  /**
   * Called before each batch of events is handled: ct-events drains its
   * NFLOG socket here, so that a DNS answer queued before a flow's event
   * (the client connects after it has the answer) is written before it.
   * `ts` is the batch's read time (its events' ts) when it has events: what
   * is drained here is stamped no later than that, or an answer read in the
   * same turn just after the batch would carry a later ts than the flow it
   * names, and ct-attribute would take it for an answer that came after.
   */
  beforeBatch?: (ts?: string) => void;
  /**
   * Hand out the events as EventLines (their NDJSON lines, written in C)
   * where the addon can, rather than as objects: for a writer of NDJSON.
   */
  lines?: boolean;
}

/**
 * Consecutive events as their NDJSON lines (`count` of them, each ending in
 * '\n'), as the LineWriter would write them: what a ConntrackSource with
 * the `lines` option hands out instead of event objects.
 */
export class EventLines {
  constructor(readonly buf: Buffer, readonly count: number) {}
}

export interface SourceStats {
  received: number;
  /** Events handed to the reader. */
  emitted: number;
  lost: number;
  queued: number;
  rcvbuf: number;
}

type Rec = FlowEvent | OverrunRecord | EventLines;

/** Events a record stands for. */
const weight = (x: unknown): number => (x instanceof EventLines ? x.count : 1);

/**
 * A FIFO whose shift is O(1): Array#shift copies, and the queue can hold
 * 100,000. Its length counts events (an EventLines counts its lines).
 */
class Fifo<T> {
  private a: (T | undefined)[] = [];
  private h = 0;
  private n = 0;
  push(x: T): void {
    this.a.push(x);
    this.n += weight(x);
  }
  shift(): T | undefined {
    if (this.h >= this.a.length) return undefined;
    const x = this.a[this.h];
    this.a[this.h++] = undefined;
    this.n -= weight(x);
    if (this.h > 4096 && this.h * 2 > this.a.length) {
      this.a = this.a.slice(this.h);
      this.h = 0;
    }
    return x;
  }
  get length(): number {
    return this.n;
  }
}

const GROUPS: Record<FlowEventKind, number> = {
  new: NFNLGRP_CONNTRACK_NEW,
  update: NFNLGRP_CONNTRACK_UPDATE,
  destroy: NFNLGRP_CONNTRACK_DESTROY,
};

export class CtnetlinkError extends Error {
  constructor(message: string, public code?: string) {
    super(message);
  }
}

function rmemMax(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim()) || 212992;
  } catch {
    return 212992;
  }
}

function explain(err: any, what: string): CtnetlinkError {
  if (err instanceof AddonError) return new CtnetlinkError(`${what}: ${err.message}`);
  const code = err && err.code;
  if (code === 'EPERM' || code === 'EACCES') {
    return new CtnetlinkError(`${what}: permission denied: subscribing to conntrack events needs CAP_NET_ADMIN (run as root, or grant it: setpriv --inh-caps +net_admin --ambient-caps +net_admin, or AmbientCapabilities=CAP_NET_ADMIN)`, code);
  }
  if (code === 'EPROTONOSUPPORT' || code === 'EAFNOSUPPORT' || code === 'ENOENT' || code === 'EOPNOTSUPP') {
    return new CtnetlinkError(`${what}: the kernel has no ctnetlink support (load it: modprobe nf_conntrack_netlink)`, code);
  }
  return new CtnetlinkError(`${what}: ${err && err.message ? err.message : String(err)}`, code);
}

/**
 * Conntrack events as an object-mode Readable. Call `start()` (or just read)
 * and `close()` when done; 'error' carries a CtnetlinkError.
 */
export class ConntrackSource extends Readable {
  private sock: NetlinkSocket | null = null;
  private dumpSock: NetlinkSocket | null = null;
  private queue = new Fifo<Rec>();
  /** A flow's community_id, hashed at NEW, reused for its UPDATE and DESTROY (none when only NEW events come). */
  private cids: CommunityIdCache | undefined;
  private held: Fifo<Rec> | null = null; // events arriving while the dump runs
  private pendingLost = 0;
  private pendingReason = '';
  private started = false;
  private stopped = false;
  private wantMore = false;
  private readonly max: number;
  private readonly protos: Set<string> | null;
  readonly counts: SourceStats = { received: 0, emitted: 0, lost: 0, queued: 0, rcvbuf: 0 };

  constructor(private opts: ConntrackOptions) {
    // With `lines`, an object is a batch of up to hundreds of events: the
    // stream's own buffer holds two, so that what waits for the reader is
    // in the queue, bounded in events.
    super({ objectMode: true, highWaterMark: opts.lines ? 2 : 64 });
    if (opts.events.some((k) => k !== 'new')) this.cids = new CommunityIdCache();
    this.max = Math.max(1, opts.queue ?? 100000);
    this.protos = opts.protos && opts.protos.length && !opts.protos.includes('all') ? new Set(opts.protos) : null;
  }

  /** Open the socket and subscribe; throws CtnetlinkError with the remedy. */
  start(): void {
    if (this.started) return;
    this.started = true;
    let sock: NetlinkSocket;
    try {
      sock = new NetlinkSocket(NETLINK_NETFILTER, { slot: EVENT_SLOT, onBatch: (b) => this.onBatch(b) });
    } catch (e) {
      throw explain(e, 'netlink socket');
    }
    this.sock = sock;
    for (const kind of new Set(this.opts.events)) {
      try {
        sock.addMembership(GROUPS[kind]);
      } catch (e) {
        sock.close();
        this.sock = null;
        throw explain(e, `joining the conntrack ${kind} group`);
      }
    }
    this.tuneSocket(sock, this.opts.rcvbuf ?? Math.max(rmemMax(), DEFAULT_RCVBUF));
    try {
      this.counts.rcvbuf = sock.rcvbuf;
    } catch { /* left at 0 */ }
    if (this.opts.lines) {
      const family = this.opts.family === 'ipv4' ? AF_INET : this.opts.family === 'ipv6' ? AF_INET6 : 0;
      // Names of other numbers are their decimal text, as the decoder writes them.
      const protos = this.protos ? [...this.protos].map((p) => PROTO_NUMBERS[p] ?? (/^\d+$/.test(p) ? Number(p) : -1)) : null;
      sock.conntrackLines({ host: this.opts.host, protos, family });
    }
    sock.start();
    if (this.opts.dump) this.startDump();
  }

  /**
   * The receive buffer (SO_RCVBUFFORCE past net.core.rmem_max: allowed with
   * CAP_NET_ADMIN, which subscribing needs anyway) and NETLINK_NO_ENOBUFS
   * (no error report on an overrun: the loss is read from the drop counter
   * either way, and without it the addon clears and counts the report).
   */
  private tuneSocket(sock: NetlinkSocket, want: number): void {
    const errors = sock.setRcvbuf(want, rmemMax());
    const e = sock.noEnobufs();
    if (e) errors.push(e);
    if (errors.length) this.opts.onWarning?.(`could not set socket options (${errors.join('; ')}); losses are still counted`);
  }

  private onBatch(b: NetlinkBatch): void {
    if (b.count && this.opts.lines) {
      let ts = '';
      // The batch's ts (its first entry), for beforeBatch.
      forEachEntry(b.buf, (kind, start, end) => { if (!ts && kind === ENTRY_TS) ts = b.buf.toString('latin1', start, end); });
      this.opts.beforeBatch?.(ts || undefined);
      forEachEntry(b.buf, (kind, start, end, lines, decoded) => {
        if (kind === ENTRY_TS) ts = b.buf.toString('latin1', start, end);
        else if (kind === ENTRY_RAW) this.onDatagram(b.buf.subarray(start, end), ts);
        else if (kind === ENTRY_LINES) {
          this.counts.received += decoded;
          if (lines) this.enqueueLines(b.buf.subarray(start, end), lines);
        }
      });
    } else if (b.count) {
      const ts = nowTs();
      this.opts.beforeBatch?.(ts);
      forEachDatagram(b.buf, (start, end) => this.onDatagram(b.buf.subarray(start, end), ts));
    } else {
      this.opts.beforeBatch?.();
    }
    if (b.drops) this.lose(b.drops, 'enobufs');
    if (b.truncated) this.lose(b.truncated, 'truncated');
    if (b.error) this.destroy(explain(b.error, 'receiving conntrack events'));
  }

  private onDatagram(buf: Buffer, ts: string): void {
    let msgs;
    try {
      msgs = splitMessages(buf);
    } catch (e) {
      this.lose(1, 'malformed');
      this.opts.onWarning?.(`malformed netlink datagram: ${(e as Error).message}`);
      return;
    }
    for (const m of msgs) this.handle(buf, m, ts, false);
  }

  private handle(buf: Buffer, m: ReturnType<typeof splitMessages>[number], ts: string, dump: boolean): void {
    let ev: FlowEvent | null;
    try {
      ev = decodeConntrack(buf, m, { ts, host: this.opts.host, cidCache: this.cids });
    } catch (e) {
      this.lose(1, 'malformed');
      if (e instanceof DecodeError) this.opts.onWarning?.(`malformed conntrack message: ${e.message}`);
      else throw e;
      return;
    }
    if (!ev) return;
    this.counts.received++;
    if (this.protos && !this.protos.has(ev.proto)) return;
    if (this.opts.family && ev.family !== this.opts.family) return;
    if (dump) {
      // A dump reply is IPCTNL_MSG_CT_NEW without NLM_F_CREATE, which the
      // decoder calls an update; ct-event(5) lists table entries as new.
      ev.event = 'new';
      ev.dump = true;
    }
    this.enqueue(ev);
  }

  private lose(n: number, reason: string): void {
    this.counts.lost += n;
    this.pendingLost += n;
    this.pendingReason = this.pendingReason && this.pendingReason !== reason ? `${this.pendingReason},${reason}` : reason;
    this.flushLost();
    this.pump();
  }

  private flushLost(): void {
    // One overrun record for a run of losses, placed where the gap is.
    if (!this.pendingLost) return;
    const target = this.held ?? this.queue;
    if (target.length >= this.max + 1) return; // one slot beyond the bound is kept for it
    target.push({ ts: nowTs(), event: 'overrun', lost: this.pendingLost, reason: this.pendingReason, ...(this.opts.host !== undefined ? { host: this.opts.host } : {}) });
    this.opts.onWarning?.(`lost ${this.pendingLost} conntrack event${this.pendingLost === 1 ? '' : 's'} (${this.pendingReason})`);
    this.pendingLost = 0;
    this.pendingReason = '';
  }

  private enqueue(r: Rec): void {
    const target = this.held ?? this.queue;
    // Only once the queue has room again: flushing into the spare slot while
    // it is still full would split one run of losses into two records.
    if (this.pendingLost && target.length < this.max) this.flushLost();
    if (target.length >= this.max || this.pendingLost) {
      this.counts.lost++;
      this.pendingLost++;
      if (!this.pendingReason.includes('queue')) this.pendingReason = this.pendingReason ? `${this.pendingReason},queue` : 'queue';
      return;
    }
    target.push(r);
    this.counts.queued = this.queue.length;
    if (this.wantMore) this.pump();
  }

  /** enqueue() for `n` events' lines at once: as many as the queue has room for, the rest counted as lost. */
  private enqueueLines(buf: Buffer, n: number): void {
    const target = this.held ?? this.queue;
    if (this.pendingLost && target.length < this.max) this.flushLost();
    const room = this.pendingLost ? 0 : Math.max(0, this.max - target.length);
    if (room < n) {
      let cut = 0;
      for (let i = 0; i < room; i++) cut = buf.indexOf(10, cut) + 1;
      if (room) target.push(new EventLines(buf.subarray(0, cut), room));
      this.counts.lost += n - room;
      this.pendingLost += n - room;
      if (!this.pendingReason.includes('queue')) this.pendingReason = this.pendingReason ? `${this.pendingReason},queue` : 'queue';
    } else {
      target.push(new EventLines(buf, n));
    }
    this.counts.queued = this.queue.length;
    if (this.wantMore) this.pump();
  }

  private pump(): void {
    while (this.queue.length) {
      const r = this.queue.shift()!;
      if (r === null) {
        this.push(null);
        return;
      }
      if (r instanceof EventLines) this.counts.emitted += r.count;
      else if (r.event !== 'overrun') this.counts.emitted++;
      if (!this.push(r)) {
        this.wantMore = false;
        this.counts.queued = this.queue.length;
        return;
      }
    }
    this.counts.queued = 0;
    this.wantMore = true;
    if (this.pendingLost) {
      // The queue has drained: the record for the losses goes out now, not
      // with the next event (which may be long in coming).
      this.flushLost();
      if (this.queue.length) this.pump();
    }
  }

  override _read(): void {
    if (!this.started) {
      try {
        this.start();
      } catch (e) {
        this.destroy(e as Error);
        return;
      }
    }
    this.wantMore = true;
    this.pump();
  }

  private startDump(): void {
    this.held = new Fifo<Rec>();
    let dsock: NetlinkSocket;
    let done = false;
    const onDump = (buf: Buffer) => {
      if (done || !this.held) return;
      const ts = nowTs();
      let msgs;
      try {
        msgs = splitMessages(buf);
      } catch (e) {
        return finish(new CtnetlinkError(`table dump: ${(e as Error).message}`));
      }
      for (const m of msgs) {
        if (m.type === NLMSG_DONE) return finish();
        if (m.type === NLMSG_ERROR) {
          const code = nlError(buf, m);
          if (code === 0) continue;
          const e: any = new Error(`errno ${-code}`);
          e.code = -code === 1 ? 'EPERM' : -code === 95 ? 'EOPNOTSUPP' : -code === 2 ? 'ENOENT' : `E${-code}`;
          return finish(explain(e, 'table dump'));
        }
        // Dump entries go straight to the queue, ahead of the held events.
        const saved: Fifo<Rec> | null = this.held;
        this.held = null;
        try {
          this.handle(buf, m, ts, true);
        } finally {
          this.held = saved;
        }
      }
    };
    try {
      dsock = new NetlinkSocket(NETLINK_NETFILTER, {
        slot: DUMP_SLOT,
        onBatch: (b) => {
          forEachDatagram(b.buf, (start, end) => onDump(b.buf.subarray(start, end)));
          // A dump is flow-controlled by the kernel: a loss here is a failure.
          if (!done && (b.drops || b.truncated)) finish(new CtnetlinkError(`table dump: ${b.drops + b.truncated} part(s) lost`));
          if (!done && b.error) finish(explain(b.error, 'table dump'));
        },
      });
    } catch (e) {
      this.held = null;
      throw explain(e, 'netlink socket for the table dump');
    }
    this.dumpSock = dsock;
    dsock.setRcvbuf(Math.max(rmemMax(), 1 << 20), rmemMax()); // the default still works, more slowly
    const seq = (Date.now() & 0x7fffffff) >>> 0;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      dsock.close();
      this.dumpSock = null;
      const held = this.held ?? new Fifo<Rec>();
      this.held = null;
      if (err) return this.destroy(err);
      while (held.length) this.queue.push(held.shift()!);
      this.pump();
    };
    dsock.start();
    const fam = this.opts.family === 'ipv4' ? AF_INET : this.opts.family === 'ipv6' ? AF_INET6 : 0;
    try {
      dsock.send(buildRequest((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, fam));
    } catch (e) {
      queueMicrotask(() => finish(explain(e, 'table dump request')));
    }
  }

  /** Stop receiving; what is queued is still delivered, then the stream ends. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    // What the kernel queued before the stop, and its last losses.
    this.sock?.drain();
    this.sock?.close();
    this.sock = null;
    this.dumpSock?.close();
    this.dumpSock = null;
    if (this.held) {
      while (this.held.length) this.queue.push(this.held.shift()!);
      this.held = null;
    }
    this.queue.push(null as any);
    this.pump();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.sock?.close();
    this.sock = null;
    this.dumpSock?.close();
    this.dumpSock = null;
    cb(err);
  }
}
